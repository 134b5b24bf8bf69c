"""fi.FixedLengthRecordDataset against tf.data.FixedLengthRecordDataset on the same files: headers and footers,
bodies that are not whole records, compression, parallel reads, remote stores, arguments."""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import DataLossError, InvalidArgumentError, NotFoundError
from fastinput.readers.file_records import RECORD_SPEC
from fastinput.readers.fixed_length import FixedReader
from tests.conformance.oracle import canonical_spec
from tests.helpers import fastinput_threads
from tests.readers.line_oracle import Trickle, fi_read, tf_read, write

RECORD = 7


def body(index: int, records: int) -> bytes:
    rng = np.random.default_rng(index)
    return rng.bytes(records * RECORD)


def make_files(tmp_path, compression: str, header: int, footer: int) -> list[str]:
    return [write(tmp_path / f"part-{i}.bin", b"H" * header + body(i, n) + b"F" * footer, compression)
            for i, n in enumerate([0, 1, 50, 3000])]


def tf_records(files: list[str], header: int = 0, footer: int = 0, compression: str = "",
               num_parallel_reads: int | None = None, record_bytes: int = RECORD) -> tuple[list[bytes], str | None]:
    return tf_read(lambda tf: tf.data.FixedLengthRecordDataset(
        files, record_bytes, header_bytes=header, footer_bytes=footer, compression_type=compression,
        num_parallel_reads=None if num_parallel_reads is None
        else tf.data.AUTOTUNE if num_parallel_reads == fi.AUTOTUNE else num_parallel_reads))


@pytest.mark.parametrize("num_parallel_reads", [None, 3, fi.AUTOTUNE])
@pytest.mark.parametrize("header,footer", [(0, 0), (5, 0), (0, 9), (100, 3)])
@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
def test_same_records_as_tf_data(tmp_path, compression, header, footer, num_parallel_reads):
    files = make_files(tmp_path, compression, header, footer)
    ds = fi.FixedLengthRecordDataset(files, RECORD, header_bytes=header, footer_bytes=footer,
                                     compression_type=compression, num_parallel_reads=num_parallel_reads)
    expected, error = tf_records(files, header, footer, compression, num_parallel_reads)
    assert error is None and len(expected) == 3051
    records = list(ds)
    assert records == expected and all(type(r) is bytes for r in records)


@pytest.mark.parametrize("buffer_size", [0, 1, 8, 4096])
@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_any_buffer_size_reads_the_same(tmp_path, compression, buffer_size):
    files = make_files(tmp_path, compression, 3, 2)
    ds = fi.FixedLengthRecordDataset(files, RECORD, 3, 2, buffer_size=buffer_size, compression_type=compression)
    assert list(ds) == tf_records(files, 3, 2, compression)[0]


@pytest.mark.parametrize("data,tf_kind", [(b"HH" + b"x" * 10 + b"FFF", "InvalidArgumentError"),
                                          (b"HHx", "InvalidArgumentError"),
                                          (b"H", "InternalError")],  # shorter than the header: README
                         ids=["ragged", "short", "tiny"])
def test_uncompressed_body_that_is_not_whole_records_fails_before_any_record(tmp_path, data, tf_kind):
    path = write(tmp_path / "bad.bin", data)
    good = write(tmp_path / "good.bin", b"HH" + b"abc" * 4 + b"FFF")
    records, error = fi_read(fi.FixedLengthRecordDataset([good, path, good], 3, 2, 3))
    tf_records_, tf_error = tf_records([good, path, good], 2, 3, record_bytes=3)
    assert isinstance(error, InvalidArgumentError) and path in str(error) and "3-byte records" in str(error)
    assert tf_error == tf_kind and records == tf_records_ == [b"abc"] * 4


def test_compressed_body_that_is_not_whole_records_fails_after_its_whole_records(tmp_path):
    path = write(tmp_path / "bad.gz", b"HH" + b"abcdefghij" + b"FFF", "GZIP")
    records, error = fi_read(fi.FixedLengthRecordDataset(path, 3, 2, 3, compression_type="GZIP"))
    tf_records_, tf_error = tf_records([path], 2, 3, "GZIP", record_bytes=3)
    assert records == tf_records_ == [b"abc", b"def", b"ghi"]
    assert isinstance(error, DataLossError) and tf_error == "DataLossError"
    assert error.path == path and error.offset == 11 and "body of 10 bytes" in str(error)
    # After the damaged file the next one is read, as in tf.data.
    good = write(tmp_path / "good.gz", b"HH" + b"xyz" + b"FFF", "GZIP")
    with iter(fi.FixedLengthRecordDataset([path, good], 3, 2, 3, compression_type="GZIP")) as it:
        assert [next(it) for _ in range(3)] == [b"abc", b"def", b"ghi"]
        with pytest.raises(DataLossError):
            next(it)
        assert list(it) == [b"xyz"]


