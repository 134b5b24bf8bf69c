"""How Python values become element leaves: exactly as tf.data converts them.

TensorFlow converts values in two ways, and fastinput follows each where tf.data uses it:

- **What a map function returns** (``normalize_output``; tf.data traces the function into a graph). A list at
  the top becomes a tuple of components; below the top, dicts and tuples are structure and a list is packed
  into one array. A list holding numpy values, which stand for the tensors a tf.data function would hold,
  takes the first one's dtype, as ``tf.stack`` would; a list of Python values converts as ``tf.constant``
  does in a graph (numpy's dtype, then float64 to float32 and int64 to int32 when no value changes).
- **What ``from_tensors`` / ``from_tensor_slices`` take** (``normalize_tensors``; eager conversion). Dicts and
  tuples are structure, anything else one array. In a list, numpy scalars count as the Python numbers they
  hold: integers give int32, or int64 when a value needs it (``[np.int64(1)]`` is int32, as in TensorFlow); the
  first float decides the float dtype (a Python float, or a float after an integer: float32); bools and
  strings do not mix with anything else.

In both, a Python int is int32 (int64 when it needs it), a float float32, a str UTF-8 bytes; numpy scalars and
arrays keep their dtype, except that numpy strings become bytes (object arrays of bytes for arrays: tf.string) and
an array of the other byte order becomes a native one (``native``: a tensor is always native, so tf.data's elements
and element spec are; a ``>f4`` leaf would give a spec no native input's matches, and numpy refuses it as a ufunc's
``dtype=``).
Numpy values in, numpy values out costs one type check per leaf.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastinput._engine.leaves import ArrayLeaf
from fastinput.errors import InvalidArgumentError
from fastinput.structure import RaggedArray, SparseArray

_INT32 = np.iinfo(np.int32)
_INT64 = np.iinfo(np.int64)
_PASS_THROUGH = (bytes, SparseArray, RaggedArray, ArrayLeaf)
_PLAIN = frozenset([*_PASS_THROUGH, np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                    np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128])
"""Leaf types that are elements as they are: checked with one set lookup."""


def normalize_output(value: Any) -> Any:
    """What a map function returned, as an element (see the module docstring)."""
    if type(value) is tuple:  # the common (features, label) of numpy arrays, numpy scalars or bytes: as it is
        for v in value:  # (a loop, not all() over a generator: this runs once per element of every map)
            if not (type(v) in _PLAIN or (type(v) is np.ndarray and v.dtype.kind not in "US" and v.dtype.isnative)):
                break
        else:
            return value
    if isinstance(value, list):
        value = tuple(value)  # tf.data: a returned list is a tuple of components, not one tensor
    return _nest(value, _pack_traced)


def normalize_tensors(value: Any) -> Any:
    """A value given to ``from_tensors`` / ``from_tensor_slices``, as a nest of arrays (see the module docstring)."""
    return _nest(value, _pack_eager)


def normalize_leaf(x: Any) -> Any:
    """One leaf: Python scalars to numpy scalars, strings to bytes; numpy values, bytes, Sparse- and RaggedArrays
    as they are."""
    if type(x) in _PLAIN:
        return x
    if isinstance(x, np.ndarray):
        return _bytes_array(x) if x.dtype.kind in "US" else native(x)
    if isinstance(x, (str, np.bytes_)):  # before np.generic: np.str_ is both
        return x.encode("utf-8") if isinstance(x, str) else bytes(x)
    if isinstance(x, (np.generic, *_PASS_THROUGH)) or x is None:
        return x
    if isinstance(x, bool):
        return np.bool_(x)
    if isinstance(x, int):
        if _INT32.min <= x <= _INT32.max:
            return np.int32(x)
        if _INT64.min <= x <= _INT64.max:
            return np.int64(x)
        raise InvalidArgumentError(f"integer {x} does not fit in int64")
    if isinstance(x, float):
        return np.float32(x)
    if isinstance(x, complex):
        return np.complex128(x)
    if hasattr(x, "numpy") and callable(x.numpy):  # a TensorFlow / PyTorch tensor
        return normalize_leaf(x.numpy())
    return x


def as_array(value: Any) -> np.ndarray:
    """An element's leaf as an array: a ``bytes`` scalar as a 0-d object array (``np.asarray`` would make it a
    fixed-width ``S`` array, which neither pads, ravels nor concatenates as strings do), anything else as is."""
    return np.asarray(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)


def native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order (a copy if it is not: as TensorFlow converts it)."""
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _nest(value: Any, pack_list: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is np.ndarray:
        return _bytes_array(value) if value.dtype.kind in "US" else native(value)
    if kind is tuple:
        return tuple([_nest(v, pack_list) for v in value])
    if isinstance(value, dict):
        return {k: _nest(v, pack_list) for k, v in value.items()}
    if isinstance(value, tuple):
        items = [_nest(v, pack_list) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, list):
        return pack_list(value)
    return normalize_leaf(value)


def _leaves(values: list | tuple) -> list[Any]:
    """The scalars and arrays of a nested Python sequence, in order."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, (list, tuple)):
            out.extend(_leaves(v))
        else:
            out.append(v)
    return out


def _pack_traced(values: list) -> np.ndarray:
    """A list inside a map function's output as one array (tf.stack of numpy values, else tf.constant)."""
    leaves = _leaves(values)
    if any(isinstance(v, (str, bytes)) for v in leaves):
        return _strings(values, leaves)
    if any(_kind(v) == "other" for v in leaves):
        raise InvalidArgumentError(f"cannot convert {values!r} to one array")
    arrays = [v for v in leaves if isinstance(v, (np.ndarray, np.generic))]
    if not arrays:
        return _constant(values)
    dtype = arrays[0].dtype
    for v in leaves:
        if isinstance(v, (np.ndarray, np.generic)) and v.dtype != dtype:
            raise InvalidArgumentError(f"a list in a map function's output mixes dtypes {dtype} and {v.dtype}; "
                                       "cast them to one dtype first")
        if isinstance(v, float) and dtype.kind in "biu":
            raise InvalidArgumentError(f"a list in a map function's output cannot hold {v!r} with {dtype} values")
    array = _array(values, dtype)
    return _bytes_array(array) if dtype.kind in "US" else array


def _pack_eager(values: list) -> np.ndarray:
    """A list given to from_tensors / from_tensor_slices as one array, by TensorFlow's eager rules."""
    leaves = _leaves(values)
    if any(isinstance(v, np.ndarray) for v in leaves):
        array = _array(values, None)
        return _bytes_array(array) if array.dtype.kind in "US" else array
    kinds = {_kind(v) for v in leaves}
    if "string" in kinds or "bool" in kinds:
        if len(kinds) > 1:
            raise InvalidArgumentError(f"cannot convert a list that mixes types ({sorted(kinds)}) to one array")
        return _strings(values, leaves) if "string" in kinds else _array(values, np.bool_)
    if "other" in kinds:
        raise InvalidArgumentError(f"cannot convert {values!r} to an array")
    dtype = None  # the first float decides; integers alone are int32 or int64
    for i, v in enumerate(leaves):
        if isinstance(v, (complex, np.complexfloating)):
            if i and dtype != np.complex128:
                raise InvalidArgumentError(f"cannot convert {values!r} to one array: a complex number after a real one")
            dtype = np.dtype(np.complex128)
        elif dtype is None and isinstance(v, (float, np.floating)):
            dtype = np.dtype(np.float32) if i or type(v) is float else v.dtype  # after an integer: float32
    if dtype is None:
        return _int_array(_array(values, object)) if leaves else _array(values, np.float32)
    return _array(values, dtype)


def _kind(v: Any) -> str:
    if isinstance(v, (str, bytes)):
        return "string"
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (int, np.integer)):
        return "int"
    if isinstance(v, (float, complex, np.floating, np.complexfloating)):
        return "number"
    return "array" if isinstance(v, np.ndarray) else "other"


