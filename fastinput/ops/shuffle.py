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
through it at once (``fastinput.ops.row_shuffle``): the same seeds and epochs.

Saving (``get_state``): a shuffle saves its buffer (as positions where its input is ``Positioned``, say
TFRecord files through interleaves, else as values with ``encode_value``), its random generator, its place in
the seed sequence (restoring continues that sequence, so the epochs after a restore get the seeds the
uninterrupted run would have) and its input's state.
"""

from __future__ import annotations

import copy
import secrets
import threading
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
from fastinput._engine.rows import ELEMENTS, RowBlocks, Units
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops.repeat import EpochTally

_RANDOM_BLOCK = 4096


def draw_python(buffer: list[Any], incoming: list[Any], randoms: list[float], count: int,
                positions: list[Position | None] | None = None,
                incoming_positions: list[Position | None] | None = None) -> list[Any]:
    """``count`` draws of the buffered shuffle, their elements in order: draw k takes ``buffer[int(r * len(buffer))]``
    for ``r = randoms[-1 - k]`` and puts ``incoming[k]`` in its place (its position, with ``positions``, too); the
    randoms and incoming elements used are deleted. The C extension's ``draw`` (``_shuffle.c``) where it is not
    built (see ``setup.py``): the same draws, a dozen bytecodes each, where C moves two pointers."""
    size, out = len(buffer), []
    append = out.append
    for k, r in enumerate(reversed(randoms[len(randoms) - count:])):
        i = int(r * size)
        append(buffer[i])
        buffer[i] = incoming[k]
        if positions is not None:
            positions[i] = incoming_positions[k]  # type: ignore[index]
    del randoms[len(randoms) - count:], incoming[:count]
    if incoming_positions is not None:
        del incoming_positions[:count]
    return out


def drain_python(buffer: list[Any], randoms: list[float], count: int,
                 positions: list[Position | None] | None = None) -> list[Any]:
    """``count`` draws of the buffered shuffle once its input has ended: draw k takes ``buffer[int(r *
    len(buffer))]`` for ``r = randoms[-1 - k]``, moves the buffer's last element (and position) into its place and
    drops the last place; the randoms used are deleted. The C extension's ``drain`` where it is not built."""
    out = []
    for r in reversed(randoms[len(randoms) - count:]):
        i = int(r * len(buffer))
        out.append(buffer[i])
        buffer[i] = buffer[-1]
        buffer.pop()
        if positions is not None:
            positions[i] = positions[-1]
            positions.pop()
    del randoms[len(randoms) - count:]
    return out


try:
    from fastinput.ops._shuffle import drain, draw
except ImportError:  # not built: the same draws in Python, slower
    draw, drain = draw_python, drain_python


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
            from fastinput.ops.row_shuffle import RowShuffleIterator

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
        self._incoming: list[Any] = []  # pulled, not yet in the buffer: they fill the places of the next draws
        self._source_done = False
        self._source_error: Exception | None = None
        self._randoms: list[float] = []
        self._randoms_from: np.random.Generator | None = None  # the generator as it was before it drew ``_randoms``
        self._pull_state: dict[str, Any] | None = None  # the input's state before the last tracked pull
        self._pulled = 0  # the elements the input has given since ``_pull_state``
        self._skip = 0  # restored: the input's next elements, which the buffer holds already
        self._track_pulls = True  # False once the input has said it cannot save
        self._positions: list[Position | None] | None = None  # beside ``_buffer``, where the input says them
        self._incoming_positions: list[Position | None] = []
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
            if not incoming and not self._source_done:  # before the draw, which does not look at the input
                self._pull(min(n, 256), track=True)
            if incoming:  # a run of draws, each place filled from the input
                out += draw(buffer, incoming, randoms, min(n - len(out), len(incoming), len(randoms)),
                            positions, None if positions is None else incoming_positions)
                continue
            # the input has ended, or failed (one draw, then the error): the buffer drains, each draw's place filled
            # by its last element
            count = 1 if self._source_error is not None else min(n - len(out), len(buffer), len(randoms))
            out += drain(buffer, randoms, count, positions)
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
        check_buffer_size(state, self._size, self.name)
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


def check_buffer_size(state: dict[str, Any], size: int, name: str) -> None:
    """A saved shuffle state must come from a buffer of the same size (its draws depend on it)."""
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
