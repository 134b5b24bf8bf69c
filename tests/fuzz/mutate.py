"""A seeded byte mutator: the damage storage, networks and careless writers do, and what attackers try.

``mutate(data, rng)`` applies one to three of: bit flips, bytes set to edge
values, truncation, deleted / repeated / inserted ranges, huge little-endian
lengths (TFRecord's uint64 length), huge or over-long varints (protobuf
lengths and values), wire-type changes (protobuf tags), and now and then
replaces everything with random bytes. Every choice comes from ``rng``, so an
input is reproduced from its seed alone.
"""

from __future__ import annotations

import struct

import numpy as np

from tests.protobuf_wire import varint

EDGE_BYTES = bytes([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x1A, 0x08, 0x0D])
"""Bytes that mean something in the formats fuzzed: varint edges, protobuf tags (0x0a ... 0x0d)."""

HUGE_VALUES = [2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1, 2**40 + 3]


def overlong_varint(value: int, length: int) -> bytes:
    """``value`` as a varint padded to ``length`` bytes with continuation bytes (valid up to 10 bytes)."""
    out = bytearray(varint(value))
    while len(out) < length:
        out[-1] |= 0x80
        out.append(0)
    return bytes(out)


def _bit_flip(data: bytearray, rng: np.random.Generator) -> None:
    for _ in range(int(rng.integers(1, 4))):
        data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))


def _edge_byte(data: bytearray, rng: np.random.Generator) -> None:
    data[int(rng.integers(len(data)))] = EDGE_BYTES[int(rng.integers(len(EDGE_BYTES)))]


def _truncate(data: bytearray, rng: np.random.Generator) -> None:
    del data[int(rng.integers(len(data))):]


def _delete(data: bytearray, rng: np.random.Generator) -> None:
    start = int(rng.integers(len(data)))
    del data[start:start + int(rng.integers(1, 16))]


def _repeat(data: bytearray, rng: np.random.Generator) -> None:
    start = int(rng.integers(len(data)))
    chunk = data[start:start + int(rng.integers(1, 64))]
    at = int(rng.integers(len(data) + 1))
    data[at:at] = chunk * int(rng.integers(1, 4))


def _insert_random(data: bytearray, rng: np.random.Generator) -> None:
    at = int(rng.integers(len(data) + 1))
    data[at:at] = rng.bytes(int(rng.integers(1, 16)))


def _huge_length(data: bytearray, rng: np.random.Generator) -> None:
    """A huge uint64 / uint32 little-endian number written over 8 or 4 bytes (TFRecord lengths, JPEG sizes)."""
    value = HUGE_VALUES[int(rng.integers(len(HUGE_VALUES)))]
    size = 8 if rng.random() < 0.5 else 4
    at = int(rng.integers(len(data)))
    data[at:at + size] = struct.pack("<Q", value)[:size]


def _huge_varint(data: bytearray, rng: np.random.Generator) -> None:
    """A varint that is huge, over-long (padded), or longer than ten bytes, written over or into the data."""
    kind = int(rng.integers(3))
    if kind == 0:
        new = varint(HUGE_VALUES[int(rng.integers(len(HUGE_VALUES)))])
    elif kind == 1:
        new = overlong_varint(int(rng.integers(0, 300)), int(rng.integers(2, 11)))
    else:
        new = b"\xff" * int(rng.integers(10, 14)) + b"\x01"
    at = int(rng.integers(len(data)))
    end = at + (len(new) if rng.random() < 0.5 else 0)  # overwrite, or insert
    data[at:end] = new


def _wire_type(data: bytearray, rng: np.random.Generator) -> None:
    """Keep a byte's field number, change its wire type (0..7): a tag that says the wrong thing."""
    at = int(rng.integers(len(data)))
    data[at] = (data[at] & 0xF8) | int(rng.integers(8))


_MUTATIONS = [_bit_flip, _edge_byte, _truncate, _delete, _repeat, _insert_random, _huge_length, _huge_varint,
              _wire_type]


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """``data`` damaged by one to three mutations (random bytes instead, now and then)."""
    if rng.random() < 0.03 or not data:
        return rng.bytes(int(rng.integers(0, 200)))
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        if not out:
            break
        _MUTATIONS[int(rng.integers(len(_MUTATIONS)))](out, rng)
    return bytes(out)
