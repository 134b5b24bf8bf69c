"""The column-block stages of ``make_csv_dataset``: rows travel as blocks of columns, never one by one.

A block holds numbers as numpy arrays and strings as arrow binary arrays
(``csv_decode.Block``); strings become object arrays of ``bytes`` in the file
readers when rows go straight to batches, else when a batch is cut, so that
stages that reorder rows move bytes rather than Python objects.

- ``CsvBlocksDataset`` reads files on background threads (each file a few
  blocks ahead, the next file opened early) and merges their rows in exactly
  tf.data's interleave order (``cycle_length`` files, one row at a time),
  many rounds per step.
- ``RowShuffleDataset`` is tf.data's buffered shuffle at row granularity: each
  output row is drawn uniformly from a buffer of ``buffer_size`` rows and its
  slot refilled with the next input row; a whole input block is exchanged
  through the buffer at once, and the rows drawn are one gather per column.
- ``RowBatchDataset`` cuts batches of exactly ``batch_size`` rows by slicing
  blocks (a view when a batch lies inside one block) and concatenating.

Errors travel as ``Failure`` items and are raised at their place in the row
order; every stage can be iterated on after an error.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput import errors
from fastinput._engine.buffer import Failure
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.iterator import DatasetIterator, IteratorContext, WorkerPool
from fastinput.ops.batch import BatchDataset
from fastinput.ops.shuffle import ShuffleDataset
from fastinput.readers.csv_decode import Block, CsvFormat, as_numpy, read_blocks
from fastinput.readers.files import as_path
from fastinput.spec import TensorSpec

READ_AHEAD_BLOCKS = 2
"""Blocks each file reader keeps ready."""

FUTURE_FILES = 1
"""Files opened (and read ahead) before a slot of the cycle needs them."""


def num_rows(block: Block) -> int:
    return len(block[0])


def concat_blocks(blocks: list[Block]) -> Block:
    """The rows of ``blocks`` one after another, as one block."""
    if len(blocks) == 1:
        return blocks[0]
    return tuple(_concat(list(columns)) for columns in zip(*blocks))


def _concat(columns: list[Any]) -> Any:
    """Columns of one kind (numpy arrays, or arrow ChunkedArrays of strings) end to end."""
    import pyarrow as pa

    if isinstance(columns[0], np.ndarray):
        return np.concatenate(columns)
    return pa.chunked_array([chunk for column in columns for chunk in column.chunks], type=columns[0].type)


# -- reading files: the row-level interleave ----------------------------------------------------------------


class CsvBlocksDataset(Dataset):
    """Blocks of rows from the files named by ``filenames``, in tf.data's interleave order (block_length 1).

    ``strings_as_numpy``: the reader threads turn string columns into object
    arrays (best when rows go straight to batches: the work runs in parallel
    with batching); otherwise they stay in arrow for the stages that reorder rows.
    """

    traits = StageTraits("csv_blocks", StageKind.READ)

    def __init__(self, filenames: Dataset, fmt: CsvFormat, cycle_length: int, strings_as_numpy: bool) -> None:
        super().__init__([filenames])
        self.fmt = fmt
        self.cycle_length = cycle_length
        self.strings_as_numpy = strings_as_numpy

    def __str__(self) -> str:
        return f"csv_blocks(cycle_length={self.cycle_length}, columns={len(self.fmt.columns)})"

    def _element_spec(self) -> Any:
        """A block: a tuple of columns, each as many rows long as the block has."""
        return tuple(TensorSpec((None,), column.dtype) for column in self.fmt.columns)

    def _make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _CsvBlocksIterator(self, ctx, self._inputs[0]._make_iterator(ctx))


class _FileReader:
    """One file's blocks, read ahead on a background thread into a small queue.

    ``on_busy(ns)`` is told the time spent reading and decoding each block;
    ``on_wait(ns)`` the time the consumer waited for one.
    """

    def __init__(self, path: str, fmt: CsvFormat, ctx: IteratorContext, strings_as_numpy: bool, stage: str,
                 on_busy: Callable[[int], None], on_wait: Callable[[int], None]) -> None:
        self.path = path
        self._fmt = fmt
        self._ctx = ctx  # its remote read limits and stop signal
        self._strings_as_numpy = strings_as_numpy
        self._on_busy = on_busy
        self._on_wait = on_wait
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[Block | Failure] = deque()
        self._ended = False
        self._cancelled = False
        self.block: Block | None = None  # the block being consumed, and the next row of it
        self.offset = 0
        self._pool = WorkerPool(f"{stage} reading {path}", self._run, 1)

    def _run(self) -> None:
        blocks = read_blocks(self.path, self._fmt, self._ctx.options.remote, self._ctx.cancelled)
        try:
            while True:
                start = time.perf_counter_ns()
                item = next(blocks, None)
                if self._strings_as_numpy and item is not None and not isinstance(item, Failure):
                    item = as_numpy(item)
                self._on_busy(time.perf_counter_ns() - start)
                if item is None:
                    return
                with self._cond:
                    while len(self._items) >= READ_AHEAD_BLOCKS and not self._cancelled:
                        self._cond.wait()
                    if self._cancelled:
                        return
                    self._items.append(item)
                    self._cond.notify_all()
        except Exception as exc:  # opening or reading the file failed: the error ends the file, at its place
            with self._cond:
                self._items.append(Failure(exc))
        finally:
            blocks.close()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def rows_left(self) -> int:
        return 0 if self.block is None else num_rows(self.block) - self.offset

    def refill(self) -> bool:
        """Wait for the next block; False at the end of the file. Raises a read error at its place."""
        with self._cond:
            if not self._items and not self._ended:
                start = time.perf_counter_ns()
                while not self._items and not self._ended and not self._cancelled:
                    self._cond.wait()
                self._on_wait(time.perf_counter_ns() - start)
            if self._cancelled:
                raise errors.CancelledError(f"reading {self.path}: the iterator was closed")
            if not self._items:
                return False
            item = self._items.popleft()
            self._cond.notify_all()
        if isinstance(item, Failure):
            raise item.exc
        self.block, self.offset = item, 0
        return True

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def close(self) -> None:
        self.cancel()
        self._pool.join()


class _CsvBlocksIterator(DatasetIterator):
    """tf.data's interleave (block_length 1) over file readers, many rows per step.

    At its turn an empty slot takes the next file and yields from it at once; a
    slot whose file has ended is emptied, which uses up its turn. While every
    slot has rows buffered, ``k`` whole rounds are one strided copy per column.
    """

    parallel = True

    def __init__(self, dataset: CsvBlocksDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._ds = dataset
        self._source = source
        self._cycle: list[_FileReader | None] = [None] * dataset.cycle_length
        self._future: deque[_FileReader] = deque()
        self._index = 0
        self._source_done = False
        self._busy_lock = threading.Lock()
        self.metrics.parallelism = dataset.cycle_length + FUTURE_FILES

    def _add_busy(self, ns: int) -> None:
        """Reader threads' decoding time (they add it concurrently)."""
        with self._busy_lock:
            self.metrics.busy_ns += ns

    def _add_wait(self, ns: int) -> None:
        self.metrics.wait_ns += ns

    def _open_files(self) -> None:
        """Open files until every empty slot and ``FUTURE_FILES`` more have one waiting, in input order."""
        wanted = sum(slot is None for slot in self._cycle) + FUTURE_FILES
        while not self._source_done and len(self._future) < wanted:
            try:
                name = self._source.get_next()
            except StopIteration:
                self._source_done = True
                return
            self._future.append(_FileReader(as_path(name), self._ds.fmt, self.ctx, self._ds.strings_as_numpy,
                                            self.name, self._add_busy, self._add_wait))

    def _next_chunk(self, n: int) -> list[Any]:
        self.raise_if_cancelled()
        cycle = self._cycle
        while True:
            self._open_files()
            slot = cycle[self._index]
            if slot is None:
                if self._future:
                    cycle[self._index] = self._future.popleft()
                    continue
                if all(s is None for s in cycle):
                    raise StopIteration
                self._advance(1)
                continue
            if slot.rows_left() == 0 and not slot.refill():
                slot.close()
                cycle[self._index] = None
                self._advance(1)
                continue
            return [self._rounds()]

    def _advance(self, steps: int) -> None:
        self._index = (self._index + steps) % len(self._cycle)

    def _rounds(self) -> Block:
        """Rows from the slots in turn order, starting at the current one (which has rows).

        The run of slots with rows buffered (skipping slots that will stay empty)
        gives ``k`` whole rounds when it goes all the way round, else one row each.
        """
        cycle, size = self._cycle, len(self._cycle)
        run: list[_FileReader] = []
        steps = 0
        for k in range(size):
            slot = cycle[(self._index + k) % size]
            if slot is None and self._source_done and not self._future:
                continue  # stays empty: tf.data skips it without a turn's output
            if slot is None or slot.rows_left() == 0:
                break
            run.append(slot)
            steps = k + 1
        else:
            steps = size
        full_rounds = steps == size
        rounds = min(slot.rows_left() for slot in run) if full_rounds else 1
        block = _interleave_rows(run, rounds)
        for slot in run:
            slot.offset += rounds
        if not full_rounds:
            self._advance(steps)
        return block

    def _readers(self) -> list[_FileReader]:
        return [slot for slot in self._cycle if slot is not None] + list(self._future)

    def _cancel_self(self) -> None:
        for reader in self._readers():
            reader.cancel()

    def _join_self(self) -> None:
        for reader in self._readers():
            reader.close()
        self._cycle = [None] * len(self._cycle)
        self._future.clear()


