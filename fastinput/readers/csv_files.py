"""One CSV file as a source of row blocks: what the engine's interleave reads for ``make_csv_dataset``.

``CsvFileDataset`` yields the rows of one file as blocks of columns
(``csv_decode``), a unit being a row (``fastinput._engine.rows``): a request
for ``n`` rows is answered with blocks holding at most ``n``, a block cut
where the request ends and its rest kept for the next one. A bad record's
error is raised at its place, after the rows before it, and reading goes on
after it; an error opening or reading the file ends it, at its place.
``FileRows`` does the reading, for ``CsvDataset`` too.

A file's saved position is the rows and bad records handed out and whether it has ended: a restored reader
reads the file again from its start and drops those (a CSV file cannot be entered mid-way: a quoted field may
hold newlines, and the header comes first).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastinput._engine.buffer import Failure
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.rows import Block, RowQueue, as_numpy, num_rows
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.readers.csv_decode import CsvFormat, read_blocks
from fastinput.readers.files import as_path
from fastinput.spec import TensorSpec


class CsvFileDataset(Dataset):
    """The rows of the CSV file ``path`` as blocks of columns.

    ``strings_as_numpy``: string columns become object arrays of ``bytes`` as
    each block is decoded (best when rows go straight to batches: the reader
    does that work ahead); otherwise they stay in arrow, cheaper to reorder.
    """

    traits = StageTraits("CsvFile", StageKind.READ)

    def __init__(self, path: Any, fmt: CsvFormat, strings_as_numpy: bool) -> None:
        super().__init__()
        self.path = as_path(path)
        self.fmt = fmt
        self.strings_as_numpy = strings_as_numpy

    def __str__(self) -> str:
        return f"CsvFile({self.path!r}, <{len(self.fmt.columns)} columns>)"

    def compute_element_spec(self) -> Any:
        """A block: a tuple of columns, each as many rows long as the block has."""
        return tuple(TensorSpec((None,), column.dtype) for column in self.fmt.columns)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return CsvFileIterator(self, ctx)


class FileRows:
    """One file's rows, decoded a block at a time and handed out up to ``n`` rows per ``take``."""

    def __init__(self, path: str, fmt: CsvFormat, strings_as_numpy: bool, ctx: IteratorContext) -> None:
        self._blocks: Iterator[Block | Failure] = read_blocks(path, fmt, ctx.options.remote, ctx.cancelled)
        self._strings_as_numpy = strings_as_numpy
        self._rows = RowQueue()
        self._taken = 0  # rows handed out
        self._failed = 0  # bad records raised
        self._ended = False  # the file has ended, or an error ended it
        self._to_drop = (0, 0)  # rows and bad records handed out before a restore, to read again and drop

    def take(self, n: int) -> list[Block]:
        """Blocks holding up to ``n`` rows; raises a bad record's error at its place, ``StopIteration`` at the end
        (also after an error that ended the file)."""
        if self._ended:
            raise StopIteration
        if self._to_drop != (0, 0):
            self._drop(*self._to_drop)
        failure = self._fill()
        if failure is not None:
            raise failure.exc
        blocks = self._rows.take(n)
        self._taken += sum(num_rows(block) for block in blocks)
        return blocks

    def _fill(self) -> Failure | None:
        """Decode blocks until some rows are buffered; a bad record's ``Failure`` (counted) if one comes first."""
        while not self._rows:
            try:
                item = next(self._blocks)
            except BaseException:  # the end, or an error opening or reading the file: it ends the file
                self._ended = True
                raise
            if type(item) is Failure:
                self._failed += 1
                return item
            self._rows.put([as_numpy(item) if self._strings_as_numpy else item])
        return None

    def _drop(self, rows: int, failures: int) -> None:
        """Read the file again up to where a saved reader stood: ``rows`` rows and ``failures`` bad records (the
        prefix handed out, in the order the file has them)."""
        self._to_drop = (0, 0)
        while self._taken < rows or self._failed < failures:
            if not self._rows:
                self._fill()
            elif self._taken < rows:
                self._taken += sum(num_rows(block) for block in self._rows.take(rows - self._taken))
            else:  # rows where a bad record was: the file is not the one saved; go on from here
                return

    def position(self) -> dict[str, Any]:
        """Where this file stands: rows and bad records handed out, and whether it has ended."""
        taken, failed = (self._taken, self._failed) if self._to_drop == (0, 0) else self._to_drop
        return {"rows": taken, "bad_records": failed, "ended": self._ended}

    def restore(self, position: dict[str, Any]) -> None:
        """Go to ``position`` (from ``position()``) before the first ``take``: the rows are read again and dropped
        then."""
        self._to_drop = (position["rows"], position["bad_records"])
        self._ended = position["ended"]

    def close(self) -> None:
        self._blocks.close()


class CsvFileIterator(DatasetIterator):
    """``FileRows`` as a stage: what a request for ``n`` rows of the file gets."""

    def __init__(self, dataset: CsvFileDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._rows = FileRows(dataset.path, dataset.fmt, dataset.strings_as_numpy, ctx)

    def produce_chunk(self, n: int) -> list[Any]:
        return self._rows.take(n)

    def own_state(self) -> dict[str, Any]:
        return self._rows.position()

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._rows.restore(state)

    def join_self(self) -> None:
        self._rows.close()
