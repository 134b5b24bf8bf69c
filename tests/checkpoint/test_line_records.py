"""Checkpointing TextLineDataset and FixedLengthRecordDataset: saved at every position (errors included) and
restored in a fresh iterator, the rest of the run is the same; a state is the byte offset of the next record."""

from __future__ import annotations

import gzip

import pytest

import fastinput as fi
from tests.checkpoint.test_seq import check_every_cut, check_resume


def _write(path, data: bytes, compression: str) -> str:
    path.write_bytes(gzip.compress(data) if compression == "GZIP" else data)
    return str(path)


@pytest.fixture(params=["", "GZIP"])
def compression(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("num_parallel_reads", [None, 2])
def test_text_lines_resume_at_every_position(tmp_path, compression, num_parallel_reads):
    files = [_write(tmp_path / f"{i}.txt", data, compression)
             for i, data in enumerate([b"a\r\nbb\n\nccc", b"", b"".join(b"line %d\n" % j for j in range(9))])]
    missing = str(tmp_path / "missing.txt")  # an error in its place: a restore meets it again
    check_every_cut(fi.TextLineDataset(files[:2] + [missing] + files[2:], compression_type=compression,
                                       num_parallel_reads=num_parallel_reads))


@pytest.mark.parametrize("num_parallel_reads", [None, 2])
def test_fixed_length_records_resume_at_every_position(tmp_path, compression, num_parallel_reads):
    files = [_write(tmp_path / f"{i}.bin", b"HDR" + bytes(range(i, i + 4 * n)) + b"F", compression)
             for i, n in enumerate([5, 0, 7])]
    ragged = _write(tmp_path / "ragged.bin", b"HDR" + b"x" * 9 + b"F", compression)  # ends in an error
    check_every_cut(fi.FixedLengthRecordDataset(files[:1] + [ragged] + files[1:], 4, 3, 1,
                                                compression_type=compression, num_parallel_reads=num_parallel_reads))


def test_a_state_is_the_offset_of_the_next_record(tmp_path):
    path = _write(tmp_path / "a.bin", b"HDR" + b"0123456789ab" + b"F", "")
    state = check_resume(fi.FixedLengthRecordDataset(path, 4, 3, 1), 2)
    assert '"offset": 11' in str(state).replace("'", '"')