def _interleave_rows(run: list[_FileReader], rounds: int) -> Block:
    """``rounds`` rows of each reader in ``run``, alternating: row 0 of each, then row 1 of each, ..."""
    pieces = [tuple(col[slot.offset:slot.offset + rounds] for col in slot.block) for slot in run]
    if len(run) == 1:
        return pieces[0]
    return tuple(_alternate(list(columns), rounds) for columns in zip(*pieces))


def _alternate(columns: list[Any], rounds: int) -> Any:
    """Equally long columns merged row by row: row r of column j goes to r * len(columns) + j."""
    width = len(columns)
    if isinstance(columns[0], np.ndarray):  # strided copies: one pass, one reference per object
        out = np.empty(rounds * width, dtype=columns[0].dtype)
        for j, column in enumerate(columns):
            out[j::width] = column
        return out
    # In the columns end to end, row r of column j is at j * rounds + r.
    return _concat(columns).take((np.arange(width) * rounds + np.arange(rounds)[:, None]).reshape(-1))


# -- shuffling rows ---------------------------------------------------------------------------------------


class RowShuffleDataset(ShuffleDataset):
    """``shuffle(buffer_size, seed)`` over the rows of a block dataset; same seeds and epochs as ``ds.shuffle``."""

    traits = StageTraits("rows_shuffle", StageKind.SHUFFLE, passes_through=True, keeps_spec=True)

    def __str__(self) -> str:
        return "rows_" + super().__str__()

    def _make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _RowShuffleIterator(self, ctx, self._inputs[0]._make_iterator(ctx), self.buffer_size, self.next_rng())


