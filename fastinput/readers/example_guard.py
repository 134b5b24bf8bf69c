"""Batches TensorFlow's Example kernel must not be given: it writes past its buffers, or asks for gigabytes.

TensorFlow's ``ParseExampleV2`` (``example_proto_fast_parsing.cc``, 2.21)
trusts counts and lengths in the data in three places (each found by fuzzing
or by reading that code; every other list it parses is bounded):

- a float ``FixedLenFeature`` is parsed straight into the batch's output.
  Packed floats are cut at the feature's size, but floats written
  *unpacked*, each its own fixed32 field (valid protobuf that TensorFlow's
  writer does not make), are written one after another however many there
  are: more than the feature holds run past the output (SIGSEGV, or a
  corrupt heap);
- a bytes value's length: the kernel sizes a string to it before reading
  the bytes, so a length past the end of the data allocates up to 4 GiB, and
  one of 2**31 or more is copied with a negative size (SIGSEGV);
- a packed float list's length, where the values go into a growable buffer
  (VarLen and FixedLenSequence features): the buffer is sized to it first,
  and a length of 2**31 or more is copied with a negative size.

``check_batch`` finds such a list before the batch goes to that kernel and
raises ``InvalidArgumentError`` naming the feature and the Example instead
(TensorFlow fails those Examples anyway, when it survives them). To find
exactly the lists the kernel would parse, it walks each Example as
TensorFlow's parser does: tags compared byte for byte where it uses
``ExpectTag``, protobuf's 32-bit length varints, unknown Example fields
skipped, map entries of exactly two fields, the last entry of a key winning.
It runs only on batches that go to TensorFlow (the native kernel leaves it
the unusual ones), and only for specs with a float or bytes feature.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from fastinput.errors import InvalidArgumentError

_DELIMITED_1 = 0x0A  # field 1, length-delimited: Example.features, Features' map entry, a bytes value, packed
_UNPACKED_FLOAT = 0x0D  # FloatList.value as one fixed32 field
BYTES_LIST, FLOAT_LIST = 0x0A, 0x12  # Feature's oneof tags (int64_list: 0x1a)
_FEATURE_TAGS = (0x0A, 0x12, 0x1A)
_SIZES_BY_WIRE_TYPE = {1: 8, 5: 4}  # fixed64, fixed32


class Guarded(NamedTuple):
    """How TensorFlow's kernel parses one float or bytes feature."""

    dense: bool  # FixedLen and FixedLenSequence (an empty Feature counts as missing); not VarLen
    fixed: bool  # FixedLen: parsed straight into the output, at most ``width`` values
    list_tag: int  # BYTES_LIST or FLOAT_LIST
    width: int  # values per Example (FixedLen)


def check_batch(records: Iterable[bytes], features: Mapping[bytes, Guarded]) -> None:
    """Raise InvalidArgumentError if TensorFlow's kernel would write past its buffers on an Example, or size one
    from a length past the end of the data. ``features``: the spec's float and bytes features by key."""
    for index, record in enumerate(records):
        entries = example_entries(record)
        if entries is None:  # TensorFlow fails this Example before it parses any feature
            continue
        seen: set[bytes] = set()
        for key, value in reversed(entries):  # TensorFlow goes backwards: the last entry of a key wins
            feature = features.get(key)
            if feature is None:
                continue
            if value and value[0] not in _FEATURE_TAGS:
                break  # an unknown list type: TensorFlow fails the Example here
            if (feature.dense and not value) or key in seen:
                continue  # an empty Feature is a missing dense feature; an earlier duplicate is ignored
            seen.add(key)
            if not value:
                continue
            if value[0] != feature.list_tag:
                break  # the wrong list type: TensorFlow fails the Example here
            problem = _problem(value, feature)
            if problem:
                name = key.decode("utf-8", "replace")
                raise InvalidArgumentError(f"parse_example: feature {name!r}: example {index} {problem}")


