"""``fi.SqlDataset``: the rows of a SQLite query, as tf.data's ``experimental.SqlDataset``.

Each row is one element, its columns scalars of ``output_types`` (a dtype: one scalar per row; a tuple: one per
column, in order). As in tf.data, only ``"sqlite"`` is a driver, only the query's first statement runs, and each
column is converted as SQLite's C API converts it when TensorFlow reads it (``sqlite3_column_text`` /
``_int64`` / ``_double``): here the query is wrapped in ``CAST``\\ s to TEXT, INTEGER or REAL, which SQLite
converts by the same rules (NULL is 0, 0.0 or ``b""``; text and blobs give their leading number), and the
narrower integer types keep the low bits as TensorFlow's ``static_cast`` does. A ``bool`` column is its integer
value not being 0. Tested value by value against TensorFlow's reader on the same database.

Where it differs (listed in the README): the database is opened read-only, so a missing file is a
``NotFoundError`` naming it (SQLite, as TensorFlow opens it, would create an empty one), and a query that does
not compile, or whose column count is not ``output_types``', raises its error once, after which the dataset
ends (tf.data raises it again at every call); so does an error while the rows are read (a ``DataLossError``).
A saved state is the number of rows read; a restore runs the query again and skips them, so the table must not
change in between.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine import cardinality
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import DataLossError, InvalidArgumentError, NotFoundError
from fastinput.spec import STRING, TensorSpec, _as_dtype

DRIVERS = ("sqlite",)

_CASTS = {"TEXT": (STRING,), "INTEGER": tuple(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8,
                                                                      np.uint16, np.bool_)),
          "REAL": (np.dtype(np.float64),)}
"""The SQLite type each output type is read as (TensorFlow's SqlDataset takes these types only)."""

FETCH_ROWS = 1024
"""Rows fetched from SQLite per call (one Python call per chunk of elements, not per row)."""


class SqlDataset(Dataset):
    """The rows of ``query`` over the SQLite database at ``data_source_name`` (see the module's docstring)."""

    traits = StageTraits("SqlDataset", StageKind.READ)

    def __init__(self, driver_name: str, data_source_name: Any, query: str, output_types: Any) -> None:
        super().__init__()
        if driver_name not in DRIVERS:
            raise InvalidArgumentError(f"SqlDataset: the database type, {driver_name!r}, is not supported; the set "
                                       f"of supported databases is {set(DRIVERS)}")
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgumentError(f"SqlDataset: query must be a non-empty string, got {query!r}")
        self.data_source_name = os.fspath(data_source_name)
        self.query = query
        self.output_types = tuple(output_types) if isinstance(output_types, list) else output_types
        self._dtypes = [_column_dtype(t) for t in structure.flatten(self.output_types)]
        if not self._dtypes:
            raise InvalidArgumentError("SqlDataset: output_types names no column")

    def __str__(self) -> str:
        return f"SqlDataset({self.data_source_name!r}, {self.query!r})"

    def cardinality(self) -> int:
        return cardinality.UNKNOWN

    def compute_element_spec(self) -> Any:
        return structure.pack_as(self.output_types, [TensorSpec((), dtype) for dtype in self._dtypes])

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _SqlIterator(self, ctx)

    def wrapped_query(self, columns: int) -> str:
        """The query's first statement, each of its ``columns`` cast to the type its output type is read as."""
        casts = ", ".join(f"CAST(c{i} AS {_sqlite_type(dtype)})" for i, dtype in enumerate(self._dtypes))
        names = ", ".join(f"c{i}" for i in range(columns))
        # a newline before ")": the statement may end in a "--" comment
        return f"WITH q({names}) AS ({first_statement(self.query)}\n) SELECT {casts} FROM q"


class _SqlIterator(DatasetIterator):
    def __init__(self, dataset: SqlDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset
        self._connection: Any = None
        self._cursor: Any = None
        self._rows = 0  # rows handed on
        self._failed = False

    def produce_chunk(self, n: int) -> list[Any]:
        if self._failed:
            raise StopIteration
        if self._cursor is None:
            try:
                self._start()
            except Exception:
                self._failed = True
                self.join_self()
                raise
        try:
            rows = self._cursor.fetchmany(min(n, FETCH_ROWS))
        except Exception as exc:  # sqlite3.Error: the database changed or broke under the query
            self._failed = True
            self.join_self()
            raise DataLossError(f"{self.name}: reading the rows after the first {self._rows}: {exc}") from exc
        if not rows:
            raise StopIteration
        self._rows += len(rows)
        return self._elements(rows)

    def _start(self) -> None:
        """Open the database, check the query's columns, and skip the rows a restored state has read."""
        import sqlite3

        path = self._ds.data_source_name
        if not os.path.exists(path):
            raise NotFoundError(f"{self.name}: no database file {path!r}")
        try:
            self._connection = sqlite3.connect(f"file:{_uri_path(path)}?mode=ro", uri=True, check_same_thread=False)
            self._connection.text_factory = bytes
            columns = _column_count(self._connection, first_statement(self._ds.query))
        except sqlite3.Error as exc:
            raise InvalidArgumentError(f"{self.name}: {exc}") from exc
        if columns != len(self._ds._dtypes):
            raise InvalidArgumentError(f"{self.name}: the number of columns in the query ({columns}) must match "
                                       f"the number of elements in output_types ({len(self._ds._dtypes)})")
        self._cursor = self._connection.execute(self._ds.wrapped_query(columns))
        skipped = 0
        while skipped < self._rows:
            rows = self._cursor.fetchmany(min(self._rows - skipped, FETCH_ROWS))
            if not rows:
                break
            skipped += len(rows)

    def _elements(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        """The rows as elements: per column one array of the read values (NULL as 0, 0.0 or b""), cast to its
        output type with C's wrap-around, then split into scalars."""
        columns = []
        for values, dtype in zip(zip(*rows), self._ds._dtypes):
            if dtype == STRING:
                columns.append([b"" if v is None else v for v in values])
            elif dtype == np.float64:
                columns.append(list(np.array([0.0 if v is None else v for v in values], dtype=np.float64)))
            else:
                read = np.array([0 if v is None else v for v in values], dtype=np.int64)
                if dtype == np.bool_:
                    columns.append(list(read != 0))
                elif dtype == np.int64:
                    columns.append(list(read))
                else:  # TensorFlow reads sqlite3_column_int (the low 32 bits) and casts it
                    columns.append(list(read.astype(np.int32).astype(dtype)))
        spec = self._ds.output_types
        return [structure.pack_as(spec, list(row)) for row in zip(*columns)]

    def own_state(self) -> dict[str, Any]:
        return {"rows": self._rows, "failed": self._failed}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self.join_self()
        self._rows, self._failed = int(state["rows"]), bool(state["failed"])

    def join_self(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = self._cursor = None


def first_statement(query: str) -> str:
    """The query's first complete SQL statement (TensorFlow runs that one only), without its ";"."""
    import sqlite3

    for i, char in enumerate(query):
        if char == ";" and sqlite3.complete_statement(query[:i + 1]):
            return query[:i]
    return query


def _column_count(connection: Any, statement: str) -> int:
    """How many columns ``statement`` gives, compiled but not run (0 for one that gives no rows, an INSERT)."""
    import sqlite3

    try:
        cursor = connection.execute(f"SELECT * FROM ({statement}\n) LIMIT 0")
    except sqlite3.Error:
        connection.execute(f"EXPLAIN {statement}")  # compiles it: raises the statement's own error, if it has one
        return 0
    return len(cursor.description)


def _column_dtype(output_type: Any) -> np.dtype:
    try:
        dtype = _as_dtype(output_type)
    except TypeError:
        dtype = None
    if dtype is None or not any(dtype in dtypes for dtypes in _CASTS.values()):  # (np.dtype(None) is float64)
        raise InvalidArgumentError(f"SqlDataset: each of output_types must be one of string, int8, int16, int32, "
                                   f"int64, uint8, uint16, bool, float64 (as in tf.data), got {output_type!r}")
    return dtype


def _sqlite_type(dtype: np.dtype) -> str:
    return next(name for name, dtypes in _CASTS.items() if dtype in dtypes)


def _uri_path(path: str) -> str:
    """``path`` for an SQLite ``file:`` URI (``?`` and ``#`` would end the path; ``%`` starts an escape)."""
    from urllib.parse import quote

    return quote(os.path.abspath(path))
