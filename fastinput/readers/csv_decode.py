"""CSV text to column blocks with pyarrow: the hot path under ``CsvDataset`` and ``make_csv_dataset``.

A file is read as chunks of a few MiB cut at record boundaries (a newline
outside quotes). ``pyarrow.csv.read_csv`` parses several chunks at once on
helper threads, with the GIL released, straight into typed columns: a
*block*, one column per selected column, numbers as numpy arrays and strings
as pyarrow binary arrays. Strings stay in arrow until rows are handed out,
where ``rows.as_numpy`` makes them object arrays of ``bytes``: copying, shuffling
and interleaving arrow strings moves bytes, while every copy of an object
array touches each object's reference count. No Python code runs per row.

Semantics are tf.data's ``CsvDataset``: an empty field or ``na_value`` takes
the column's default, or is an error if the column is required; a record with
the wrong number of fields, an empty line (when records have more than one
field) and a field that does not parse are errors. Errors keep their place:
``read_blocks`` yields the good rows before a bad record, then a ``Failure``
naming file, line, record and column, then goes on after it; with
``ignore_errors`` bad records are dropped instead. Finding bad records is a
slow path taken only by chunks that may have one (a parse error, a missing
required field, or a row with every selected field empty: maybe an empty line).

pyarrow is imported inside functions so that ``import fastinput`` stays fast.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from fastinput._engine.buffer import Failure
from fastinput._engine.cancellation import StopSignal
from fastinput._engine.rows import Block
from fastinput.errors import InvalidArgumentError
from fastinput.options import RemoteOptions
from fastinput.readers.files import open_read

DEFAULT_CHUNK_SIZE = 4 << 20
"""Bytes of CSV text decoded at a time (tf.data's CsvDataset buffers 4 MiB too)."""

ARROW_BLOCK_SIZE = 1 << 20
"""Bytes arrow parses at a time within a chunk."""

PARSE_AHEAD = 2
"""Chunks of a file parsed ahead, each on its own helper thread (one thread per chunk costs less CPU than
arrow splitting one chunk across its thread pool)."""

CSV_DTYPES = (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.float32), np.dtype(np.float64), np.dtype(object))
"""The column types CSV reading supports (tf.data's: int32, int64, float32, float64, string)."""


@dataclasses.dataclass(frozen=True)
class Column:
    """One selected column: its field index in the record, its type and default (``None``: required)."""

    index: int
    dtype: np.dtype
    default: Any
    name: str | None = None

    @property
    def label(self) -> str:
        return f"column {self.index}" if self.name is None else f"column {self.index} ({self.name!r})"


@dataclasses.dataclass(frozen=True)
class CsvFormat:
    """How to read the files: layout, parsing options and error policy (checked by the caller)."""

    columns: tuple[Column, ...]
    num_fields: int | None  # fields per record; None: as many as the first record of each file has
    header: bool = False
    field_delim: str = ","
    use_quote_delim: bool = True
    na_value: str = ""
    compression_type: str | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    ignore_errors: bool = False
    storage_options: dict | None = None


def read_blocks(path: str, fmt: CsvFormat, remote_options: RemoteOptions | None = None,
                cancelled: StopSignal | None = None) -> Iterator[Block | Failure]:
    """The rows of one file as blocks, with a ``Failure`` at the place of each bad record.

    The next ``PARSE_AHEAD`` chunks are parsed on helper threads (arrow
    releases the GIL) while this one's columns are finished. Raises (ending
    the file) what opening or reading the file raises: ``NotFoundError``,
    ``DataLossError`` for corrupt compressed data, ...
    """
    stream = open_read(path, compression_type=fmt.compression_type, block_size=fmt.chunk_size,
                       storage_options=fmt.storage_options, remote_options=remote_options, cancelled=cancelled)
    parser = ThreadPoolExecutor(PARSE_AHEAD, thread_name_prefix=f"fastinput csv parse {path}")
    try:
        decoder: _ChunkDecoder | None = None
        pending: deque[tuple[bytes, bool, Any]] = deque()
        for chunk, header_lines, quotes_closed in _chunks(stream, fmt, path):
            if decoder is None:
                decoder = _ChunkDecoder(path, fmt, fmt.num_fields or _count_fields(chunk, fmt), header_lines)
            pending.append((chunk, quotes_closed, parser.submit(decoder.parse, chunk) if quotes_closed else None))
            if len(pending) > PARSE_AHEAD:
                yield from decoder.finish(*pending.popleft())
        while pending:
            yield from decoder.finish(*pending.popleft())
    finally:
        parser.shutdown(cancel_futures=True)
        stream.close()