def _constant(values: list) -> np.ndarray:
    """Python values as tf.constant converts them in a graph: numpy's dtype, narrowed where nothing changes."""
    array = _array(values, None)
    if array.dtype == np.float64:
        return array.astype(np.float32)
    if array.dtype == np.int64 and (array.size == 0 or (_INT32.min <= array.min() and array.max() <= _INT32.max)):
        return array.astype(np.int32)
    return array


def _int_array(array: np.ndarray) -> np.ndarray:
    """Python integers (an object array) as int32, or int64 when a value needs it."""
    if array.size == 0:
        return array.astype(np.int32)
    low, high = int(array.min()), int(array.max())
    if _INT32.min <= low and high <= _INT32.max:
        return array.astype(np.int32)
    if _INT64.min <= low and high <= _INT64.max:
        return array.astype(np.int64)
    raise InvalidArgumentError(f"integer {high if high > _INT64.max else low} does not fit in int64")


def _array(values: list, dtype: Any) -> np.ndarray:
    """``np.array(values, dtype)``, refusing lists that are not rectangular (numpy would nest them in objects)."""
    try:
        array = np.array(values, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidArgumentError(f"cannot convert {values!r} to one array: {exc}") from None
    if array.dtype == object and any(isinstance(v, (list, tuple)) for v in array.flat):
        raise InvalidArgumentError(f"cannot convert {values!r} to one array: its lists have different lengths")
    return array


def _strings(values: list, leaves: list[Any]) -> np.ndarray:
    """A (nested) list of str / bytes as an object array of bytes."""
    if not all(isinstance(v, (str, bytes)) for v in leaves):
        raise InvalidArgumentError(
            f"cannot convert a list that mixes strings and other values to one array: {values!r}")
    return _bytes_array(_array(values, object))


def _bytes_array(array: np.ndarray) -> np.ndarray:
    """An object array of bytes from an array of str or bytes (TensorFlow's tf.string)."""
    out = np.empty(array.shape, dtype=object)
    flat = out.reshape(-1)
    for i, value in enumerate(array.reshape(-1).tolist()):
        flat[i] = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return out
