"""Feature specs for parsing ``tf.train.Example`` protos: what each feature is and what it parses into.

``FixedLenFeature``, ``VarLenFeature`` and ``FixedLenSequenceFeature`` mirror
``tf.io``'s specs of the same names, as small frozen dataclasses that are
checked when they are made. dtypes are numpy's (``np.int64``, ``np.float32``,
``bytes``/``object`` for strings); TensorFlow dtypes (``tf.int64``,
``tf.float32``, ``tf.string``) and TensorFlow's own spec objects are accepted
too and converted, without importing TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from fastinput._engine.arguments import check_bool, check_shape
from fastinput.errors import InvalidArgumentError

INT64 = np.dtype(np.int64)
FLOAT32 = np.dtype(np.float32)
STRING = np.dtype(object)
"""Strings parse into object arrays of ``bytes`` (what ``tf.string`` tensors become in numpy)."""

_STRING_NAMES = {"string", "bytes", "str", "object"}


def feature_dtype(dtype: Any, where: str) -> np.dtype:
    """``dtype`` as one of the three dtypes an Example holds: int64, float32 or string (object)."""
    if hasattr(dtype, "as_numpy_dtype"):  # a tf.DType; tf.string's numpy dtype is object
        dtype = dtype.as_numpy_dtype
    if dtype in (bytes, str, object, np.bytes_, np.str_) or (isinstance(dtype, str) and dtype in _STRING_NAMES):
        return STRING
    try:
        converted = np.dtype(dtype)
    except TypeError:
        converted = None
    if converted in (INT64, FLOAT32, STRING):
        return converted
    raise InvalidArgumentError(
        f"{where}: dtype must be int64, float32 or a string type (bytes, tf.string), got {dtype!r}"
    )


def _check_shape(shape: Any, where: str) -> tuple[int, ...]:
    """A fully defined shape as a tuple of non-negative ints (``[]`` / ``()`` for a scalar)."""
    if hasattr(shape, "as_list"):  # a tf.TensorShape
        shape = shape.as_list()
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        dims = tuple(shape)
    except TypeError:
        raise InvalidArgumentError(f"{where}: shape must be a list of dimensions, got {shape!r}") from None
    for dim in dims:
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 0:
            raise InvalidArgumentError(
                f"{where}: every dimension of shape must be a non-negative integer (shapes are fully defined), "
                f"got {list(dims)!r}"
            )
    return check_shape(where, "shape", dims)  # type: ignore[return-value]  # and not too large to allocate


def _as_values(value: Any, dtype: np.dtype, where: str) -> np.ndarray:
    """A default value as a flat array of ``dtype``, refusing lossy conversions (floats into int64, numbers into
    strings)."""
    if hasattr(value, "numpy") and callable(value.numpy):  # a tf.Tensor
        value = value.numpy()
    array = np.asarray(value, dtype=object if dtype == STRING else None).reshape(-1)
    if dtype == STRING:
        if not all(isinstance(v, (bytes, str)) for v in array):
            raise InvalidArgumentError(f"{where}: a string feature's default_value must be bytes or str, got {value!r}")
        return np.array([v.encode("utf-8") if isinstance(v, str) else v for v in array], dtype=object)
    allowed = "iu" if dtype == INT64 else "iuf"
    if array.dtype.kind not in allowed and array.size:  # numpy makes [] float64: no value is lost converting it
        raise InvalidArgumentError(f"{where}: default_value {value!r} cannot be stored as {dtype.name}")
    return array.astype(dtype)


def _freeze(values: np.ndarray, shape: tuple[int, ...]) -> Any:
    """Flat values as a hashable nest of tuples of Python scalars shaped like ``shape`` (a scalar for ``()``)."""
    nested = values.reshape(shape).tolist()
    return _tuples(nested)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


@dataclasses.dataclass(frozen=True)
class FixedLenFeature:
    """A feature with exactly ``prod(shape)`` values in every Example; parses into ``[batch, *shape]``.

    Without ``default_value`` the feature is required: an Example that lacks
    it fails to parse. ``default_value`` is stored as nested tuples shaped
    like ``shape`` (a scalar for ``shape=[]``).

    >>> import numpy as np
    >>> FixedLenFeature([], np.int64, default_value=-1)
    FixedLenFeature(shape=(), dtype=dtype('int64'), default_value=-1)
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    default_value: Any = None

    def __post_init__(self) -> None:
        where = type(self).__name__
        shape = _check_shape(self.shape, where)
        dtype = feature_dtype(self.dtype, where)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dtype)
        if self.default_value is not None:
            values = _as_values(self.default_value, dtype, where)
            if values.size != math.prod(shape):
                raise InvalidArgumentError(
                    f"{where}: default_value has {values.size} values but shape {list(shape)} needs {math.prod(shape)}"
                )
            object.__setattr__(self, "default_value", _freeze(values, shape))


