"""``Dataset.sample_from_datasets`` / ``Dataset.choose_from_datasets``: each element from the input a choice names.

tf.data builds both on one op, DirectedInterleave: a selector gives input indices, and each output element is the
next element of the input selected. So does this module: the choices come a block at a time from a chooser
(``fastinput.ops.choices``: random draws from fixed weights or from a dataset of weight vectors, or a dataset of
indices), and a request for ``n`` elements is served in one C call where the inputs' buffers hold enough
(``fastinput.ops.mix_layout.take``: it checks, then lays the elements out in the order of the choices, moving each
input's cursor), and in a few numpy calls where they do not:

1. count how many of the next ``n`` choices name each input (``bincount``);
2. pull at least that many elements from each input short of them, a pull's worth or more at a time
   (``get_next_chunk``; ``pull_size``: about ``PULL_BYTES`` of elements), into its buffer (the used front dropped
   first); every other input holding less than half a pull's worth pulls then too;
3. lay them out (``take`` again).

Where an input has fewer elements than chosen (it ended, or raised), the request stops at that choice: the elements
before it are handed out first, then the error is raised (the next call goes on after it, as tf.data does), or the
input's end ends everything (``stop_on_empty_dataset=True``) or drops the input (``False``: later choices of it are
skipped, as tf.data draws again). A choice out of range is an ``InvalidArgumentError`` in its place.

An input that records when read (``Dataset.records_when_read``: a ``cache`` or ``snapshot`` recording) is read
exactly instead: asked for no more elements than the choices of the run name, never topped up, and only up to
where another such input needs a pull (``_serve_exact``). Read ahead, its record would be completed (leaving out the
input's errors) where tf.data, reading one element per choice, leaves it partial when the mix ends first (its choices
end, or an input ends), discards it, and reads the input again, errors and all, next time. The dataset of choices or
weights needs no such care: it is pulled a block at a time, but again only when a choice is needed, so its end is
pulled where tf.data pulls it (tests/ops/test_mix_recording.py holds both). Reading ahead any other input is seen
nowhere: its errors are held and raised in their places, and what is left when the mix ends goes with it.

Where every input hands on runs of rows alike (``Dataset.row_layout``: in-memory numeric sources), the buffers are
``RowBuffer``\\ s of arrays and a run of choices is gathered leaf by leaf, a row's bytes at a time
(``mix_layout.take_rows``): the mix then hands on runs of rows (a ``batch``'s), or elements made from them. The
rest (choices, pulls, ends, states) is the same, counted in rows.

Saved (``get_state``), the stage keeps no element it pulled ahead: for each input holding some, the input's state
taken at a pull that found its buffer empty and how many it took since (restored, it pulls them again and drops
them, ``fastinput._engine.resume.ReadAhead``), plus the choices of the current block not yet used and the chooser's
state. Nothing is taken per request: an input's state is taken when it pulls with an empty buffer, which the
top-ups make rare, so an input whose state is ``REFRESH`` elements old is let run out before it pulls again (the
request stops there), and a restore replays at most about that many of each input's elements.

Why not pull, per batch, exactly what its choices need from each input, holding nothing between requests? Each
pull then finds the buffer empty and takes the input's state (~8 us for a TFRecordDataset), and each input is
called once per batch instead of once per pull's worth: measured, that cost 35 us (in memory) to 70 us (TFRecord
files) more per batch of 1,024 than the buffers, whose cost was mostly touching, batches later, elements no longer
in the CPU's caches, which ``take`` no longer does (it moves each element's reference out of its buffer).

What mixing 8 TFRecord sources costs beyond reading one is where the records live: made at their pull, a pull's
worth per input, they are freed ~8 batches (~8 MB) later, so malloc's bins fragment and each record is out of the
cache when taken and freed (cachegrind: the mix runs fewer instructions a batch than one source, with ~3,200 more
misses of a 1 MiB L2). Measured and not kept (issue 19, main thread's CPU per batch of 1,024, medians of 16 rounds
alternated in one process, load 3): topping up at 0, 1/4 or 3/4 of a pull's worth instead of half, 344, 342 and
334 against 336 us (3/4 within the noise). So where a ``batch`` follows and every input is a TFRecord reader of
local files, the fused stage reads them as spans of their read buffers instead, and makes each record at ``take``,
in choice order (``fastinput.readers.record_spans``, ``fastinput.fused_ops.mix_and_batch``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastinput import errors
from fastinput._engine import cardinality
from fastinput._engine.arguments import check_bool
from fastinput._engine.buffer import Failure
from fastinput._engine.checkpoint import stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.metrics import element_nbytes
from fastinput._engine.resume import ReadAhead
from fastinput._engine.row_slices import RowBuffer, RowLayout, Rows, rows_to_elements
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops import mix_layout
from fastinput.ops.choices import Choices

PULL_BYTES = 1 << 20
"""About how many bytes of elements one pull from an input brings (``pull_size``); an input's buffer holds up to
about 1.5 times that. A pull costs a call down the input's stages and the buffer's upkeep, so small elements come in
many at a time; large ones come in few, so that inputs of 100 KB records do not each hold a thousand of them."""

MIN_PULL, MAX_PULL = 16, 2048
"""The fewest and most elements one pull asks for (more where a request's choices need more). Measured with 8
inputs and batches of 1,024: 1 KB records (~1,000 a pull) are read fastest so (pulls of 4,096 hold more than the
CPU's caches keep: 0.80 of one source's rate against 0.86). Small elements (int64 scalars, ~14,500 a pull by
``PULL_BYTES``) are capped at 2,048: measured over 300 batches, pulls of 8,192 looked best (0.90 of one source's
rate against 0.83 at 1,024), but those runs were flattered by the warm-up's pulls (``fastinput_bench.mixing``).
Over 1,500 batches (issue 19, 2-core AMD EPYC, load 7-8, 8 in-memory int64 sources, pull sizes alternated in one
process, 6-30 rounds each), the caller's CPU per batch of 1,024, median (min), one source 71 (70) us: 8,192 102-117
(88-96), 4,096 105-120 (86-93), 2,048 92-111 (84-102), 1,024 91-97 (85-92), 512 93 (90). Cachegrind (batches
128-640, an L2 of 1 MiB simulated as the last level): 8,192 makes 1,398 L2 misses a batch, 4,096 1,222, 2,048 560
(one source 138): elements made 64 batches ahead are out of the L2 when stacked. Pulls of 2,048 cost ~27k more
instructions a batch (1,128k against 1,101k, batches 128-1,152), less than the misses they save. On the quiet
machine the benchmark's wall-clock ratio did not move (8 in-memory sources over one, alternated with 8,192: 0.831
and 0.815 against 0.833 and 0.822), so the gain is CPU under load and a quarter of the elements held per input."""

SHORT_PULL_ASK = 2
"""Pulls' worth of elements asked of an input once it has given fewer than asked (a TFRecord reader gives what its read
buffer holds, about 1 MiB, a little more than a pull's worth of ~1 KB records): it then gives all its buffer holds, and
hands the buffer, walked to its end, to the next reader that reads (``framing.SpareBuffers``), where it is still in the
CPU's cache. Asked for a pull's worth, it kept the buffer's last few records, and each of the 8 sources read into a
buffer of its own, out of the cache by its next read. An input that has always given all it was asked for is asked for a
pull's worth. A ``repeat()`` gives a short pull at its input's first end (the rest of the epoch), after which it too is
asked for 2 pulls' worth (8 in-memory sources of 100,000 int64s, in pulls of 8,192: buffers of ~14,000 instead of ~7,000
from batch ~780 on). Going back to a pull's worth at the next full pull was tried (issue 19): no gain, by cachegrind
(3.187 G against 3.179 G instructions for 1,510 batches, within the run-to-run spread) or by CPU time (93-94 against
86-97 us a batch over batches 300-1,500, load 2.2), so it was not kept."""

ELEMENT_OVERHEAD = 64
"""Bytes an element costs beyond its leaves' (``element_nbytes``): its Python object, its buffer slot."""

