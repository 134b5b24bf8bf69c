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
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from typing import Any

import numpy as np

from fastinput import errors
from fastinput._engine.arguments import check_bool, check_int, check_seed
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.rows import ELEMENTS, Block, RowBlocks, Units, concat_blocks, num_rows, take_rows
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops.repeat import EpochTally

_RANDOM_BLOCK = 4096


class ShuffleDataset(Dataset):
    traits = StageTraits("shuffle", StageKind.SHUFFLE, passes_through=True, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, buffer_size: int, seed: int | None, reshuffle_each_iteration: bool,
                 rows: RowBlocks | None = None) -> None:
        super().__init__([input_dataset])
        self.units: Units = rows or ELEMENTS
        self.buffer_size = check_int("shuffle", "buffer_size", buffer_size, minimum=1)
        self.seed = check_seed("shuffle", seed)
        self.reshuffle_each_iteration = check_bool("shuffle", "reshuffle_each_iteration", reshuffle_each_iteration)
        self._base_seed = self.seed if self.seed is not None else secrets.randbits(63)
        self._epochs = itertools.count()

    def __str__(self) -> str:
        extra = f", seed={self.seed}" if self.seed is not None else ""
        if not self.reshuffle_each_iteration:
            extra += ", reshuffle_each_iteration=False"
        return f"shuffle({self.buffer_size}{extra})"

    def next_rng(self) -> np.random.Generator:
        """The random generator for a new iterator (the next epoch's when reshuffling)."""
        epoch = next(self._epochs) if self.reshuffle_each_iteration else 0
        return np.random.Generator(np.random.PCG64([self._base_seed, epoch]))

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        source = self.inputs[0].make_iterator(ctx)
        if self.units is not ELEMENTS:
            return RowShuffleIterator(self, ctx, source, self.buffer_size, self.next_rng())
        return ShuffleIterator(self, ctx, source, self.buffer_size, self.next_rng())


class ShuffleIterator(DatasetIterator):
    def __init__(self, dataset: Dataset, ctx: IteratorContext, source: DatasetIterator, buffer_size: int,
                 rng: np.random.Generator, prefilled: list[Any] | None = None) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._size = buffer_size
        self._rng = rng
        self._buffer: list[Any] = prefilled or []
        self._incoming: deque[Any] = deque()
        self._source_done = False
        self._source_error: Exception | None = None
        self._randoms: list[float] = []
        self.metrics.buffer_capacity = buffer_size

    @property
    def input_exhausted(self) -> bool:
        """True once the input has ended: from here on the buffer only drains."""
        return self._source_done

    def _pull(self, n: int) -> None:
        """Move up to ``n`` input elements into ``_incoming``; remembers the end of input or an input error."""
        try:
            self._incoming.extend(self._source.get_next_chunk(n))
        except StopIteration:
            self._source_done = True
        except Exception as exc:  # raised after the elements already drawn, at its place
            self._source_error = exc

    def produce_chunk(self, n: int) -> list[Any]:
        buffer, incoming = self._buffer, self._incoming
        while len(buffer) < self._size and not self._source_done and self._source_error is None:
            self._pull(self._size - len(buffer))  # the initial fill (and refills after an input error)
            buffer.extend(incoming)
            incoming.clear()
        out: list[Any] = []
        randoms = self._randoms
        while len(out) < n and buffer and self._source_error is None:
            if not randoms:
                randoms.extend(self._rng.random(_RANDOM_BLOCK).tolist())
            i = int(randoms.pop() * len(buffer))
            out.append(buffer[i])
            if not incoming and not self._source_done:
                self._pull(min(n, 256))
            if incoming:
                buffer[i] = incoming.popleft()
            else:
                buffer[i] = buffer[-1]
                buffer.pop()
        self.metrics.buffer_occupancy = len(buffer)
        if self._source_error is not None:
            exc, self._source_error = self._source_error, None
            if not out:
                raise exc
            self._pending = exc
        if not out:
            raise StopIteration
        return out


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
        self._next_error: Exception | None = None
        self._next_source_done = False
        self._started = False  # the first epoch (and its seed) is taken at the first request, as repeat does

    def _start_epoch(self, source: DatasetIterator | None, prefilled: list[Any]) -> None:
        shuffle = self._ds.shuffle
        if self._epochs_left == 0:
            self._current = None
            return
        self._epochs_left -= self._epochs_left > 0
        source = source or shuffle.inputs[0].make_iterator(self.ctx)
        self._current = ShuffleIterator(shuffle, self.ctx, source, shuffle.buffer_size, shuffle.next_rng(), prefilled)
        self.inputs = [self._current] + ([self._next_source] if self._next_source else [])

    def _prefill_next_epoch(self, n: int) -> None:
        """Read up to ``n`` elements of the next epoch while the current one drains."""
        if (self._epochs_left == 0 or self._next_source_done or self._next_error is not None
                or len(self._next_buffer) >= self._ds.shuffle.buffer_size):
            return
        if self._next_source is None:
            self._next_source = self._ds.shuffle.inputs[0].make_iterator(self.ctx)
            self.inputs = [self._current, self._next_source]
        try:
            self._next_buffer.extend(
                self._next_source.get_next_chunk(min(n, self._ds.shuffle.buffer_size - len(self._next_buffer))))
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
                source, prefilled = self._next_source, self._next_buffer  # an exhausted source just ends at once
                self._current_error = self._next_error
                self._next_source, self._next_buffer, self._next_source_done, self._next_error = None, [], False, None
                self._start_epoch(source, prefilled)
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


