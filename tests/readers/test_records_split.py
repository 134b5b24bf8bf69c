"""``_records.split`` on blocks as remote reads bring them (records of ~100 KB, megabytes a call).

``split`` finds the records first, then checks each one's data CRC and copies
it with the GIL released (from 64 KB of records a call on): these tests cover
that path, and damage found by the second step after the first went further
(``test_framing`` covers small buffers byte by byte).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fastinput.readers.framing import frame
from tests.readers.test_tfrecord import flip

_records = pytest.importorskip("fastinput.readers._records")

RNG = np.random.default_rng(11)
RECORDS = [RNG.bytes(int(n)) for n in RNG.integers(50_000, 150_000, 24)] + [b""]
BLOCK = b"".join(frame(r) for r in RECORDS)
STARTS = np.cumsum([0] + [16 + len(r) for r in RECORDS]).tolist()


def split_all(buf: bytes, step: int) -> tuple[list[bytes], int, int, int]:
    """Every record of ``buf`` through calls of ``step`` records; the last call's position, status, detail."""
    out: list[bytes] = []
    pos = 0
    while True:
        records, pos, status, detail = _records.split(buf, pos, step)
        out += records
        if status != _records.DONE or not records:
            return out, pos, status, detail


@pytest.mark.parametrize("step", [1, 3, 64])
def test_large_records_come_out_whole(step):
    assert split_all(BLOCK, step) == (RECORDS, len(BLOCK), _records.NEED_MORE, 12)


@pytest.mark.parametrize("damaged", [0, 5, len(RECORDS) - 2])
def test_a_bad_data_crc_ends_the_call_after_the_records_before_it(damaged):
    at = STARTS[damaged] + 12 + len(RECORDS[damaged]) // 2  # in the data
    records, pos, status, detail = _records.split(flip(BLOCK, at), 0, len(RECORDS))
    assert records == RECORDS[:damaged]
    assert (pos, status, detail) == (STARTS[damaged], _records.BAD_DATA_CRC, len(RECORDS[damaged]))


def test_a_bad_data_crc_is_reported_before_a_later_bad_length_crc():
    buf = flip(flip(BLOCK, STARTS[3] + 20), STARTS[6] + 2)  # record 3's data, record 6's length
    assert _records.split(buf, 0, 64) == (RECORDS[:3], STARTS[3], _records.BAD_DATA_CRC, len(RECORDS[3]))


def test_a_bad_data_crc_is_reported_before_a_later_truncation():
    buf = flip(BLOCK, STARTS[2] + 100)[:STARTS[4] + 40]
    assert _records.split(buf, 0, 64) == (RECORDS[:2], STARTS[2], _records.BAD_DATA_CRC, len(RECORDS[2]))


def test_a_bad_crc_in_the_footer_is_found():
    at = STARTS[8] - 1  # the last byte of record 7's data CRC
    assert _records.split(flip(BLOCK, at), 0, 64) == (RECORDS[:7], STARTS[7], _records.BAD_DATA_CRC, len(RECORDS[7]))


def test_threads_split_at_once():
    results: list[list[bytes]] = [[] for _ in range(4)]

    def work(index: int) -> None:
        for _ in range(5):
            results[index] = split_all(BLOCK, 7)[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result == RECORDS for result in results)
