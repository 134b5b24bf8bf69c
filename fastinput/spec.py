"""Static element specs: ``fi.TensorSpec``, ``fi.SparseSpec`` and ``fi.RaggedSpec``, what ``ds.element_spec`` is
made of.

A spec says what every element of a dataset looks like without running it:
the nest (dicts, tuples, namedtuples) and, per leaf, the dtype and the shape,
``None`` where a dimension is not known statically (the batch dimension of a
``batch`` that keeps its remainder, a sequence's length), ``shape=None``
where not even the rank is. Strings are ``np.dtype(object)`` (TensorFlow's
``tf.string``). Each op derives its spec from its inputs' when asked, as
tf.data does (``Dataset.compute_element_spec``); functions are traced on
placeholder values (``fastinput._engine.function_spec``), during which
``tracing()`` is true so that fastinput's own kernels (``parse_example``,
``fi.image``) return placeholders of the right spec instead of parsing.

>>> import fastinput as fi
>>> fi.Dataset.range(10).batch(4).element_spec
TensorSpec(shape=(None,), dtype=int64)
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine.leaves import ArrayLeaf
from fastinput.errors import InvalidArgumentError

Shape = tuple[int | None, ...] | None
STRING = np.dtype(object)


class UnknownSpecError(InvalidArgumentError):
    """The element spec cannot be learnt statically (a function failed on placeholder values, a generator
    declared no signature). Checks made when a pipeline is built skip a stage whose spec is unknown."""


def _as_dtype(dtype: Any) -> np.dtype:
    """A numpy dtype from a numpy dtype, a Python type or a TensorFlow dtype; strings (``bytes``, ``str``,
    ``tf.string``) are ``np.dtype(object)``."""
    dtype = getattr(dtype, "as_numpy_dtype", dtype)  # tf.DType
    dtype = np.dtype(dtype)
    return STRING if dtype.kind in "SUO" else dtype


def _as_shape(shape: Any) -> Shape:
    """A shape as a tuple of ints and Nones (``-1`` is None), or None for an unknown rank; accepts
    ``tf.TensorShape``."""
    if shape is None:
        return None
    if hasattr(shape, "rank") and shape.rank is None:  # tf.TensorShape(None)
        return None
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    out = []
    for d in dims:
        d = getattr(d, "value", d)  # tf.compat.v1.Dimension
        if d is None or d == -1:
            out.append(None)
        elif isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0:
            out.append(int(d))
        else:
            raise InvalidArgumentError(f"a shape's dimensions must be integers >= 0 or None, got {shape!r}")
    return tuple(out)


def _merge_shapes(a: Shape, b: Shape) -> Shape:
    """The most specific shape both fit: dims that differ become None, ranks that differ an unknown rank."""
    if a is None or b is None or len(a) != len(b):
        return None
    return tuple(x if x == y else None for x, y in zip(a, b))


def _dims_fit(a: Shape, b: Shape) -> bool:
    """Whether two shapes can describe the same value: an unknown rank or dimension fits anything."""
    if a is None or b is None:
        return True
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


@dataclasses.dataclass(frozen=True)
class _LeafSpec:
    """What ``TensorSpec`` and ``SparseSpec`` share: a shape (None dims unknown; None: unknown rank), a dtype."""

    shape: Shape
    dtype: np.dtype

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", _as_shape(self.shape))
        object.__setattr__(self, "dtype", _as_dtype(self.dtype))

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    def is_compatible_with(self, value: Any) -> bool:
        """Whether a leaf value (or another spec) fits this spec: same kind and dtype, shape within it."""
        other = value if isinstance(value, _LeafSpec) else from_value(value)
        return type(other) is type(self) and other.dtype == self.dtype and _dims_fit(self.shape, other.shape)

    def most_specific_common(self, other: _LeafSpec) -> _LeafSpec | None:
        """The most specific spec that both fit (``concatenate``, two traces of a function); None if none does
        (different kinds or dtypes)."""
        if type(other) is not type(self) or other.dtype != self.dtype:
            return None
        return type(self)(_merge_shapes(self.shape, other.shape), self.dtype)

    def batched(self, size: int | None) -> _LeafSpec:
        """This spec with a leading batch dimension of ``size`` (None: not known)."""
        return type(self)(None if self.shape is None else (size, *self.shape), self.dtype)

    def __repr__(self) -> str:
        dtype = "string" if self.dtype == STRING else str(self.dtype)
        return f"{type(self).__name__}(shape={self.shape}, dtype={dtype})"


@dataclasses.dataclass(frozen=True, repr=False)
class TensorSpec(_LeafSpec):
    """A dense leaf: numpy arrays and scalars, ``bytes`` (a scalar string).

    >>> TensorSpec((None, 3), "float32")
    TensorSpec(shape=(None, 3), dtype=float32)
    """


@dataclasses.dataclass(frozen=True, repr=False)
class SparseSpec(_LeafSpec):
    """A ``fi.SparseArray`` leaf; ``shape`` is the dense shape it stands for (TensorFlow's ``SparseTensorSpec``)."""


@dataclasses.dataclass(frozen=True, repr=False)
class RaggedSpec(_LeafSpec):
    """A ``fi.RaggedArray`` leaf (TensorFlow's ``RaggedTensorSpec`` with ``ragged_rank=1``): ``shape`` is
    ``(rows, None, *inner)``, the second dimension the ragged one; ``row_splits_dtype`` int64 or int32.

    >>> RaggedSpec((None, None), "int64")
    RaggedSpec(shape=(None, None), dtype=int64, row_splits_dtype=int64)
    """

    row_splits_dtype: np.dtype = np.dtype(np.int64)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "row_splits_dtype", np.dtype(self.row_splits_dtype))
        if self.shape is None or len(self.shape) < 2 or self.shape[1] is not None:
            raise InvalidArgumentError(f"RaggedSpec: the shape must be (rows, None, ...), got {self.shape}")
        if self.row_splits_dtype not in (np.int64, np.int32):
            raise InvalidArgumentError(f"RaggedSpec: row_splits_dtype must be int64 or int32, got "
                                       f"{self.row_splits_dtype}")

    def most_specific_common(self, other: _LeafSpec) -> _LeafSpec | None:
        if not isinstance(other, RaggedSpec) or other.dtype != self.dtype \
                or other.row_splits_dtype != self.row_splits_dtype:
            return None
        return RaggedSpec(_merge_shapes(self.shape, other.shape), self.dtype, self.row_splits_dtype)

    def batched(self, size: int | None) -> _LeafSpec:
        raise InvalidArgumentError(f"a RaggedArray component ({self}) cannot be batched again: fastinput's "
                                   "RaggedArray has one ragged dimension")

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, row_splits_dtype={self.row_splits_dtype})"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """An element that is itself a dataset (each leaf of a ``window``): ``element_spec`` is its elements' spec,
    as in tf.data's ``tf.data.DatasetSpec``.

    >>> import fastinput as fi
    >>> fi.Dataset.range(5).window(2).element_spec
    DatasetSpec(element_spec=TensorSpec(shape=(), dtype=int64))
    """

    element_spec: Any

    shape = ()  # a dataset element is a scalar, as in tf.data

    def is_compatible_with(self, value: Any) -> bool:
        """Whether a dataset (or another ``DatasetSpec``) has elements of this spec."""
        other = value if isinstance(value, DatasetSpec) else from_value(value)
        return isinstance(other, DatasetSpec) and self.most_specific_common(other) == self

    def most_specific_common(self, other: Any) -> DatasetSpec | None:
        if not isinstance(other, DatasetSpec):
            return None
        try:
            return DatasetSpec(most_specific_common(self.element_spec, other.element_spec, "DatasetSpec"))
        except InvalidArgumentError:
            return None

    def placeholder(self, element: Any) -> Any:
        """A dataset of the one element ``element`` (of ``element_spec``), for tracing a function of datasets."""
        from fastinput.ops.window import WindowValuesDataset

        return WindowValuesDataset([element], self.element_spec)


def from_value(leaf: Any) -> _LeafSpec | DatasetSpec:
    """The spec of one leaf value (numpy array or scalar, bytes, SparseArray, an ``ArrayLeaf``)."""
    if isinstance(leaf, structure.SparseArray):
        return SparseSpec(leaf.shape, leaf.dtype)
    if isinstance(leaf, structure.RaggedArray):
        return RaggedSpec(leaf.shape, leaf.dtype, leaf.row_splits.dtype)
    if isinstance(leaf, (np.ndarray, np.generic, ArrayLeaf)):
        dtype = leaf.dtype
        if dtype == STRING and isinstance(leaf, np.ndarray) and leaf.size and not isinstance(leaf.flat[0], bytes):
            raise UnknownSpecError(f"an array of {type(leaf.flat[0]).__name__} objects is not a tensor value")
        return TensorSpec(leaf.shape, dtype)
    if isinstance(leaf, bytes):
        return TensorSpec((), STRING)
    from fastinput.dataset import Dataset

    if isinstance(leaf, Dataset):
        return DatasetSpec(leaf.element_spec)
    raise UnknownSpecError(f"a {type(leaf).__name__} is not a tensor value")


def spec_of(element: Any) -> Any:
    """The spec nest of one element."""
    return structure.map_structure(from_value, element)


def as_spec(signature: Any, where: str) -> Any:
    """A declared signature (a nest of ``fi.TensorSpec`` / ``fi.SparseSpec``, or TensorFlow's ``TensorSpec`` /
    ``SparseTensorSpec``) as a nest of fastinput specs."""
    def convert(leaf: Any) -> _LeafSpec:
        if isinstance(leaf, _LeafSpec):
            return leaf
        kind = type(leaf).__name__
        if kind in ("TensorSpec", "SparseTensorSpec") and hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
            return (SparseSpec if kind == "SparseTensorSpec" else TensorSpec)(leaf.shape, leaf.dtype)
        if kind == "RaggedTensorSpec" and leaf.ragged_rank == 1:
            return RaggedSpec(leaf.shape, leaf.dtype, leaf.row_splits_dtype)
        raise InvalidArgumentError(f"{where} must be a nest of fi.TensorSpec / fi.SparseSpec (or tf.TensorSpec), "
                                   f"got {leaf!r}")

    if signature is None:
        raise InvalidArgumentError(f"{where} must be a nest of fi.TensorSpec / fi.SparseSpec, got None")
    return structure.map_structure(convert, signature)


def most_specific_common(a: Any, b: Any, where: str) -> Any:
    """The most specific spec nest that elements of both ``a`` and ``b`` fit; InvalidArgumentError when their
    structures or dtypes differ."""
    if not structure.same_structure(a, b):
        raise InvalidArgumentError(f"{where}: the elements have different structures: {a} and {b}")
    merged = [x.most_specific_common(y) for x, y in zip(structure.flatten(a), structure.flatten(b))]
    if None in merged:
        raise InvalidArgumentError(f"{where}: the elements have incompatible types: {a} and {b}")
    return structure.pack_as(a, merged)


def batched(spec: Any, size: int | None) -> Any:
    """Every leaf with a leading batch dimension of ``size`` (None: not known)."""
    return structure.map_structure(lambda leaf: leaf.batched(size), spec)


def unbatched(spec: Any, where: str) -> Any:
    """Every leaf without its leading dimension (the inverse of ``batched``)."""
    def unbatch(leaf: _LeafSpec) -> _LeafSpec:
        if leaf.shape is None:
            return leaf
        if not leaf.shape:
            raise InvalidArgumentError(f"{where}: every component needs a first dimension, got the scalar {leaf}")
        if isinstance(leaf, RaggedSpec):  # a row of a RaggedArray is a dense array
            return TensorSpec(leaf.shape[1:], leaf.dtype)
        return type(leaf)(leaf.shape[1:], leaf.dtype)

    return structure.map_structure(unbatch, spec)


def check_fits(spec: Any, element: Any) -> None:
    """InvalidArgumentError unless every leaf of ``element`` fits the spec nest (for the framework adapters)."""
    for i, (leaf_spec, leaf) in enumerate(zip(structure.flatten(spec), structure.flatten(element))):
        if not leaf_spec.is_compatible_with(leaf):
            raise InvalidArgumentError(f"component {i} is {from_value(leaf)}, which does not fit the element spec "
                                       f"{leaf_spec}")


# -- tracing ------------------------------------------------------------------------------------------------

_tracing = threading.local()


@contextlib.contextmanager
def _setting(name: str, value: Any) -> Iterator[None]:
    """``name`` set to ``value`` in this thread's tracing state, for the ``with`` block."""
    previous = getattr(_tracing, name, None)
    setattr(_tracing, name, value)
    try:
        yield
    finally:
        setattr(_tracing, name, previous)


