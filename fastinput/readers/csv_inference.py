"""Column names, types and defaults for CSV reading, found the way tf.data finds them.

``make_csv_dataset`` reads column names from the header line of every file
(they must agree) and, without ``column_defaults``, infers each column's type
from the first ``num_rows_for_inference`` records: the narrowest of int32,
int64, float32, float64 and string that every non-empty value fits, tried with
numpy's parsers exactly as tf.data does, so both infer the same types. These
reads use Python's ``csv`` module on a few rows only; the data itself is
decoded by pyarrow (``csv_decode``).

``record_default`` reads one entry of ``record_defaults`` / ``column_defaults``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from fastinput.errors import InvalidArgumentError
from fastinput.readers.csv_decode import CSV_DTYPES
from fastinput.readers.files import open_read

STRING = np.dtype(object)
_INFERRED_TYPES = (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.float32), np.dtype(np.float64), STRING)


# -- record defaults --------------------------------------------------------------------------------------


def record_default(op: str, position: int, value: Any) -> tuple[np.dtype, Any]:
    """One record default as ``(dtype, default)``; the default is None for a required column.

    As in tf.data: a dtype (``tf.int32``, ``np.float32``, ``str``) or an empty
    list/array means required; a scalar or a one-element list/array is the
    default, its type the column's (Python ints are int32, floats float32).
    """
    where = f"{op}: record default {position}"
    if hasattr(value, "numpy") and callable(value.numpy):  # a tf.Tensor
        value = value.numpy()
    dtype = _as_dtype(value)
    if dtype is not None:
        return _checked(where, dtype), None
    if isinstance(value, (list, tuple, np.ndarray)):  # an array may be 0-d: one value, as a scalar
        # tf: [] is float32
        array = value if isinstance(value, np.ndarray) else np.asarray(value) if value else np.zeros(0, np.float32)
        if array.size > 1:
            raise InvalidArgumentError(
                f"{where} must be a dtype, a scalar or a list of at most one value, got {value!r}")
        if array.size == 0:
            return _checked(where, _string_or(array.dtype)), None
        value = array.reshape(-1)[0] if isinstance(value, np.ndarray) else value[0]
    return _scalar_default(where, value)


def _as_dtype(value: Any) -> np.dtype | None:
    """``value`` as a numpy dtype if it names a type (a tf.DType, numpy dtype or Python type), else None."""
    if hasattr(value, "as_numpy_dtype"):  # tf.DType
        return _string_or(np.dtype(value.as_numpy_dtype))
    if isinstance(value, np.dtype) or (isinstance(value, type)
                                       and issubclass(value, (np.generic, int, float, str, bytes))):
        return _string_or(np.dtype(value))
    return None


def _string_or(dtype: np.dtype) -> np.dtype:
    return STRING if dtype.kind in "OSU" else dtype


def _checked(where: str, dtype: np.dtype) -> np.dtype:
    if dtype not in CSV_DTYPES:
        raise InvalidArgumentError(
            f"{where} has type {dtype}; CSV columns are int32, int64, float32, float64 or string")
    return dtype


def _scalar_default(where: str, value: Any) -> tuple[np.dtype, Any]:
    if isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(f"{where} is a bool; CSV columns are int32, int64, float32, float64 or string")
    if isinstance(value, (str, np.str_)):
        return STRING, value.encode("utf-8")
    if isinstance(value, (bytes, np.bytes_)):
        return STRING, bytes(value)
    if isinstance(value, np.generic):
        dtype = _checked(where, _string_or(value.dtype))
        return dtype, value.item() if dtype == STRING else dtype.type(value)
    if isinstance(value, int):
        dtype = np.dtype(np.int32) if -(2**31) <= value < 2**31 else np.dtype(np.int64)
        return dtype, dtype.type(value)
    if isinstance(value, float):
        return np.dtype(np.float32), np.float32(value)
    raise InvalidArgumentError(f"{where} must be a dtype, a scalar or a list of at most one value, got {value!r}")


# -- header and type inference ------------------------------------------------------------------------------


class _RawStream(io.RawIOBase):
    """A fastinput ReadStream (decompressing, fsspec-backed) as a Python binary stream."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


