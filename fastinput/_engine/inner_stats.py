"""The stages inside the datasets an interleave opens, as its stats show them: added up over every dataset opened.

``interleave(f)`` / ``flat_map(f)`` build one small pipeline per input element (``f``'s dataset), read it and
close it. Each such pipeline is short-lived, but together they may hold the pipeline's costliest work
(``interleave(lambda f: TFRecordDataset(f).map(parse))``): ``it.stats()`` shows them below the interleave, one
row per stage of ``f``'s dataset, with the figures of every dataset opened so far (ended ones and those being
read) added up, and the interleave's own time without theirs. The profiler can then name the inner stage that
limits the pipeline instead of blaming the interleave.

A dataset that ends is folded into running totals at once (a few integer additions per stage: ``flat_map`` may
open millions of one-element datasets), so nothing of it is kept.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING

from fastinput._engine.metrics import StageStats
from fastinput._engine.traits import StageTraits

if TYPE_CHECKING:
    from fastinput._engine.iterator import DatasetIterator

_Key = tuple[int, int, str]  # (place in the inner pipeline's pre-order, depth in it, the stage's op)


class _Totals:
    """One inner stage's figures, added up over the datasets that had it (times in ns)."""

    __slots__ = ("depth", "name", "traits", "parallel", "parallelism", "inner_of", "elements", "call_ns",
                 "own_ns", "wait_ns", "cpu_ns", "occupancy", "capacity", "bytes_buffered", "worker_pids")

    def __init__(self, depth: int, name: str, traits: StageTraits, parallel: bool,
                 inner_of: str | None = None) -> None:
        self.depth, self.name, self.traits, self.parallel, self.inner_of = depth, name, traits, parallel, inner_of
        self.parallelism = 1
        self.elements = self.call_ns = self.own_ns = self.wait_ns = self.cpu_ns = 0
        self.occupancy = self.capacity = self.bytes_buffered = 0
        self.worker_pids: tuple[int, ...] = ()

    def _named(self, name: str, parallelism: int) -> None:
        self.parallelism = max(self.parallelism, parallelism)
        if name != self.name and not self.name.endswith("(...)"):  # stages named after their input element
            self.name = f"{self.traits.op}(...)"

    def add(self, iterator: DatasetIterator, levels: bool) -> None:
        """Add one dataset's stage; ``levels``: its buffers' levels and worker processes too (an open dataset)."""
        m = iterator.metrics
        self.elements += m.elements
        self.call_ns += m.call_ns
        self.own_ns += iterator.own_ns()
        self.wait_ns += m.wait_ns
        self.cpu_ns += m.cpu_ns
        self._named(m.name, m.parallelism)
        if levels:
            self.occupancy += m.buffer_occupancy
            self.capacity += m.buffer_capacity
            self.bytes_buffered += int(m.buffer_occupancy * m.bytes_per_element)
            self.worker_pids += iterator.worker_pids()

    def add_stats(self, s: StageStats, levels: bool) -> None:
        """The same from a stage's ``StageStats`` (a stage ``walk()`` does not reach)."""
        self.elements += s.elements
        self.call_ns += round(s.call_seconds * 1e9)
        self.own_ns += round(s.self_seconds * 1e9)
        self.wait_ns += round(s.wait_seconds * 1e9)
        self.cpu_ns += round(s.cpu_seconds * 1e9)
        self._named(s.name, s.parallelism)
        if levels:
            self.occupancy += s.buffer_occupancy
            self.capacity += s.buffer_capacity
            self.bytes_buffered += s.bytes_buffered
            self.worker_pids += s.worker_pids

    def copy(self) -> _Totals:
        twin = _Totals.__new__(_Totals)
        for name in _Totals.__slots__:
            setattr(twin, name, getattr(self, name))
        return twin

    def stats(self, depth: int, elapsed_seconds: float, threads: int, inside: str) -> StageStats:
        """As a row of the interleave's stats (see ``InnerStages.stats``); a nested interleave's stages keep
        theirs."""
        return StageStats(
            name=self.name, depth=depth + self.depth, parallel=self.parallel, elements=self.elements,
            call_seconds=self.call_ns / 1e9, self_seconds=self.own_ns / 1e9, wait_seconds=self.wait_ns / 1e9,
            buffer_occupancy=self.occupancy, buffer_capacity=self.capacity, bytes_buffered=self.bytes_buffered,
            parallelism=self.parallelism if self.parallel or self.inner_of else threads,
            elapsed_seconds=elapsed_seconds, cpu_seconds=self.cpu_ns / 1e9, traits=self.traits,
            worker_pids=self.worker_pids, inner_of=self.inner_of or inside)