class _RowShuffleIterator(DatasetIterator):
    """tf.data's shuffle buffer over rows, holding row ids rather than values.

    Input blocks are kept whole while the buffer refers to their rows (row id
    = position in the input); each input block is exchanged through the buffer
    in one go, and the rows drawn are gathered from the kept blocks: one gather
    per column (arrow's ``take`` for strings, which copies bytes and touches no
    Python object).
    """

    def __init__(self, dataset: Dataset, ctx: IteratorContext, source: DatasetIterator, size: int,
                 rng: np.random.Generator) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._capacity = size
        self._rng = rng
        self._ids = np.empty(min(size, 1024), dtype=np.int64)  # the buffer: ids of the rows it holds (grows to size)
        self._filled = 0
        self._blocks: list[Block] = []  # input blocks with rows in the buffer (or not yet in it)
        self._starts: list[int] = []  # the id of each kept block's first row
        self._next_id = 0
        self._incoming: np.ndarray | None = None  # ids of input rows not yet in the buffer
        self._source_done = False
        self.metrics.buffer_capacity = size

    def _pull(self) -> bool:
        """Take the next input block (its rows become ``_incoming``); False at the end of the input."""
        if self._source_done:
            return False
        try:
            block = self._source.get_next()
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

    def _next(self) -> Block:
        self._fill()
        if self._filled < self._capacity or (self._incoming is None and not self._pull()):
            drawn = self._drain()
        else:
            drawn = self._exchange()
        block = self._gather(drawn)
        self._release()
        return block

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
        out = []
        for columns in zip(*self._blocks):
            out.append(_concat(list(columns))[positions] if isinstance(columns[0], np.ndarray) else
                       _concat(list(columns)).take(positions))
        return tuple(out)

    def _release(self) -> None:
        """Drop the kept blocks that no buffered or incoming row belongs to."""
        starts = np.asarray(self._starts)
        live = [self._ids[:self._filled]] + ([self._incoming] if self._incoming is not None else [])
        kept = np.unique(np.searchsorted(starts, np.concatenate(live), side="right") - 1)
        if len(kept) < len(self._blocks):
            self._blocks = [self._blocks[b] for b in kept]
            self._starts = [self._starts[b] for b in kept]


