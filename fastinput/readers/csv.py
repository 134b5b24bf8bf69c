"""``fi.CsvDataset`` and ``fi.make_csv_dataset``: CSV files with the signatures and semantics of tf.data's.

Both decode CSV with pyarrow, a few MiB of text at a time into columns,
on arrow's threads (``csv_decode``), each file a source of row blocks
(``csv_files``). ``CsvDataset`` yields one tuple of numpy scalars per record,
as tf.data's does. ``make_csv_dataset`` never splits rows apart: it composes
the engine's interleave, shuffle and batch over row blocks
(``fastinput._engine.rows``: a unit is a row), so a batch costs a few numpy
calls per column, and it yields tf.data's structure:
``(OrderedDict(column -> array), label_array)``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from itertools import chain
from typing import Any

from fastinput._engine.arguments import (
    AUTOTUNE,
    check_bool,
    check_buffer_bytes,
    check_int,
    check_parallelism,
)
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.interleave import InterleaveDataset, autotune_cycle_length
from fastinput.readers.csv_decode import DEFAULT_CHUNK_SIZE, Column, CsvFormat
from fastinput.readers.csv_files import CsvFileDataset, FileRows
from fastinput.readers.csv_inference import CsvTextOptions, header_names, infer_column_types, record_default
from fastinput.readers.files import check_compression_type, file_name_list, match_files
from fastinput.readers.row_batches import ColumnPacker, RowBatching
from fastinput.spec import TensorSpec


class CsvDataset(Dataset):
    """The records of CSV files, each a tuple of numpy scalars (``bytes`` for strings), like tf.data's CsvDataset.

    ``record_defaults`` has one entry per selected column: a dtype (``tf.int32``,
    ``np.float32``, ``tf.string``) or ``[]`` for a required column, or a default
    value (``0``, ``[0.0]``, ``""``) used for empty fields and ``na_value``.
    ``select_cols`` / ``exclude_cols`` (sorted indices, at most one of them)
    pick columns. ``buffer_size`` is the bytes decoded at a time (4 MiB).
    A missing required field, a field that does not parse, a record with the
    wrong number of fields and an empty line raise ``InvalidArgumentError``
    naming the file, line, record and column, after the good records before it;
    iteration can go on after it.

    >>> import fastinput as fi
    >>> ds = fi.CsvDataset("data.csv", [0, 0.0, ""], header=True)
    >>> next(iter(ds))
    (np.int32(1), np.float32(2.5), b'abc')
    """

    traits = StageTraits("CsvDataset", StageKind.READ)

    def __init__(self, filenames: Any, record_defaults: Sequence[Any], compression_type: str | None = None,
                 buffer_size: int | None = None, header: bool = False, field_delim: str = ",",
                 use_quote_delim: bool = True, na_value: str = "", select_cols: Sequence[int] | None = None,
                 exclude_cols: Sequence[int] | None = None, storage_options: dict | None = None) -> None:
        super().__init__()
        op = "CsvDataset"
        self.paths = _file_names(op, filenames)
        if (isinstance(record_defaults, (str, bytes)) or not isinstance(record_defaults, Sequence)
                or not record_defaults):
            raise InvalidArgumentError(f"{op}: record_defaults must be a non-empty list, got {record_defaults!r}")
        defaults = [record_default(op, i, d) for i, d in enumerate(record_defaults)]
        indices, num_fields = _column_indices(op, len(defaults), select_cols, exclude_cols)
        self.format = CsvFormat(
            columns=tuple(Column(i, dtype, default) for i, (dtype, default) in zip(indices, defaults)),
            num_fields=num_fields,
            header=check_bool(op, "header", header),
            field_delim=_check_delim(op, field_delim),
            use_quote_delim=check_bool(op, "use_quote_delim", use_quote_delim),
            na_value=_check_str(op, "na_value", na_value),
            compression_type=check_compression_type(op, compression_type),
            chunk_size=(DEFAULT_CHUNK_SIZE if buffer_size is None
                        else check_buffer_bytes(op, "buffer_size", buffer_size, minimum=1)),
            storage_options=storage_options,
        )

    def __str__(self) -> str:
        files = repr(self.paths[0]) if len(self.paths) == 1 else f"<{len(self.paths)} files>"
        return f"CsvDataset({files}, <{len(self.format.columns)} columns>)"

    def compute_element_spec(self) -> Any:
        return tuple(TensorSpec((), column.dtype) for column in self.format.columns)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _CsvRowsIterator(self, ctx)


class _CsvRowsIterator(DatasetIterator):
    """The files one after another, each read as row blocks (``csv_files.FileRows``) handed out as row tuples.

    A file that cannot be read raises once and is then skipped. Its state: the next file to open and the open
    file's position (``FileRows.position``).
    """

    def __init__(self, dataset: CsvDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset
        self._next_file = 0
        self._file: FileRows | None = None

    def produce_chunk(self, n: int) -> list[Any]:
        while True:
            self.raise_if_cancelled()
            if self._file is None:
                if self._next_file >= len(self._ds.paths):
                    raise StopIteration
                self._open(self._next_file)
            try:
                blocks = self._file.take(n)
            except StopIteration:
                self._file.close()
                self._file = None
                continue
            return list(chain.from_iterable(zip(*block) for block in blocks))

    def _open(self, index: int) -> None:
        self._file = FileRows(self._ds.paths[index], self._ds.format, True, self.ctx)
        self._next_file = index + 1

    def own_state(self) -> dict[str, Any]:
        return {"next_file": self._next_file, "file": None if self._file is None else self._file.position()}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._next_file = state["next_file"]
        if state["file"] is not None:
            self._open(self._next_file - 1)
            self._file.restore(state["file"])

    def join_self(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def make_csv_dataset(
    file_pattern: str | Sequence[str],
    batch_size: int,
    column_names: Sequence[str] | None = None,
    column_defaults: Sequence[Any] | None = None,
    label_name: str | None = None,
    select_columns: Sequence[int | str] | None = None,
    field_delim: str = ",",
    use_quote_delim: bool = True,
    na_value: str = "",
    header: bool = True,
    num_epochs: int | None = None,
    shuffle: bool = True,
    shuffle_buffer_size: int = 10000,
    shuffle_seed: int | None = None,
    prefetch_buffer_size: int | None = None,
    num_parallel_reads: int | None = None,
    sloppy: bool = False,
    num_rows_for_inference: int | None = 100,
    compression_type: str | None = None,
    ignore_errors: bool = False,
    encoding: str = "utf-8",
    storage_options: dict | None = None,
) -> Dataset:
    """Batches of CSV rows as ``(OrderedDict(column -> array), label_array)`` (just the dict without ``label_name``).

    Same arguments, defaults, type inference and order as
    ``tf.data.experimental.make_csv_dataset``: files listed (and shuffled),
    read ``num_parallel_reads`` at a time interleaving rows, rows shuffled in a
    buffer of ``shuffle_buffer_size``, repeated ``num_epochs`` times (None:
    forever, then every batch is full), batched, prefetched. ``sloppy`` is
    accepted; the order stays deterministic. ``ignore_errors`` skips bad records.
    Strings are object arrays of ``bytes``.

    >>> import fastinput as fi
    >>> ds = fi.make_csv_dataset("data/*.csv", batch_size=1024, label_name="label", num_epochs=1)
    >>> features, label = next(iter(ds))
    """
    op = "make_csv_dataset"
    batching = RowBatching.checked(op, batch_size, shuffle, num_epochs, shuffle_seed, shuffle_buffer_size,
                                   prefetch_buffer_size)
    field_delim = _check_delim(op, field_delim)
    use_quote_delim = check_bool(op, "use_quote_delim", use_quote_delim)
    na_value = _check_str(op, "na_value", na_value)
    header = check_bool(op, "header", header)
    check_bool(op, "sloppy", sloppy)
    ignore_errors = check_bool(op, "ignore_errors", ignore_errors)
    reads = check_parallelism(op, "num_parallel_reads", num_parallel_reads) or 1
    cycle_length = autotune_cycle_length(AUTOTUNE) if reads == AUTOTUNE else reads
    if num_rows_for_inference is not None:
        check_int(op, "num_rows_for_inference", num_rows_for_inference, minimum=0)
    compression_type = check_compression_type(op, compression_type)

    paths = sorted(match_files(file_pattern, storage_options))
    text = CsvTextOptions(field_delim, use_quote_delim, compression_type, _check_str(op, "encoding", encoding),
                          storage_options)
    names = _column_names(op, paths, column_names, header, text)
    columns = _columns(op, paths, text, names, column_defaults, select_columns, header, na_value,
                       num_rows_for_inference)
    output_names = [c.name for c in columns]
    if label_name is not None and label_name not in output_names:
        raise InvalidArgumentError(f"{op}: label_name {label_name!r} is not one of the columns {output_names}")

    fmt = CsvFormat(columns=columns, num_fields=len(names), header=header, field_delim=field_delim,
                    use_quote_delim=use_quote_delim, na_value=na_value, compression_type=compression_type,
                    ignore_errors=ignore_errors, storage_options=storage_options)
    files = Dataset.from_tensor_slices([p.encode("utf-8") for p in paths])
    if batching.shuffle:
        files = files.shuffle(len(paths), seed=batching.shuffle_seed)
    # Rows travel as blocks of columns through the engine's own ops; without a shuffle, strings become numpy
    # on the reader threads, ahead of the batches; with one, they stay in arrow (cheaper to reorder) until then.
    rows = batching.rows(ColumnPacker(output_names, label_name))
    open_file = functools.partial(CsvFileDataset, fmt=fmt, strings_as_numpy=not batching.shuffle)
    blocks = InterleaveDataset(files, open_file, cycle_length, 1, cycle_length, True, label="CsvFile", rows=rows)
    return batching.apply(blocks, rows)


# -- argument checks ------------------------------------------------------------------------------------------


def _file_names(op: str, filenames: Any) -> list[str]:
    """``filenames`` (a name, a list of names, a numpy array or tf.Tensor of them) as a non-empty list of paths."""
    paths = file_name_list(op, filenames)
    if not paths:
        raise InvalidArgumentError(
            f"{op}: filenames must be a file name or a non-empty list of them, got {filenames!r}")
    return paths


def _column_indices(op: str, count: int, select_cols: Sequence[int] | None,
                    exclude_cols: Sequence[int] | None) -> tuple[list[int], int | None]:
    """The field index of each record default, and the fields per record (None: count them in each file)."""
    if select_cols is not None and exclude_cols is not None:
        raise InvalidArgumentError(f"{op}: give select_cols or exclude_cols, not both")
    if select_cols is None and exclude_cols is None:
        return list(range(count)), count
    name, given = ("select_cols", select_cols) if select_cols is not None else ("exclude_cols", exclude_cols)
    indices = [check_int(op, f"{name}[{i}]", v, minimum=0) for i, v in enumerate(given)]
    if any(b <= a for a, b in zip(indices, indices[1:])):
        raise InvalidArgumentError(f"{op}: {name} must be sorted with no repeats, got {list(given)}")
    if select_cols is not None:
        if len(indices) != count:
            raise InvalidArgumentError(f"{op}: select_cols has {len(indices)} columns but record_defaults has {count}")
        return indices, None
    num_fields = count + len(indices)
    if indices and indices[-1] >= num_fields:
        raise InvalidArgumentError(
            f"{op}: exclude_cols index {indices[-1]} is out of range for {num_fields} columns "
            f"(record_defaults and exclude_cols together name every column)")
    excluded = set(indices)
    return [i for i in range(num_fields) if i not in excluded], num_fields


def _column_names(op: str, paths: list[str], column_names: Sequence[str] | None, header: bool,
                  text: CsvTextOptions) -> list[str]:
    if column_names is None:
        if not header:
            raise InvalidArgumentError(f"{op}: give column_names, or header=True to read them from the files")
        names = header_names(paths, text)
    else:
        if isinstance(column_names, str) or not all(isinstance(n, str) for n in column_names):
            raise InvalidArgumentError(f"{op}: column_names must be a list of strings, got {column_names!r}")
        names = list(column_names)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidArgumentError(f"{op}: duplicate column names {duplicates}")
    if not names:
        raise InvalidArgumentError(f"{op}: no columns")
    return names


def _columns(op: str, paths: list[str], text: CsvTextOptions, names: list[str], column_defaults: Sequence[Any] | None,
             select_columns: Sequence[int | str] | None, header: bool, na_value: str,
             num_rows_for_inference: int | None) -> tuple[Column, ...]:
    """The selected columns with their types and defaults: given, or inferred from the first records as tf.data does."""
    selected = list(range(len(names))) if select_columns is None else _selected_indices(op, select_columns, names)
    if column_defaults is None:
        types = infer_column_types(paths, text, len(names), selected, na_value, header, num_rows_for_inference)
        defaults = [(t, b"" if t.kind == "O" else t.type(0)) for t in types]
    else:
        defaults = [record_default(op, i, d) for i, d in enumerate(column_defaults)]
        if len(defaults) != len(selected):
            against = "select_columns" if select_columns is not None else "column_names"
            raise InvalidArgumentError(
                f"{op}: column_defaults has {len(defaults)} entries but {against} has {len(selected)}")
    return tuple(Column(i, dtype, default, names[i]) for i, (dtype, default) in zip(selected, defaults))


def _selected_indices(op: str, select_columns: Sequence[int | str], names: list[str]) -> list[int]:
    """``select_columns`` (names or indices) as sorted field indices, as tf.data sorts them."""
    if isinstance(select_columns, (str, bytes)) or not select_columns:
        raise InvalidArgumentError(
            f"{op}: select_columns must be a non-empty list of names or indices, got {select_columns!r}")
    indices = []
    for value in select_columns:
        if isinstance(value, str):
            if value not in names:
                raise InvalidArgumentError(f"{op}: select_columns names {value!r}, which is not one of {names}")
            indices.append(names.index(value))
        else:
            indices.append(check_int(op, "select_columns entry", value, minimum=0))
            if indices[-1] >= len(names):
                raise InvalidArgumentError(
                    f"{op}: select_columns index {value} is out of range for {len(names)} columns")
    if len(set(indices)) != len(indices):
        raise InvalidArgumentError(f"{op}: select_columns names a column twice: {list(select_columns)}")
    return sorted(indices)


def _check_delim(op: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) != 1 or value in '"\r\n':
        raise InvalidArgumentError(
            f"{op}: field_delim must be one character other than a quote or newline, got {value!r}")
    return value


def _check_str(op: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{op}: {name} must be a string, got {value!r} ({type(value).__name__})")
    return value
