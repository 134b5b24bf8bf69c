"""The bytes of a chunk of elements, as ``save`` and ``snapshot`` write them: exact, safe to read, column by column.

A chunk of elements of one structure is one record (framed as TFRecord by the writer, so reading it back is
fastinput's TFRecord reader with its CRCs). A record is::

    uint32 little-endian header length | header (JSON, UTF-8) | the columns' bytes, one after another

The header holds the element count, the structure (dicts, tuples, lists and namedtuples, leaves as ``null``) and
one descriptor per leaf position (a *column*: that leaf of every element), each with its byte length:

- ``{"kind": "array", "dtype", "shape", "scalar"}``: every leaf a numpy array (or numpy scalar, ``scalar``) of one
  dtype and shape: the leaves stacked, raw little-endian bytes;
- ``{"kind": "bytes"}``: every leaf a ``bytes``: their int64 lengths, then their bytes;
- ``{"kind": "values"}``: anything else (strings arrays, ``fi.SparseArray``, Python values, leaves that differ):
  each leaf as ``encode_value`` (``fastinput._engine.checkpoint``) writes it, in a JSON list.

So a column of numbers or of records costs one numpy call each way, and any element round-trips bit for bit. No
code is ever run to read a record (unlike pickle).
"""

from __future__ import annotations

import collections
import json
import struct
from typing import Any

import numpy as np

from fastinput import errors, structure
from fastinput._engine.checkpoint import decode_value, encode_value

_LENGTH = struct.Struct("<I")


def encode_chunk(elements: list[Any]) -> bytes:
    """One record holding ``elements`` (all of one structure; at least one)."""
    first = elements[0]
    try:
        leaf_columns = _columns_of(first, elements)
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise errors.InvalidArgumentError(f"save: the elements do not all have the structure of the first "
                                          f"({skeleton(first)}): {exc!r}") from None
    columns, buffers = [], []
    for leaves in leaf_columns:
        descriptor, data = _encode_column(leaves)
        descriptor["size"] = len(data)
        columns.append(descriptor)
        buffers.append(data)
    header = json.dumps({"n": len(elements), "structure": skeleton(first), "columns": columns},
                        separators=(",", ":")).encode()
    return b"".join([_LENGTH.pack(len(header)), header, *buffers])


def decode_chunk(record: bytes) -> list[Any]:
    """The elements ``encode_chunk`` wrote; ``ValueError`` (or ``KeyError``, ``TypeError``) if the record is not one."""
    view = memoryview(record)
    (length,) = _LENGTH.unpack_from(view, 0)
    header = json.loads(bytes(view[_LENGTH.size:_LENGTH.size + length]))
    count, offset = int(header["n"]), _LENGTH.size + length
    columns = []
    for descriptor in header["columns"]:
        end = offset + int(descriptor["size"])
        if end > len(view):
            raise ValueError(f"a column runs past the record's end ({end} > {len(view)} bytes)")
        columns.append(_decode_column(descriptor, view[offset:end], count))
        offset = end
    if offset != len(view):
        raise ValueError(f"{len(view) - offset} bytes after the last column")
    shape = template(header["structure"])
    leaves = iter(columns)
    elements = _pack_columns(shape, leaves, count)
    if next(leaves, None) is not None:
        raise ValueError("more columns than the structure has leaves")
    return elements


# -- columns ---------------------------------------------------------------------------------------------------


def _encode_column(leaves: list[Any]) -> tuple[dict[str, Any], bytes]:
    first = leaves[0]
    kind = type(first)
    if kind is bytes and all(type(leaf) is bytes for leaf in leaves):
        lengths = np.fromiter(map(len, leaves), dtype="<i8", count=len(leaves))
        return {"kind": "bytes"}, lengths.tobytes() + b"".join(leaves)
    if isinstance(first, (np.ndarray, np.generic)) and first.dtype != object and \
            all(type(leaf) is kind and leaf.dtype == first.dtype and leaf.shape == first.shape for leaf in leaves):
        stacked = np.asarray(leaves, dtype=first.dtype) if kind is not np.ndarray else np.stack(leaves)
        dtype = stacked.dtype.newbyteorder("<") if stacked.dtype.byteorder == ">" else stacked.dtype
        return ({"kind": "array", "dtype": dtype.str, "shape": list(first.shape), "scalar": kind is not np.ndarray},
                np.ascontiguousarray(stacked, dtype=dtype).tobytes())
    return {"kind": "values"}, json.dumps([encode_value(leaf) for leaf in leaves], separators=(",", ":")).encode()