# -- batching rows ----------------------------------------------------------------------------------------


class RowBatchDataset(BatchDataset):
    """``batch(batch_size, drop_remainder)`` over the rows of a block dataset; ``pack`` turns columns into the element."""

    traits = StageTraits("rows_batch", StageKind.BATCH)

    def __init__(self, input_dataset: Dataset, batch_size: int, drop_remainder: bool, pack: Callable[[Block], Any]) -> None:
        super().__init__(input_dataset, batch_size, drop_remainder)
        self.pack = pack

    def __str__(self) -> str:
        return "rows_" + super().__str__()

    def _element_spec(self) -> Any:
        size = self.batch_size if self.drop_remainder else None
        return self.pack(tuple(TensorSpec((size,), column.dtype) for column in self._inputs[0].element_spec))

    def _make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _RowBatchIterator(self, ctx, self._inputs[0]._make_iterator(ctx))


class _RowBatchIterator(DatasetIterator):
    """Slices input blocks into batches.

    An input error is raised at once and the rows gathered for the batch are
    dropped, as tf.data's ``batch`` does in ``make_csv_dataset``.
    """

    def __init__(self, dataset: RowBatchDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._size = dataset.batch_size
        self._drop_remainder = dataset.drop_remainder
        self._pack = dataset.pack
        self._pieces: deque[Block] = deque()
        self._gathered = 0
        self._ended = False

    def _next(self) -> Any:
        size = self._size
        while self._gathered < size and not self._ended:
            try:
                block = self._source.get_next()
            except StopIteration:
                self._ended = True
                break
            except errors.CancelledError:
                raise
            except Exception:
                self._pieces.clear()
                self._gathered = 0
                raise
            self._pieces.append(as_numpy(block))  # whole blocks: one conversion per column, not one per batch
            self._gathered += num_rows(block)
        if not self._gathered or (self._drop_remainder and self._gathered < size):
            raise StopIteration
        return self._pack(self._take(min(size, self._gathered)))

    def _take(self, count: int) -> Block:
        """The first ``count`` gathered rows (a view when they lie in one block)."""
        pieces, taken, need = self._pieces, [], count
        while need:
            block = pieces[0]
            rows = num_rows(block)
            if rows <= need:
                taken.append(pieces.popleft())
                need -= rows
            else:
                taken.append(tuple(col[:need] for col in block))
                pieces[0] = tuple(col[need:] for col in block)
                need = 0
        self._gathered -= count
        return concat_blocks(taken)
