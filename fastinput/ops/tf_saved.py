"""Reading a folder tf.data's ``save`` wrote (``fi.Dataset.load`` of it): TensorFlow's snapshot format, version 2.

tf.data writes ``snapshot.metadata`` (a ``SnapshotMetadataRecord`` proto: the run id, the components' dtypes,
whether the save finished), ``dataset_spec.pb`` (the element spec, a ``StructuredValue`` proto) and
``<run id>/<n>.shard/<m>.snapshot`` files: TFRecord files (GZIP-compressed if saved so) holding each element as one
record per component, a serialized ``TensorProto`` (dtype, shape, ``tensor_content``: raw little-endian numbers, or
for strings their varint lengths then their bytes).

Read here with fastinput's own TFRecord reader and a small protobuf decoder: per shard, its files in order, the
records grouped by element and decoded (``tf_saved_shards``); ``fastinput.ops.load`` interleaves the shards one
element at a time over as many as the machine has cores, as tf.data's default ``reader_func`` does, which gives
back the order tf.data's save spread them in.
The element spec comes from ``dataset_spec.pb`` through TensorFlow (imported then); without TensorFlow, or with
``element_spec=`` given, the components come as a tuple (or the given structure). Snappy-compressed snapshots
and components tf.data stores as variants (sparse and ragged tensors) raise ``UnimplementedError``.
"""

from __future__ import annotations

import glob
import os
from typing import Any

import numpy as np

from fastinput import errors, structure

METADATA = "snapshot.metadata"
SPEC = "dataset_spec.pb"
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 7: object, 9: np.int64,
           10: np.bool_, 17: np.uint16, 19: np.float16, 22: np.uint32, 23: np.uint64}
"""TensorFlow's ``DataType`` enum values fastinput reads, as numpy dtypes (7: strings)."""


def is_tf_saved(directory: str) -> bool:
    return os.path.exists(os.path.join(directory, METADATA))


# -- protobuf wire format ----------------------------------------------------------------------------------------


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if offset >= len(data):
            raise ValueError("a varint runs past the end")
        byte = data[offset]
        value |= (byte & 0x7F) << shift
        offset += 1
        if byte < 0x80:
            return value, offset
        shift += 7


def _fields(data: bytes) -> list[tuple[int, Any]]:
    """A message's fields as (number, value): ints for varints, bytes for length-delimited ones."""
    out, offset = [], 0
    while offset < len(data):
        key, offset = _varint(data, offset)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, offset = _varint(data, offset)
        elif wire == 2:
            length, offset = _varint(data, offset)
            value, offset = bytes(data[offset:offset + length]), offset + length
            if offset > len(data):
                raise ValueError("a field runs past the end")
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, offset = bytes(data[offset:offset + size]), offset + size
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, value))
    return out


def _packed(values: list[Any]) -> list[int]:
    """Repeated enums, packed (bytes) or not (ints)."""
    out: list[int] = []
    for value in values:
        if isinstance(value, bytes):
            offset = 0
            while offset < len(value):
                item, offset = _varint(value, offset)
                out.append(item)
        else:
            out.append(value)
    return out


# -- the folder ---------------------------------------------------------------------------------------------------


def read_tf_metadata(directory: str) -> dict[str, Any]:
    """The run folder, component dtypes and finished flag of a tf.data save; errors name the file."""
    path = os.path.join(directory, METADATA)
    try:
        with open(path, "rb") as f:
            fields = _fields(f.read())
    except ValueError as exc:
        raise errors.DataLossError(f"load: {path} is not a tf.data snapshot's metadata: {exc}", path=path) from None
    by_number: dict[int, list[Any]] = {}
    for number, value in fields:
        by_number.setdefault(number, []).append(value)
    run_id = by_number.get(2, [b""])[-1]
    if not by_number.get(1000, [0])[-1]:
        raise errors.NotFoundError(f"load: {directory}: tf.data's save did not finish there (its {METADATA} says "
                                   "it is not finalized)")
    if by_number.get(4, [0])[-1] != 2:
        raise errors.UnimplementedError(f"load: {path}: tf.data snapshot version {by_number.get(4, [0])[-1]}; "
                                        "fastinput reads version 2 (what tf.data's save writes)")
    return {"run": os.path.join(directory, run_id.decode()), "dtypes": _packed(by_number.get(5, []))}