class CsvTextOptions:
    """How the few rows used for names and types are opened and split (the dataset's own options)."""

    def __init__(self, field_delim: str, use_quote_delim: bool, compression_type: str | None, encoding: str,
                 storage_options: dict | None) -> None:
        self.field_delim = field_delim
        self.quoting = csv.QUOTE_MINIMAL if use_quote_delim else csv.QUOTE_NONE
        self.compression_type = compression_type
        self.encoding = encoding
        self.storage_options = storage_options

    def rows(self, path: str) -> Iterator[list[str]]:
        """The records of ``path`` as lists of strings, read with Python's csv module."""
        stream = open_read(path, compression_type=self.compression_type, storage_options=self.storage_options)
        with io.TextIOWrapper(io.BufferedReader(_RawStream(stream)), encoding=self.encoding, newline="") as text:
            reader = csv.reader(text, delimiter=self.field_delim, quoting=self.quoting)
            try:
                yield from reader
            except (csv.Error, UnicodeDecodeError) as exc:
                raise InvalidArgumentError(f"{path}, line {reader.line_num}: cannot read the CSV text: {exc}") from exc


def header_names(paths: Sequence[str], text: CsvTextOptions) -> list[str]:
    """The column names in the first line of the files, which must all have the same."""
    names: list[str] | None = None
    for path in paths:
        with contextlib.closing(text.rows(path)) as rows:
            first = next(rows, None)
        if first is None:
            raise InvalidArgumentError(f"{path}: cannot read the header line: the file is empty")
        if names is None:
            names = first
        elif first != names:
            raise InvalidArgumentError(
                f"{path}: the header line {first} differs from {names} in {paths[0]}; "
                "all files must have the same columns"
            )
    return names or []


def infer_column_types(paths: Sequence[str], text: CsvTextOptions, num_fields: int, selected: Sequence[int],
                       na_value: str, header: bool, num_rows: int | None) -> list[np.dtype]:
    """tf.data's types for the ``selected`` columns from the first ``num_rows`` records (None: all of them)."""
    types: list[np.dtype | None] = [None] * len(selected)
    with np.errstate(over="ignore"):  # "1e50" overflows float32: not a float32, as tf.data decides
        for row in itertools.islice(_records(paths, text, num_fields, header), num_rows):
            for j, column in enumerate(selected):
                types[j] = _infer_type(row[column], na_value, types[j])
    return [t or STRING for t in types]


def _records(paths: Sequence[str], text: CsvTextOptions, num_fields: int, header: bool) -> Iterator[list[str]]:
    """The records of the files one after another (headers skipped), each checked to have ``num_fields`` fields."""
    for path in paths:
        with contextlib.closing(text.rows(path)) as rows:
            if header:
                next(rows, None)
            for record, row in enumerate(rows, start=1):
                if len(row) != num_fields:
                    raise InvalidArgumentError(
                        f"{path}, record {record}: {len(row)} fields, expected {num_fields} "
                        "(while inferring column types)"
                    )
                yield row


def _infer_type(value: str, na_value: str, previous: np.dtype | None) -> np.dtype | None:
    """The narrowest type that ``value`` and every earlier value fit (tf.data's ``_infer_type``)."""
    if value in ("", na_value):
        return previous
    for i, (dtype, fits) in enumerate(zip(_INFERRED_TYPES, _FITS)):
        if fits(value) and (previous is None or previous in _INFERRED_TYPES[:i + 1]):
            return dtype
    return STRING  # every value is a valid string


def _fits_int32(value: str) -> bool:
    try:
        return np.int32(value) == np.int64(value)
    except (ValueError, OverflowError):
        return False


def _fits_int64(value: str) -> bool:
    try:
        np.int64(value)
        return True
    except (ValueError, OverflowError):
        return False


def _fits_float(dtype: type) -> Any:
    def fits(value: str) -> bool:
        try:
            return bool(dtype(value) < np.inf)
        except ValueError:
            return False

    return fits


_FITS = (_fits_int32, _fits_int64, _fits_float(np.float32), _fits_float(np.float64))
"""Whether a value parses as each numeric type of ``_INFERRED_TYPES``, in order."""
