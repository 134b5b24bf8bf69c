"""String leaves in a form ``as_tf_dataset`` hands to TensorFlow fast: ``TensorBackedArray`` and ``PackedStrings``.

Where they fit among the forms of a string leaf, and what the core knows of
them, is told once in ``fastinput._engine.leaves``. A slice, a copy or a batch of a
TensorBackedArray is a plain array again (the attribute is not inherited)
and converts as usual.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastinput._engine.leaves import ArrayLeaf


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


class PackedStrings(ArrayLeaf):
    """Byte strings of some shape, kept packed: value ``k`` (in C order) is ``blob[offsets[k]:offsets[k + 1]]``.

    ``blob`` is ``bytes`` or a 1-D uint8 array (the parser's: writable, so
    TensorFlow can take it through DLPack without a copy).

    A leaf that only ``as_tf_dataset`` ever sees: when TensorFlow consumes a
    pipeline, its native Example parser writes string features this way
    (see ``packing_strings`` in ``readers.batched_features``), with no Python
    object per value, and the adapter cuts the ``tf.string`` tensor out of
    the blob with a TensorFlow op that runs without the GIL. Several leaves
    may share one blob (a parsed batch's string features all do). Anything
    else that needs the values gets an object array of ``bytes`` through
    ``np.asarray``.

    >>> s = PackedStrings(b"..abcdef", np.array([2, 3, 3, 5, 8])).reshape(2, 2)
    >>> s.shape, np.asarray(s).tolist()
    ((2, 2), [[b'a', b''], [b'bc', b'def']])
    """

    __slots__ = ("blob", "offsets", "shape")
    dtype = np.dtype(object)
    ndim = property(lambda self: len(self.shape))

    def __init__(self, blob: bytes | np.ndarray, offsets: np.ndarray, shape: tuple[int, ...] | None = None) -> None:
        self.blob = blob
        self.offsets = offsets
        self.shape = (offsets.size - 1,) if shape is None else tuple(shape)

    @property
    def size(self) -> int:
        return self.offsets.size - 1

    @property
    def nbytes(self) -> int:
        """The bytes this leaf's values and offsets take (a shared blob is counted per leaf, for its part)."""
        return int(self.offsets[-1] - self.offsets[0]) + self.offsets.nbytes

    def __len__(self) -> int:
        return self.shape[0]

    def reshape(self, *shape: int) -> PackedStrings:
        """The same values in another shape (C order), as ``np.ndarray.reshape``; one dimension may be -1."""
        return PackedStrings(self.blob, self.offsets, np.empty(self.size, dtype=np.bool_).reshape(*shape).shape)

    @classmethod
    def of(cls, leaf: Any) -> PackedStrings:
        """Any string leaf (an object array of ``bytes``, or anything ``np.asarray`` makes one of) packed, flat."""
        values = np.asarray(leaf, dtype=object).ravel().tolist()
        offsets = np.zeros(len(values) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values)), out=offsets[1:])
        return cls(b"".join(values), offsets)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        blob = self.blob if type(self.blob) is bytes else memoryview(self.blob).tobytes()  # bytes slice fastest
        bounds = self.offsets.tolist()
        values = np.empty(self.size, dtype=object)
        values[:] = [blob[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
        return values.reshape(self.shape) if dtype is None else values.reshape(self.shape).astype(dtype)

    def __repr__(self) -> str:
        return f"PackedStrings({np.asarray(self)!r})"
