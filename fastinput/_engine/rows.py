"""Units: what interleave, shuffle and batch count, for elements or for blocks of rows.

The engine's interleave, shuffle and batch are written once, over *units*.
Ordinarily every item a stage hands on is one element, one unit
(``ELEMENTS``). A dataset may instead declare that its items are *blocks of
rows* (``RowBlocks``): a tuple of equally long columns, numbers as numpy
arrays and strings as arrow binary ChunkedArrays (CSV's columnar form). Then
the same ops count rows, cut blocks after k rows and merge rows from several
blocks, with one numpy or arrow call per column instead of Python work per
row. A units object says how:

- ``count(items)``: the units in a list of items;
- ``queue(metrics)``: a buffer of items (and ``Failure``\\ s in their places)
  taken *k units at a time*, stopping before a failure (``ElementQueue``,
  ``RowQueue``; both on the engine's ``ItemQueue``);
- ``merge_rounds(pieces, rounds)``: interleave order over several sources,
  one unit from each in turn, ``rounds`` times;
- ``split(items, n)``: the items holding the first ``n`` units and the rest
  (a batch's end; ``split_rows`` is the one place a block is cut);
- ``read_ahead(block_length)``: items a reader buffers per source;
- ``request(need)``: units to ask an input for when ``need`` are wanted.

In a request (``get_next_chunk(n)``) to a stage over row blocks, ``n`` counts
rows: the stage hands back blocks holding at most ``n`` rows in all.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any, Protocol

import numpy as np

from fastinput._engine.buffer import Failure, ItemQueue
from fastinput._engine.metrics import StageMetrics
from fastinput.spec import TensorSpec

Block = tuple[Any, ...]
"""Rows as columns of equal length: numpy arrays, or pyarrow ChunkedArrays of binary strings."""

@dataclasses.dataclass(frozen=True, slots=True)
class Interleaved:
    """Equally long blocks and the interleave order over them, not yet merged: one row of each in turn.

    What an interleave hands a shuffle over rows (``RowBlocks(interleave_lazily=True)``): the shuffle gathers
    rows by position anyway, so it folds the order into its gathers (``order``) instead of copying every column
    into it first. Not a block (a stage that cuts or counts blocks cannot take it).
    """

    pieces: list[Block]
    rounds: int

    def order(self) -> np.ndarray:
        """The row, in the pieces end to end, at each position of the interleave order."""
        return alternate_order(len(self.pieces), self.rounds)


READ_CHUNK = 64
"""Elements a reader moves from a source into its buffer in one go (at most), and buffers per source at least."""

READ_AHEAD_BLOCKS = 2
"""Row blocks a reader keeps ready per source (a block is thousands of rows)."""

ROWS_PER_REQUEST = 1 << 20
"""Rows a stage over row blocks asks of its input at a time: more than a block holds, so blocks are cut only where
a batch or a turn of the interleave ends."""


# -- row block kernels ----------------------------------------------------------------------------------------


def num_rows(block: Block) -> int:
    return len(block[0])


def cut(block: Block, start: int, stop: int) -> Block:
    """Rows ``start:stop`` of the block (views for numpy columns, zero-copy slices for arrow ones)."""
    return tuple([column[start:stop] for column in block])  # a list first: no generator to resume per column


def concat_blocks(blocks: list[Block]) -> Block:
    """The rows of ``blocks`` one after another, as one block."""
    if len(blocks) == 1:
        return blocks[0]
    return tuple(concat_columns(list(columns)) for columns in zip(*blocks))


def concat_columns(columns: list[Any]) -> Any:
    """Columns of one kind (numpy arrays, or arrow ChunkedArrays of strings) end to end."""
    import pyarrow as pa

    if isinstance(columns[0], np.ndarray):
        return np.concatenate(columns)
    return pa.chunked_array([chunk for column in columns for chunk in column.chunks], type=columns[0].type)


def as_numpy(block: Block, strings: Callable[[list[Any]], list[Any]] | None = None) -> tuple[Any, ...]:
    """The block with its string columns as numpy object arrays of ``bytes`` (tf.string's numpy form), or as
    ``strings`` makes them leaves (called once with all of them: a batch's columns packed in one go)."""
    if strings is None:
        return tuple([col if isinstance(col, np.ndarray) else col.to_numpy(zero_copy_only=False) for col in block])
    out = list(block)
    at = [i for i, col in enumerate(block) if not isinstance(col, np.ndarray)]
    for i, leaf in zip(at, strings([block[i] for i in at])):
        out[i] = leaf
    return tuple(out)


def alternate(columns: list[Any], rounds: int) -> Any:
    """Equally long columns merged row by row: row r of column j goes to r * len(columns) + j."""
    width = len(columns)
    if isinstance(columns[0], np.ndarray):  # strided copies: one pass, one reference per object
        out = np.empty(rounds * width, dtype=columns[0].dtype)
        for j, column in enumerate(columns):
            out[j::width] = column
        return out
    return concat_columns(columns).take(alternate_order(width, rounds))


@functools.lru_cache(maxsize=16)
def alternate_order(width: int, rounds: int) -> np.ndarray:
    """Positions, in ``width`` pieces of ``rounds`` rows end to end, of their rows one of each in turn: row r of
    piece j (at j * rounds + r) goes to r * width + j. Read-only, and kept for the next call with the same
    arguments: an interleave over row groups of one size hands on rounds of the same shape again and again, and
    making the order anew (fresh arrays of 8 bytes a row, their pages faulted in) cost the row shuffle's thread
    1.6 ms per epoch of 400,000 Parquet rows read two row groups at a time (its pulls: 3.7-4.4 -> 2.2-2.5 ms)."""
    order = np.empty((rounds, width), dtype=np.int64)
    for j in range(width):  # a strided write per piece: five times faster than broadcasting a sum for 2 pieces
        order[:, j] = np.arange(j * rounds, (j + 1) * rounds)
    order.flags.writeable = False
    return order.reshape(-1)


# -- queues that hand out units ------------------------------------------------------------------------------


class ElementQueue(ItemQueue):
    """A buffer of elements, each one unit: the engine's ``ItemQueue``, which also says how many units it holds."""

    __slots__ = ()

    @property
    def units(self) -> int:
        """Units held, failures aside (an element is a unit; items and units are the same count)."""
        return len(self)


def split_rows(blocks: list[Any], n: int, rows: Callable[[Any], int] = num_rows,
               cut: Callable[[Any, int, int], Any] = cut) -> tuple[list[Any], list[Any]]:
    """The first ``n`` rows of ``blocks`` and the rest, cutting the block where the ``n`` rows end.

    ``rows`` and ``cut`` say how many rows an item holds and how to cut one (row blocks by default; ``rebatch``
    cuts batched elements the same way)."""
    need = n
    for i, block in enumerate(blocks):
        size = rows(block)
        if size >= need:
            if size == need:
                return blocks[:i + 1], blocks[i + 1:]
            return blocks[:i] + [cut(block, 0, need)], [cut(block, need, size)] + blocks[i + 1:]
        need -= size
    return blocks, []


class RowQueue:
    """A buffer of row blocks (and failures between them) handed out row by row: the head block may be cut.

    The rest of a cut block is held apart from the queue, at its head, for
    the next take (the rows carried over between batches, or between a
    source's turns in an interleave).
    """

    __slots__ = ("_queue", "_head", "_rows")

    def __init__(self, metrics: StageMetrics | None = None) -> None:
        self._queue = ItemQueue(metrics)
        self._head: list[Block] = []  # the rest of a cut block, if any
        self._rows = 0  # rows held, in the head and the queue

    def __len__(self) -> int:
        """Blocks held (what read-ahead limits count)."""
        return len(self._queue) + len(self._head)

    def __bool__(self) -> bool:
        return bool(self._head) or bool(self._queue)

    @property
    def units(self) -> int:
        return self._rows

    @property
    def has_failure(self) -> bool:
        return self._queue.has_failure

    @property
    def head_is_failure(self) -> bool:
        return not self._head and self._queue.head_is_failure

    def put(self, items: Iterable[Any]) -> None:
        """Append blocks (empty ones are dropped) and failures."""
        kept = [item for item in items if type(item) is Failure or num_rows(item)]
        self._rows += sum(num_rows(item) for item in kept if type(item) is not Failure)
        self._queue.put(kept)

    def take(self, n: int) -> list[Any]:
        """Blocks holding up to ``n`` rows, stopping before a failure; a failure at the head comes alone."""
        blocks = self._head
        rows = sum(num_rows(block) for block in blocks)
        while rows < n and self._queue and not self._queue.head_is_failure:
            block = self._queue.take(1)[0]
            blocks.append(block)
            rows += num_rows(block)
        if not blocks:
            return self._queue.take(1)  # a failure, alone (or nothing)
        out, self._head = split_rows(blocks, n)
        self._rows -= min(n, rows)
        return out

    def take_exactly(self, n: int) -> list[Any]:
        return self.take(n)

    def clear(self) -> None:
        self._queue.clear()
        self._head = []
        self._rows = 0


# -- the two kinds of units ---------------------------------------------------------------------------------


class UnitQueue(Protocol):
    """What the ops need of a buffer of units (``ElementQueue``, ``RowQueue``)."""

    def __len__(self) -> int: ...
    def __bool__(self) -> bool: ...
    @property
    def units(self) -> int: ...
    @property
    def has_failure(self) -> bool: ...
    @property
    def head_is_failure(self) -> bool: ...
    def put(self, items: Iterable[Any]) -> None: ...
    def take(self, n: int) -> list[Any]: ...
    def take_exactly(self, n: int) -> list[Any]: ...
    def clear(self) -> None: ...


class Units(Protocol):
    """How a stage counts, buffers and merges the items it carries (``ELEMENTS``, or a ``RowBlocks``)."""

    def count(self, items: list[Any]) -> int:
        """The units in ``items``."""

    def queue(self, metrics: StageMetrics | None = None) -> UnitQueue:
        """An empty buffer of these items, counted into ``metrics``."""

    def merge_rounds(self, pieces: list[list[Any]], rounds: int) -> list[Any]:
        """Interleave order: one unit of each piece in turn, ``rounds`` times (each piece holds ``rounds`` units)."""

    def read_ahead(self, block_length: int) -> int:
        """Items a reader buffers per source by default."""

    def request(self, need: int) -> int:
        """How many units to ask the input for when ``need`` more are wanted."""

    def split(self, items: list[Any], n: int) -> tuple[list[Any], list[Any]]:
        """The items holding the first ``n`` units, and the rest (an item cut in two if need be)."""


class Elements:
    """Every item is one element, one unit: the ordinary case of interleave, shuffle and batch."""

    def __reduce__(self) -> str:  # stages compare with ``is ELEMENTS``: a pickled pipeline (``distribute``) keeps it
        return "ELEMENTS"

    def count(self, items: list[Any]) -> int:
        return len(items)

    def queue(self, metrics: StageMetrics | None = None) -> ElementQueue:
        return ElementQueue(metrics)

    def merge_rounds(self, pieces: list[list[Any]], rounds: int) -> list[Any]:
        return list(chain.from_iterable(zip(*pieces)))

    def read_ahead(self, block_length: int) -> int:
        return max(READ_CHUNK, block_length)

    def request(self, need: int) -> int:
        return need

    def split(self, items: list[Any], n: int) -> tuple[list[Any], list[Any]]:
        return (items, []) if len(items) <= n else (items[:n], items[n:])


ELEMENTS = Elements()


class RowBlocks:
    """Items are blocks of rows; a unit is a row.

    A batch of rows is numpy columns (strings as object arrays of ``bytes``,
    or what ``strings`` makes of a batch's arrow string columns, given all at
    once: the leaves ``make_parquet_dataset(string_type="packed")`` yields); ``pack`` turns
    them into the element a row batch yields (by default the tuple of columns
    itself). ``interleave_lazily``: an interleave hands its rounds on as
    ``Interleaved`` (for a shuffle over rows to read, and only where one reads
    the interleave's output) rather than merged blocks.
    """

    def __init__(self, pack: Callable[[Block], Any] | None = None, interleave_lazily: bool = False,
                 strings: Callable[[list[Any]], list[Any]] | None = None) -> None:
        self.pack = pack
        self.interleave_lazily = interleave_lazily
        self.strings = strings

    def count(self, items: list[Any]) -> int:
        return sum([len(block[0]) for block in items])

    def queue(self, metrics: StageMetrics | None = None) -> RowQueue:
        return RowQueue(metrics)

    def merge_rounds(self, pieces: list[list[Any]], rounds: int) -> list[Any]:
        """One row of each piece in turn, ``rounds`` times: one block, one strided copy or gather per column."""
        blocks = [concat_blocks(piece) for piece in pieces]
        if len(blocks) == 1:
            return blocks
        if self.interleave_lazily:
            return [Interleaved(blocks, rounds)]
        return [tuple(alternate(list(columns), rounds) for columns in zip(*blocks))]

    def read_ahead(self, block_length: int) -> int:
        return READ_AHEAD_BLOCKS

    def request(self, need: int) -> int:
        return max(need, ROWS_PER_REQUEST)

    def split(self, items: list[Any], n: int) -> tuple[list[Any], list[Any]]:
        return split_rows(items, n)

    def batch(self, blocks: list[Block]) -> Any:
        """A batch from the blocks holding its rows."""
        block = as_numpy(concat_blocks(blocks), self.strings)
        return block if self.pack is None else self.pack(block)

    def batch_spec(self, block_spec: Block, batch_size: int | None) -> Any:
        """The spec of a batch of ``batch_size`` rows (None: any) from the spec of a block."""
        spec = tuple(TensorSpec((batch_size,), column.dtype) for column in block_spec)
        return spec if self.pack is None else self.pack(spec)