def _fold(totals: dict[_Key, _Totals], iterator: DatasetIterator, levels: bool) -> None:
    """Add the stages of one dataset (its last stage ``iterator`` and those below it) into ``totals``.

    Stages are matched by place and op, not by name: each dataset's stages may be named after its input element
    (``range(0, 200)``, ``range(1000, 1200)``); a row that adds up stages of different names is named ``op(...)``.
    Read straight from the stages' counters (a few additions each: ``flat_map`` may open millions of small
    datasets), or from ``stats_below()`` where that shows more than the stages' inputs reach.
    """
    stages = list(iterator.walk())
    if any(stage.stats_beyond_inputs for _, stage in stages):
        for place, s in enumerate(iterator.stats_below()):
            key = (place, s.depth, s.traits.op)
            total = totals.get(key)
            if total is None:
                total = totals[key] = _Totals(s.depth, s.name, s.traits, s.parallel, s.inner_of)
            total.add_stats(s, levels)
        return
    for place, (depth, stage) in enumerate(stages):
        traits = stage.dataset.traits
        key = (place, depth, traits.op)
        total = totals.get(key)
        if total is None:
            total = totals[key] = _Totals(depth, stage.metrics.name, traits, stage.metrics.parallel)
        total.add(stage, levels)


class InnerStages:
    """The datasets an interleave has opened: those being read, and the added-up figures of those that ended.

    Thread-safe: a parallel interleave's workers open and end datasets while a user or the autotuner reads
    ``stats``; a dataset is counted once, among the open ones or the ended ones.
    """

    def __init__(self, inside: str | None) -> None:
        """``inside``: the interleave's name, recorded on each inner stage; None keeps nothing (an interleave that
        runs as a reader, such as ``TFRecordDataset`` over its files, shows as one stage)."""
        self._inside = inside
        self.kept = inside is not None
        """Whether the datasets' stages are kept (and so shown beyond the interleave's inputs)."""
        self._lock = threading.Lock()
        self._open: dict[int, DatasetIterator] = {}  # id -> iterator
        self._ended: dict[_Key, _Totals] = {}

    def opened(self, iterator: DatasetIterator) -> None:
        """Count a dataset the interleave has started to read."""
        if self._inside is not None:
            with self._lock:
                self._open[id(iterator)] = iterator

    def ended(self, iterator: DatasetIterator) -> None:
        """Add the figures of a dataset the interleave has finished with to the totals, and forget the dataset."""
        if self._inside is not None:
            with self._lock:
                if self._open.pop(id(iterator), None) is not None:
                    _fold(self._ended, iterator, levels=False)

    def stats(self, depth: int, elapsed_seconds: float, threads: int) -> list[StageStats]:
        """The inner stages at ``depth`` (the interleave's depth + 1), consumer first: the ended datasets' figures
        plus the open ones'. ``threads``: how many of the interleave's threads may run a synchronous inner stage at
        once (its parallelism; 1 for a sequential interleave), shown as that stage's parallelism;
        ``elapsed_seconds``: the interleave's lifetime, which its inner stages share."""
        if self._inside is None:
            return []
        with self._lock:
            totals = {key: total.copy() for key, total in self._ended.items()}
            for iterator in self._open.values():
                _fold(totals, iterator, levels=True)
        return [total.stats(depth, elapsed_seconds, threads, self._inside) for total in totals.values()]


def with_inner_stages(stats: list[StageStats], inner: InnerStages, threads: int) -> list[StageStats]:
    """An interleave's ``stats_below``: ``stats`` (its own ``DatasetIterator.stats_below``: itself, then its
    input's stages) with its own time less its datasets' calls, then its datasets' stages (``threads``: see
    ``InnerStages.stats``)."""
    own, *inputs = stats
    stages = inner.stats(own.depth + 1, own.elapsed_seconds, threads)
    inner_calls = sum(s.call_seconds for s in stages if s.depth == own.depth + 1)
    return [dataclasses.replace(own, self_seconds=max(0.0, own.self_seconds - inner_calls)), *inputs, *stages]
