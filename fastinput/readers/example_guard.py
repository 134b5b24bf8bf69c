"""Batches TensorFlow's Example kernel must not be given: it writes past its output on them.

TensorFlow's ``ParseExampleV2`` (``example_proto_fast_parsing.cc``, 2.21)
parses a float ``FixedLenFeature`` straight into the batch's output tensor.
Packed floats (what TensorFlow's writer makes) are cut at the feature's size,
but floats written *unpacked*, each its own fixed32 field (a valid protobuf
encoding any other writer may use), are written one after another however
many there are: more of them than the feature's size run past the output,
and the process crashes or its heap is corrupted. Every other list TensorFlow
parses (int64 and bytes, packed or not; sequence and var-len features, which
go into growable buffers) is bounded.

``check_batch`` finds such an Example before the batch goes to that kernel and
raises ``InvalidArgumentError`` instead (TensorFlow fails the batch anyway,
when it survives it). To find exactly the lists the kernel would parse, it
walks each Example as TensorFlow's parser does: tags compared byte for byte
where it uses ``ExpectTag``, protobuf's 32-bit length varints, unknown Example
fields skipped, map entries of exactly two fields, the last entry of a key
winning. It runs only on batches that go to TensorFlow (the native kernel
leaves it the unusual ones), and only for specs with a float FixedLenFeature.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fastinput.errors import InvalidArgumentError

_DELIMITED_1 = 0x0A  # field 1, length-delimited: Example.features, Features' map entry, a packed list
_FLOAT_LIST = 0x12  # Feature.float_list
_UNPACKED_FLOAT = 0x0D  # FloatList.value as one fixed32 field
_FEATURE_TAGS = (0x0A, 0x12, 0x1A)  # Feature's oneof: bytes_list, float_list, int64_list
_SIZES_BY_WIRE_TYPE = {1: 8, 5: 4}  # fixed64, fixed32


def check_batch(records: Iterable[bytes], float_widths: Mapping[bytes, int]) -> None:
    """Raise InvalidArgumentError if an Example has more unpacked float values for a float FixedLenFeature
    (key -> values per Example in ``float_widths``) than the feature holds."""
    for index, record in enumerate(records):
        entries = _entries(record)
        if entries is None:  # TensorFlow fails this Example before it parses any feature
            continue
        seen: set[bytes] = set()
        for key, value in reversed(entries):  # TensorFlow goes backwards: the last entry of a key wins
            if key not in float_widths or not value or key in seen:
                continue  # not a float FixedLenFeature, an empty Feature (missing), or an earlier duplicate
            if value[0] != _FLOAT_LIST:
                break  # a wrong or unknown list type: TensorFlow fails the Example here
            seen.add(key)
            count = _leading_unpacked_floats(value, 1)
            if count > float_widths[key]:
                raise InvalidArgumentError(
                    f"parse_example: feature {key.decode('utf-8', 'replace')!r}: example {index} has {count} "
                    f"float values, expected {float_widths[key]}"
                )


def _varint32(data: bytes, pos: int, limit: int) -> tuple[int, int] | None:
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


def _entries(record: bytes) -> list[tuple[bytes, bytes]] | None:
    """The (key, Feature bytes) map entries of an Example in order, or None where TensorFlow's parser fails it."""
    entries: list[tuple[bytes, bytes]] = []
    pos, end = 0, len(record)
    while pos < end:
        if record[pos] == _DELIMITED_1:  # Features (several, in concatenated Examples)
            read = _varint32(record, pos + 1, end)
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
    read = _varint32(record, pos, limit)
    if read is None:
        return None
    length, pos = read
    entry_limit = _push_limit(pos, length, limit)
    key = value = b""
    for _ in range(2):  # exactly two fields, key and value in either order
        read = _varint32(record, pos, entry_limit)  # protobuf's ReadTag: a varint, in as many bytes as it likes
        if read is None or read[0] not in (0x0A, 0x12):
            return None
        tag, pos = read
        read = _varint32(record, pos, entry_limit)
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
    read = _varint32(record, pos, end)  # ReadTag; a malformed one reads as 0, and the varint after it then fails too
    if read is None:
        return None
    tag, pos = read
    wire_type = tag & 7
    if wire_type == 0:
        read = _varint32(record, pos, end)
        return None if read is None else read[1]
    if wire_type in _SIZES_BY_WIRE_TYPE:
        size = _SIZES_BY_WIRE_TYPE[wire_type]
        return pos + size if end - pos >= size else None
    if wire_type == 2:
        read = _varint32(record, pos, end)
        if read is None:
            return None
        length, pos = read
        if length >= 1 << 31:  # protobuf's Skip(int) refuses a negative count and stays put
            return pos
        return min(pos + length, end)  # skipping past the end stops at the end; TensorFlow ignores that failure
    return None  # groups and invalid wire types


def _leading_unpacked_floats(feature: bytes, pos: int) -> int:
    """How many floats TensorFlow's ParseFloatList writes for the FloatList at ``feature[pos:]`` when it is
    written unpacked: the fixed32 fields in a row from its start (0 if it starts packed)."""
    read = _varint32(feature, pos, len(feature))
    if read is None:
        return 0
    length, pos = read
    limit = _push_limit(pos, length, len(feature))
    count = 0
    while pos < limit and feature[pos] == _UNPACKED_FLOAT and limit - pos >= 5:
        count += 1
        pos += 5
    return count
