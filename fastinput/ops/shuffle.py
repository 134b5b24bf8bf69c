"""``ds.shuffle``: tf.data's buffered shuffle.

The first ``buffer_size`` elements fill a buffer; each output is drawn
uniformly from it and its place is refilled from the input. So element k of
the output is always one of the first ``k + buffer_size`` inputs.

Seeds: a shuffle node owns a seed sequence. With ``reshuffle_each_iteration``
every new iterator (every epoch under ``repeat``) takes the next seed of that
sequence, so epochs differ but a fixed ``seed`` makes the whole run
reproducible; without it every iterator uses the same seed.

Over row blocks (``rows=RowBlocks(...)``, ``fastinput._engine.rows``) the
buffer holds ``buffer_size`` rows, and whole input blocks are exchanged
through it at once (``RowShuffleIterator``): the same seeds and epochs.

Saving (``get_state``): a shuffle saves its buffer (as positions where its input is ``Positioned``, say
TFRecord files through interleaves, else as values with ``encode_value``), its random generator, its place in
the seed sequence (restoring continues that sequence, so the epochs after a restore get the seeds the
uninterrupted run would have) and its input's state.
"""

from __future__ import annotations

import copy
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastinput import errors
from fastinput._engine import cardinality
from fastinput._engine.arguments import check_bool, check_int, check_seed
from fastinput._engine.checkpoint import (
    Deferred,
    check_stage,
    decode_rng,
    decode_value,
    encode_rng,
    encode_value,
    stage_state,
)
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.positions import Position, decode_positions, encode_positions, tracks_positions
from fastinput._engine.rows import ELEMENTS, Block, RowBlocks, Units, concat_blocks, concat_columns, cut, num_rows
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops.repeat import EpochTally

_RANDOM_BLOCK = 4096


@dataclass(frozen=True)
class EpochSeed:
    """The seed of one shuffle iterator: the node's base seed and the iterator's place in its seed sequence."""

    base: int
    epoch: int

    def generator(self) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64([self.base, self.epoch]))

    def to_state(self) -> dict[str, int]:
        return {"seed": self.base, "epoch": self.epoch}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpochSeed:
        return cls(int(state["seed"]), int(state["epoch"]))