# -- cutting the byte stream into chunks of whole records -----------------------------------------------------


def _chunks(stream: Any, fmt: CsvFormat, path: str) -> Iterator[tuple[bytes, int, bool]]:
    """Chunks of whole records (about ``chunk_size`` bytes), the header skipped.

    With each: the header's line count, and whether the chunk's quotes are
    closed (False only for a last record whose quoted field never ends).
    An empty file has no header to skip: that is an error, as in tf.data.
    """
    quoting = fmt.use_quote_delim
    carry = b""
    header_lines = 0
    skip_header = fmt.header
    while True:
        data = stream.read(fmt.chunk_size)
        if not data:
            break
        buf = carry + data if carry else data
        if skip_header:
            end = _first_record_end(buf, quoting)
            if end < 0:
                carry = buf
                continue
            header_lines = buf.count(b"\n", 0, end)
            buf, skip_header = buf[end:], False
        cut = _last_record_end(buf, quoting)
        if cut == 0:  # no complete record yet (a record longer than a read): read on
            carry = buf
            continue
        chunk, carry = (buf, b"") if cut == len(buf) else (buf[:cut], buf[cut:])
        yield chunk, header_lines, True
    if skip_header and not carry:
        raise InvalidArgumentError(f"{path}: cannot read the header line: the file is empty")
    if carry and not skip_header:  # the last record, with no newline after it
        yield carry, header_lines, not quoting or _count_bytes(carry, 34) % 2 == 0


def _count_bytes(buf: bytes, byte: int) -> int:
    """How many times ``byte`` occurs in ``buf`` (numpy: several times faster than ``bytes.count``)."""
    return int(np.count_nonzero(np.frombuffer(buf, np.uint8) == byte))


def _first_record_end(buf: bytes, quoting: bool) -> int:
    """Offset just past the first record's newline, or -1 if ``buf`` holds no complete record."""
    pos = quotes = 0
    while True:
        newline = buf.find(b"\n", pos)
        if newline < 0:
            return -1
        if quoting:
            quotes += buf.count(b'"', pos, newline)
        if quotes % 2 == 0:
            return newline + 1
        pos = newline + 1


def _last_record_end(buf: bytes, quoting: bool) -> int:
    """Offset just past the last newline that ends a record (an even number of quotes before it), or 0."""
    quoting = quoting and b'"' in buf
    quotes = _count_bytes(buf, 34) if quoting else 0
    end = len(buf)
    while True:
        newline = buf.rfind(b"\n", 0, end)
        if newline < 0:
            return 0
        if quoting:
            quotes -= buf.count(b'"', newline, end)
        if quotes % 2 == 0:
            return newline + 1
        end = newline


