"""``ds.shuffle`` over row blocks (``fastinput._engine.rows``): tf.data's shuffle buffer, a block at a time.

The buffer holds ``buffer_size`` rows as columns. Each block of input rows is
exchanged through the full buffer in one go, with the draws that drawing one
row at a time makes: one random slot per incoming row, the slot's row drawn
and the incoming row put in its place (``ExchangePlan``). Per column that is
one copy of the incoming rows, one gather of the drawn rows and one scatter
of the refills, or, for numeric columns where the C extension is built, one walk of the draws over all of
them at once, each value moved once in and once out. The rows drawn wait in a ``RowQueue`` for requests of
any size.

An interleave may hand its rows on unmerged (``Interleaved``: blocks and the
order one row of each in turn): the exchange folds that order into its
gathers, so the rows are copied once, not merged first (``Incoming``).

Why values, and not row numbers into the input blocks (kept whole until no
number points into them, each batch gathered by number from them): that was
measured on 400,000 Criteo rows of 14 int64 columns. Exchanging numbers costs
2 ms, but the gather then reads each value at a random place in the several MB
of blocks still referred to: 15-21 ms of CPU, against 8-9 ms to exchange the
values, since a column's 10,000 buffer slots stay in the L2 cache while the
incoming rows are read and the drawn ones written in order; string columns
were three times slower (an arrow take per block, then one to put the rows in
order). Either way each value is copied once; the exchange copies it where the
memory traffic is sequential.

Measured and not kept (400,000 Criteo rows, 2 cores shared with other jobs):
string columns gathered by a C kernel straight from the arrow chunks, without
joining them (1.3-1.4 ms per take of 100,000 8-byte strings against arrow's
1.0 ms: the random reads dominate either way); strings as object arrays of
``bytes`` made once per row group from the Parquet dictionaries (the exchange
of object arrays took 283 instead of 148 ms per epoch of all 40 columns);
exchanging 16,384 incoming rows at a time (first batch sooner, +10% CPU); the
walk tiled over several columns at once (2.5-2.7 instead of 2.0 ns a value);
the columns of one exchange moved by several threads (+6-8% CPU, no wall gain
seen under load; its commit is in the history, reverted).

Nor a buffer that is the decoded row groups themselves, each batch one gather
of rows drawn at random from a window of them (one copy per value, not two; a
different shuffle than tf.data's): 400,000 rows of 14 int64 columns cost 18.5
ms of CPU gathered from 100,000-row windows with one numpy take per column and
window, 35 ms in 1,024-row batches, 39 ms gathered by the row numbers this
buffer would draw, against 13 ms for the exchange with its two moves (medians of 15,
one thread, session 15). A random read per value costs more than two moves
whose reads and writes are in order or within a column's buffer in the L2 cache.
Nor the next step (pull and exchange) run ahead on a helper thread while the
last drawn block is cut into batches (commit 8b2e97d, reverted): the same draws
and rows, and the prefetch thread's CPU an epoch fell from ~34 to ~23 ms
(numeric) and ~391 to ~161 ms (40 columns, packed strings) for the same
instructions in all, but the extra drawn block in flight cost ~900 more page
faults an epoch, and in six interleaved numeric runs at load 4-6 the best
epoch was slower in five (82-112 against 73-97 ms). Worth a retry only on a
quiet machine, where the last exchanges' serial tail leaves a core idle.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastinput._engine import memory
from fastinput._engine.checkpoint import Deferred, decode_rng, decode_value, encode_rng, encode_value
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.rows import Block, Interleaved, concat_columns, num_rows
from fastinput.ops.shuffle import EpochSeed, check_buffer_size

try:
    from fastinput.ops import _exchange
except ImportError:  # not built: ExchangePlan works the plan out with numpy, slower
    _exchange = None


class Incoming:
    """Input rows not yet in the buffer: row k is row ``order[k]`` of ``pieces`` (blocks) end to end."""

    __slots__ = ("pieces", "order")

    def __init__(self, pieces: list[Block], order: np.ndarray) -> None:
        self.pieces = pieces
        self.order = order

    @classmethod
    def of(cls, items: list[Any]) -> Incoming:
        """The rows of an input chunk: blocks, and ``Interleaved`` rounds in their interleave order."""
        pieces: list[Block] = []
        orders = []
        start = 0
        for item in items:
            if isinstance(item, Interleaved):
                pieces.extend(item.pieces)
                orders.append(item.order() + start if start else item.order())
                start += sum(num_rows(piece) for piece in item.pieces)
            else:
                pieces.append(item)
                orders.append(np.arange(start, start + num_rows(item)))
                start += num_rows(item)
        return cls(pieces, np.concatenate(orders) if len(orders) > 1 else orders[0])

    def __len__(self) -> int:
        return len(self.order)

    def columns(self) -> list[list[Any]]:
        """Each column's pieces."""
        return [list(column) for column in zip(*self.pieces)]

    def rows(self, start: int = 0, stop: int | None = None) -> Block:
        """Rows ``start:stop`` as one block: numpy columns gathered piece by piece (the first fill of a buffer takes
        a few of many incoming rows: joining the pieces first would copy them all), arrow ones by one take."""
        positions = self.order[start:stop]
        ends = np.cumsum([num_rows(piece) for piece in self.pieces])
        which = np.searchsorted(ends, positions, side="right")  # the piece of each row
        parts = [(np.flatnonzero(which == k), positions[which == k] - (ends[k] - num_rows(piece)))
                 for k, piece in enumerate(self.pieces)]
        block = []
        for column in self.columns():
            if not isinstance(column[0], np.ndarray):
                block.append(concat_columns(column).take(positions))
                continue
            out = np.empty(len(positions), dtype=column[0].dtype)
            for piece, (at, rows) in zip(column, parts):
                out[at] = piece[rows]
            block.append(out)
        return tuple(block)

    def after(self, start: int) -> Incoming | None:
        """The rows from ``start`` on (None if there are none)."""
        return Incoming(self.pieces, self.order[start:]) if start < len(self.order) else None