@dataclasses.dataclass(frozen=True)
class VarLenFeature:
    """A feature with any number of values per Example; parses into a ``fi.SparseArray`` of shape ``[batch, max_len]``.

    >>> VarLenFeature(bytes)
    VarLenFeature(dtype=dtype('O'))
    """

    dtype: np.dtype

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", feature_dtype(self.dtype, type(self).__name__))


@dataclasses.dataclass(frozen=True)
class FixedLenSequenceFeature:
    """A feature holding a sequence of ``shape``-shaped items, of any length per Example.

    ``parse_example`` needs ``allow_missing=True`` (as ``tf.io.parse_example``
    does) and pads every Example to the batch's longest sequence with
    ``default_value`` (0 or b""), giving ``[batch, max_len, *shape]``.

    >>> import numpy as np
    >>> FixedLenSequenceFeature([], np.float32, allow_missing=True).shape
    ()
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    allow_missing: bool = False
    default_value: Any = None

    def __post_init__(self) -> None:
        where = type(self).__name__
        object.__setattr__(self, "shape", _check_shape(self.shape, where))
        dtype = feature_dtype(self.dtype, where)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "allow_missing", check_bool(where, "allow_missing", self.allow_missing))
        if self.default_value is not None:
            values = _as_values(self.default_value, dtype, where)
            if values.size != 1:
                raise InvalidArgumentError(f"{where}: default_value is the padding value and must be a scalar, "
                                           f"got {self.default_value!r}")
            object.__setattr__(self, "default_value", values.tolist()[0])


FeatureSpec = FixedLenFeature | VarLenFeature | FixedLenSequenceFeature

_TF_SPEC_FIELDS = {
    ("shape", "dtype", "default_value"): FixedLenFeature,
    ("dtype",): VarLenFeature,
    ("shape", "dtype", "allow_missing", "default_value"): FixedLenSequenceFeature,
}


def as_feature_spec(key: Any, spec: Any) -> FeatureSpec:
    """``spec`` as one of fastinput's specs: fastinput's pass through, ``tf.io``'s are converted.

    Errors name the feature ``key``.
    """
    if not isinstance(key, str):
        raise InvalidArgumentError(f"feature keys must be str, got {key!r} ({type(key).__name__})")
    if isinstance(spec, (FixedLenFeature, VarLenFeature, FixedLenSequenceFeature)):
        return spec
    kind = (_TF_SPEC_FIELDS.get(getattr(spec, "_fields", None)) if type(spec).__module__.startswith("tensorflow")
            else None)
    if kind is None or kind.__name__ != type(spec).__name__:
        raise InvalidArgumentError(
            f"feature {key!r}: unsupported spec {spec!r}; use fi.FixedLenFeature, fi.VarLenFeature or "
            "fi.FixedLenSequenceFeature (or their tf.io counterparts)"
        )
    try:
        return kind(*spec)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"feature {key!r}: {exc}") from None
