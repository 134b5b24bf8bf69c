"""fi.TextLineDataset against tf.data.TextLineDataset on the same files: line endings, empty and unterminated
files, compression, parallel reads, damaged files, remote stores, arguments."""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import DataLossError, InvalidArgumentError, NotFoundError
from fastinput.readers.file_records import RECORD_SPEC
from fastinput.readers.text import LineReader
from tests.conformance.oracle import canonical_spec
from tests.helpers import fastinput_threads
from tests.readers.line_oracle import Trickle, fi_read, tf_read, write

PARALLEL_READS = [None, 1, 3, fi.AUTOTUNE]

TEXTS = {
    "lf": b"alpha\nbeta\n\ngamma\n",
    "crlf": b"alpha\r\nbeta\r\n\r\ngamma\r\n",
    "no_trailing_newline": b"one\ntwo\nthree",
    "cr_inside": b"a\rb\nc\r\r\nd\r",
    "empty": b"",
    "one_newline": b"\n",
    "blank_lines": b"\n\n\n",
    "unicode": "zürich\nкиев\n東京".encode(),
    "long": b"".join(b"line %d %s\n" % (i, b"x" * (i % 97)) for i in range(5000)),
    "line_longer_than_reads": b"a\r\n" + b"x\ry" * 100_000 + b"\nend",
}


