"""TFRecord framing: the C walk (``_records``) on its own, and RecordReader's C and Python paths side by side."""

from __future__ import annotations

import struct

import google_crc32c
import numpy as np
import pytest

from fastinput.errors import DataLossError
from fastinput.readers import framing
from fastinput.readers.framing import RecordReader, frame
from tests.readers.test_tfrecord import flip

_records = pytest.importorskip("fastinput.readers._records")

RNG = np.random.default_rng(5)
RECORDS = [b"", b"x", RNG.bytes(7), RNG.bytes(30), b"", RNG.bytes(300)]
"""A few records: empty ones, some shorter than one CRC step (8 bytes); small, as the tests cut FILE everywhere."""
FILE = b"".join(frame(r) for r in RECORDS)
STARTS = np.cumsum([0] + [16 + len(r) for r in RECORDS]).tolist()
"""Byte offset of each record in FILE, then the end of FILE."""


def reference_masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(bytes(data))
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record_at(offset: int) -> int:
    """Index of the record whose framing holds byte ``offset`` of FILE."""
    return int(np.searchsorted(STARTS, offset, side="right")) - 1


# -- masked_crc32c ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("portable", [False, True])
def test_masked_crc32c_is_google_crc32c_masked(portable):
    rng = np.random.default_rng(1)
    lengths = [*range(1001), 767, 768, 769, 24_575, 24_576, 24_577, 3 * 8192 * 3 + 5, 3 << 20, 5_000_001]
    for length in lengths:
        data = rng.bytes(length)
        assert _records.masked_crc32c(data, portable=portable) == reference_masked_crc32c(data), length


def test_masked_crc32c_takes_any_buffer_at_any_alignment():
    data = np.random.default_rng(2).bytes(10_000)
    for start in range(9):
        expected = reference_masked_crc32c(data[start:])
        assert _records.masked_crc32c(memoryview(data)[start:]) == expected
        assert _records.masked_crc32c(bytearray(data[start:])) == expected
        assert _records.masked_crc32c(np.frombuffer(data, np.uint8)[start:]) == expected
    assert _records.CRC32C_IMPLEMENTATION in ("sse4.2", "slicing-by-8")


def test_python_masked_crc32c_is_the_same(monkeypatch):
    data = np.random.default_rng(3).bytes(1_000)
    native = framing.masked_crc32c(data)
    monkeypatch.setattr(framing, "_records", None)
    assert framing.masked_crc32c(data) == native == reference_masked_crc32c(data)


# -- split --------------------------------------------------------------------------------------------------


def test_split_on_a_buffer_cut_at_every_byte():
    for cut in range(len(FILE) + 1):
        records, pos, status, detail = _records.split(FILE[:cut], 0, len(RECORDS) + 1)
        whole = record_at(cut)  # records wholly before the cut
        assert records == RECORDS[:whole], cut
        assert pos == STARTS[whole] and status == _records.NEED_MORE, cut
        needed = 12 if cut - pos < 12 else 16 + len(RECORDS[whole])
        assert detail == needed, cut


def test_split_from_a_position_stops_after_max_records():
    for first in range(len(RECORDS)):
        for count in range(len(RECORDS) - first + 1):
            assert _records.split(FILE, STARTS[first], count) == (
                RECORDS[first:first + count], STARTS[first + count], _records.DONE, 0)
    assert _records.split(FILE, len(FILE), 5) == ([], len(FILE), _records.NEED_MORE, 12)
    assert _records.split(bytearray(FILE), 0, 2)[0] == RECORDS[:2]
    assert _records.split(memoryview(FILE)[STARTS[3]:], 0, 1)[0] == RECORDS[3:4]


def test_split_stops_at_a_flipped_byte_anywhere():
    for at in range(len(FILE)):
        records, pos, status, detail = _records.split(flip(FILE, at), 0, len(RECORDS))
        damaged = record_at(at)
        assert records == RECORDS[:damaged] and pos == STARTS[damaged], at
        if at - pos < 12:  # the length or its CRC
            assert (status, detail) == (_records.BAD_LENGTH_CRC, 0), at
        else:  # the data or its CRC
            assert (status, detail) == (_records.BAD_DATA_CRC, len(RECORDS[damaged])), at