def _decode_column(descriptor: dict[str, Any], data: memoryview, count: int) -> list[Any]:
    kind = descriptor["kind"]
    if kind == "array":
        shape = (count, *descriptor["shape"])
        array = np.frombuffer(data, dtype=np.dtype(descriptor["dtype"])).reshape(shape).copy()
        if not descriptor["scalar"] and not descriptor["shape"]:  # 0-d arrays (iterating would give scalars)
            return [array[i, ...] for i in range(count)]
        return list(array)  # rows: numpy scalars of a 1-d array, views of a writable copy otherwise
    if kind == "bytes":
        lengths = np.frombuffer(data[:8 * count], dtype="<i8")
        ends = np.cumsum(lengths)
        if count and (lengths.min() < 0 or 8 * count + int(ends[-1]) != len(data)):
            raise ValueError("the string lengths do not add up to the column's size")
        body = bytes(data[8 * count:])
        starts = (ends - lengths).tolist()
        return [body[start:end] for start, end in zip(starts, ends.tolist())]
    if kind == "values":
        values = [decode_value(item) for item in json.loads(bytes(data))]
        if len(values) != count:
            raise ValueError(f"the column holds {len(values)} values for {count} elements")
        return values
    raise ValueError(f"unknown column kind {kind!r}")


# -- structures ------------------------------------------------------------------------------------------------


def skeleton(element: Any) -> Any:
    """The nesting of ``element`` as JSON (leaves: None)."""
    if isinstance(element, dict):
        return {"dict": [[encode_value(key), skeleton(value)] for key, value in element.items()]}
    if isinstance(element, tuple) and hasattr(element, "_fields"):
        return {"namedtuple": [type(element).__name__, list(element._fields), [skeleton(v) for v in element]]}
    if isinstance(element, (tuple, list)):
        return {"tuple" if isinstance(element, tuple) else "list": [skeleton(item) for item in element]}
    return None


def _columns_of(template: Any, elements: list[Any]) -> list[list[Any]]:
    """The leaves of ``elements`` (each shaped like ``template``) as columns, in ``structure.flatten``'s order: taken
    apart a level at a time (one ``zip`` per container); an element of another shape raises."""
    if isinstance(template, dict):
        if any(type(element) is not type(template) or len(element) != len(template) for element in elements):
            raise ValueError("a dict with other keys")
        return [column for key in sorted(template)
                for column in _columns_of(template[key], [element[key] for element in elements])]
    if isinstance(template, (tuple, list)):
        if any(type(element) is not type(template) or len(element) != len(template) for element in elements):
            raise ValueError(f"not a {type(template).__name__} of {len(template)}")
        return [column for item, part in zip(template, zip(*elements)) for column in _columns_of(item, list(part))]
    if any(structure.is_nested(element) for element in elements):
        raise ValueError("a container where the first element has a leaf")
    return [elements]


def _pack_columns(template: Any, columns: Any, count: int) -> list[Any]:
    """The ``count`` elements shaped like ``template`` whose leaves, in ``structure.flatten``'s order, are the next
    columns of ``columns``: built a level at a time (one ``zip`` per container), not leaf by leaf."""
    if isinstance(template, dict):
        parts = {key: _pack_columns(template[key], columns, count) for key in sorted(template)}
        keys = list(template)
        return [dict(zip(keys, values)) for values in zip(*(parts[key] for key in keys))] if keys \
            else [{} for _ in range(count)]
    if isinstance(template, (tuple, list)):
        parts = [_pack_columns(item, columns, count) for item in template]
        rows = list(zip(*parts)) if parts else [() for _ in range(count)]
        if isinstance(template, list):
            return [list(row) for row in rows]
        if hasattr(template, "_fields"):
            return [type(template)._make(row) for row in rows]
        return rows
    column = next(columns, None)
    if column is None:
        raise ValueError("fewer columns than the structure has leaves")
    return column


def template(described: Any) -> Any:
    """A nest shaped like the one ``skeleton`` described (leaves: None), for ``structure.pack_as``."""
    if described is None:
        return None
    (kind, body), = described.items()
    if kind == "dict":
        return {decode_value(key): template(value) for key, value in body}
    if kind == "namedtuple":
        name, fields, items = body
        return collections.namedtuple(name, fields)(*(template(item) for item in items))
    if kind in ("tuple", "list"):
        items = [template(item) for item in body]
        return tuple(items) if kind == "tuple" else items
    raise ValueError(f"unknown structure kind {kind!r}")
