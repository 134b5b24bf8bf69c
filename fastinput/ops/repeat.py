"""``ds.repeat(count)``: iterate the input again and again."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from fastinput._engine import cardinality
from fastinput._engine.arguments import check_int
from fastinput._engine.checkpoint import check_stage
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.metrics import StageMetrics, StageStats
from fastinput._engine.row_slices import RowLayout, Rows
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset


class RepeatDataset(Dataset):
    traits = StageTraits("repeat", StageKind.REPEAT, passes_through=True, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, count: int | None) -> None:
        super().__init__([input_dataset])
        self.count = -1 if count is None else check_int("repeat", "count", count, minimum=0, allow=(-1,))

    def row_layout(self) -> RowLayout | None:
        """Its input's: runs of rows from one epoch at a time."""
        return self.inputs[0].row_layout()

    def cardinality(self) -> int:
        return cardinality.repeated(self.inputs[0].cardinality(), self.count)

    def __str__(self) -> str:
        return "repeat()" if self.count == -1 else f"repeat({self.count})"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _RepeatIterator(self, ctx)


class EpochTally:
    """Counts what each epoch of a repeat gave, and says (as tf.data does) when ``repeat()`` forever must end.

    A finite ``repeat(count)`` runs every epoch, empty or not (tf.data does:
    an input that is empty at first may not be later). ``repeat()`` forever
    ends when an epoch ends before any element has ever come (tf.data's rule:
    an epoch of only errors counts as empty then), and also, where tf.data
    would spin forever, when a later epoch gives neither an element nor an error.
    """

    __slots__ = ("total_elements", "epoch_elements", "epoch_errors")

    def __init__(self) -> None:
        self.total_elements = 0
        self.epoch_elements = 0
        self.epoch_errors = 0

    def elements(self, n: int) -> None:
        self.epoch_elements += n
        self.total_elements += n

    def error(self) -> None:
        self.epoch_errors += 1

    def end_epoch(self, forever: bool) -> bool:
        """Close the epoch; True when the repeat must end here (only ever for ``repeat()`` forever)."""
        empty = self.epoch_elements == 0 and self.epoch_errors == 0
        self.epoch_elements = self.epoch_errors = 0
        return forever and (self.total_elements == 0 or empty)

    def counts(self) -> list[int]:
        """The counts, for a saved state."""
        return [self.total_elements, self.epoch_elements, self.epoch_errors]

    def restore(self, counts: list[int]) -> None:
        self.total_elements, self.epoch_elements, self.epoch_errors = counts


class _RepeatIterator(DatasetIterator):
    """Re-creates its input iterator at each end (see ``EpochTally`` for when ``repeat()`` stops).

    What the last epoch's stages learned carries over to the next one's: knob
    values (the autotuner's settings, RAM budget cuts included) and their
    metrics (``StageMetrics.carry_over``: counts, times, sampled element
    sizes). Otherwise every epoch would start from the defaults, short epochs
    would run with buffers the tuner never gets to fit, and the profiler would
    see only the current epoch. After the last epoch, the stats show its
    stages as they ended (taken then only: not at every epoch's end).

    Its state is the epoch, the tally and the current epoch's input's state
    (none between two epochs: the next input opens at the next request). A
    restore opens the saved epoch's input fresh and restores it there: an
    input that differs from epoch to epoch (a reshuffling shuffle) saves
    what makes it differ in its own state.
    """

    stats_beyond_inputs = True  # the last epoch's stages, once it ended

    def __init__(self, dataset: RepeatDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx, [])
        self._ds = dataset
        self._epoch = 0
        self._tally = EpochTally()
        self._source: DatasetIterator | None = None
        self._ended = False
        self._learned: list[tuple[str, dict[str, int], StageMetrics]] = []
        self._last_epoch_stats: list[StageStats] = []  # the last epoch's stages, as it ended (once the run has)
        if dataset.count != 0:  # the first epoch's tree now (no thread starts yet): the autotuner sees its knobs
            self._open()

    def _open(self) -> DatasetIterator:
        self._source = self._ds.inputs[0].make_iterator(self.ctx)
        for (_, stage), (name, knobs, metrics) in zip(self._source.walk(), self._learned):
            if stage.name != name:  # not the same tree (cannot happen for one description): keep the defaults
                break
            for knob in stage.knobs():
                if knob.name in knobs:
                    knob.set(knobs[knob.name])
            stage.metrics.carry_over(metrics)
        self.inputs = [self._source]
        return self._source

    def produce_chunk(self, n: int) -> list[Any]:
        return self._from_epoch(n, DatasetIterator.get_next_chunk)

    def produce_rows(self, n: int) -> Rows:
        return self._from_epoch(n, DatasetIterator.get_next_rows)

    def _from_epoch(self, n: int, pull: Callable[[DatasetIterator, int], Any]) -> Any:
        """Up to ``n`` elements of the current epoch (a list, or a run of rows: ``pull``'s), opening the next epoch
        where one ends."""
        count = self._ds.count
        while not self._ended and (count == -1 or self._epoch < count):
            source = self._source or self._open()
            try:
                chunk = pull(source, n)
            except StopIteration:
                source.close()
                self._learned = [(stage.name, {k.name: k.value for k in stage.knobs()}, stage.metrics)
                                 for _, stage in source.walk()]
                self._source = None
                self.inputs = []
                self._epoch += 1
                self._ended = self._tally.end_epoch(forever=count == -1)
                if self._ended or self._epoch == count:  # no epoch follows: the stats show this one's stages
                    self._last_epoch_stats = source.stats_below()
                continue
            except Exception:
                self._tally.error()
                raise
            self._tally.elements(len(chunk))
            return chunk
        raise StopIteration

    def stats_below(self, depth: int = 0) -> list[StageStats]:
        if self.inputs or not self._last_epoch_stats:
            return super().stats_below(depth)
        own = self.stats(depth)
        below = [dataclasses.replace(s, depth=s.depth + depth + 1) for s in self._last_epoch_stats]
        own_seconds = max(0.0, own.call_seconds - below[0].call_seconds)  # the input's time is not its own
        return [dataclasses.replace(own, self_seconds=own_seconds), *below]

    def own_state(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "ended": self._ended, "tally": self._tally.counts()}

    def set_state(self, state: dict[str, Any]) -> None:
        check_stage(state, self.op, self.name)
        if not state["inputs"] and self._source is not None:  # saved between two epochs
            self._source.close()
            self._source = None
            self.inputs = []
        super().set_state(state)

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._epoch, self._ended = state["epoch"], state["ended"]
        self._tally.restore(state["tally"])
