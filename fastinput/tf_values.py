"""String leaves in a form ``as_tf_dataset`` hands to TensorFlow fast: ``TensorBackedArray`` and ``PackedStrings``.

Where they fit among the forms of a string leaf, and what the core knows of
them, is told once in ``fastinput._engine.leaves``. A slice, a copy or a batch of a
TensorBackedArray is a plain array again (the attribute is not inherited)
and converts as usual.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from fastinput._engine.checkpoint import SavedValue, decode_value, encode_value
from fastinput._engine.leaves import ArrayLeaf

try:
    from fastinput.readers import _binary
except ImportError:  # not built: each column is packed on its own with numpy (from_arrow), slower
    _binary = None


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


@functools.cache
def _int32_offsets() -> frozenset[Any]:
    """The arrow types ``_binary.pack`` takes: binary and utf8, whose offsets are int32."""
    import pyarrow as pa

    return frozenset({pa.binary(), pa.string()})


class PackedStrings(ArrayLeaf, SavedValue):
    """Byte strings of some shape, kept packed: value ``k`` (in C order) is ``blob[offsets[k]:offsets[k + 1]]``.

    ``blob`` is ``bytes`` or a 1-D uint8 array (the parser's: writable, so
    TensorFlow can take it through DLPack without a copy).

    Strings with no Python object per value. ``as_tf_dataset`` cuts the
    ``tf.string`` tensor out of the blob with a TensorFlow op that runs
    without the GIL. Two places make them: fastinput's native Example parser
    when TensorFlow consumes a pipeline (see ``packing_strings`` in
    ``readers.batched_features``; several leaves then share one blob), and
    ``fi.ParquetDataset`` / ``fi.make_parquet_dataset`` with
    ``string_type="packed"``, whose batches' string columns are these. The
    values as an object array of ``bytes`` (what other string leaves are):
    ``np.asarray(leaf)``; one value: ``leaf[k]``. Its ``dtype`` is object and
    its spec tf.string, as for ``bytes`` leaves.

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

    @classmethod
    def from_arrow(cls, column: Any) -> PackedStrings:
        """An arrow array (or ChunkedArray) of binary or string values, nulls as ``b""``, packed: its data and
        offsets, no copy for one chunk (a batch cut from a shuffled block), a join of the chunks otherwise."""
        import pyarrow as pa

        if isinstance(column, pa.ChunkedArray):
            column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        if len(column) == 0:
            return cls(b"", np.zeros(1, dtype=np.int64))
        _, offsets_buffer, data = column.buffers()
        offset_type = np.int64 if pa.types.is_large_binary(column.type) or pa.types.is_large_string(column.type) \
            else np.int32
        offsets = np.frombuffer(offsets_buffer, offset_type, count=column.offset + len(column) + 1)[column.offset:]
        start, end = int(offsets[0]), int(offsets[-1])
        blob = np.frombuffer(data, np.uint8, count=end - start, offset=start) if data is not None and end > start \
            else b""  # only this batch's part of the blob: the adapter joins the blobs of a batch's leaves
        return cls(blob, offsets.astype(np.int64) - start)

    @classmethod
    def from_arrow_columns(cls, columns: list[Any]) -> list[PackedStrings]:
        """Equally long arrow columns of binary or string values (a batch's; nulls as ``b""``), each packed as
        ``from_arrow`` packs it: one C call (``_binary.offsets``) writes all their offsets, where ``from_arrow``
        makes half a dozen numpy calls a column (4.4 us; about 2 us a column here). Columns of large types, or
        without the extension, are packed one by one with ``from_arrow``. (Copying the columns into one blob
        they share instead measured slower: 39 against 32 ms of CPU for an epoch's 391 batches of 26 Criteo
        string columns, the copies reading strings not in the cache; the views cost nothing.)"""
        import pyarrow as pa

        arrays = [column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
                  if isinstance(column, pa.ChunkedArray) else column for column in columns]
        length = len(arrays[0]) if arrays else 0
        packable = _int32_offsets()
        if _binary is None or not arrays or any(a.type not in packable or len(a) != length for a in arrays):
            return [cls.from_arrow(array) for array in arrays]
        offsets = np.empty((len(arrays), length + 1), dtype=np.int64)
        buffers = [array.buffers() for array in arrays]
        firsts = _binary.offsets([b[1] for b in buffers], [a.offset for a in arrays], length, offsets)
        return [cls(np.frombuffer(b[2], np.uint8, count=int(row[-1]), offset=first) if row[-1] else b"", row)
                for b, first, row in zip(buffers, firsts, offsets)]

    def __getitem__(self, key: Any) -> Any:
        """One value (``bytes``) of a 1-D leaf for an int; else ``np.asarray(self)[key]``."""
        if isinstance(key, (int, np.integer)) and len(self.shape) == 1:
            index = range(self.size)[key]  # negative keys, IndexError
            return bytes(memoryview(self.blob)[self.offsets[index]:self.offsets[index + 1]])
        return np.asarray(self)[key]

    def encode(self) -> Any:
        """For a saved state (``SavedValue``): the values' bytes, their offsets and the shape."""
        start, end = int(self.offsets[0]), int(self.offsets[-1])
        return [encode_value(bytes(memoryview(self.blob)[start:end])), encode_value(self.offsets - start),
                list(self.shape)]

    @classmethod
    def decode(cls, body: Any) -> PackedStrings:
        blob, offsets, shape = body
        return cls(decode_value(blob), decode_value(offsets), tuple(shape))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        blob = self.blob if type(self.blob) is bytes else memoryview(self.blob).tobytes()  # bytes slice fastest
        bounds = self.offsets.tolist()
        values = np.empty(self.size, dtype=object)
        values[:] = [blob[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
        return values.reshape(self.shape) if dtype is None else values.reshape(self.shape).astype(dtype)

    def __repr__(self) -> str:
        return f"PackedStrings({np.asarray(self)!r})"
