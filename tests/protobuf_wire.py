"""Protocol buffer wire format written by hand: tf.train.Example bytes in any encoding a writer may choose.

TensorFlow's writer packs numbers and puts each map entry's key first; these
helpers also write numbers unpacked or packed in pieces, and entries value
first, so the parsers meet what other protobuf writers make.
"""

from __future__ import annotations

import struct


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s are ten-byte varints
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def int64_list(*chunks: list[int], packed: bool = True) -> bytes:
    """An Int64List whose values come in ``chunks`` (each one packed field, or each value unpacked)."""
    if packed:
        return b"".join(field(1, b"".join(varint(v) for v in chunk)) for chunk in chunks)
    return b"".join(varint(1 << 3 | 0) + varint(v) for chunk in chunks for v in chunk)


def float_list(*chunks: list[float], packed: bool = True) -> bytes:
    if packed:
        return b"".join(field(1, struct.pack(f"<{len(chunk)}f", *chunk)) for chunk in chunks)
    return b"".join(varint(1 << 3 | 5) + struct.pack("<f", v) for chunk in chunks for v in chunk)


def bytes_list(*values: bytes) -> bytes:
    return b"".join(field(1, v) for v in values)


def feature(kind: str, list_bytes: bytes) -> bytes:
    return field({"bytes": 1, "float": 2, "int64": 3}[kind], list_bytes)


def entry(key: str, value: bytes, value_first: bool = False) -> bytes:
    parts = [field(1, key.encode()), field(2, value)]
    return field(1, b"".join(reversed(parts) if value_first else parts))


def wire_example(*entries: bytes) -> bytes:
    return field(1, b"".join(entries))