def test_truncated_gzip_raises_data_loss(tmp_path):
    whole = write(tmp_path / "whole.gz", body(1, 5000), "GZIP")
    cut = tmp_path / "cut.gz"
    cut.write_bytes(open(whole, "rb").read()[:-100])
    records, error = fi_read(fi.FixedLengthRecordDataset(str(cut), RECORD, compression_type="GZIP"))
    assert isinstance(error, DataLossError) and str(cut) in str(error)
    assert records == [body(1, 5000)[i * RECORD:(i + 1) * RECORD] for i in range(len(records))]


@pytest.mark.parametrize("step", [1, 2, 6, 7, 8, 100])
def test_records_straddling_reads_at_every_position(step):
    data = b"HDR" + body(2, 40) + b"FOOT"
    reader = FixedReader(Trickle(data[3:], step), RECORD, 3, 4, 0, 3)
    out: list[bytes] = []
    while True:
        before = len(out)
        reader.read_into(out, 3)
        if len(out) == before:
            break
    assert out == [body(2, 40)[i:i + RECORD] for i in range(0, 40 * RECORD, RECORD)]
    assert reader.offset == len(data) - 4


def test_empty_file_and_missing_file(tmp_path):
    empty = write(tmp_path / "empty.bin", b"")
    assert list(fi.FixedLengthRecordDataset(empty, 4)) == tf_records([empty], record_bytes=4)[0] == []
    missing = str(tmp_path / "missing.bin")
    records, error = fi_read(fi.FixedLengthRecordDataset(missing, 4))
    assert isinstance(error, NotFoundError) and missing in str(error) and records == []


def test_spec_string_and_arguments(tmp_path):
    import tensorflow as tf

    files = make_files(tmp_path, "", 0, 0)
    ds = fi.FixedLengthRecordDataset(files, RECORD)
    assert ds.element_spec == RECORD_SPEC
    assert canonical_spec(ds.element_spec) == canonical_spec(tf.data.FixedLengthRecordDataset(files, RECORD)
                                                              .element_spec)
    assert str(fi.FixedLengthRecordDataset("a.bin", 4, 2, 1, num_parallel_reads=2)) == (
        "FixedLengthRecordDataset('a.bin', record_bytes=4, header_bytes=2, footer_bytes=1, num_parallel_reads=2)")
    for kwargs, name in [({"record_bytes": 0}, "record_bytes"), ({"record_bytes": 4, "header_bytes": -1},
                         "header_bytes"), ({"record_bytes": 4, "footer_bytes": "x"}, "footer_bytes"),
                         ({"record_bytes": 4, "compression_type": "LZ4"}, "compression_type"),
                         ({"record_bytes": 4, "num_parallel_reads": -5}, "num_parallel_reads")]:
        with pytest.raises(InvalidArgumentError, match=name):
            fi.FixedLengthRecordDataset("a.bin", **kwargs)


def test_no_threads_left_behind(tmp_path):
    files = make_files(tmp_path, "GZIP", 1, 1)
    with iter(fi.FixedLengthRecordDataset(files, RECORD, 1, 1, compression_type="GZIP", num_parallel_reads=2)) as it:
        next(it)
    assert fastinput_threads() == []


@pytest.mark.slow
@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_remote_files_read_the_same_as_local_ones(store, tmp_path, compression):
    local = make_files(tmp_path, compression, 4, 2)
    bucket = f"fixedlength-{compression.lower() or 'plain'}"
    store.make_bucket(bucket)
    remote = [store.upload(path, bucket, f"{i}.bin") for i, path in enumerate(local)]
    ds = fi.FixedLengthRecordDataset(remote, RECORD, 4, 2, compression_type=compression, num_parallel_reads=2,
                                     storage_options=store.storage_options)
    assert list(ds) == tf_records(local, 4, 2, compression, 2)[0]