def _count_fields(chunk: bytes, fmt: CsvFormat) -> int:
    """Fields in the first record of ``chunk`` (how many every record of the file must have)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    end = _first_record_end(chunk, fmt.use_quote_delim)
    first = chunk if end < 0 else chunk[:end]
    table = pacsv.read_csv(
        pa.py_buffer(first), read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        parse_options=_parse_options(fmt, None), convert_options=pacsv.ConvertOptions(default_column_type=pa.binary()),
    )
    return table.num_columns


# -- decoding one chunk ---------------------------------------------------------------------------------------


def arrow_type(dtype: np.dtype) -> Any:
    """The pyarrow type a column of ``dtype`` is parsed as (strings as binary: values are bytes, like tf.string)."""
    import pyarrow as pa

    return pa.binary() if dtype.kind == "O" else pa.from_numpy_dtype(dtype)


def _parse_options(fmt: CsvFormat, handler: Any) -> Any:
    import pyarrow.csv as pacsv

    return pacsv.ParseOptions(
        delimiter=fmt.field_delim, quote_char='"' if fmt.use_quote_delim else False, double_quote=True,
        escape_char=False, newlines_in_values=fmt.use_quote_delim, ignore_empty_lines=False,
        invalid_row_handler=handler,
    )


class _ChunkDecoder:
    """Decodes the chunks of one file, in order: fast typed parse, or the slow path that finds bad records."""

    def __init__(self, path: str, fmt: CsvFormat, num_fields: int, header_lines: int) -> None:
        self.path = path
        self.fmt = fmt
        self.num_fields = num_fields
        self.records = 0  # records of the file decoded so far
        self.line = 1 + header_lines  # the line the next chunk starts at
        last = fmt.columns[-1]
        if last.index >= num_fields:
            raise InvalidArgumentError(
                f"{path}: {last.label} is selected but the first record has only {num_fields} fields")
        self._names = [f"f{i}" for i in range(num_fields)]
        self._selected = [self._names[c.index] for c in fmt.columns]
        self._nulls = [""] + ([fmt.na_value] if fmt.na_value else [])

    def _read(self, chunk: bytes, typed: bool, handler: Any) -> Any:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        types = {name: arrow_type(c.dtype) if typed else pa.binary()
                 for name, c in zip(self._selected, self.fmt.columns)}
        return pacsv.read_csv(
            pa.py_buffer(chunk),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=ARROW_BLOCK_SIZE, column_names=self._names),
            parse_options=_parse_options(self.fmt, handler),
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=self._selected, null_values=self._nulls,
                strings_can_be_null=True, quoted_strings_can_be_null=True,
            ),
        )

    def parse(self, chunk: bytes) -> Any:
        """The chunk's typed arrow table and how many ragged records it skipped; None if it may hold a bad record.

        Touches no decoder state, so it runs ahead on the helper thread; None
        sends the chunk to the slow path, which checks every record.
        """
        import pyarrow as pa

        skipped: list[int] = []

        def on_ragged_row(row: Any) -> str:
            skipped.append(1)
            return "skip" if self.fmt.ignore_errors else "error"

        try:
            table = self._read(chunk, typed=True, handler=on_ragged_row)
        except pa.ArrowInvalid:
            return None
        columns = table.columns
        if any(c.default is None and col.null_count for c, col in zip(self.fmt.columns, columns)):
            return None
        if self.num_fields > 1 and _may_have_empty_lines(columns):
            return None
        return table, len(skipped)

    def finish(self, chunk: bytes, quotes_closed: bool, parsed: Any) -> Iterator[Block | Failure]:
        """The chunk's rows as blocks (none if it has no good row), with Failures at their places, in file order."""
        if not quotes_closed:
            yield from self._unterminated(chunk)
            return
        result = parsed.result()
        if result is None:
            yield from self._decode_slow(chunk)
            return
        table, skipped = result
        records = table.num_rows + skipped
        self.records += records
        self.line += records if not (self.fmt.use_quote_delim and b'"' in chunk) else _count_bytes(chunk, 10)
        if table.num_rows:
            yield tuple(_finish_column(col, c) for col, c in zip(table.columns, self.fmt.columns))

    def _unterminated(self, chunk: bytes) -> Iterator[Failure]:
        """The file's last record opens a quoted field that never closes (tf.data rejects it too)."""
        if not self.fmt.ignore_errors:
            yield Failure(InvalidArgumentError(
                f"{self.path}, line {self.line} (record {self.records + 1}): a quoted field is not closed "
                "before the end of the file"
            ))
        self.records += 1
        self.line += chunk.count(b"\n")

    def _decode_slow(self, chunk: bytes) -> Iterator[Block | Failure]:
        """Every record of the chunk checked: the good rows in blocks, a Failure (or nothing) for each bad one."""
        import pyarrow as pa

        starts, lengths = _record_spans(chunk, self.fmt.use_quote_delim)
        newlines = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10)
        lines = self.line + np.searchsorted(newlines, starts)
        ragged: dict[int, int] = {}

        def on_ragged_row(row: Any) -> str:
            ragged[row.number - 1] = row.actual_columns
            return "skip"

        where = f"{self.path}, lines {self.line}-{self.line + len(newlines)}"
        try:
            table = self._read(chunk, typed=False, handler=on_ragged_row)
        except pa.ArrowInvalid as exc:
            raise InvalidArgumentError(f"{where}: cannot parse the CSV text: {exc}") from exc
        row_records = np.setdiff1d(np.arange(len(starts)), np.fromiter(ragged, dtype=np.int64, count=len(ragged)))
        if len(row_records) != table.num_rows:  # arrow and the quote count disagree on where records end
            raise InvalidArgumentError(
                f"{where}: cannot split the text into records (a quote inside an unquoted field?)")
        problems = {r: f"expected {self.num_fields} fields but found {n}" for r, n in ragged.items()}
        if self.num_fields > 1:
            for r in row_records[lengths[row_records] == 0]:
                problems[int(r)] = f"empty line; expected {self.num_fields} fields"
        columns = []
        for col, c in zip(table.columns, self.fmt.columns):
            values, bad = _convert_checked(col, c, self.fmt.na_value)
            columns.append(values)
            for row, message in bad.items():
                problems.setdefault(int(row_records[row]), f"{c.label}: {message}")
        yield from self._in_order(tuple(columns), row_records, problems, lines)
        self.records += len(starts)
        self.line += len(newlines)

    def _in_order(self, columns: Block, row_records: np.ndarray, problems: dict[int, str],
                  lines: np.ndarray) -> Iterator[Block | Failure]:
        """The good rows between bad records as blocks, each bad record as a Failure at its place."""
        position = 0
        for record in sorted(problems):
            end = int(np.searchsorted(row_records, record))
            if end > position:
                yield tuple(col[position:end] for col in columns)
            position = end + int(end < len(row_records) and row_records[end] == record)
            if not self.fmt.ignore_errors:
                yield Failure(InvalidArgumentError(
                    f"{self.path}, line {lines[record]} (record {self.records + record + 1}): {problems[record]}"
                ))
        if position < len(row_records):
            yield tuple(col[position:] for col in columns)


