"""String arrays that remember a cheaper form of their values, so ``as_tf_dataset`` hands them to TensorFlow fast.

String outputs are object arrays of ``bytes``: a Python object per value,
and building a ``tf.string`` tensor from them costs as much again (about
20 ns a value, holding the GIL). Two kinds of read-only arrays carry their
values in a form TensorFlow takes without looking at those objects:

- ``TensorBackedArray`` (``parse_example`` through TensorFlow's kernel): the
  ``tf.Tensor`` the array was made from; the adapter passes the tensor itself.
- ``PackedStringArray`` (for native parsers): every value in one ``bytes``
  blob plus int64 offsets; the adapter cuts the tensor out of the blob with
  one TensorFlow op that runs without the GIL.

A slice, a copy or a batch of either is a plain array again (the attribute
is not inherited) and converts as usual.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class TensorBackedArray(np.ndarray):
    """A read-only numpy view of a ``tf.Tensor``'s value that keeps the tensor (``tf_tensor``)."""

    tf_tensor: Any = None


def array_from_tensor(tensor: Any) -> np.ndarray:
    """``tensor.numpy()``; for string tensors, a read-only array that remembers ``tensor``."""
    array = tensor.numpy()
    if array.dtype != object:
        return array  # numbers go back to TensorFlow through DLPack, without a copy, anyway
    backed = array.view(TensorBackedArray)
    backed.flags.writeable = False
    backed.tf_tensor = tensor
    return backed


def tensor_of(leaf: Any) -> Any:
    """The tensor ``leaf`` was made from, or None (not a TensorBackedArray, or a slice/copy of one)."""
    if type(leaf) is TensorBackedArray and not leaf.flags.writeable:
        return leaf.tf_tensor
    return None


class PackedStringArray(np.ndarray):
    """A read-only object array of ``bytes`` that also holds them packed: ``packed`` is ``(blob, offsets)``.

    Made by ``packed_string_array``; a view (reshape included) or a copy is a
    plain array again (``packed`` is None), so wrap the values in their final shape.
    """

    packed: tuple[bytes, np.ndarray] | None = None


def packed_string_array(blob: bytes, offsets: np.ndarray, values: np.ndarray | None = None) -> PackedStringArray:
    """An object array of the strings packed in ``blob`` that keeps them packed, for ``as_tf_dataset``.

    ``offsets``: ``n + 1`` non-decreasing int64 positions in ``blob``; value
    ``i`` (in C order) is ``blob[offsets[i]:offsets[i + 1]]``. ``values``:
    the same strings as an object array of ``bytes`` of any shape with ``n``
    elements, if the caller made them already (a parser in C does); built from
    the blob otherwise. The caller hands ``values`` over and must not change
    them afterwards.

    When every string leaf of an element is packed, ``as_tf_dataset`` cuts
    the ``tf.string`` tensors out of the blobs with one TensorFlow op that
    runs without the GIL, instead of converting the Python objects while
    holding it. Leaves that share one blob (say, all of a batch's string
    features) cross cheapest: nothing is joined or shifted.

    >>> a = packed_string_array(b"abcde", np.array([0, 2, 5]))
    >>> a.tolist(), packed_strings(a)[1].tolist()
    ([b'ab', b'cde'], [0, 2, 5])
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if not isinstance(blob, bytes):
        raise TypeError(f"packed_string_array: blob must be bytes, got {type(blob).__name__}")
    if offsets.ndim != 1 or offsets.size == 0:
        raise ValueError(f"packed_string_array: offsets must be 1-D with n + 1 positions, got shape {offsets.shape}")
    if offsets[0] < 0 or offsets[-1] > len(blob) or np.any(offsets[1:] < offsets[:-1]):
        raise ValueError(f"packed_string_array: offsets must be non-decreasing positions in the {len(blob)}-byte blob")
    if values is None:
        values = np.empty(offsets.size - 1, dtype=object)
        values[:] = [blob[start:end] for start, end in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    elif not isinstance(values, np.ndarray) or values.dtype != object or values.size != offsets.size - 1:
        raise ValueError(f"packed_string_array: values must be an object array of {offsets.size - 1} bytes")
    array = values.view(PackedStringArray)
    array.flags.writeable = False
    array.packed = (blob, offsets)
    return array


def packed_strings(leaf: Any) -> tuple[bytes, np.ndarray] | None:
    """``(blob, offsets)`` of a PackedStringArray as ``packed_string_array`` made it; None for anything else."""
    if type(leaf) is PackedStringArray and not leaf.flags.writeable:
        return leaf.packed
    return None
