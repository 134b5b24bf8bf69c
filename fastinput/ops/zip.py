"""``Dataset.zip``: combine several datasets element by element (ends with the shortest)."""

from __future__ import annotations

from collections import deque
from typing import Any

from fastinput import structure
from fastinput._engine import cardinality
from fastinput._engine.buffer import Failure
from fastinput._engine.checkpoint import stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.resume import ReadAhead
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError


def zip_datasets(*datasets: Any) -> Dataset:
    """``zip(a, b)`` gives tuples; ``zip((a, b))`` or ``zip({"x": a, "y": b})`` gives that structure."""
    return ZipDataset(datasets[0] if len(datasets) == 1 and structure.is_nested(datasets[0]) else datasets)


class ZipDataset(Dataset):
    traits = StageTraits("zip", StageKind.COMBINE)

    def __init__(self, nest: Any) -> None:
        if nest == ():
            raise InvalidArgumentError("zip: needs at least one dataset")
        for leaf in structure.flatten(nest):
            if not isinstance(leaf, Dataset):
                raise InvalidArgumentError(f"zip: every argument must be a Dataset, got {type(leaf).__name__}")
        super().__init__(structure.flatten(nest))
        self.nest = nest

    def cardinality(self) -> int:
        counts = [source.cardinality() for source in self.inputs]
        if cardinality.UNKNOWN in counts:
            return cardinality.UNKNOWN
        finite = [n for n in counts if n != cardinality.INFINITE]
        return min(finite) if finite else cardinality.INFINITE

    def __str__(self) -> str:
        return f"zip(<{len(self.inputs)} datasets>)"

    def compute_element_spec(self) -> Any:
        return structure.pack_as(self.nest, [dataset.element_spec for dataset in self.inputs])

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _ZipIterator(self, ctx, [d.make_iterator(ctx) for d in self.inputs])


class _ZipIterator(DatasetIterator):
    """Reads its inputs a column (chunk) at a time but keeps them in step row by row, as tf.data does.

    tf.data advances every input for a row even when one of them raises: the
    row becomes the first error (in input order) and the other inputs'
    elements of that row are consumed, so the rows after it stay aligned. A
    row where an input ends is the end, unless an input before it raised
    there: then that error comes first and the end after it. Elements read
    ahead of the row being handed out wait in one queue per input.

    Saved, it keeps none of them: for each input whose queue holds some, the
    input's state before the pull that brought the oldest, and how many
    entries (elements and errors) it has taken since; a restore pulls them
    again and drops those. A row with an error waits whole in the queues
    until it is handed out, so a state saved before that meets it again.
    """

    def __init__(self, dataset: ZipDataset, ctx: IteratorContext, sources: list[DatasetIterator]) -> None:
        super().__init__(dataset, ctx, sources)
        self._nest = dataset.nest
        self._columns: list[deque[Any]] = [deque() for _ in sources]
        self._ended = [False] * len(sources)
        self._finished = False
        self._read_ahead = ReadAhead(sources)

    def _read(self, i: int, want: int, at_least: int) -> None:
        """Read input ``i`` (asking for up to ``want`` entries) until its queue holds ``at_least`` or it ends.

        An error is an entry of its own: this input's element of that row.
        """
        column = self._columns[i]
        while not self._ended[i] and (len(column) < at_least or not column):
            try:
                self._read_ahead.pull(i, column, max(1, want - len(column)))
            except StopIteration:
                self._ended[i] = True

    def produce_chunk(self, n: int) -> list[Any]:
        self._read_ahead.catch_up()
        columns = self._columns
        if not columns[0]:
            self._read(0, n, 1)  # one request: the first input's chunk sets how many rows this call makes
        rows = len(columns[0])
        if rows and not self._finished:
            for i in range(1, len(columns)):
                self._read(i, rows, rows)
        out: list[Any] = []
        while len(out) < n and not self._finished:
            row: list[Any] = []
            error: BaseException | None = None
            for column in columns:
                if not column:  # this input ended at this row; nothing after it is read (tf.data's order)
                    self._finished = True
                    break
                value = column.popleft()
                if type(value) is Failure:
                    error = error or value.exc
                row.append(value)
            if error is not None:
                if not out:
                    raise error
                # the rows before it now; the row goes back, whole, for the next call to raise its error (and
                # end, if an input ended there): a state saved meanwhile points at it
                for column, value in zip(columns, row):
                    column.appendleft(value)
                self._finished = False
                return out
            if not self._finished:
                out.append(structure.pack_as(self._nest, row))
                if not all(columns):
                    break
        if not out:
            self._finished = True
            raise StopIteration
        return out

    def get_state(self) -> dict[str, Any]:
        skip, inputs = self._read_ahead.states([len(column) for column in self._columns])
        return stage_state(self.op, {"skip": skip, "finished": self._finished}, inputs)

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._read_ahead.restore(state["skip"])
        self._finished = state["finished"]