def _problem(feature: bytes, guarded: Guarded) -> str | None:
    """What in this Feature (tag byte first) TensorFlow's kernel cannot take, or None."""
    read = varint32(feature, 1, len(feature))
    if read is None:
        return None
    length, pos = read
    limit = _push_limit(pos, length, len(feature))
    if guarded.list_tag == BYTES_LIST:
        index = 0
        while pos < limit and feature[pos] == _DELIMITED_1:
            read = varint32(feature, pos + 1, limit)
            if read is None or (guarded.fixed and index >= guarded.width):
                return None  # TensorFlow stops here, before sizing anything
            size, pos = read
            if size > limit - pos:
                return f"has a bytes value of {size} bytes where {limit - pos} remain"
            pos += size
            index += 1
        return None
    if pos < limit and feature[pos] == _DELIMITED_1 and not guarded.fixed:
        read = varint32(feature, pos + 1, limit)
        if read is not None and read[0] > limit - read[1]:
            return f"has a packed float list of {read[0]} bytes where {limit - read[1]} remain"
        return None
    count = 0
    while pos < limit and feature[pos] == _UNPACKED_FLOAT and limit - pos >= 5:
        count += 1
        pos += 5
    if guarded.fixed and count > guarded.width:
        return f"has {count} float values, expected {guarded.width}"
    return None


def varint32(data: bytes, pos: int, limit: int) -> tuple[int, int] | None:
    """protobuf's ReadVarint32: (value, position after it), at most 10 bytes and the low 32 bits kept; None if
    the varint is cut by ``limit`` or too long."""
    value = 0
    for shift in range(0, 70, 7):
        if pos >= limit:
            return None
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFFFFFF, pos
    return None


def _push_limit(pos: int, length: int, limit: int) -> int:
    """protobuf's PushLimit: the new limit, never past the current one (a length over 2**31 - 1 changes nothing)."""
    return pos + length if length < 1 << 31 and pos + length < limit else limit


def example_entries(record: bytes) -> list[tuple[bytes, bytes]] | None:
    """The (key, Feature bytes) map entries of an Example in order, or None where TensorFlow's parser fails it."""
    entries: list[tuple[bytes, bytes]] = []
    pos, end = 0, len(record)
    while pos < end:
        if record[pos] == _DELIMITED_1:  # Features (several, in concatenated Examples)
            read = varint32(record, pos + 1, end)
            if read is None:
                return None
            length, pos = read
            limit = _push_limit(pos, length, end)
            while pos < limit:
                if record[pos] != _DELIMITED_1:
                    return None
                pos = _entry(record, pos + 1, limit, entries)
                if pos is None:
                    return None
            pos = limit
        else:
            pos = _skip_field(record, pos, end)
            if pos is None:
                return None
    return entries


def _entry(record: bytes, pos: int, limit: int, entries: list[tuple[bytes, bytes]]) -> int | None:
    """Parse one map entry at ``pos`` into ``entries``: the position after it, or None if it is malformed."""
    read = varint32(record, pos, limit)
    if read is None:
        return None
    length, pos = read
    entry_limit = _push_limit(pos, length, limit)
    key = value = b""
    for _ in range(2):  # exactly two fields, key and value in either order
        read = varint32(record, pos, entry_limit)  # protobuf's ReadTag: a varint, in as many bytes as it likes
        if read is None or read[0] not in (0x0A, 0x12):
            return None
        tag, pos = read
        read = varint32(record, pos, entry_limit)
        if read is None or read[0] > entry_limit - read[1]:
            return None
        size, pos = read
        if tag == 0x0A:
            key = bytes(record[pos:pos + size])
        else:
            value = bytes(record[pos:pos + size])
        pos += size
    if pos != entry_limit:
        return None
    entries.append((key, value))
    return pos


def _skip_field(record: bytes, pos: int, end: int) -> int | None:
    """Skip an Example field TensorFlow does not know, as it does: the position after it, or None if it fails."""
    read = varint32(record, pos, end)  # ReadTag; a malformed one reads as 0, and the varint after it then fails too
    if read is None:
        return None
    tag, pos = read
    wire_type = tag & 7
    if wire_type == 0:
        read = varint32(record, pos, end)
        return None if read is None else read[1]
    if wire_type in _SIZES_BY_WIRE_TYPE:
        size = _SIZES_BY_WIRE_TYPE[wire_type]
        return pos + size if end - pos >= size else None
    if wire_type == 2:
        read = varint32(record, pos, end)
        if read is None:
            return None
        length, pos = read
        if length >= 1 << 31:  # protobuf's Skip(int) refuses a negative count and stays put
            return pos
        return min(pos + length, end)  # skipping past the end stops at the end; TensorFlow ignores that failure
    return None  # groups and invalid wire types
