"""``ds.interleave``: map each element to a dataset and interleave their elements.

Order (deterministic): the cycle has ``cycle_length`` slots. At the current
slot, an empty slot is filled with the dataset of the next input element and
read at once; ``block_length`` elements are taken from the slot (fewer if its
dataset ends, which empties the slot) before moving to the next slot. This is
exactly tf.data's order, sequential or parallel.

Parallel (``num_parallel_calls`` set): worker threads read ahead from the
datasets in the cycle and from the next input elements ("future" elements)
into per-dataset buffers, most urgent first (the slot the consumer reads next,
then the following slots, then the future ones), so slow remote reads
overlap. ``deterministic=False`` lets the consumer take from any slot that has
data instead of waiting for the slot whose turn it is.

Row blocks (``rows=RowBlocks(...)``, ``fastinput._engine.rows``): the inner
datasets yield blocks of rows and the order above holds for rows (a block
counts as its rows); whole rounds of the cycle are merged with one copy per
column. Parallel only: the workers read the blocks ahead.

Positions (``fastinput._engine.positions``): over elements, an interleave is ``Positioned`` where its inner
datasets are: an element's position is its inner dataset's key (the input element it was made from) and its
position there; ``reread`` makes those datasets again and rereads from them.

Saving (``get_state``): the cycle (each slot's input element, ``encode_value``, and its dataset's state), the
cycle index and block position, and the input's state before its first element not in the cycle. The parallel
interleave saves no read-ahead: each slot is where its dataset stood before its first buffered unit not yet
delivered (a state the workers captured, and the units after it, which a restore reads again and drops), and
the future elements opened ahead are opened again after a restore.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from fastinput import errors
from fastinput._engine.arguments import (
    AUTOTUNE,
    MAX_CYCLE_LENGTH,
    MAX_PARALLELISM,
    check_bool,
    check_callable,
    check_int,
    check_parallelism,
    fn_name,
    format_arg,
    not_a_dataset,
)
from fastinput._engine.buffer import Failure
from fastinput._engine.checkpoint import decode_value, encode_value, stage_state
from fastinput._engine.function_spec import merge_traces, trace
from fastinput._engine.inner_stats import InnerStages, with_inner_stages
from fastinput._engine.iterator import DatasetIterator, IteratorContext, Knob, ThreadedIterator, note_stage
from fastinput._engine.metrics import StageStats
from fastinput._engine.positions import (
    Position,
    Positioned,
    element_key,
    element_of_key,
    reread_grouped,
    tracks_positions,
    with_key,
)
from fastinput._engine.rows import ELEMENTS, READ_CHUNK, RowBlocks, UnitQueue, Units
from fastinput._engine.traits import KnobKind, StageKind, StageTraits, TuningKind, TuningProfile
from fastinput.dataset import Dataset
from fastinput.ops.map import call_on_element, resolve_deterministic
from fastinput.options import available_cpus
from fastinput.spec import running

SMALL_BUFFER_BYTES = 1 << 20
SMALL_BUFFER_ELEMENTS = 1024
"""Small elements may buffer up to this many bytes' worth per dataset, at most this many (see
``elements_per_dataset``)."""


def elements_per_dataset(buffer_output_elements: int, element_bytes: float) -> int:
    """Elements each dataset of a parallel interleave may buffer: the knob's value, or more when elements are small.

    Small records (a few hundred bytes) are consumed a batch at a time: with 64
    per dataset, a batch of 1024 would wait on several rounds of reads. So up to
    SMALL_BUFFER_BYTES' worth (at most 1024) may wait. The autotuner's model
    counts the same (``fastinput.autotune.model.buffered_bytes``).
    """
    small = min(SMALL_BUFFER_ELEMENTS, int(SMALL_BUFFER_BYTES / element_bytes)) if element_bytes else 0
    return max(buffer_output_elements, small)


PREFETCH_FACTOR = 2
"""tf.data reads ahead two future datasets per cycle slot, so an autotuned cycle gets a third of the cores."""


def autotune_cycle_length(num_parallel_calls: int | None) -> int:
    """tf.data's ``cycle_length=AUTOTUNE``, so interleave order matches tf.data's on the same machine.

    Sequential: the cores. A fixed ``num_parallel_calls``: that, at most the
    cores. ``num_parallel_calls=AUTOTUNE``: the cores divided by the threads
    one slot uses (itself and its read-ahead), rounded up.
    """
    cores = available_cpus()
    if num_parallel_calls is None:
        return cores
    if num_parallel_calls != AUTOTUNE:
        return min(num_parallel_calls, cores)
    return -(-cores // (PREFETCH_FACTOR + 1))


class InterleaveDataset(Dataset):
    traits = StageTraits("interleave", StageKind.INTERLEAVE, parallel_argument="num_parallel_calls")

    def __init__(self, input_dataset: Dataset, map_func: Callable, cycle_length: int | None, block_length: int,
                 num_parallel_calls: int | None, deterministic: bool | None, label: str | None = None,
                 rows: RowBlocks | None = None) -> None:
        super().__init__([input_dataset])
        self.map_func = check_callable("interleave", "map_func", map_func)
        self.cycle_length = check_int("interleave", "cycle_length", AUTOTUNE if cycle_length is None else cycle_length,
                                      minimum=1, maximum=MAX_CYCLE_LENGTH, allow=(AUTOTUNE,))
        self.block_length = check_int("interleave", "block_length", block_length, minimum=1)
        self.num_parallel_calls = check_parallelism("interleave", "num_parallel_calls", num_parallel_calls)
        self.deterministic = check_bool("interleave", "deterministic", deterministic, allow_none=True)
        fixed = self.num_parallel_calls not in (None, AUTOTUNE) and self.cycle_length != AUTOTUNE
        if fixed and self.num_parallel_calls > self.cycle_length:
            raise errors.InvalidArgumentError(f"interleave: num_parallel_calls ({num_parallel_calls}) must be "
                                              f"fi.AUTOTUNE or at most cycle_length ({self.cycle_length})")
        self.label = label or fn_name(map_func)
        if rows is not None and num_parallel_calls is None:
            raise errors.InvalidArgumentError(f"{self}: an interleave over row blocks reads them in parallel: "
                                              "give num_parallel_calls")
        self.units: Units = rows or ELEMENTS

    def __str__(self) -> str:
        args = [self.label, f"cycle_length={format_arg(self.cycle_length)}", f"block_length={self.block_length}"]
        if self.num_parallel_calls is not None:
            args.append(f"num_parallel_calls={format_arg(self.num_parallel_calls)}")
        if self.deterministic is not None:
            args.append(f"deterministic={self.deterministic}")
        return f"interleave({', '.join(args)})"

    def _as_dataset(self, inner: Any) -> Dataset:
        """What ``map_func`` returned, which must be a Dataset."""
        if not isinstance(inner, Dataset):
            raise not_a_dataset(f"{self}: map_func's result", inner)
        return inner

    def open_element(self, element: Any, ctx: IteratorContext) -> DatasetIterator:
        """The iterator of the dataset ``map_func`` makes from one input element."""
        with running():
            inner = call_on_element(self.map_func, element)
        return self._as_dataset(inner).make_iterator(ctx)

    def compute_element_spec(self) -> Any:
        """The spec of the datasets ``map_func`` returns for placeholder elements (as ``map`` learns its)."""
        remedy = "map_func must be able to build its dataset from any element of that spec"
        returned = trace(lambda element: call_on_element(self.map_func, element), self.inputs[0].element_spec,
                         str(self), remedy)
        return merge_traces([self._as_dataset(inner).element_spec for inner in returned], str(self), remedy)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return self.make_iterator_as(self, ctx)

    def reread(self, positions: list[Position], ctx: IteratorContext) -> list[Any]:
        """The elements at ``positions`` (key of the inner dataset first), read again from those datasets made anew."""
        def read_group(key: str, inner_positions: list[Position]) -> list[Any]:
            inner = self.open_element(element_of_key(key), ctx)
            try:
                if not isinstance(inner, Positioned):
                    raise errors.InvalidArgumentError(f"set_state: {self}: the dataset made from a saved position's "
                                                      "input element cannot read elements again by position")
                return inner.reread(inner_positions)
            finally:
                inner.close()

        return reread_grouped(positions, read_group)

    def make_iterator_as(self, stage: Dataset, ctx: IteratorContext) -> DatasetIterator:
        """This interleave's iterator, running as ``stage``: itself, or a Dataset that reads with an interleave
        (``TFRecordDataset``), whose name and kind its stats, errors and traces then show."""
        cycle_length = (autotune_cycle_length(self.num_parallel_calls) if self.cycle_length == AUTOTUNE
                        else self.cycle_length)
        source = self.inputs[0].make_iterator(ctx)
        if self.num_parallel_calls is None:
            return _InterleaveIterator(self, ctx, source, cycle_length, stage)
        autotuned = self.num_parallel_calls == AUTOTUNE
        parallelism = cycle_length if autotuned else min(self.num_parallel_calls, cycle_length)  # AUTOTUNE cycle_length
        return _ParallelInterleaveIterator(self, ctx, source, cycle_length, parallelism, autotuned,
                                           resolve_deterministic(self.deterministic, ctx), stage)


def inner_stages(dataset: InterleaveDataset, stage: Dataset) -> InnerStages:
    """What the stats keep of the datasets an interleave opens: their stages, below it, when the user wrote the
    interleave (or flat_map); nothing when it runs as a reader (``TFRecordDataset`` over files is one stage)."""
    return InnerStages(str(stage) if stage is dataset else None)


class _InterleaveIterator(DatasetIterator, Positioned):
    """Sequential interleave in the consumer's thread (tf.data's InterleaveDataset algorithm).

    Its state: each slot's input element and its dataset's state, the cycle index and block position; its
    input's state is where the next element to open is (nothing is opened ahead).
    """

    def __init__(self, dataset: InterleaveDataset, ctx: IteratorContext, source: DatasetIterator, cycle_length: int,
                 stage: Dataset) -> None:
        super().__init__(stage, ctx, [source])
        self._ds = dataset
        self._source = source
        self._cycle: list[DatasetIterator | None] = [None] * cycle_length
        self._elements: list[Any] = [None] * cycle_length  # the input element each slot's dataset was made from
        self._index = 0
        self._block_index = 0
        self._source_done = False
        self._keys: list[str | None] | None = None  # tracking positions: each slot's key (None: not tracked)
        self._positions: list[Position | None] = []
        self._inner = inner_stages(dataset, stage)
        self.stats_beyond_inputs = self._inner.kept  # its datasets' stages

    def stats_below(self, depth: int = 0) -> list[StageStats]:
        return with_inner_stages(super().stats_below(depth), self._inner, threads=1)

    def track_positions(self) -> bool:
        if self._keys is None:
            self._keys = [None] * len(self._cycle)
        return True

    def take_positions(self) -> list[Position | None]:
        return self._positions

    def reread(self, positions: list[Position]) -> list[Any]:
        return self._ds.reread(positions, self.ctx)

    def _advance(self) -> None:
        self._block_index = 0
        self._index = (self._index + 1) % len(self._cycle)

    def produce_chunk(self, n: int) -> list[Any]:
        block_length = self._ds.block_length
        while True:
            current = self._cycle[self._index]
            if current is not None:
                # with a single slot, block boundaries change nothing: hand out whole chunks
                want = n if len(self._cycle) == 1 else min(n, block_length - self._block_index)
                try:
                    chunk = current.get_next_chunk(want)
                except StopIteration:
                    current.close()
                    self._inner.ended(current)
                    self._cycle[self._index] = None
                    self._advance()
                    continue
                if self._keys is not None:
                    key = self._keys[self._index]
                    self._positions = with_key(key, current.take_positions() if key is not None else chunk)
                self._block_index += len(chunk)
                if self._block_index >= block_length:
                    self._advance()
                return chunk
            if not self._source_done:
                try:
                    element = self._source.get_next()
                except StopIteration:
                    self._source_done = True
                    continue
                opened = self._cycle[self._index] = self._ds.open_element(element, self.ctx)
                self._inner.opened(opened)
                self._elements[self._index] = element
                if self._keys is not None:
                    self._keys[self._index] = element_key(element) if tracks_positions(opened) else None
            elif any(it is not None for it in self._cycle):
                self._advance()
            else:
                raise StopIteration

    def own_state(self) -> dict[str, Any]:
        slots = [None if it is None else slot_state(element, it.get_state())
                 for it, element in zip(self._cycle, self._elements)]
        return cycle_state(slots, self._index, self._block_index, len(self._cycle))

    def restore_own_state(self, state: dict[str, Any]) -> None:
        slots = check_cycle(state, len(self._cycle), self.name)
        self._index, self._block_index = state["index"], state["block_index"]
        for index, saved in enumerate(slots):
            if saved is not None:
                self._elements[index], self._cycle[index] = reopen(self._ds, saved, self.ctx)
                self._inner.opened(self._cycle[index])

    def cancel_self(self) -> None:
        for it in self._cycle:
            if it is not None:
                it.cancel()

    def join_self(self) -> None:
        for it in self._cycle:
            if it is not None:
                it.close()


# -- saving and restoring the cycle --------------------------------------------------------------------------


def slot_state(element: Any, inner: Any, skip: int = 0) -> dict[str, Any]:
    """A cycle slot's saved form: the input element its dataset was made from (``encode_value``), that dataset's
    state, and how many units after that state were delivered already (a parallel interleave's read-ahead)."""
    return {"element": encode_value(element), "state": inner, "skip": skip}


def cycle_state(slots: list[Any], index: int, block_index: int, cycle_length: int) -> dict[str, Any]:
    """An interleave's own fields: its slots (None: empty) in cycle order, the slot whose turn it is and the units
    of the block taken from it."""
    return {"cycle_length": cycle_length, "slots": slots, "index": index, "block_index": block_index}


def check_cycle(state: dict[str, Any], cycle_length: int, name: str) -> list[Any]:
    """The saved slots, if the saved interleave's cycle is as long as this one's (else ``InvalidArgumentError``)."""
    if state.get("cycle_length") != cycle_length:
        raise errors.InvalidArgumentError(f"set_state: the pipeline differs from the one saved: stage {name} has "
                                          f"cycle_length {cycle_length} here, {state.get('cycle_length')} in the "
                                          "saved state")
    return state["slots"]


def reopen(ds: InterleaveDataset, saved: dict[str, Any], ctx: IteratorContext) -> tuple[Any, DatasetIterator]:
    """A saved slot's input element and its dataset's iterator, put where the slot's state says."""
    element = decode_value(saved["element"])
    iterator = ds.open_element(element, ctx)
    iterator.set_state(saved["state"])
    return element, iterator


def capture_state(iterator: DatasetIterator) -> Any:
    """``iterator.get_state()`` where a worker holds it, or the ``UnimplementedError`` saying why it cannot be
    saved: raised only if a state is asked for, so a pipeline that is never saved runs as well without one."""
    try:
        return iterator.get_state()
    except errors.UnimplementedError as exc:
        return exc


def saved(state: Any) -> Any:
    """A state ``capture_state`` took, or the error it met, raised now that a state is asked for."""
    if isinstance(state, errors.UnimplementedError):
        raise errors.UnimplementedError(str(state))
    return state


ENDED_SLOT = {"ended": True}
"""A parallel interleave's slot whose dataset has ended, every unit delivered (or whose opening failed, the
error delivered): the consumer empties it on its next turn."""


CAPTURE_EVERY = 16
"""Reads of a dataset between two captures of its state: a restored slot reads again and drops at most this many
chunks (beyond its buffer), and a pipeline that is never saved pays for one ``get_state`` per this many reads."""


class _Element:
    """One inner dataset being read: its iterator, its buffer (counted into the stage's metrics), who reads it,
    and where it stands for a saved state.

    A saved element is where its dataset stood before the first buffered unit not yet delivered, as a state the
    workers captured (``capture_state``: at the opening, every ``CAPTURE_EVERY`` reads and after each error) and
    the units after it. Buffered units are marked with that position (``[state, units after it, units]``, one
    mark per run of reads from one state) and the consumer counts off what it takes (``deliver``); ``next_read``
    is where the next read starts. A restored element first reads again and drops the units delivered before
    the save (``drop``).
    """

    __slots__ = ("iterator", "buffer", "ended", "in_use", "value", "input_state", "marks", "delivered", "next_read",
                 "drop", "reads", "key")

    def __init__(self, iterator: DatasetIterator | None, buffer: UnitQueue, value: Any = None,
                 input_state: Any = None, position: tuple[Any, int] = (None, 0), key: str | None = None) -> None:
        self.iterator = iterator
        self.buffer = buffer
        self.ended = iterator is None
        self.in_use = False
        self.key = key  # tracking positions: the key of the input element it was made from (None: not tracked)
        self.value = value
        """The input element the dataset was made from."""
        self.input_state = input_state
        """The interleave's input state before this element was pulled from it (a future element is not saved:
        the input is rewound to it)."""
        self.marks: deque[list[Any]] = deque()
        self.delivered = 0  # units of the first mark taken by the consumer
        self.next_read: tuple[Any, int] = (position[0], 0)  # (a captured state, units read since it)
        self.drop = position[1]
        self.reads = 0  # since the last capture

    def deliver(self, units: int) -> None:
        """Count ``units`` taken by the consumer (lock held)."""
        self.delivered += units
        marks = self.marks
        while marks and self.delivered >= marks[0][2]:
            self.delivered -= marks.popleft()[2]

    def record_read(self, units: int, kept: int, after: Any) -> None:
        """Count a read (lock held): ``units`` read, the last ``kept`` of them buffered, the state captured after
        it (None: not captured)."""
        state, offset = self.next_read
        if kept:
            last = self.marks[-1] if self.marks else None
            if last is not None and last[0] is state:  # the same run: its units follow the last mark's
                last[2] += kept
            else:
                self.marks.append([state, offset + units - kept, kept])
        self.next_read = (after, 0) if after is not None else (state, offset + units)

    def saved_slot(self) -> Any:
        """This element as a saved cycle slot (lock held)."""
        if self.ended and not self.buffer:
            return ENDED_SLOT
        if self.marks:
            state, offset, _ = self.marks[0]
            return slot_state(self.value, saved(state), offset + self.delivered)
        state, offset = self.next_read
        return slot_state(self.value, saved(state), offset + self.drop)


class _ParallelInterleaveIterator(ThreadedIterator, Positioned):
    def __init__(self, dataset: InterleaveDataset, ctx: IteratorContext, source: DatasetIterator, cycle_length: int,
                 parallelism: int, autotuned: bool, deterministic: bool, stage: Dataset) -> None:
        super().__init__(stage, ctx, [source])
        self._ds = dataset
        self._units = dataset.units
        self._source = source
        self._deterministic = deterministic
        self._opening = False  # one worker at a time opens input elements, so they queue in input order
        self._cycle: list[_Element | None] = [None] * cycle_length
        self._future: deque[_Element] = deque()
        self._index = 0
        self._block_index = 0
        self._source_done = False
        self._opened: list[_Element] = []  # every element with an iterator not yet closed
        self._track = False  # positions: elements wait in the buffers as (element, position) pairs
        self._positions: list[Position | None] = []
        self._input_next: Any = None  # the input's state before the next element it will be asked for
        # Beyond the cycle, workers read ahead the next input elements' datasets (up to prefetch_input_elements).
        self._parallelism = Knob(self.name, "parallelism", parallelism, 1, min(MAX_PARALLELISM, 2 * cycle_length),
                                 autotuned, self._set_parallelism, kind=KnobKind.WORKERS)
        # Buffer depths are never the user's choice: the tuner may shrink them to keep the RAM budget.
        self._element_buffer = Knob(self.name, "buffer_output_elements", self._units.read_ahead(dataset.block_length),
                                    1, 1 << 16, autotuned, self._wake, shrinkable=True, kind=KnobKind.PER_INPUT_BUFFER)
        self._prefetch_inputs = Knob(self.name, "prefetch_input_elements", cycle_length, 0, 4 * cycle_length, autotuned,
                                     self._wake, shrinkable=True, kind=KnobKind.INPUTS_AHEAD)
        self.metrics.parallelism = parallelism
        self._inner = inner_stages(dataset, stage)
        self.stats_beyond_inputs = self._inner.kept  # its datasets' stages

    def stats_below(self, depth: int = 0) -> list[StageStats]:
        return with_inner_stages(super().stats_below(depth), self._inner, threads=self.metrics.parallelism)

    def knobs(self) -> list[Knob]:
        return [self._parallelism, self._element_buffer, self._prefetch_inputs]

    def track_positions(self) -> bool:
        if self._pool is None and self._units is ELEMENTS:  # before the workers start; rows have no positions
            self._track = True
        return self._track

    def take_positions(self) -> list[Position | None]:
        return self._positions

    def reread(self, positions: list[Position]) -> list[Any]:
        return self._ds.reread(positions, self.ctx)

    def _set_parallelism(self, value: int) -> None:
        self.metrics.parallelism = value
        if self._pool is not None:
            self._pool.resize(value)
        self._wake(value)

    def _wake(self, _value: int = 0) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- workers -----------------------------------------------------------------
    def _pick_work(self) -> _Element | str | None:
        """Under the lock: the most urgent element to read, "open" to open a new input element, or None."""
        cycle, limit = self._cycle, self._element_limit()
        n = len(cycle)
        for k in range(n):
            e = cycle[(self._index + k) % n]
            if e is not None and not e.in_use and not e.ended and len(e.buffer) < limit:
                return e
        empty_slots = sum(1 for e in cycle if e is None)
        if (not self._opening and not self._source_done
                and len(self._future) < max(empty_slots, self._prefetch_inputs.value)):
            return "open"
        for e in self._future:
            if not e.in_use and not e.ended and len(e.buffer) < limit:
                return e
        return None

    def _element_limit(self) -> int:
        """Elements each dataset may buffer now (``elements_per_dataset``); with a RAM budget set, never more than
        the budget holds for every dataset at once (a ceiling from the first chunk, before the tuner's first round)."""
        size = self.metrics.bytes_per_element
        limit = elements_per_dataset(self._element_buffer.value, size)
        budget = self.ctx.options.autotune.ram_budget
        if budget and size:
            datasets = len(self._cycle) + self._prefetch_inputs.value
            limit = max(1, min(limit, int(budget / (datasets * size))))
        return limit

    def restores_in_order(self) -> bool:
        """Not when deterministic=False: a restored interleave may hand out its slots' elements in another order,
        so a stage above must not count positions into it (see ``fastinput._engine.ledger``)."""
        return self._deterministic and super().restores_in_order()

    def tuning_profile(self) -> TuningProfile:
        """Input elements read at once: the autotuner's model counts a buffer per cycle slot."""
        return TuningProfile(TuningKind.INTERLEAVE, cycle_length=len(self._cycle))

    def _worker(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
                    if self.cancelled.is_set():
                        return
                    work = self._pick_work()
                    if work is not None:
                        break
                    cond.wait()
                if work == "open":
                    self._opening = True
                else:
                    work.in_use = True
                    space = self._element_limit() - len(work.buffer)
            if self._pool is not None and self._pool.should_retire():
                with cond:
                    if work == "open":
                        self._opening = False
                    else:
                        work.in_use = False
                    cond.notify_all()
                return
            if work == "open":
                self._open_next()
            else:
                self._read(work, space)

    def _open_next(self) -> None:
        """Open the next input element's dataset and queue it as a future element (this worker holds ``_opening``)."""
        before = self._input_next
        try:
            element = self._source.get_next()
            iterator = self._ds.open_element(element, self.ctx)
            key = element_key(element) if self._track and tracks_positions(iterator) else None
            opened = _Element(iterator, self._units.queue(self.metrics), element, before,
                              (capture_state(iterator), 0), key)
        except StopIteration:
            after = capture_state(self._source)
            with self._cond:
                self._source_done = True
                self._opening = False
                self._input_next = after
                self._cond.notify_all()
            return
        except errors.CancelledError:
            with self._cond:
                self._opening = False
            return
        except BaseException as exc:  # the input's or map_func's error: delivered where that element would be
            opened = _Element(None, self._units.queue(self.metrics), input_state=before)
            opened.buffer.put([Failure(exc)])
        after = capture_state(self._source)
        with self._cond:
            self._opening = False
            self._input_next = after
            self._future.append(opened)
            if opened.iterator is not None:
                self._opened.append(opened)
                self._inner.opened(opened.iterator)
            self._cond.notify_all()

    def _read(self, e: _Element, space: int) -> None:
        start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
        ended = False
        try:
            chunk = e.iterator.get_next_chunk(self._units.request(max(1, min(space, READ_CHUNK))))
        except StopIteration:
            chunk, ended = [], True
        except errors.CancelledError as exc:
            # The pipeline is stopping, and the consumer may not be told yet (the signals are set one by one): an
            # ended dataset could pass for the end of all of them, a clean StopIteration. Delivered as the error.
            chunk, ended = [Failure(exc)], True
        except BaseException as exc:  # a read error, in order; the element may go on after it
            chunk = [Failure(exc)]
        failed = bool(chunk) and type(chunk[0]) is Failure
        units = 1 if failed else self._units.count(chunk)
        kept, dropped = chunk, 0
        if e.drop and not failed:  # a restored element: drop the units delivered before the save
            dropped = min(e.drop, units)
            kept = self._units.split(chunk, dropped)[1]
        e.reads += 1
        after = None  # a state after an error, so that the units after a saved position never hold one
        if (failed or e.reads >= CAPTURE_EVERY) and not ended and not isinstance(e.next_read[0], Exception):
            after, e.reads = capture_state(e.iterator), 0
        if kept and not failed:
            self.metrics.sample_size(kept[0])
            if self._track:
                positions = with_key(e.key, e.iterator.take_positions() if e.key is not None else chunk)
                kept = list(zip(kept, positions[dropped:]))
        with self._cond:
            e.buffer.put(kept)
            e.drop -= dropped
            e.record_read(units, units - dropped, after)
            e.in_use = False
            if ended:
                e.ended = True
            self.metrics.busy_ns += time.perf_counter_ns() - start
            self.metrics.cpu_ns += time.thread_time_ns() - cpu_start
            self._cond.notify_all()

    # -- consumer ----------------------------------------------------------------
    def _advance(self) -> None:
        self._block_index = 0
        self._index = (self._index + 1) % len(self._cycle)

    def _retire(self, index: int) -> None:
        """Empty a slot whose dataset has ended and been drained (lock held)."""
        e = self._cycle[index]
        self._cycle[index] = None
        if e is not None and e.iterator is not None:
            self._opened.remove(e)
            e.iterator.close()
            self._inner.ended(e.iterator)

    def _take_rounds(self, room: int) -> tuple[list[Any], int]:
        """Whole rounds of the cycle at once (lock held): the fast path of ``block_length=1``.

        Only when every slot that will be read again is open with that many
        units buffered and no failure among them (a slot left empty for good
        is skipped, as the unit-by-unit path skips it); the order is exactly
        one unit from each such slot in turn, as the unit-by-unit path gives,
        without its Python work per unit. Returns the items and the units
        they hold; ([], 0) when the slow path must go on.
        """
        cycle = self._cycle
        if self._ds.block_length != 1 or len(cycle) == 1 or room < 2:
            return [], 0
        start = self._index
        live = cycle[start:] + cycle[:start]
        if self._source_done and not self._future:
            live = [e for e in live if e is not None]
        slots = len(live)
        if slots < 2 or room < slots:
            return [], 0
        rounds = room // slots
        for e in live:
            if e is None or e.buffer.has_failure:
                return [], 0
            rounds = min(rounds, e.buffer.units)
            if not rounds:
                return [], 0
        for e in live:
            e.deliver(rounds)
        return self._units.merge_rounds([e.buffer.take_exactly(rounds) for e in live], rounds), rounds * slots

    def _alone(self) -> bool:
        """Whether the current slot is the only one that will be read again (lock held): then block boundaries
        change nothing, and whole chunks are taken from it."""
        if len(self._cycle) == 1:
            return True
        if not self._source_done or self._future:
            return False
        current = self._cycle[self._index]
        return all(e is None or e is current for e in self._cycle)

    def _count_block(self, taken: int) -> None:
        self._block_index += taken
        if self._block_index >= self._ds.block_length and len(self._cycle) > 1:
            self._advance()

    def produce_chunk(self, n: int) -> list[Any]:
        """Up to ``n`` elements in interleave order, gathered across slots in one lock hold.

        Returns what it has as soon as the next slot in turn has nothing
        buffered yet; waits only when it has nothing at all.
        """
        if self._pool is None:
            if self._input_next is None:  # before the workers: from now on only the opening worker reads the input
                self._input_next = capture_state(self._source)
            self.start_workers(self._worker, self._parallelism.value)
        cond = self._cond
        out: list[Any] = []
        units = 0
        with cond:
            waited_from = 0
            try:
                while units < n:
                    self.raise_if_cancelled()
                    rounds, count = self._take_rounds(n - units)
                    if rounds:
                        out.extend(rounds)
                        units += count
                        continue
                    e = self._cycle[self._index]
                    if e is None:
                        if self._future:
                            if out and self._future[0].iterator is None:
                                break  # a failed opening's error comes on the next call, at its place
                            self._cycle[self._index] = self._future.popleft()
                            continue
                        if not self._source_done:
                            if out:
                                break
                            waited_from = self._wait(waited_from)
                            continue
                        if any(x is not None for x in self._cycle):
                            self._advance()
                            continue
                        break  # every dataset read to the end
                    if e.buffer:
                        if e.buffer.head_is_failure:
                            if out:
                                break  # the failure comes on the next call, at its place
                            failure = e.buffer.take(1)[0]
                            e.deliver(1)
                            self._count_block(1)
                            raise note_stage(failure.exc, self.name)
                        room = n - units
                        left_in_block = self._ds.block_length - self._block_index
                        if room > left_in_block and not self._alone():
                            room = left_in_block
                        taken = e.buffer.take(room)
                        count = self._units.count(taken)
                        e.deliver(count)
                        out.extend(taken)
                        units += count
                        self._count_block(count)
                        continue
                    if e.ended:
                        self._retire(self._index)
                        self._advance()
                        continue
                    if out:
                        break
                    if not self._deterministic and self._switch_to_ready_slot():
                        continue
                    waited_from = self._wait(waited_from)
            finally:
                if waited_from:
                    self.metrics.wait_ns += time.perf_counter_ns() - waited_from
                cond.notify_all()
        if not out:
            raise StopIteration
        if self._track:
            out, self._positions = [element for element, _ in out], [position for _, position in out]
        return out

    def _wait(self, waited_from: int) -> int:
        """Wait for the workers (lock held). Wakes them first: the consumer may just have freed a slot or
        buffer space they were waiting for. Returns when the wait started."""
        self._cond.notify_all()
        started = waited_from or time.perf_counter_ns()
        self._cond.wait()
        return started

    def _switch_to_ready_slot(self) -> bool:
        """Non-deterministic mode: move the cycle to a slot that has data, or can take a ready future element."""
        n = len(self._cycle)
        for k in range(1, n):
            index = (self._index + k) % n
            e = self._cycle[index]
            if (e is not None and (e.buffer or e.ended)) or (e is None and self._future):
                self._index, self._block_index = index, 0
                return True
        return False

    # -- saving and restoring ------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The cycle as the consumer stands (each slot where its dataset stood before its first unit not yet
        delivered) and the input rewound to its first element not in the cycle: future elements opened ahead are
        opened again after a restore, so a non-deterministic order also loses and repeats nothing."""
        with self._cond:
            slots = [None if e is None else e.saved_slot() for e in self._cycle]
            input_state = self._future[0].input_state if self._future else self._input_next
        own = cycle_state(slots, self._index, self._block_index, len(self._cycle))
        # None: nothing asked for yet, so no worker reads the input
        return stage_state(self.op, own, [self._source.get_state() if input_state is None else saved(input_state)])

    def restore_own_state(self, state: dict[str, Any]) -> None:
        slots = check_cycle(state, len(self._cycle), self.name)
        self._index, self._block_index = state["index"], state["block_index"]
        for index, slot in enumerate(slots):
            if slot is None:
                continue
            if slot == ENDED_SLOT:
                self._cycle[index] = _Element(None, self._units.queue(self.metrics))
                continue
            value, iterator = reopen(self._ds, slot, self.ctx)
            e = _Element(iterator, self._units.queue(self.metrics), value, None, (slot["state"], slot["skip"]))
            self._cycle[index] = e
            self._opened.append(e)
            self._inner.opened(iterator)

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._input_next = capture_state(self._source)

    # -- stopping ----------------------------------------------------------------
    def cancel_self(self) -> None:
        super().cancel_self()
        with self._cond:
            opened = list(self._opened)
        for e in opened:
            e.iterator.cancel()

    def join_self(self) -> None:
        super().join_self()
        for e in self._opened:
            e.iterator.close()
            self._inner.ended(e.iterator)
        self._opened.clear()