REFRESH = 16 * 1024
"""Entries of an input pulled since its state was last taken after which it is let run out before it pulls again
(``ReadAhead``'s ``refresh_after``): a restore replays at most about this many of each input's elements."""


def pull_size(element: Any) -> int:
    """How many elements like ``element`` one pull asks for: ``PULL_BYTES`` of them, within ``MIN_PULL`` and
    ``MAX_PULL``."""
    return pull_count(element_nbytes(element) + ELEMENT_OVERHEAD)


def pull_count(nbytes: int) -> int:
    """How many entries of ``nbytes`` each one pull asks for (elements, or rows of a run: no overhead)."""
    return int(min(MAX_PULL, max(MIN_PULL, PULL_BYTES // max(1, nbytes))))


class DirectedInterleaveDataset(Dataset):
    """Base of the two mixing ops: ``datasets`` (the inputs chosen from), then the dataset the choices come from
    (weights or indices), if any, as the last input."""

    traits = StageTraits("directed_interleave", StageKind.COMBINE)
    op_name = "directed_interleave"

    def __init__(self, datasets: Any, selector: Dataset | None, stop_on_empty_dataset: Any) -> None:
        datasets = _check_datasets(self.op_name, datasets)
        super().__init__([*datasets, *([selector] if selector is not None else [])])
        self.datasets = datasets
        self.stop_on_empty_dataset = check_bool(self.op_name, "stop_on_empty_dataset", stop_on_empty_dataset)

    def compute_element_spec(self) -> Any:
        """The most specific spec every input's elements fit; their structures and dtypes must agree."""
        from fastinput.spec import most_specific_common

        spec = self.datasets[0].element_spec
        for dataset in self.datasets[1:]:
            spec = most_specific_common(spec, dataset.element_spec, str(self))
        return spec

    def cardinality(self) -> int:
        """tf.data's rule: infinite when any input chosen from is (whatever the choices); else unknown."""
        if any(dataset.cardinality() == cardinality.INFINITE for dataset in self.datasets):
            return cardinality.INFINITE
        return cardinality.UNKNOWN

    def row_layout(self) -> RowLayout | None:
        """The inputs' row layout where they all hand on runs of rows that pack alike: a batch of the mix is then
        gathered from their runs (``mix_layout.take_rows``)."""
        return common_layout(self.inputs[:len(self.datasets)])

    def make_choices(self, ctx: IteratorContext) -> Choices:
        """A new chooser for one iterator (one epoch)."""
        raise NotImplementedError

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return DirectedInterleaveIterator(self, ctx)


def common_layout(datasets: Any) -> RowLayout | None:
    """The row layout every one of ``datasets`` has (``RowLayout.matches``), or None."""
    layouts = [dataset.row_layout() for dataset in datasets]
    first = layouts[0]
    if first is None or not all(layout is not None and first.matches(layout) for layout in layouts[1:]):
        return None
    return first


def _check_datasets(op: str, datasets: Any) -> tuple[Dataset, ...]:
    if isinstance(datasets, Dataset) or not isinstance(datasets, (list, tuple)):
        raise errors.InvalidArgumentError(f"{op}: datasets must be a list of Datasets, got {type(datasets).__name__}")
    if not datasets:
        raise errors.InvalidArgumentError(f"{op}: datasets must not be empty")
    for dataset in datasets:
        if not isinstance(dataset, Dataset):
            raise errors.InvalidArgumentError(f"{op}: every entry of datasets must be a Dataset, got "
                                              f"{type(dataset).__name__}")
    return tuple(datasets)


class DirectedInterleaveIterator(DatasetIterator):
    """Hands out the elements of its inputs in the order its chooser names them (see the module's docstring)."""

    def __init__(self, dataset: Dataset, ctx: IteratorContext, mix: DirectedInterleaveDataset | None = None) -> None:
        """``dataset`` is the node this iterator runs: ``mix`` itself (the default), or a fused node doing its work
        (``fastinput.fused_ops.mix_and_batch``)."""
        mix = mix or dataset
        self._chooser = mix.make_choices(ctx)
        inputs = mix.inputs[:len(mix.datasets)]  # the inputs the rewrites left
        self._exact = [d.records_when_read() for d in inputs]  # inputs read no further than the choices ask
        self._any_exact = any(self._exact)
        sources = [d.make_iterator(ctx) for d in inputs]
        super().__init__(dataset, ctx, [*sources, *([self._chooser.source] if self._chooser.source else [])])
        count = len(sources)
        self._sources = sources
        self._layout = mix.row_layout()
        """Set where every input hands on runs of rows: its buffers are ``RowBuffer``\\ s, and it hands on runs."""
        self._stop_on_empty = mix.stop_on_empty_dataset
        self._label = str(mix)  # errors name the mix, fused or not
        # pulled; the first ``_cursors[i]`` handed out
        self._buffers: list[Any] = ([[] for _ in sources] if self._layout is None
                                    else [RowBuffer(self._layout) for _ in sources])
        self._cursors = np.zeros(count, dtype=np.int64)
        self._failures: list[Failure | None] = [None] * count  # the error an input raised after its buffer
        self._ended = [False] * count  # the input raised StopIteration (its buffer may still hold elements)
        self._dropped = np.zeros(count, dtype=bool)  # ended and gone: its choices are skipped
        self._any_dropped = False
        self._choices = np.empty(0, dtype=np.int64)  # the current block's choices; those from ``_next`` not used yet
        self._next = 0
        self._finished = False
        self._read_ahead = ReadAhead(sources, REFRESH)
        self._pull = MIN_PULL  # elements a pull asks for: ``pull_size`` of the first element pulled, once there is one
        self._asks = [1] * count  # pulls' worth to ask each input for (SHORT_PULL_ASK once it has given fewer)
        self._sized = False
        self._take, self._drop_front = (mix_layout.kernels() if self._layout is None
                                        else (mix_layout.take_rows, RowBuffer.drop_front))

    # -- producing ---------------------------------------------------------------------------------------------
    def produce_chunk(self, n: int) -> list[Any]:
        if self._layout is not None:
            return rows_to_elements(self.take_next(n), self._layout)
        return self.take_next(n)

    def produce_rows(self, n: int) -> Rows:
        return self.take_next(n)

    def take_next(self, n: int, out: np.ndarray | None = None) -> list[Any] | int | Rows:
        """The next 1 to ``n`` elements, in the order of the choices: a list (a run of rows, over row inputs); or,
        given ``out`` (an object array of at least ``n``: what is left of a batch), written into its first slots if
        they are ``bytes``, and their count (``mix_layout.take``). Where no element can come first, the event there
        is raised (an error, ``StopIteration``) or dealt with (an input's end)."""
        self._read_ahead.catch_up()
        while not self._finished:
            if self._next == len(self._choices):
                self._next_block()
                continue
            run = self._choices[self._next:self._next + n]
            taken = self._take(run, self._buffers, self._cursors, out)
            if taken is None:  # an input holds too few: pull, and take the run that all can serve now
                run = self._serve(run)
                if not len(run):
                    continue
                taken = self._take(run, self._buffers, self._cursors, out)
            self._next += len(run)
            return taken
        raise StopIteration

    def _next_block(self) -> None:
        try:
            block = self._chooser.draw()
        except StopIteration:
            self._finished = True  # the choices ended: so does the stage (tf.data's order)
            return
        if self._any_dropped:  # choices of an input that has gone are skipped (out-of-range ones are kept)
            block = block[~self._dropped[np.clip(block, 0, len(self._sources) - 1)] | (block < 0)
                          | (block >= len(self._sources))]
        self._choices, self._next = block, 0

    def _serve(self, choices: np.ndarray) -> np.ndarray:
        """The longest prefix of ``choices`` that every chosen input can give, its elements pulled into the buffers;
        if it is empty, the event where it stops (an error, an input's end, a choice out of range) is handled."""
        count = len(self._sources)
        stop = len(choices)
        if not self._chooser.in_range:
            out_of_range = (choices < 0) | (choices >= count)
            if out_of_range.any():
                stop = int(np.argmax(out_of_range))
                choices = choices[:stop]
        event = None  # the input that cannot serve the choice at ``stop``, if one cannot
        held = [len(buffer) - cursor for buffer, cursor in zip(self._buffers, self._cursors.tolist())]
        for index, want in enumerate(np.bincount(choices, minlength=count).tolist()):
            if held[index] >= want or self._exact[index]:
                continue
            if held[index] and self._read_ahead.stale(index):  # the run stops where it runs out; it pulls after
                stop = min(stop, int(np.flatnonzero(choices == index)[held[index]]))
                continue
            held[index] = available = self._fill(index, want)
            if available < want:
                position = int(np.flatnonzero(choices == index)[available])
                if position < stop:
                    stop, event = position, index
        if self._any_exact:
            stop, event = self._serve_exact(choices, held, stop, event)
        low = self._pull // 2
        for index, have in enumerate(held):  # the inputs running low (half a pull left) pull now too
            if have < low and not self._exact[index] and not (have and self._read_ahead.stale(index)):
                self._fill(index, low)
        if stop:
            return choices[:stop]
        if event is None:
            self._choice_out_of_range()
        self._input_cannot_serve(event)
        return choices[:0]

    def _choice_out_of_range(self) -> None:
        """The next choice names no input: an ``InvalidArgumentError`` in its place (the choice used up)."""
        value, count = int(self._choices[self._next]), len(self._sources)
        self._next += 1
        raise errors.InvalidArgumentError(f"{self._label}: choice {value} is out of range: there are {count} "
                                          f"datasets (indices 0 to {count - 1})")

    def _serve_exact(self, choices: np.ndarray, held: list[int], stop: int, event: int | None
                     ) -> tuple[int, int | None]:
        """Pull the inputs read exactly (``Dataset.records_when_read``) for the choices before ``stop``, as tf.data
        would: each for its choices up to where the next other one needs a pull, so that none is read to its end
        past a choice where another one ends (and with it the mix). Returns where the run stops and the input that
        cannot serve the choice there (``event``, as ``_serve`` keeps them)."""
        short = []  # (position of the first choice it cannot serve, input) of each exact input short of elements
        for index in [i for i, exact in enumerate(self._exact) if exact]:
            positions = np.flatnonzero(choices[:stop] == index)
            if len(positions) > held[index]:
                short.append((int(positions[held[index]]), index))
        if not short:
            return stop, event
        short.sort()
        index = short[0][1]
        if len(short) > 1:  # the run is cut where the next exact input needs a pull: it pulls in a later run
            stop, event = short[1][0], None
        positions = np.flatnonzero(choices[:stop] == index)
        held[index] = available = self._fill(index, len(positions))
        if available < len(positions):
            return int(positions[available]), index
        return stop, event

    def _fill(self, index: int, want: int) -> int:
        """Pull from input ``index`` until it holds ``want`` elements past its cursor, ends or raises (its used
        front dropped first); returns how many it holds. An input read exactly is asked for no more than that."""
        buffer = self._buffers[index]
        self._drop_front(buffer, int(self._cursors[index]))
        self._cursors[index] = 0
        while len(buffer) < want and not self._ended[index] and self._failures[index] is None:
            ask, held = want - len(buffer), len(buffer)
            if not self._exact[index]:
                ask = max(ask, self._pull * self._asks[index])
            try:
                if self._layout is None:
                    self._read_ahead.pull(index, buffer, ask)
                else:  # an error (a mix of rows: a choice out of range) is held apart from the rows, after them
                    self._failures[index] = self._read_ahead.pull_rows(index, buffer, ask)
            except StopIteration:
                self._ended[index] = True
            if len(buffer) - held < ask:  # it gives what it has at hand: ask for all of that from now on
                self._asks[index] = SHORT_PULL_ASK
            if self._layout is not None:
                if buffer and not self._sized:
                    self._pull, self._sized = pull_count(buffer.row_nbytes()), True
                continue
            if buffer and type(buffer[-1]) is Failure:  # an error comes only last: held apart from the elements
                self._failures[index] = buffer.pop()
            if buffer and not self._sized:
                self._pull, self._sized = pull_size(buffer[-1]), True
        return len(buffer)

    def _input_cannot_serve(self, index: int) -> None:
        """The next choice names input ``index``, which holds an error there (raised) or has ended."""
        failure = self._failures[index]
        if failure is not None:  # that choice is used up by the error
            self._next += 1
            self._failures[index] = None
            raise failure.exc
        if self._stop_on_empty:
            self._finished = True
            return
        self._dropped[index] = True
        self._any_dropped = True
        rest = self._choices[self._next:]
        self._choices, self._next = rest[rest != index], 0
        if self._dropped.all() or not self._chooser.forget(index):
            self._finished = True

    # -- saving and restoring ----------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        held = [len(buffer) - int(cursor) + (failure is not None)
                for buffer, cursor, failure in zip(self._buffers, self._cursors, self._failures)]
        skip, inputs = self._read_ahead.states(held)
        if self._chooser.source is not None:
            inputs.append(self._chooser.source.get_state())
        own = {"skip": skip, "dropped": self._dropped.tolist(), "finished": self._finished,
               "choices": self._choices[self._next:].tolist(), "chooser": self._chooser.own_state()}
        return stage_state(self.op, own, inputs)

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._read_ahead.restore(state["skip"])
        self._finished = state["finished"]
        self._dropped = np.asarray(state["dropped"], dtype=bool)
        self._any_dropped = bool(self._dropped.any())
        self._choices, self._next = np.asarray(state["choices"], dtype=np.int64), 0
        self._chooser.restore_own_state(state["chooser"])