def tf_saved_shards(directory: str, compression: str | None, element_spec: Any) -> tuple[list[Any], Any]:
    """The datasets of the shards of a tf.data save in ``directory`` (each its files in order, records grouped by
    element and decoded) and the element spec (``element_spec`` if given)."""
    from fastinput.readers.tfrecord import TFRecordDataset

    metadata = read_tf_metadata(directory)
    dtypes = metadata["dtypes"]
    unknown = [d for d in dtypes if d not in _DTYPES]
    if unknown:
        raise errors.UnimplementedError(f"load: {directory}: components of TensorFlow dtype enum {unknown} (variants "
                                        "hold sparse and ragged tensors) cannot be read by fastinput")
    spec = element_spec if element_spec is not None else _saved_spec(directory, dtypes)
    decode = _Decoder(spec, len(dtypes), directory)
    shards = []
    for shard in sorted(glob.glob(os.path.join(glob.escape(metadata["run"]), "*.shard"))):
        files = sorted(glob.glob(os.path.join(glob.escape(shard), "*.snapshot")))
        shards.append(TFRecordDataset(files, compression_type=compression)
                      .batch(len(dtypes), drop_remainder=True).map(decode, output_signature=spec))
    return shards, spec


def _saved_spec(directory: str, dtypes: list[int]) -> Any:
    """The element spec in ``dataset_spec.pb`` (read with TensorFlow); without TensorFlow, a tuple of unknown
    shapes (one element if there is one component)."""
    from fastinput.spec import TensorSpec, as_spec

    try:
        from tensorflow.core.protobuf import struct_pb2
        from tensorflow.python.saved_model import nested_structure_coder
    except ImportError:
        leaves = tuple(TensorSpec(None, _DTYPES[d]) for d in dtypes)
        return leaves[0] if len(leaves) == 1 else leaves
    proto = struct_pb2.StructuredValue()
    with open(os.path.join(directory, SPEC), "rb") as f:
        proto.ParseFromString(f.read())
    return as_spec(nested_structure_coder.decode_proto(proto), f"load: {directory}: {SPEC}")


class _Decoder:
    """One element from its components' serialized ``TensorProto`` records (an object array of bytes)."""

    __name__ = "decode_tf_snapshot_element"

    def __init__(self, spec: Any, width: int, directory: str) -> None:
        self._template = spec
        self._directory = directory
        if len(structure.flatten(spec)) != width:
            raise errors.InvalidArgumentError(f"load: {directory}: element_spec has {len(structure.flatten(spec))} "
                                              f"components, the saved elements {width}")

    def __call__(self, records: Any) -> Any:
        try:
            leaves = [_tensor(bytes(record)) for record in records]
        except (ValueError, KeyError) as exc:
            raise errors.DataLossError(f"load: {self._directory}: a record is not a TensorProto ({exc})",
                                       path=self._directory) from None
        return structure.pack_as(self._template, leaves)


def _tensor(data: bytes) -> Any:
    """The value a serialized ``TensorProto`` holds: a numpy scalar or array (strings: bytes, object arrays)."""
    dtype_enum, shape, content, strings = 0, [], None, []
    for number, value in _fields(data):
        if number == 1:
            dtype_enum = value
        elif number == 2:
            shape = [dict(_fields(dim)).get(1, 0) for n, dim in _fields(value) if n == 2]
        elif number == 4:
            content = value
        elif number == 8:
            strings.append(value)
    dtype = _DTYPES[dtype_enum]
    count = int(np.prod(shape, dtype=np.int64))
    if dtype is object:
        items = _string_list(content, count) if content is not None else strings
        if len(items) != count:
            raise ValueError(f"{len(items)} strings for shape {shape}")
        if not shape:
            return items[0]
        array = np.empty(count, dtype=object)
        array[:] = items
        return array.reshape(shape)
    if content is None:
        raise ValueError("the values are not in tensor_content")
    array = np.frombuffer(content, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
    return array[()] if not shape else array


def _string_list(content: bytes, count: int) -> list[bytes]:
    """TensorFlow's string list encoding: every length (varint), then every string's bytes."""
    lengths, offset = [], 0
    for _ in range(count):
        length, offset = _varint(content, offset)
        lengths.append(length)
    out = []
    for length in lengths:
        out.append(content[offset:offset + length])
        offset += length
    if offset != len(content):
        raise ValueError("the string lengths do not add up")
    return out