@pytest.mark.parametrize("length", [1 << 50, (1 << 63) + 1, (1 << 64) - 17, (1 << 64) - 16, (1 << 64) - 1])
def test_split_on_a_huge_length_asks_for_it_exactly(length):
    header = struct.pack("<Q", length)
    buf = frame(b"ok") + header + struct.pack("<I", reference_masked_crc32c(header)) + bytes(100)
    assert _records.split(buf, 0, 5) == ([b"ok"], 18, _records.NEED_MORE, length + 16)


@pytest.mark.parametrize(("pos", "max_records"), [(-1, 1), (len(FILE) + 1, 1), (0, -1)])
def test_split_rejects_a_position_outside_the_buffer(pos, max_records):
    with pytest.raises(ValueError, match="split: need 0 <= pos <= len"):
        _records.split(FILE, pos, max_records)


# -- RecordReader: the C path and the Python fallback give the same records and errors -----------------------


class MemoryStream:
    """A ``Readable`` over bytes, giving at most ``chunk`` bytes a read; ``size`` unknown as for compressed data;
    ``reads_in_place`` as a local file (the reader reuses its buffer) or not (it walks each read's new bytes)."""

    path = "memory.tfrecord"

    def __init__(self, data: bytes, known_size: bool, chunk: int, in_place: bool) -> None:
        self.size = len(data) if known_size else None
        self.reads_in_place = in_place
        self._data, self._pos, self._chunk = data, 0, chunk

    def read(self, n: int) -> bytes:
        out = self._data[self._pos:self._pos + min(n, self._chunk)]
        self._pos += len(out)
        return out

    def read_parts(self, n: int) -> list[bytes]:
        data = self.read(n)
        return [data] if data else []

    def readinto(self, view: memoryview) -> int:
        assert self.reads_in_place
        out = self.read(len(view))
        view[:len(out)] = out
        return len(out)


def read_all(data: bytes, known_size: bool, block_size: int, chunk: int,
             in_place: bool) -> tuple[list[bytes], str | None]:
    """Every record RecordReader hands out, 3 at a time, and the message of the DataLossError it ends with."""
    reader = RecordReader(MemoryStream(data, known_size, chunk, in_place), block_size, compressed=not known_size)
    out: list[bytes] = []
    while True:
        count = len(out)
        try:
            reader.read_into(out, 3)
        except DataLossError as exc:
            return out, str(exc)
        if len(out) == count:
            return out, None


READS = [(True, 4096, 4096), (True, 13, 13), (False, 1, 1), (False, 64, 29)]
"""(size known, block size, largest read the stream gives): one big read, reads that cut records, odd ones."""


def read_both_ways(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[list[bytes], str | None]:
    """What the C path reads from ``data``, after checking that the Python path reads the same in every READS way,
    and so does reading into the reader's reused buffer (a local file) and walking new bytes (remote data)."""
    results = []
    for way in READS:
        native = read_all(data, *way, in_place=True)
        assert read_all(data, *way, in_place=False) == native
        with monkeypatch.context() as patch:
            patch.setattr(framing, "_records", None)
            assert read_all(data, *way, in_place=True) == native
            assert read_all(data, *way, in_place=False) == native
        results.append(native)
    return results[0]


def test_reader_on_a_file_cut_at_every_byte(monkeypatch):
    for cut in range(len(FILE) + 1):
        records, error = read_both_ways(FILE[:cut], monkeypatch)
        whole = record_at(cut)
        assert records == RECORDS[:whole], cut
        assert (error is None) == (cut == STARTS[whole]), cut
        if error is not None:
            assert f"truncated record at offset {STARTS[whole]}" in error, cut


def test_reader_on_a_file_with_a_flipped_byte_anywhere(monkeypatch):
    for at in range(len(FILE)):
        records, error = read_both_ways(flip(FILE, at), monkeypatch)
        damaged = record_at(at)
        assert records == RECORDS[:damaged], at
        assert f"corrupted record at offset {STARTS[damaged]}" in error, at