def _may_have_empty_lines(columns: list[Any]) -> bool:
    """Whether a row has every selected column missing, as an empty line parses (tf.data rejects empty lines)."""
    import pyarrow.compute as pc

    if not all(col.null_count for col in columns):
        return False
    all_missing = columns[0].is_null()
    for col in columns[1:]:
        all_missing = pc.and_(all_missing, col.is_null())
    return bool(pc.any(all_missing).as_py())


def _record_spans(chunk: bytes, quoting: bool) -> tuple[np.ndarray, np.ndarray]:
    """Start offset and length (without the line break) of every record in ``chunk``."""
    buf = np.frombuffer(chunk, np.uint8)
    is_break = buf == 10
    is_cr = buf == 13
    is_cr[:-1] &= ~is_break[1:]  # a lone \r ends a record, the \r of \r\n does not
    breaks = np.flatnonzero(is_break | is_cr)
    if quoting:
        breaks = breaks[np.searchsorted(np.flatnonzero(buf == 34), breaks) % 2 == 0]
    starts = np.concatenate(([0], breaks + 1))
    ends = np.append(breaks, len(buf))
    if starts[-1] == len(buf):  # the chunk ends with a line break: no record after it
        starts, ends = starts[:-1], ends[:-1]
    crlf = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    return starts, ends - starts - crlf


def _finish_column(column: Any, c: Column) -> Any:
    """A parsed arrow column with missing values replaced by the default: numbers as numpy, strings as arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.null_count:
        column = pc.fill_null(column, pa.scalar(c.default, type=column.type))
    if c.dtype.kind == "O":
        return column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    values = column.to_numpy(zero_copy_only=False)
    return values if values.flags.writeable else values.copy()


def _convert_checked(column: Any, c: Column, na_value: str) -> tuple[Any, dict[int, str]]:
    """A column parsed as bytes converted to ``c.dtype``, and a message for each row that is missing or does not
    parse."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    missing = column.is_null().to_numpy(zero_copy_only=False)
    problems: dict[int, str] = {}
    if c.default is None:
        what = "empty" if not na_value else f"empty or {na_value!r}"
        problems = {int(r): f"the field is required but missing ({what})" for r in np.flatnonzero(missing)}
    if c.dtype.kind == "O":
        return _finish_column(column, dataclasses.replace(c, default=c.default or b"")), problems
    target = arrow_type(c.dtype)

    def parse(values: Any) -> Any:
        text = pc.utf8_trim(values.cast(pa.string()), " \t")
        if pa.types.is_integer(target):  # tf.data reads "+5" as 5; arrow's integer parser does not
            text = pc.replace_substring_regex(text, r"^\+(\d)", r"\1")
        return pc.cast(text, target)

    text = pc.fill_null(column, b"0")
    bad = _parse_failures(text, parse)
    for row in bad:
        value = text[row].as_py().decode("utf-8", "replace")
        problems.setdefault(row, f"{value!r} is not a valid {c.dtype.name}")
    if bad:
        mask = np.zeros(len(text), dtype=bool)
        mask[bad] = True
        text = pc.if_else(pa.array(mask), pa.scalar(b"0", pa.binary()), text)
    values = parse(text).to_numpy(zero_copy_only=False).copy()
    values[missing] = 0 if c.default is None else c.default
    return values, problems


def _parse_failures(values: Any, parse: Any) -> list[int]:
    """Indices of the values ``parse`` rejects, found by bisection (a few vectorised calls per bad value)."""
    import pyarrow as pa

    try:
        parse(values)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(values) == 1:
            return [0]
    half = len(values) // 2
    return _parse_failures(values[:half], parse) + [half + i for i in _parse_failures(values[half:], parse)]