class RowShuffleIterator(DatasetIterator):
    """tf.data's shuffle buffer over rows, holding row ids rather than values.

    Input blocks are kept whole while the buffer refers to their rows (row id
    = position in the input); each input block is exchanged through the buffer
    in one go, and the rows drawn are gathered from the kept blocks: one gather
    per column (arrow's ``take`` for strings, which copies bytes and touches no
    Python object). The rows drawn wait in a ``RowQueue`` for requests of any size.
    """

    def __init__(self, dataset: ShuffleDataset, ctx: IteratorContext, source: DatasetIterator, size: int,
                 rng: np.random.Generator) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._units = dataset.units
        self._capacity = size
        self._rng = rng
        self._ids = np.empty(min(size, 1024), dtype=np.int64)  # the buffer: ids of the rows it holds (grows to size)
        self._filled = 0
        self._blocks: list[Block] = []  # input blocks with rows in the buffer (or not yet in it)
        self._starts: list[int] = []  # the id of each kept block's first row
        self._next_id = 0
        self._incoming: np.ndarray | None = None  # ids of input rows not yet in the buffer
        self._source_done = False
        self._drawn = self._units.queue()
        self.metrics.buffer_capacity = size

    def _pull(self) -> bool:
        """Take the next input rows (they become ``_incoming``); False at the end of the input."""
        if self._source_done:
            return False
        try:
            block = concat_blocks(self._source.get_next_chunk(self._units.request(1)))
        except StopIteration:
            self._source_done = True
            return False
        rows = num_rows(block)
        self._blocks.append(block)
        self._starts.append(self._next_id)
        self._incoming = np.arange(self._next_id, self._next_id + rows)
        self._next_id += rows
        return True

    def _fill(self) -> None:
        """Move input rows into the free part of the buffer until it is full or the input ends."""
        while self._filled < self._capacity and (self._incoming is not None or self._pull()):
            take = min(self._capacity - self._filled, len(self._incoming))
            if self._filled + take > len(self._ids):  # grown as rows arrive: a huge buffer_size allocates nothing
                grown = np.empty(min(self._capacity, max(2 * len(self._ids), self._filled + take)), dtype=np.int64)
                grown[:self._filled] = self._ids[:self._filled]
                self._ids = grown
            self._ids[self._filled:self._filled + take] = self._incoming[:take]
            self._filled += take
            self._incoming = self._incoming[take:] if take < len(self._incoming) else None
        self.metrics.buffer_occupancy = self._filled

    def produce_chunk(self, n: int) -> list[Any]:
        if not self._drawn:
            self._fill()
            if self._filled < self._capacity or (self._incoming is None and not self._pull()):
                drawn = self._drain()
            else:
                drawn = self._exchange()
            self._drawn.put([self._gather(drawn)])
            self._release()
        return self._drawn.take(n)

    def _exchange(self) -> np.ndarray:
        """Draw one row per incoming row (a full buffer): each draw's slot takes the incoming row."""
        incoming, self._incoming = self._incoming, None
        count = len(incoming)
        slots = self._rng.integers(0, self._capacity, count)
        # A slot drawn twice gives, the second time, the incoming row that refilled it the first time.
        order = np.argsort(slots, kind="stable")
        sorted_slots = slots[order]
        repeat = sorted_slots[1:] == sorted_slots[:-1]
        previous = np.full(count, -1)
        previous[order[1:][repeat]] = order[:-1][repeat]
        drawn = np.where(previous < 0, self._ids[slots], incoming[previous])
        last = np.append(~repeat, True)  # the last draw of each slot decides what it holds afterwards
        self._ids[sorted_slots[last]] = incoming[order[last]]
        return drawn

    def _drain(self) -> np.ndarray:
        """The input has ended: the rows left in the buffer, in a random order."""
        if not self._filled:
            raise StopIteration
        drawn = self._ids[:self._filled][self._rng.permutation(self._filled)]
        self._filled = 0
        return drawn

    def _gather(self, ids: np.ndarray) -> Block:
        """The rows with these ids, from the kept blocks."""
        starts = np.asarray(self._starts)
        which = np.searchsorted(starts, ids, side="right") - 1
        sizes = [num_rows(block) for block in self._blocks]
        positions = ids - starts[which] + (np.cumsum(sizes) - sizes)[which]  # in the kept blocks end to end
        return take_rows(concat_blocks(self._blocks), positions)

    def _release(self) -> None:
        """Drop the kept blocks that no buffered or incoming row belongs to."""
        starts = np.asarray(self._starts)
        live = [self._ids[:self._filled]] + ([self._incoming] if self._incoming is not None else [])
        kept = np.unique(np.searchsorted(starts, np.concatenate(live), side="right") - 1)
        if len(kept) < len(self._blocks):
            self._blocks = [self._blocks[b] for b in kept]
            self._starts = [self._starts[b] for b in kept]
