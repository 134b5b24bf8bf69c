"""Nested element structures and the sparse value type.

An element is a leaf or a nest of dicts, tuples (namedtuples included) and
lists whose leaves are numpy arrays, numpy scalars, bytes, ``SparseArray`` or
``RaggedArray``.
These helpers flatten a nest into its leaves and build it back, the way
``tf.nest`` does, so batching and the framework adapters can work leaf by leaf.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fastinput._engine.leaves import ArrayLeaf


@dataclasses.dataclass(frozen=True, eq=False)
class SparseArray:
    """A sparse tensor in COO form, what ``VarLenFeature`` parses into.

    ``indices`` is an int64 array of shape ``[nnz, rank]``, ``values`` the
    ``nnz`` values in row-major order, ``dense_shape`` the int64 shape of the
    dense tensor it stands for. Mirrors ``tf.SparseTensor``.

    >>> s = SparseArray(np.array([[0, 1]]), np.array([7]), np.array([2, 3]))
    >>> s.to_dense()
    array([[0, 7, 0],
           [0, 0, 0]])
    """

    indices: np.ndarray
    values: np.ndarray
    dense_shape: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "indices", np.asarray(self.indices, dtype=np.int64).reshape(-1, len(self.dense_shape)))
        object.__setattr__(self, "dense_shape", np.asarray(self.dense_shape, dtype=np.int64))
        if not isinstance(self.values, ArrayLeaf):  # those stay as they are (see fastinput._engine.leaves)
            object.__setattr__(self, "values", np.asarray(self.values))

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.dense_shape)

    def to_dense(self, default_value: Any = None) -> np.ndarray:
        """The dense array, with ``default_value`` (0 or b"") where nothing is stored."""
        if default_value is None:
            default_value = b"" if self.values.dtype == object else 0
        dense = np.full(self.shape, default_value, dtype=self.values.dtype)
        if len(self.values):
            dense[tuple(self.indices.T)] = self.values
        return dense

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparseArray):
            return NotImplemented
        return (
            np.array_equal(self.dense_shape, other.dense_shape)
            and np.array_equal(self.indices, other.indices)
            and np.array_equal(self.values, other.values)
        )

    def __repr__(self) -> str:
        return (f"SparseArray(indices={self.indices.tolist()}, values={self.values.tolist()}, "
                f"dense_shape={self.dense_shape.tolist()})")


@dataclasses.dataclass(frozen=True, eq=False)
class RaggedArray:
    """Rows of different lengths, what ``ragged_batch`` makes of variable-length components: a batch in which
    row ``i`` is ``values[row_splits[i]:row_splits[i + 1]]``. Mirrors a ``tf.RaggedTensor`` with one ragged
    dimension (``ragged_rank=1``), which ``as_tf_dataset`` hands it to TensorFlow as.

    ``values`` holds the rows' values one after another (shape ``[total, *inner]``: the dimensions after the
    ragged one are the same in every row); ``row_splits`` is an int64 (or int32) vector of ``nrows + 1``
    offsets, from 0 to ``len(values)``, never decreasing.

    >>> r = RaggedArray(np.array([1, 2, 3, 4]), np.array([0, 3, 3, 4]))
    >>> r.shape, r.row_lengths().tolist(), r.to_list()
    ((3, None), [3, 0, 1], [[1, 2, 3], [], [4]])
    >>> r[0]
    array([1, 2, 3])
    """

    values: np.ndarray
    row_splits: np.ndarray

    def __post_init__(self) -> None:
        from fastinput.errors import InvalidArgumentError

        values, splits = np.asarray(self.values), np.asarray(self.row_splits)
        if splits.dtype not in (np.int64, np.int32):
            splits = splits.astype(np.int64)
        if (values.ndim == 0 or splits.ndim != 1 or not len(splits) or splits[0] != 0
                or splits[-1] != len(values) or np.any(np.diff(splits) < 0)):
            raise InvalidArgumentError(f"RaggedArray: row_splits must rise from 0 to the number of values "
                                       f"({values.shape[0] if values.ndim else 'a scalar'}), got {splits.tolist()}")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "row_splits", splits)

    @classmethod
    def from_row_lengths(cls, values: Any, row_lengths: Any, row_splits_dtype: Any = np.int64) -> RaggedArray:
        """The RaggedArray whose rows hold ``row_lengths`` values each, in order."""
        lengths = np.asarray(row_lengths, dtype=np.int64)
        splits = np.zeros(len(lengths) + 1, dtype=row_splits_dtype)
        np.cumsum(lengths, out=splits[1:])
        return cls(values, splits)

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def nrows(self) -> int:
        return len(self.row_splits) - 1

    @property
    def shape(self) -> tuple[int | None, ...]:
        """``(nrows, None, *inner)``: the ragged dimension has no one size (as ``tf.RaggedTensor.shape``)."""
        return (self.nrows, None, *self.values.shape[1:])

    @property
    def ndim(self) -> int:
        return self.values.ndim + 1

    def row_lengths(self) -> np.ndarray:
        return np.diff(self.row_splits)

    def __len__(self) -> int:
        return self.nrows

    def __getitem__(self, row: int) -> np.ndarray:
        """Row ``row`` (a view of ``values``)."""
        if not -self.nrows <= row < self.nrows:
            raise IndexError(f"row {row} of a RaggedArray of {self.nrows} rows")
        row %= self.nrows
        return self.values[self.row_splits[row]:self.row_splits[row + 1]]

    def to_list(self) -> list[Any]:
        """The rows as nested Python lists (as ``tf.RaggedTensor.to_list``)."""
        return [self[i].tolist() for i in range(self.nrows)]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RaggedArray):
            return NotImplemented
        return (np.array_equal(self.row_splits, other.row_splits) and self.values.shape == other.values.shape
                and np.array_equal(self.values, other.values))

    def __repr__(self) -> str:
        return f"RaggedArray({self.to_list()})"


def is_nested(x: Any) -> bool:
    """True for dicts, tuples (namedtuples included) and lists: the containers of a nest."""
    return isinstance(x, (dict, tuple, list))


def flatten(x: Any) -> list[Any]:
    """The leaves of ``x`` in a fixed order (dict keys sorted, as ``tf.nest`` does)."""
    if not is_nested(x):
        return [x]
    out: list[Any] = []
    _flatten_into(x, out)
    return out


def _flatten_into(x: Any, out: list[Any]) -> None:
    if isinstance(x, dict):
        for key in sorted(x):
            _flatten_into(x[key], out)
    elif isinstance(x, (tuple, list)):
        for item in x:
            _flatten_into(item, out)
    else:
        out.append(x)


def pack_as(structure: Any, leaves: Sequence[Any]) -> Any:
    """Build a nest shaped like ``structure`` from ``leaves`` (the inverse of ``flatten``)."""
    if not is_nested(structure):
        return leaves[0]
    packed, used = _pack(structure, leaves, 0)
    if used != len(leaves):
        raise ValueError(f"structure has {used} leaves, got {len(leaves)}")
    return packed


def _pack(structure: Any, leaves: Sequence[Any], start: int) -> tuple[Any, int]:
    if isinstance(structure, dict):
        values = {}
        for key in sorted(structure):
            values[key], start = _pack(structure[key], leaves, start)
        return {key: values[key] for key in structure}, start
    if isinstance(structure, (tuple, list)):
        items = []
        for item in structure:
            value, start = _pack(item, leaves, start)
            items.append(value)
        if isinstance(structure, list):
            return items, start
        if hasattr(structure, "_fields"):  # namedtuple
            return type(structure)(*items), start
        return tuple(items), start
    return leaves[start], start + 1


def map_structure(fn: Callable[..., Any], *structures: Any) -> Any:
    """Apply ``fn`` leaf-wise over one or more nests of the same shape."""
    flats = [flatten(s) for s in structures]
    if any(len(f) != len(flats[0]) for f in flats):
        raise ValueError("structures have different numbers of leaves")
    return pack_as(structures[0], [fn(*leaves) for leaves in zip(*flats)])


def flatten_up_to(shallow: Any, value: Any) -> list[Any]:
    """The parts of ``value`` at the leaves of ``shallow`` (deeper nesting in ``value`` stays whole).

    Raises ValueError when ``value`` lacks a container that ``shallow`` has.
    """
    if not is_nested(shallow):
        return [value]
    if isinstance(shallow, dict):
        if not isinstance(value, dict) or sorted(value) != sorted(shallow):
            raise ValueError(f"expected a dict with keys {sorted(shallow)}, got {value!r}")
        return [leaf for key in sorted(shallow) for leaf in flatten_up_to(shallow[key], value[key])]
    if not isinstance(value, (tuple, list)) or len(value) != len(shallow):
        raise ValueError(f"expected a sequence of {len(shallow)} items, got {value!r}")
    return [leaf for s, v in zip(shallow, value) for leaf in flatten_up_to(s, v)]


def same_structure(a: Any, b: Any) -> bool:
    """True when two nests have the same containers and keys (leaves may differ)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and sorted(a) == sorted(b) and all(same_structure(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return (
            isinstance(b, (tuple, list))
            and isinstance(a, list) == isinstance(b, list)
            and len(a) == len(b)
            and all(same_structure(x, y) for x, y in zip(a, b))
        )
    return not is_nested(b)