def running() -> contextlib.AbstractContextManager[None]:
    """While a running pipeline builds datasets (an interleave's function): the checks made while building
    (``Dataset._checked``) were made once already, on the placeholders, and are not repeated per element."""
    return _setting("running", True)


def checking_while_building() -> bool:
    """False inside ``running()``."""
    return not getattr(_tracing, "running", None)


_traces_open = 0
"""How many ``tracing_with`` blocks are open in all threads: while none is (a running pipeline), ``tracing()`` is
one global read, not a thread-local lookup (each per-record kernel call asks)."""
_traces_lock = threading.Lock()


@contextlib.contextmanager
def tracing_with(size: int) -> Iterator[None]:
    """While a function is traced on placeholders whose unknown dimensions are ``size`` long."""
    global _traces_open
    with _traces_lock:
        _traces_open += 1
    try:
        with _setting("size", size):
            yield
    finally:
        with _traces_lock:
            _traces_open -= 1


def tracing() -> bool:
    """True while a function is being traced to learn its output spec: fastinput's kernels then return
    placeholders of the right spec (``trace_size()`` long where the length depends on the data)."""
    return _traces_open > 0 and getattr(_tracing, "size", None) is not None


def trace_size() -> int:
    """The length that stands for a data-dependent dimension in this trace (differs between the two traces)."""
    return _tracing.size