@pytest.fixture(params=["", "GZIP", "ZLIB"])
def compression(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def text_files(tmp_path, compression) -> list[str]:
    return [write(tmp_path / f"{name}.txt", data, compression) for name, data in TEXTS.items()]


def tf_lines(files: list[str], compression: str = "", num_parallel_reads: int | None = None) -> list[bytes]:
    lines, error = tf_read(lambda tf: tf.data.TextLineDataset(
        files, compression_type=compression, num_parallel_reads=None if num_parallel_reads is None
        else tf.data.AUTOTUNE if num_parallel_reads == fi.AUTOTUNE else num_parallel_reads))
    assert error is None
    return lines


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_each_kind_of_file_reads_as_tf_data_reads_it(tmp_path, compression, name):
    path = write(tmp_path / "f.txt", TEXTS[name], compression)
    lines = list(fi.TextLineDataset(path, compression_type=compression))
    assert lines == tf_lines([path], compression)
    assert all(type(line) is bytes for line in lines)


@pytest.mark.parametrize("num_parallel_reads", PARALLEL_READS)
def test_many_files_in_tf_data_order(text_files, compression, num_parallel_reads):
    ds = fi.TextLineDataset(text_files, compression_type=compression, num_parallel_reads=num_parallel_reads)
    expected = tf_lines(text_files, compression, num_parallel_reads)
    assert list(ds) == expected and len(expected) > 5000


@pytest.mark.parametrize("buffer_size", [0, 1, 7, 4096, 1 << 22])
def test_any_buffer_size_reads_the_same(text_files, compression, buffer_size):
    ds = fi.TextLineDataset(text_files, compression_type=compression, buffer_size=buffer_size)
    assert list(ds) == tf_lines(text_files, compression)


@pytest.mark.parametrize("step", [1, 2, 3, 5, 64])
def test_lines_straddling_reads_at_every_position(tmp_path, step):
    data = b"".join(b"%d\r\n" % i * (i % 5) for i in range(200)) + b"tail\r"
    expected = tf_lines([write(tmp_path / "s.txt", data)])
    reader = LineReader(Trickle(data, step), 0, 0)
    out: list[bytes] = []
    offsets = []
    while True:
        before = len(out)
        reader.read_into(out, 7)
        offsets.append(reader.offset)
        if len(out) == before:
            break
    assert out == expected and reader.offset == len(data) and offsets == sorted(offsets)


def test_filenames_forms_and_spec(text_files):
    expected = tf_lines(text_files)
    for form in [text_files, tuple(text_files), [f.encode() for f in text_files], np.array(text_files),
                 fi.Dataset.from_tensor_slices(text_files)]:
        assert list(fi.TextLineDataset(form)) == expected
    assert list(fi.TextLineDataset([])) == []
    import tensorflow as tf

    spec = fi.TextLineDataset(text_files).element_spec
    assert spec == RECORD_SPEC
    assert canonical_spec(spec) == canonical_spec(tf.data.TextLineDataset(text_files).element_spec)


def test_string_reads_like_the_call(tmp_path):
    assert str(fi.TextLineDataset("a.txt")) == "TextLineDataset('a.txt')"
    ds = fi.TextLineDataset(["a.txt", "b.txt"], compression_type="GZIP", num_parallel_reads=fi.AUTOTUNE)
    assert str(ds) == "TextLineDataset(<2 files>, compression_type='GZIP', num_parallel_reads=AUTOTUNE)"


@pytest.mark.parametrize("num_parallel_reads", [None, 2])
def test_missing_file_raises_not_found_after_the_lines_before_it(tmp_path, num_parallel_reads):
    good = write(tmp_path / "good.txt", b"a\nb\n")
    missing = str(tmp_path / "missing.txt")
    lines, error = fi_read(fi.TextLineDataset([good, missing], num_parallel_reads=num_parallel_reads))
    tf_lines_, tf_error = tf_read(lambda tf: tf.data.TextLineDataset([good, missing],
                                                                     num_parallel_reads=num_parallel_reads))
    assert isinstance(error, NotFoundError) and missing in str(error) and tf_error == "NotFoundError"
    assert lines == tf_lines_ == [b"a", b"b"][:1 if num_parallel_reads else 2]


def test_damaged_gzip_raises_data_loss_after_the_lines_before_it(tmp_path):
    data = b"".join(b"line %d\n" % i for i in range(20000))
    whole = write(tmp_path / "whole.gz", data, "GZIP")
    cut = tmp_path / "cut.gz"
    cut.write_bytes(open(whole, "rb").read()[:-5000])
    lines, error = fi_read(fi.TextLineDataset(str(cut), compression_type="GZIP"))
    assert isinstance(error, DataLossError) and str(cut) in str(error)
    tf_lines_, tf_error = tf_read(lambda tf: tf.data.TextLineDataset(str(cut), compression_type="GZIP"))
    # tf.data ends quietly at the cut (README: damaged files); the lines before it are the same.
    assert tf_error is None and lines == tf_lines_[:len(lines)] and len(lines) >= len(tf_lines_) - 1
    corrupt = bytearray(open(whole, "rb").read())
    corrupt[len(corrupt) // 2:len(corrupt) // 2 + 64] = b"\xff" * 64
    lines, error = fi_read(fi.TextLineDataset(write(tmp_path / "bad.gz", bytes(corrupt)), compression_type="GZIP"))
    assert isinstance(error, DataLossError) and 0 < len(lines) < 20000
    intact = next(i for i, line in enumerate(lines + [None]) if line != b"line %d" % i)
    assert intact > 1000  # the lines before the damage (inflating garbage may give a few more before zlib fails)


def test_bad_arguments_raise_at_construction():
    with pytest.raises(InvalidArgumentError, match="compression_type"):
        fi.TextLineDataset("a.txt", compression_type="BZ2")
    with pytest.raises(InvalidArgumentError, match="buffer_size"):
        fi.TextLineDataset("a.txt", buffer_size=-1)
    with pytest.raises(InvalidArgumentError, match="num_parallel_reads"):
        fi.TextLineDataset("a.txt", num_parallel_reads=0)
    with pytest.raises(InvalidArgumentError, match="filenames"):
        fi.TextLineDataset(3)
    with pytest.raises(InvalidArgumentError, match="storage_options"):
        fi.TextLineDataset("a.txt", storage_options="x")


def test_no_threads_left_behind(text_files):
    ds = fi.TextLineDataset(text_files, num_parallel_reads=3)
    with iter(ds) as it:
        next(it)
    assert fastinput_threads() == []


@pytest.mark.slow
@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_remote_files_read_the_same_as_local_ones(store, tmp_path, compression):
    local = [write(tmp_path / f"{name}.txt", data, compression) for name, data in TEXTS.items()]
    bucket = f"textlines-{compression.lower() or 'plain'}"
    store.make_bucket(bucket)
    remote = [store.upload(path, bucket, f"{i}.txt") for i, path in enumerate(local)]
    ds = fi.TextLineDataset(remote, compression_type=compression, num_parallel_reads=2,
                            storage_options=store.storage_options)
    assert list(ds) == tf_lines(local, compression, 2)
    missing = f"{store.scheme}://{bucket}/no-such-object.txt"
    _, error = fi_read(fi.TextLineDataset(missing, storage_options=store.storage_options))
    assert isinstance(error, NotFoundError) and missing in str(error)
