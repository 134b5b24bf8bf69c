"""``_records.split`` over a list of buffers (a remote response in the parts it arrived in) walks them as if joined.

For every way to cut a small file into parts (empty parts too), and for every
flipped byte of it, the walk over the parts gives what the walk over the joined
bytes gives: the same records, stopping point, status and detail. So a record,
header or footer that straddles parts comes out whole, or fails its CRC, alike.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fastinput.readers.framing import frame

_records = pytest.importorskip("fastinput.readers._records")

RECORDS = [b"", b"x", bytes(range(7)), bytes(range(30)), b"abc"]
FILE = b"".join(frame(r) for r in RECORDS)


def cut(data: bytes, points: tuple[int, ...]) -> list[bytes]:
    """``data`` cut at ``points`` (sorted, repeats give empty parts)."""
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def test_every_two_cuts_walk_as_the_joined_bytes():
    for points in itertools.combinations_with_replacement(range(len(FILE) + 1), 2):
        parts = cut(FILE, points)
        for pos in (0, 12, 16):  # the first record, inside it (a bad header), the second
            for max_records in (1, 2, 100):
                assert _records.split(parts, pos, max_records) == _records.split(FILE, pos, max_records), (points, pos)


def test_a_file_cut_short_needs_the_same_bytes_more():
    for end in range(len(FILE) + 1):
        data = FILE[:end]
        for point in range(end + 1):
            assert _records.split(cut(data, (point,)), 0, 100) == _records.split(data, 0, 100), (end, point)


def test_a_flipped_byte_anywhere_is_found_across_parts():
    rng = np.random.default_rng(5)
    for at in range(len(FILE)):
        damaged = bytearray(FILE)
        damaged[at] ^= 0x40
        damaged = bytes(damaged)
        for _ in range(20):
            points = tuple(sorted(int(p) for p in rng.integers(0, len(FILE) + 1, size=3)))
            assert _records.split(cut(damaged, points), 0, 100) == _records.split(damaged, 0, 100), (at, points)


def test_large_records_across_many_parts_and_views():
    """Records past the size from which the copies run without the GIL, in parts of odd sizes, some memoryviews."""
    rng = np.random.default_rng(6)
    records = [rng.bytes(int(size)) for size in rng.integers(0, 300_000, size=12)]
    data = b"".join(frame(r) for r in records)
    points = tuple(sorted(int(p) for p in rng.integers(0, len(data), size=40)))
    parts = [memoryview(part) if i % 2 else part for i, part in enumerate(cut(data, points))]
    assert _records.split(parts, 0, 100) == (records, len(data), _records.NEED_MORE, 12)
    assert _records.split(parts, 0, 5) == (records[:5], sum(len(r) + 16 for r in records[:5]), _records.DONE, 0)


def test_no_parts_need_a_header():
    assert _records.split([], 0, 10) == ([], 0, _records.NEED_MORE, 12)


def test_a_part_that_is_not_bytes_like_is_refused():
    with pytest.raises(TypeError):
        _records.split([FILE, "text"], 0, 10)


def test_a_position_past_the_parts_is_refused():
    with pytest.raises(ValueError, match="split: need 0 <= pos <= len"):
        _records.split(cut(FILE, (10,)), len(FILE) + 1, 1)
