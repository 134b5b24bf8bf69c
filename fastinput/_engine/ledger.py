"""Where a stage that works ahead stands in its input: the bookkeeping behind its saved state.

A stage that pulls work from its input before its consumer asks (parallel map, map_and_batch, prefetch) saves no
work in flight (see ``checkpoint``): it saves its input's state as it stood before the oldest work item not fully
delivered, and which input positions after that point were delivered already, so a restored stage pulls again from
there and drops exactly those. ``InputLedger`` keeps that record: each pull is a ``Pulled`` entry (the input's state
before it, its first position, how many positions it took); the consumer side says what of each was handed out;
``saved`` reads the saved point off the oldest entry not fully delivered.

Positions count the input's items from where the stage started (or was restored): an element is one, and so is an
error the input raised (it takes its place in the sequence). The delivered positions are saved as runs
``[[offset, count], ...]`` counted from the saved input state: at most one, at offset 0, when outputs are delivered
in order; more when they are not (``deterministic=False``). A restored stage gets the runs back and drops each as it
reaches it (``skip_delivered``), before it pulls anything past it.

Those positions name elements only if the input, restored, gives them in the same order (``restores_in_order``).
Below a stage that does not (``deterministic=False``), a stage saves no partly delivered work and no delivered
positions at all: it pulls one element at a time where it would hand out part of a work item, and hands its work
out in order (``one_at_a_time``), so its state is always the input's own state before its oldest undelivered work.

Threads: the one thread pulling from the input (a worker holding the input lock, or prefetch's producer) calls
``skip_delivered`` and takes the input's state (``mark``: ``InputMarks``, ``_engine/resume.py``) while the input
is quiet; ``pulled``, ``saved`` and the delivery counts are called with the stage's lock held. An input's
``get_state`` must return a snapshot (no reference to a structure it changes later): the ledger keeps it until the
work pulled after it is delivered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from fastinput import errors
from fastinput._engine.checkpoint import stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext, ThreadedIterator
from fastinput._engine.resume import InputMarks, drop_units


class Pulled:
    """One work item's input positions: the input's ``state`` before it, its first position ``start``, ``size``
    positions, ``outputs`` it gave (``delivered`` of them handed out so far: the first positions' outputs)."""

    __slots__ = ("state", "start", "size", "outputs", "delivered")

    def __init__(self, size: int, outputs: int = 0) -> None:
        self.state: Any = None
        self.start = 0
        self.size = size
        self.outputs = outputs
        self.delivered = 0

    @property
    def whole(self) -> bool:
        """Whether every output of this work item has been handed out (then all its positions count as delivered)."""
        return self.delivered >= self.outputs


def check_runs(value: Any, stage: str) -> list[tuple[int, int]]:
    """Saved runs of delivered positions, checked: sorted, non-overlapping ``[offset, count]`` pairs."""
    runs: list[tuple[int, int]] = []
    end = 0
    for run in value if isinstance(value, list) else [None]:
        if not (isinstance(run, list) and len(run) == 2 and all(type(x) is int for x in run)
                and run[0] >= end and run[1] > 0):
            raise errors.InvalidArgumentError(f"set_state: stage {stage}: the delivered positions saved ({value!r}) "
                                              "are not sorted [offset, count] pairs: the state is damaged")
        runs.append((run[0], run[1]))
        end = run[0] + run[1]
    return runs


def _merged(runs: list[tuple[int, int]]) -> list[list[int]]:
    """Sorted runs with touching ones joined, as JSON-able pairs."""
    out: list[list[int]] = []
    for start, count in sorted(runs):
        if out and out[-1][0] + out[-1][1] == start:
            out[-1][1] += count
        else:
            out.append([start, count])
    return out


class InputLedger:
    """The work a stage has pulled from its input and not fully delivered, and where its input stands."""

    def __init__(self, source: DatasetIterator, one_at_a_time: bool) -> None:
        self._marks = InputMarks(source)  # None once the input could not save: a pipeline never saved runs on
        self.one_at_a_time = one_at_a_time
        """The input does not restore in order: pull one position at a time (see the module docstring)."""
        self._entries: deque[Pulled] = deque()  # in pull order; the head is the oldest not fully delivered
        self._started = False
        self._frontier_state: Any = None  # the input's state after the last pull ...
        self._frontier = 0  # ... at this position
        self._restored: list[tuple[int, int]] = []  # runs delivered before the state this stage was restored from
        self._next_restored = 0  # the first of them not dropped yet (the puller's)

    def restore(self, runs: list[tuple[int, int]]) -> None:
        """Before the start: the positions (from the input's restored state) delivered before the save."""
        self._restored = runs

    def start(self) -> None:
        """Before the first pull (no thread started yet: the input is quiet): where the input stands."""
        if not self._started:
            self._frontier_state = self.mark()
            self._started = True

    # -- the puller (the one thread pulling from the input) ----------------------------------------------------
    def mark(self) -> Any:
        """The input's state now, for ``pulled`` (None if it cannot save: ``saved`` says so when asked). Any error
        of the input's ``get_state`` counts as that: on a worker thread it must not stop the pipeline."""
        try:
            return self._marks.take()
        except Exception:
            return None

    def skip_delivered(self, source: DatasetIterator, lock: Any) -> int | None:
        """Drop the restored run starting where the input stands, if any (advancing under ``lock``, the stage's);
        the positions that may be pulled before the next such run (None: no limit; 1 ``one_at_a_time``).
        ``StopIteration`` if the input ends first."""
        restored = self._restored
        while self._next_restored < len(restored) and restored[self._next_restored][0] <= self._frontier:
            count = restored[self._next_restored][1]
            drop_units(source, count)
            after = self.mark()
            with lock:
                self._frontier += count
                self._frontier_state = after
                self._next_restored += 1
        if self.one_at_a_time:
            return 1
        if self._next_restored == len(restored):
            return None
        return restored[self._next_restored][0] - self._frontier

    # -- with the stage's lock held ------------------------------------------------------------------------------
    def pulled(self, entry: Pulled, after: Any) -> None:
        """The puller took ``entry.size`` positions; ``after`` is the input's state after them."""
        entry.state, entry.start = self._frontier_state, self._frontier
        self._frontier += entry.size
        self._frontier_state = after
        self._entries.append(entry)

    def delivered_in_order(self, count: int) -> None:
        """``count`` outputs were handed out, in pull order (prefetch)."""
        for entry in self._entries:
            if not count:
                break
            taken = min(count, entry.outputs - entry.delivered)
            entry.delivered += taken
            count -= taken
        self.prune()

    def prune(self) -> None:
        """Forget the oldest entries once fully delivered."""
        entries = self._entries
        while entries and entries[0].whole:
            entries.popleft()

    def saved(self, source: DatasetIterator) -> tuple[Any, list[list[int]]]:
        """(the input's state to save, the runs of positions after it delivered already); ``source``'s own state
        when no thread has pulled yet. ``UnimplementedError`` when the input could not save its state there."""
        self.prune()
        if not self._started:
            return source.get_state(), _merged(self._restored)
        if self._entries:
            head = self._entries[0]
            base_state, base = head.state, head.start
        else:
            base_state, base = self._frontier_state, self._frontier
        if base_state is None:
            raise errors.UnimplementedError(f"get_state: {source.name} could not save its state when the stage "
                                            "reading ahead of it pulled from it")
        runs = [(entry.start - base, entry.size if entry.whole else entry.delivered)
                for entry in self._entries if entry.delivered or entry.whole]
        runs += [(start - base, count) for start, count in self._restored if start >= base]
        return base_state, _merged(runs)


class WorkAheadIterator(ThreadedIterator):
    """A threaded stage that pulls from its one input ahead of its consumer and saves positions (``InputLedger``),
    never the work in flight. Subclasses record their pulls in ``ledger`` and what their consumer was handed."""

    def __init__(self, dataset: Any, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self.input_in_order = source.restores_in_order()
        """Whether the input, restored, gives its elements in the saved order (else see ``InputLedger``)."""
        self.ledger = InputLedger(source, one_at_a_time=not self.input_in_order)

    def start_workers(self, target: Callable[[], None], count: int) -> None:
        if self._pool is None:
            self.ledger.start()
        super().start_workers(target, count)

    def account_delivered(self) -> None:
        """With the stage's lock held: bring the ledger's delivery counts up to date (before a state is read)."""

    def get_state(self) -> dict[str, Any]:
        """The input's state before the oldest work not fully delivered and the positions after it delivered
        (``"skip"``); consistent while workers run, holding the stage's lock only to read the ledger."""
        with self._cond:
            self.account_delivered()
            input_state, runs = self.ledger.saved(self.inputs[0])
        return stage_state(self.op, {"skip": runs}, [input_state])

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self.ledger.restore(check_runs(state.get("skip"), self.name))