class SeedSequence:
    """A shuffle node's seeds, one per new iterator: with ``reshuffle`` each takes the next epoch, else all take 0.

    Shared by the node's copies (the static rewrites copy nodes shallowly), so every epoch of one run draws from
    one sequence. A restored iterator moves the sequence to where the saved run stood (``continue_after``): with
    ``seed=None`` that includes the saved run's random base seed.
    """

    def __init__(self, base: int, reshuffle: bool) -> None:
        self._base = base
        self._reshuffle = reshuffle
        self._next_epoch = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # pickled with its pipeline (``distribute`` ships it): not the lock
        return {key: value for key, value in vars(self).items() if key != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._lock = threading.Lock()

    def next(self) -> EpochSeed:
        with self._lock:
            seed = self.peek()
            self._next_epoch += 1
            return seed

    def peek(self) -> EpochSeed:
        """The seed the next iterator will take (taking none)."""
        return EpochSeed(self._base, self._next_epoch if self._reshuffle else 0)

    def continue_after(self, seed: EpochSeed) -> None:
        """The next iterator takes the seed after ``seed`` (a restored iterator's), as in the saved run."""
        self.continue_at(EpochSeed(seed.base, seed.epoch + 1))

    def continue_at(self, seed: EpochSeed) -> None:
        """The next iterator takes ``seed`` (what a saved iterator that had not started yet would have taken)."""
        with self._lock:
            self._base = seed.base
            self._next_epoch = seed.epoch


class ShuffleDataset(Dataset):
    traits = StageTraits("shuffle", StageKind.SHUFFLE, passes_through=True, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, buffer_size: int, seed: int | None, reshuffle_each_iteration: bool,
                 rows: RowBlocks | None = None) -> None:
        super().__init__([input_dataset])
        self.units: Units = rows or ELEMENTS
        self.buffer_size = check_int("shuffle", "buffer_size", buffer_size, minimum=1)
        self.seed = check_seed("shuffle", seed)
        self.reshuffle_each_iteration = check_bool("shuffle", "reshuffle_each_iteration", reshuffle_each_iteration)
        self.seeds = SeedSequence(self.seed if self.seed is not None else secrets.randbits(63),
                                  self.reshuffle_each_iteration)

    def cardinality(self) -> int:
        return self.inputs[0].cardinality()

    def __str__(self) -> str:
        extra = f", seed={self.seed}" if self.seed is not None else ""
        if not self.reshuffle_each_iteration:
            extra += ", reshuffle_each_iteration=False"
        return f"shuffle({self.buffer_size}{extra})"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        source = self.inputs[0].make_iterator(ctx)
        if self.units is not ELEMENTS:
            return RowShuffleIterator(self, ctx, source)
        return ShuffleIterator(self, ctx, source)


class ShuffleIterator(DatasetIterator):
    """tf.data's buffered shuffle over elements (``prefilled``: a buffer already read from ``source``).

    Its state: the buffer's values, the random generator as it was before its current block of draws (and how
    many of that block are left), its seed and the input's state. Elements pulled but not yet in the buffer are
    not saved: the input's state is saved as it was before the pull that gave them (captured at each pull, as
    the contract asks), with how many of that pull the buffer holds already; an input error met by a pull and
    not yet raised is saved the same way, so a restored iterator meets it again.

    Where the input is ``Positioned`` (TFRecord files, through interleaves), the buffer keeps each element's
    position beside it, and the state saves positions instead of values (values only where a position is not
    known): a restored shuffle reads those elements again.
    """

    def __init__(self, dataset: ShuffleDataset, ctx: IteratorContext, source: DatasetIterator,
                 prefilled: list[Any] | None = None, prefilled_positions: list[Position | None] | None = None) -> None:
        super().__init__(dataset, ctx, [source])
        self._ds = dataset
        self._source = source
        self._size = dataset.buffer_size
        self._seed = dataset.seeds.next()
        self._rng = self._seed.generator()
        self._buffer: list[Any] = prefilled or []
        self._incoming: deque[Any] = deque()
        self._source_done = False
        self._source_error: Exception | None = None
        self._randoms: list[float] = []
        self._randoms_from: np.random.Generator | None = None  # the generator as it was before it drew ``_randoms``
        self._pull_state: dict[str, Any] | None = None  # the input's state before the last tracked pull
        self._pulled = 0  # the elements the input has given since ``_pull_state``
        self._skip = 0  # restored: the input's next elements, which the buffer holds already
        self._track_pulls = True  # False once the input has said it cannot save
        self._positions: list[Position | None] | None = None  # beside ``_buffer``, where the input says them
        self._incoming_positions: deque[Position | None] = deque()
        if ctx.options.checkpoint.positions and tracks_positions(source):
            self._positions = prefilled_positions or [None] * len(self._buffer)
        self.metrics.buffer_capacity = self._size

    @property
    def seed(self) -> EpochSeed:
        """This iterator's seed (its place in the node's seed sequence)."""
        return self._seed

    @property
    def input_exhausted(self) -> bool:
        """True once the input has ended: from here on the buffer only drains."""
        return self._source_done

    def _pull(self, n: int, track: bool = False) -> None:
        """Move up to ``n`` input elements into ``_incoming``; remembers the end of input or an input error.

        ``track``: capture the input's state first; it is what ``get_state`` saves while these elements wait in
        ``_incoming`` or while an error met here waits to be raised.
        """
        if track:
            self._pull_state = self._input_state_now()
        self._pulled = 0
        try:
            while self._skip:  # restored: the saved iterator had taken these already
                dropped = len(self._source.get_next_chunk(self._skip))
                self._take_positions()
                self._skip -= dropped
                self._pulled += dropped
            chunk = self._source.get_next_chunk(n)
        except StopIteration:
            self._source_done = True
            return
        except Exception as exc:  # raised after the elements already drawn, at its place
            self._source_error = exc
            return
        self._incoming.extend(chunk)
        self._incoming_positions.extend(self._take_positions())
        self._pulled += len(chunk)

    def _take_positions(self) -> list[Position | None]:
        """The positions of the elements the input has just handed out ([] when they are not tracked)."""
        return self._source.take_positions() if self._positions is not None else []

    def _input_state_now(self) -> dict[str, Any] | None:
        """The input's state (None if it cannot save: then ``get_state`` raises the input's reason)."""
        if not self._track_pulls:
            return None
        try:
            return self._source.get_state()
        except errors.UnimplementedError:
            self._track_pulls = False
            return None

    def produce_chunk(self, n: int) -> list[Any]:
        buffer, incoming = self._buffer, self._incoming
        positions, incoming_positions = self._positions, self._incoming_positions
        while len(buffer) < self._size and not self._source_done and self._source_error is None:
            self._pull(self._size - len(buffer))  # the initial fill (and refills after an input error)
            buffer.extend(incoming)
            incoming.clear()
            if positions is not None:
                positions.extend(incoming_positions)
                incoming_positions.clear()
        out: list[Any] = []
        randoms = self._randoms
        while len(out) < n and buffer and self._source_error is None:
            if not randoms:
                self._randoms_from = copy.deepcopy(self._rng)
                randoms.extend(self._rng.random(_RANDOM_BLOCK).tolist())
            i = int(randoms.pop() * len(buffer))
            out.append(buffer[i])
            if not incoming and not self._source_done:
                self._pull(min(n, 256), track=True)
            if incoming:
                buffer[i] = incoming.popleft()
                if positions is not None:
                    positions[i] = incoming_positions.popleft()
            else:
                buffer[i] = buffer[-1]
                buffer.pop()
                if positions is not None:
                    positions[i] = positions[-1]
                    positions.pop()
        self.metrics.buffer_occupancy = len(buffer)
        if self._source_error is not None:
            exc, self._source_error = self._source_error, None
            if not out:
                raise exc
            self._pending = exc
        if not out:
            raise StopIteration
        return out

    # -- saving and restoring ------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        if self._pending is not None or self._incoming:  # the input stands after elements or an error still here
            input_state = self._pull_state if self._pull_state is not None else self._source.get_state()
            skip = self._pulled - len(self._incoming)
        else:
            input_state, skip = self._source.get_state(), self._skip
        return stage_state(self.op, {**self.own_state(), "skip": skip}, [input_state])

    def own_state(self) -> dict[str, Any]:
        rng = self._randoms_from if self._randoms else self._rng
        positions = self._positions if self._positions is not None else [None] * len(self._buffer)
        buffer, positions = list(self._buffer), list(positions)  # a snapshot: references, encoded if kept
        return {**self._seed.to_state(), "buffer_size": self._size, "rng": encode_rng(rng),
                "randoms_left": len(self._randoms), "input_done": self._source_done,
                "buffer": Deferred(lambda: [encode_value(element) if position is None else None
                                            for element, position in zip(buffer, positions, strict=True)]),
                "positions": Deferred(lambda: encode_positions(positions))}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        _check_buffer_size(state, self._size, self.name)
        self._seed = EpochSeed.from_state(state)
        self._ds.seeds.continue_after(self._seed)
        self._rng = decode_rng(state["rng"])
        left = int(state["randoms_left"])
        if left:
            self._randoms_from = copy.deepcopy(self._rng)
            self._randoms = self._rng.random(_RANDOM_BLOCK).tolist()[:left]
        self._buffer = [decode_value(element) for element in state["buffer"]]
        positions = decode_positions(state["positions"])
        known = [slot for slot, position in enumerate(positions) if position is not None]
        if known:  # saved as positions: read them again
            if self._positions is None:
                raise errors.InvalidArgumentError(f"set_state: stage {self.name}: the saved buffer holds positions "
                                                  "of its input's elements, but this pipeline's input gives none")
            for slot, element in zip(known, self._source.reread([positions[slot] for slot in known]), strict=True):
                self._buffer[slot] = element
        if self._positions is not None:
            self._positions = positions
        self._source_done = bool(state["input_done"])
        self._skip = int(state["skip"])


def _check_buffer_size(state: dict[str, Any], size: int, name: str) -> None:
    if state.get("buffer_size") != size:
        raise errors.InvalidArgumentError(f"set_state: the pipeline differs from the one saved: stage {name} has "
                                          f"buffer_size={size} here, {state.get('buffer_size')} in the saved state")


class ShuffleAndRepeatDataset(Dataset):
    """``shuffle(...).repeat(count)`` fused (the static rewrite makes it): the same elements in the same order.

    What fusing buys: while one epoch's buffer drains, the next epoch's input
    is already being read into the next buffer, so a new epoch starts without
    waiting to fill ``buffer_size`` elements.
    """

    traits = StageTraits("shuffle_and_repeat", StageKind.REPEAT, passes_through=True, keeps_spec=True)

    def __init__(self, shuffle: ShuffleDataset, count: int) -> None:
        super().__init__(shuffle.inputs)
        self.shuffle = shuffle
        self.count = count

    def cardinality(self) -> int:
        return cardinality.repeated(self.inputs[0].cardinality(), self.count)

    def __str__(self) -> str:
        repeat = "repeat()" if self.count == -1 else f"repeat({self.count})"
        return f"shuffle_and_repeat [fused: {self.shuffle} -> {repeat}]"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        if self.shuffle.units is not ELEMENTS:  # rows: their shuffle reads no epoch ahead; run it unfused
            return self.shuffle.repeat(self.count).make_iterator(ctx)
        return _ShuffleAndRepeatIterator(self, ctx)


class _ShuffleAndRepeatIterator(DatasetIterator):
    """Runs one ``ShuffleIterator`` per epoch and reads the next epoch's first buffer while the last one drains.

    The read-ahead covers exactly the input that the next epoch's initial fill
    would read; an error met there is kept (read-ahead stops at it) and raised
    when that epoch starts, where the unfused pipeline raises it.
    """

    def __init__(self, dataset: ShuffleAndRepeatDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset
        self._epochs_left = dataset.count  # -1: forever
        self._tally = EpochTally()
        self._current: ShuffleIterator | None = None
        self._current_error: Exception | None = None  # met by the read-ahead: raised first in this epoch
        self._next_source: DatasetIterator | None = None
        self._next_buffer: list[Any] = []
        self._next_positions: list[Position | None] | None = None  # beside ``_next_buffer`` where the input says them
        self._next_error: Exception | None = None
        self._next_source_done = False
        self._started = False  # the first epoch (and its seed) is taken at the first request, as repeat does
        self._last_seed: EpochSeed | None = None  # the seed of the last epoch started (saved after the end too)

    def _start_epoch(self, source: DatasetIterator | None, prefilled: list[Any],
                     prefilled_positions: list[Position | None] | None = None) -> None:
        if self._epochs_left == 0:
            self._current = None
            return
        self._epochs_left -= self._epochs_left > 0
        self._open_epoch(source, prefilled, prefilled_positions)

    def _open_epoch(self, source: DatasetIterator | None, prefilled: list[Any],
                    prefilled_positions: list[Position | None] | None = None) -> None:
        shuffle = self._ds.shuffle
        source = source or shuffle.inputs[0].make_iterator(self.ctx)
        self._current = ShuffleIterator(shuffle, self.ctx, source, prefilled, prefilled_positions)
        self._last_seed = self._current.seed
        self.inputs = [self._current] + ([self._next_source] if self._next_source else [])

    def _prefill_next_epoch(self, n: int) -> None:
        """Read up to ``n`` elements of the next epoch while the current one drains."""
        if (self._epochs_left == 0 or self._next_source_done or self._next_error is not None
                or len(self._next_buffer) >= self._ds.shuffle.buffer_size):
            return
        if self._next_source is None:
            self._next_source = self._ds.shuffle.inputs[0].make_iterator(self.ctx)
            tracked = self.ctx.options.checkpoint.positions and tracks_positions(self._next_source)
            self._next_positions = [] if tracked else None
            self.inputs = [self._current, self._next_source]
        try:
            self._next_buffer.extend(
                self._next_source.get_next_chunk(min(n, self._ds.shuffle.buffer_size - len(self._next_buffer))))
            if self._next_positions is not None:
                self._next_positions.extend(self._next_source.take_positions())
        except StopIteration:
            self._next_source_done = True
        except errors.CancelledError:
            raise
        except Exception as exc:
            self._next_error = exc

    def produce_chunk(self, n: int) -> list[Any]:
        if not self._started:
            self._started = True
            self._start_epoch(None, [])
        while self._current is not None:
            try:
                if self._current_error is not None:
                    exc, self._current_error = self._current_error, None
                    raise exc
                chunk = self._current.get_next_chunk(n)
            except StopIteration:
                self._current.close()
                if self._tally.end_epoch(forever=self._ds.count == -1):
                    self._current = None
                    break
                source, prefilled, positions = self._next_source, self._next_buffer, self._next_positions
                self._current_error = self._next_error
                self._next_source, self._next_buffer, self._next_positions = None, [], None
                self._next_source_done, self._next_error = False, None
                self._start_epoch(source, prefilled, positions)  # an exhausted source just ends at once
                continue
            except Exception:
                self._tally.error()
                raise
            self._tally.elements(len(chunk))
            if self._current.input_exhausted:
                self._prefill_next_epoch(len(chunk))
            return chunk
        raise StopIteration

    def join_self(self) -> None:
        if self._next_source is not None:
            self._next_source.close()

    # -- saving and restoring ------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The epoch count and the current epoch's shuffle; the next epoch's read-ahead is work in flight, not
        saved: a restored iterator reads that epoch's first buffer when the epoch starts, the same elements."""
        tally = self._tally
        own = {"started": self._started, "epochs_left": self._epochs_left,
               "tally": [tally.total_elements, tally.epoch_elements, tally.epoch_errors],
               "last_seed": None if self._last_seed is None else self._last_seed.to_state()}
        if not self._started:  # the first epoch takes its seed at the first request: the one the sequence is at
            own["first_seed"] = self._ds.shuffle.seeds.peek().to_state()
        return stage_state(self.op, own, [] if self._current is None else [self._current.get_state()])

    def set_state(self, state: dict[str, Any]) -> None:
        check_stage(state, self.op, self.name)
        self._started = bool(state["started"])
        self._epochs_left = int(state["epochs_left"])
        self._tally.total_elements, self._tally.epoch_elements, self._tally.epoch_errors = state["tally"]
        if state["inputs"]:
            self._open_epoch(None, [])
            self._current.set_state(state["inputs"][0])
            self._last_seed = self._current.seed
        elif state["last_seed"] is not None:  # ended: the next iterator still takes the seed after the last
            self._last_seed = EpochSeed.from_state(state["last_seed"])
            self._ds.shuffle.seeds.continue_after(self._last_seed)
        elif state.get("first_seed") is not None:  # saved before its first element
            self._ds.shuffle.seeds.continue_at(EpochSeed.from_state(state["first_seed"]))


class RowShuffleIterator(DatasetIterator):
    """tf.data's shuffle buffer over rows, holding the rows' values as columns.

    The buffer is one column per input column: a numpy array of
    ``buffer_size`` rows changed in place, or for strings an arrow binary
    array (strings stay arrow until a batch makes them ``bytes`` objects, in
    batch order). Each input block is exchanged through a full buffer in one
    go: one random slot per incoming row, then per column one gather of the
    drawn rows and one scatter of the incoming rows into the slots they refill
    (``ExchangePlan``). The rows drawn wait in a ``RowQueue`` for requests of
    any size.
    """

    def __init__(self, dataset: ShuffleDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._ds = dataset
        self._source = source
        self._units = dataset.units
        self._capacity = size = dataset.buffer_size
        self._seed = dataset.seeds.next()
        self._rng = self._seed.generator()
        self._buffer: list[Any] = []  # its columns; numpy ones are grown to ``size`` rows as rows arrive
        self._filled = 0
        self._incoming: Block | None = None  # input rows not yet in the buffer
        self._source_done = False
        self._drawn = self._units.queue()
        self.metrics.buffer_capacity = size

    def _pull(self) -> bool:
        """Take the next input rows (they become ``_incoming``); False at the end of the input."""
        if self._source_done:
            return False
        try:
            self._incoming = concat_blocks(self._source.get_next_chunk(self._units.request(1)))
        except StopIteration:
            self._source_done = True
            return False
        return True

    def _fill(self) -> None:
        """Move input rows into the free part of the buffer until it is full or the input ends."""
        while self._filled < self._capacity and (self._incoming is not None or self._pull()):
            size = num_rows(self._incoming)
            take = min(self._capacity - self._filled, size)
            self._append(cut(self._incoming, 0, take) if take < size else self._incoming)
            self._incoming = cut(self._incoming, take, size) if take < size else None
        if self._filled == self._capacity:  # one chunk per arrow column: exchanges take from it
            self._buffer = [column if isinstance(column, np.ndarray) else pa_chunked(column.combine_chunks())
                            for column in self._buffer]
        self.metrics.buffer_occupancy = self._filled

    def _append(self, rows: Block) -> None:
        """Rows after the buffer's (numpy columns grown by doubling: a huge buffer_size allocates nothing up front)."""
        end = self._filled + num_rows(rows)
        if not self._buffer:
            self._buffer = [np.empty(0, dtype=column.dtype) if isinstance(column, np.ndarray) else column[:0]
                            for column in rows]
        for i, (column, new) in enumerate(zip(self._buffer, rows)):
            if not isinstance(column, np.ndarray):
                self._buffer[i] = concat_columns([column, new])
                continue
            if end > len(column):
                column = np.concatenate((column[:self._filled],
                                         np.empty(min(self._capacity, max(end, 2 * len(column))) - self._filled,
                                                  dtype=column.dtype)))
                self._buffer[i] = column
            column[self._filled:end] = new
        self._filled = end

    def produce_chunk(self, n: int) -> list[Any]:
        if not self._drawn:
            self._fill()
            if self._filled < self._capacity or (self._incoming is None and not self._pull()):
                drawn = self._drain()
            else:
                drawn = self._exchange()
            self._drawn.put([drawn])
        return self._drawn.take(n)

    def _exchange(self) -> Block:
        """Draw one row per incoming row (a full buffer): each draw's slot takes the incoming row."""
        incoming, self._incoming = self._incoming, None
        plan = ExchangePlan(self._rng.integers(0, self._capacity, num_rows(incoming)), self._capacity)
        drawn = []
        for i, (column, rows) in enumerate(zip(self._buffer, incoming)):
            out, self._buffer[i] = plan.exchange(column, rows)
            drawn.append(out)
        return tuple(drawn)

    def _drain(self) -> Block:
        """The input has ended: the rows left in the buffer, in a random order."""
        if not self._filled:
            raise StopIteration
        order = self._rng.permutation(self._filled)
        drawn = tuple(column[:self._filled][order] if isinstance(column, np.ndarray) else column.take(order)
                      for column in self._buffer)
        self._buffer, self._filled = [], 0
        return drawn

    # -- saving and restoring ------------------------------------------------------------------------------
    def own_state(self) -> dict[str, Any]:
        """The rows of the buffer (in slot order), of the input block not yet in it and of the drawn rows not yet
        handed out, as values, with the generator and the seed."""
        drawn = self._drawn.take(self._drawn.units)
        self._drawn.put(drawn)  # put back: saving takes nothing
        buffered = cut(self._buffer, 0, self._filled) if self._filled else None
        buffered = None if buffered is None else tuple(
            column.copy() if isinstance(column, np.ndarray) else column for column in buffered)  # changed in place
        incoming = self._incoming
        return {**self._seed.to_state(), "buffer_size": self._capacity, "rng": encode_rng(self._rng),
                "buffer": Deferred(lambda: None if buffered is None else _encode_block(buffered)),
                "incoming": Deferred(lambda: None if incoming is None else _encode_block(incoming)),
                "drawn": Deferred(lambda: [_encode_block(block) for block in drawn]),
                "input_done": self._source_done}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        _check_buffer_size(state, self._capacity, self.name)
        self._seed = EpochSeed.from_state(state)
        self._ds.seeds.continue_after(self._seed)
        self._rng = decode_rng(state["rng"])
        self._source_done = bool(state["input_done"])
        self._drawn.put([_decode_block(block) for block in state["drawn"]])
        self._buffer, self._filled = [], 0
        if state["buffer"] is not None:  # the buffer's rows in slot order
            self._append(_decode_block(state["buffer"]))
        self._incoming = None if state["incoming"] is None else _decode_block(state["incoming"])


class ExchangePlan:
    """Where the rows of one exchange come from and go: ``slots[j]`` is the buffer slot draw j takes.

    Draw j gives the slot's row and refills the slot with incoming row j, as
    drawing one row at a time does; a slot drawn again in the same exchange
    gives, the second time, the incoming row that refilled it the first time.
    Rows are numbered as in the buffer (``capacity`` slots) followed by the
    incoming rows: ``sources`` says which row each draw gives, ``kept`` which
    row each slot holds afterwards.
    """

    __slots__ = ("sources", "capacity", "refill_slots", "refill_rows")

    def __init__(self, slots: np.ndarray, capacity: int) -> None:
        # A stable sort groups the draws of each slot in draw order (a radix sort where slots fit 16 bits).
        order = np.argsort(slots.astype(np.uint16) if capacity <= 1 << 16 else slots, kind="stable")
        sorted_slots = slots[order]
        repeat = sorted_slots[1:] == sorted_slots[:-1]
        self.sources = slots.copy()
        self.sources[order[1:][repeat]] = capacity + order[:-1][repeat]  # the draw before refilled the slot
        self.capacity = capacity
        last = np.append(~repeat, True)  # the last draw of each slot decides what it holds afterwards
        self.refill_slots = sorted_slots[last]
        self.refill_rows = order[last]

    def kept(self) -> np.ndarray:
        """The row each slot holds after the exchange."""
        kept = np.arange(self.capacity)
        kept[self.refill_slots] = self.capacity + self.refill_rows
        return kept

    def exchange(self, column: Any, incoming: Any) -> tuple[Any, Any]:
        """The drawn rows of one column, and the buffer's column after the exchange.

        A numpy column is a work array: the buffer in its first ``capacity``
        rows, room for the incoming rows after them (grown here when short),
        changed in place: one copy in of the incoming rows, one gather of the
        drawn rows, one scatter of the refills. An arrow column cannot be
        changed: the buffer's rows followed by the incoming ones are taken
        twice (the drawn rows, the buffer after).
        """
        capacity, end = self.capacity, self.capacity + len(incoming)
        if isinstance(column, np.ndarray):
            if len(column) < end:
                column = np.concatenate((column[:capacity], np.empty(end - capacity, dtype=column.dtype)))
            column[capacity:end] = incoming
            drawn = column.take(self.sources)
            column[self.refill_slots] = column[capacity + self.refill_rows]
            return drawn, column
        rows = concat_columns([column, incoming])
        return rows.take(self.sources), rows.take(self.kept())


def pa_chunked(array: Any) -> Any:
    """An arrow array as a ChunkedArray of one chunk (the form row blocks hold strings in)."""
    import pyarrow as pa

    return pa.chunked_array([array], type=array.type)


def _encode_block(block: Block) -> list[Any]:
    """A block of rows as a JSON-able list of columns (numpy arrays, or arrow strings with their type)."""
    return [encode_value(column) if isinstance(column, np.ndarray)
            else {"arrow": str(column.type), "values": encode_value(column.to_pylist())} for column in block]


def _decode_block(encoded: list[Any]) -> Block:
    """The block ``_encode_block`` encoded."""
    import pyarrow as pa

    def column(encoded_column: Any) -> Any:
        if isinstance(encoded_column, dict) and "arrow" in encoded_column:
            values = decode_value(encoded_column["values"])
            return pa.chunked_array([pa.array(values, type=pa.type_for_alias(encoded_column["arrow"]))])
        return decode_value(encoded_column)

    return tuple(column(encoded_column) for encoded_column in encoded)