class RowShuffleIterator(DatasetIterator):
    """tf.data's shuffle buffer over rows, holding the rows' values as columns.

    A buffer column is a numpy array changed in place (a work array:
    ``buffer_size`` rows, then room for an exchange's incoming rows), or for
    strings an arrow binary array (strings stay arrow until a batch makes
    them ``bytes`` objects, in batch order).
    """

    def __init__(self, dataset: Any, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._ds = dataset
        self._source = source
        self._units = dataset.units
        self._capacity = size = dataset.buffer_size
        self._seed = dataset.seeds.next()
        self._rng = self._seed.generator()
        self._buffer: list[Any] = []  # its columns; numpy ones are grown to ``size`` rows as rows arrive
        self._filled = 0
        self._incoming: Incoming | None = None
        self._source_done = False
        self._drawn = self._units.queue()
        self._slot_rows: np.ndarray | None = None  # ExchangePlan's scratch array, made at the first exchange
        self.metrics.buffer_capacity = size

    def _pull(self) -> bool:
        """Take the next input rows (they become ``_incoming``); False at the end of the input."""
        if self._source_done:
            return False
        try:
            self._incoming = Incoming.of(self._source.get_next_chunk(self._units.request(1)))
        except StopIteration:
            self._source_done = True
            return False
        return True

    def _fill(self) -> None:
        """Move input rows into the free part of the buffer until it is full or the input ends."""
        while self._filled < self._capacity and (self._incoming is not None or self._pull()):
            take = min(self._capacity - self._filled, len(self._incoming))
            self._append(self._incoming.rows(0, take))
            self._incoming = self._incoming.after(take)
        if self._filled == self._capacity:  # one chunk per arrow column: exchanges take from it
            self._buffer = [column if isinstance(column, np.ndarray) else _one_chunk(column)
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
        """Draw one row per incoming row (a full buffer): each draw's slot takes the incoming row.

        The numeric columns are walked by the C extension all in one call (``_exchange.exchange``: each value
        moved once into the buffer and once out); the others (strings), or all where it is not built, are moved
        by the row plan (``ExchangePlan``), with the same draws and the same result."""
        incoming, self._incoming = self._incoming, None
        slots = self._rng.integers(0, self._capacity, len(incoming))
        pieces = incoming.columns()
        drawn: list[Any] = [None] * len(self._buffer)
        walked = [i for i, column in enumerate(self._buffer) if _walkable(column, pieces[i])]
        if walked:
            outs = [memory.pooled_empty(len(incoming), self._buffer[i].dtype) for i in walked]
            _exchange.exchange([self._buffer[i][:self._capacity] for i in walked], [pieces[i] for i in walked],
                               slots, incoming.order, outs)
            for i, out in zip(walked, outs):
                drawn[i] = out
        if len(walked) < len(drawn):
            if self._slot_rows is None:
                self._slot_rows = np.arange(self._capacity)
            plan = ExchangePlan(slots, self._capacity, incoming.order, self._slot_rows)
            for i, column in enumerate(self._buffer):
                if drawn[i] is None:
                    drawn[i], self._buffer[i] = plan.exchange(column, pieces[i])
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
        """The rows of the buffer (in slot order), of the input not yet in it and of the drawn rows not yet
        handed out, as values, with the generator and the seed."""
        drawn = self._drawn.take(self._drawn.units)
        self._drawn.put(drawn)  # put back: saving takes nothing
        buffered = None if not self._filled else tuple(  # a copy: numpy columns change in place
            column[:self._filled].copy() if isinstance(column, np.ndarray) else column[:self._filled]
            for column in self._buffer)
        incoming = self._incoming
        return {**self._seed.to_state(), "buffer_size": self._capacity, "rng": encode_rng(self._rng),
                "buffer": Deferred(lambda: None if buffered is None else _encode_block(buffered)),
                "incoming": Deferred(lambda: None if incoming is None else _encode_block(incoming.rows())),
                "drawn": Deferred(lambda: [_encode_block(block) for block in drawn]),
                "input_done": self._source_done}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        check_buffer_size(state, self._capacity, self.name)
        self._seed = EpochSeed.from_state(state)
        self._ds.seeds.continue_after(self._seed)
        self._rng = decode_rng(state["rng"])
        self._source_done = bool(state["input_done"])
        self._drawn.put([_decode_block(block) for block in state["drawn"]])
        self._buffer, self._filled = [], 0
        if state["buffer"] is not None:  # the buffer's rows in slot order
            self._append(_decode_block(state["buffer"]))
        self._incoming = None if state["incoming"] is None else Incoming.of([_decode_block(state["incoming"])])


class ExchangePlan:
    """Where the rows of one exchange come from and go: ``slots[j]`` is the buffer slot draw j takes.

    Draw j gives the slot's row and refills the slot with incoming row j, as
    drawing one row at a time does; a slot drawn again in the same exchange
    gives, the second time, the incoming row that refilled it the first time.
    Rows are numbered as in the buffer (``capacity`` slots) followed by the
    incoming pieces end to end, where incoming row j is at ``order[j]``:
    ``sources`` says which row each draw gives, ``refill_slots`` /
    ``refill_rows`` the row each slot drawn holds afterwards. The C extension
    ``_exchange`` walks the draws in order (``slot_rows``: its scratch array,
    ``arange(capacity)``, left so); where it is not built (see ``setup.py``)
    numpy works the same out with a stable sort of the slots.
    """

    __slots__ = ("sources", "capacity", "refill_slots", "refill_rows", "_kept")

    def __init__(self, slots: np.ndarray, capacity: int, order: np.ndarray, slot_rows: np.ndarray) -> None:
        self.capacity = capacity
        self._kept: np.ndarray | None = None
        rows = order + capacity
        if _exchange is not None:
            self.sources = np.empty(len(slots), dtype=np.int64)
            refill_slots, refill_rows = np.empty((2, len(slots)), dtype=np.int64)
            refills = _exchange.plan(slots, rows, slot_rows, self.sources, refill_slots, refill_rows)
            self.refill_slots, self.refill_rows = refill_slots[:refills], refill_rows[:refills]
            return
        # A stable sort groups the draws of each slot in draw order (a radix sort where slots fit 16 bits).
        by_slot = np.argsort(slots.astype(np.uint16) if capacity <= 1 << 16 else slots, kind="stable")
        sorted_slots = slots[by_slot]
        repeat = sorted_slots[1:] == sorted_slots[:-1]
        self.sources = slots.copy()
        self.sources[by_slot[1:][repeat]] = rows[by_slot[:-1][repeat]]  # the draw before refilled it
        last = np.append(~repeat, True)  # the last draw of each slot decides what it holds afterwards
        self.refill_slots = sorted_slots[last]
        self.refill_rows = rows[by_slot[last]]

    def kept(self) -> np.ndarray:
        """The row each slot holds after the exchange (worked out once: every string column takes it)."""
        if self._kept is None:
            self._kept = np.arange(self.capacity)
            self._kept[self.refill_slots] = self.refill_rows
        return self._kept

    def exchange(self, column: Any, pieces: list[Any]) -> tuple[Any, Any]:
        """The drawn rows of one column, and the buffer's column after the exchange.

        A numpy column is a work array: the buffer in its first ``capacity``
        rows, room for the incoming rows after them (grown here when short),
        changed in place: one copy in of the incoming rows, one gather of the
        drawn rows, one scatter of the refills. An arrow column cannot be
        changed: the buffer's rows followed by the incoming ones are taken
        twice (the drawn rows, the buffer after).
        """
        if not isinstance(column, np.ndarray):  # one array: arrow's take over chunks would join them at each call
            rows = concat_columns([column, *pieces]).combine_chunks()
            return _chunked(rows.take(self.sources)), _chunked(rows.take(self.kept()))
        end = self.capacity + sum(len(piece) for piece in pieces)
        if len(column) < end:
            grown = memory.pooled_empty(end, column.dtype)
            grown[:self.capacity] = column[:self.capacity]
            column = grown
        start = self.capacity
        for piece in pieces:
            column[start:start + len(piece)] = piece
            start += len(piece)
        # mode="clip" (the rows are in range): with "raise", numpy takes into a copy of ``out`` first
        drawn = np.take(column, self.sources, out=memory.pooled_empty(len(self.sources), column.dtype), mode="clip")
        column[self.refill_slots] = column[self.refill_rows]
        return drawn, column


def _walkable(column: Any, pieces: list[Any]) -> bool:
    """Whether the C extension can walk an exchange on this buffer column's values: numbers (not Python objects)
    whose incoming pieces are contiguous arrays of the same type."""
    return (_exchange is not None and isinstance(column, np.ndarray) and not column.dtype.hasobject
            and all(isinstance(piece, np.ndarray) and piece.dtype == column.dtype and piece.flags.c_contiguous
                    for piece in pieces))


def _one_chunk(column: Any) -> Any:
    """An arrow ChunkedArray as one of a single chunk (the form row blocks hold strings in)."""
    return _chunked(column.combine_chunks())


def _chunked(array: Any) -> Any:
    """An arrow Array as a ChunkedArray of that one chunk (the form row blocks hold strings in)."""
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
