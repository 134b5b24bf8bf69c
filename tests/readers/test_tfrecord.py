"""fi.TFRecordDataset against tf.data.TFRecordDataset on files TensorFlow wrote, and on damaged files."""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import DataLossError, InvalidArgumentError, NotFoundError
from fastinput.readers import framing as framing_module
from fastinput.readers.file_records import RECORD_SPEC
from fastinput.readers.framing import frame, masked_crc32c
from tests.helpers import fastinput_threads, wait_for_fastinput_threads
from tests.readers.conftest import RECORD_SIZES

# Most files these tests read are written by TensorFlow's TFRecordWriter (the oracle): skipped without it.
pytest.importorskip("tensorflow", reason="TensorFlow is not installed")

PARALLEL_READS = [None, 1, 4, fi.AUTOTUNE]


@pytest.fixture(params=["C", "Python"])
def framing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each framing implementation in turn: the C extension (skipped if not built), then the Python fallback."""
    if request.param == "C" and framing_module._records is None:
        pytest.skip("fastinput.readers._records is not built")
    if request.param == "Python":
        monkeypatch.setattr(framing_module, "_records", None)
    return request.param


def read_until_error(ds: fi.Dataset) -> tuple[list[bytes], BaseException | None]:
    """Every record up to the first error, and that error (None if the dataset ended cleanly)."""
    records: list[bytes] = []
    with iter(ds) as it:
        try:
            for record in it:
                records.append(record)
        except Exception as exc:
            return records, exc
    return records, None


def tf_read_until_error(path: str, compression: str = "") -> tuple[list[bytes], int | None]:
    """tf.data's records up to its DataLossError, and the byte offset its message names (None: no error)."""
    import tensorflow as tf

    records: list[bytes] = []
    try:
        for record in tf.data.TFRecordDataset(path, compression_type=compression).as_numpy_iterator():
            records.append(record)
    except tf.errors.DataLossError as exc:
        return records, int(re.search(r"record at (\d+)", str(exc)).group(1))
    return records, None


@pytest.mark.parametrize("num_parallel_reads", PARALLEL_READS)
@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
def test_same_records_in_same_order_as_tf_data(corpus, framing, compression, num_parallel_reads):
    files = corpus.files(compression)
    expected = corpus.tf_data(files, compression, num_parallel_reads)
    records = list(fi.TFRecordDataset(files, compression_type=compression or None,
                                      num_parallel_reads=num_parallel_reads))
    assert len(records) == len(expected) == sum(len(corpus.records(i)) for i in range(len(files)))
    assert all(type(r) is bytes for r in records)
    assert records == expected


def test_records_are_what_was_written_including_empty_and_large(corpus, framing):
    files = corpus.files()
    for index, path in enumerate(files):
        records = list(fi.TFRecordDataset(path))
        assert records == corpus.records(index)
    sizes = [len(r) for r in fi.TFRecordDataset(files)]
    assert 0 in sizes and max(sizes) > 1 << 20


@pytest.mark.parametrize("buffer_size", [0, 1, 13, 4096, 1 << 22])
@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_any_buffer_size_reads_the_same(corpus, framing, compression, buffer_size):
    files = corpus.files(compression)
    ds = fi.TFRecordDataset(files, compression_type=compression, buffer_size=buffer_size)
    assert list(ds) == corpus.tf_data(files, compression)


def test_filenames_forms(corpus, tmp_path):
    files = corpus.files()
    expected = corpus.tf_data(files)
    pattern = str(Path(files[0]).parent / "part-*[0-9].tfrecord")
    forms = [
        files,
        tuple(files),
        [f.encode() for f in files],
        [Path(f) for f in files],
        np.array(files),
        fi.Dataset.from_tensor_slices(files),
        fi.Dataset.list_files(pattern, shuffle=False),
    ]
    for form in forms:
        assert list(fi.TFRecordDataset(form)) == expected, type(form)
    assert list(fi.TFRecordDataset(files[0])) == corpus.records(0)
    assert list(fi.TFRecordDataset(files[0].encode())) == corpus.records(0)
    assert list(fi.TFRecordDataset([])) == []


@pytest.mark.parametrize("num_parallel_reads", [None, 2, fi.AUTOTUNE])
def test_tfrecord_dataset_is_one_stage_reading_its_files_with_an_interleave(corpus, num_parallel_reads):
    """It composes an interleave (not subclasses one): the running pipeline shows it as itself, over its file names,
    and the file names it reads are its input as the pipeline runs it (after any rewrite of that input)."""
    from fastinput.ops.interleave import InterleaveDataset

    files = corpus.files()
    names = fi.Dataset.from_tensor_slices(files).map(lambda name: name).map(lambda name: name)  # fused when run
    ds = fi.TFRecordDataset(names, num_parallel_reads=num_parallel_reads)
    assert not isinstance(ds, InterleaveDataset)
    with iter(ds) as it:
        assert next(it) == corpus.tf_data(files, num_parallel_reads=num_parallel_reads)[0]
        stages = it.stats()
    assert stages[0].name == str(ds) and str(ds).startswith("TFRecordDataset(map(")
    assert stages[1].name.startswith("map(") and stages[2].name.startswith("from_tensor_slices")
    assert len(stages) == 3  # the two maps ran fused, inside the stage's interleave
    assert ds.element_spec == RECORD_SPEC


def test_filenames_as_tf_tensor(corpus):
    import tensorflow as tf

    files = corpus.files()
    assert list(fi.TFRecordDataset(tf.constant(files))) == corpus.tf_data(files)


def test_nondeterministic_parallel_reads_give_the_same_records(corpus):
    files = corpus.files()
    ds = fi.TFRecordDataset(files, num_parallel_reads=3).with_options(fi.Options(deterministic=False))
    assert sorted(ds) == sorted(corpus.tf_data(files))


def test_empty_files_yield_nothing(tmp_path, corpus):
    empty = tmp_path / "empty.tfrecord"
    empty.write_bytes(b"")
    for compression in ["", "GZIP", "ZLIB"]:
        assert list(fi.TFRecordDataset(str(empty), compression_type=compression)) == []
    written_empty = corpus.files("GZIP")[2]  # TensorFlow writes a gzip header even for no records
    assert Path(written_empty).stat().st_size > 0
    assert list(fi.TFRecordDataset(written_empty, compression_type="GZIP")) == []


@pytest.mark.parametrize("num_parallel_reads", [None, 2])
def test_missing_file_raises_not_found_after_the_records_before_it(corpus, tmp_path, num_parallel_reads):
    missing = str(tmp_path / "no-such-file.tfrecord")
    good = corpus.files()[1]
    records, error = read_until_error(fi.TFRecordDataset([good, missing], num_parallel_reads=num_parallel_reads))
    assert isinstance(error, NotFoundError) and isinstance(error, FileNotFoundError)
    assert missing in str(error)
    if num_parallel_reads is None:
        assert records == corpus.records(1)


def record_offsets(records: list[bytes]) -> list[int]:
    """Byte offset of each record in an uncompressed TFRecord file."""
    offsets, position = [], 0
    for record in records:
        offsets.append(position)
        position += 16 + len(record)
    return offsets


DAMAGES = {
    # name: (record index, how to damage the file at that record's offset, where tf.data reports it)
    "flipped data byte": (3, lambda data, at: flip(data, at + 12 + 50), "data"),
    "flipped length byte": (6, lambda data, at: flip(data, at + 2), "record"),
    "flipped length CRC": (6, lambda data, at: flip(data, at + 9), "record"),
    "flipped data CRC": (4, lambda data, at: flip(data, at + 12 + 1000 + 2), "data"),
    "cut in data": (6, lambda data, at: data[:at + 12 + 70_000], "record"),
    "cut in data CRC": (4, lambda data, at: data[:at + 12 + 1000 + 3], "record"),
    "cut in header": (5, lambda data, at: data[:at + 5], None),  # tf.data silently stops there
}


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:]


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_file_raises_data_loss_after_the_good_records(corpus, framing, tmp_path, damage):
    index, damage_at, tf_reports = DAMAGES[damage]
    written = corpus.records(0)
    offset = record_offsets(written)[index]
    path = tmp_path / "damaged.tfrecord"
    path.write_bytes(damage_at(Path(corpus.files()[0]).read_bytes(), offset))

    tf_records, tf_offset = tf_read_until_error(str(path))
    records, error = read_until_error(fi.TFRecordDataset(str(path)))

    assert isinstance(error, DataLossError) and isinstance(error, OSError)
    assert error.path == str(path) and error.offset == offset
    assert str(path) in str(error) and f"record at offset {offset}:" in str(error)
    assert records == tf_records == written[:index]
    assert tf_offset == {"record": offset, "data": offset + 12, None: None}[tf_reports]
    if tf_reports == "data":
        assert f"from offset {offset + 12}" in str(error)


def test_data_loss_then_nothing_more_from_that_file_and_the_next_file_is_read(corpus, framing, tmp_path):
    written = corpus.records(0)
    offset = record_offsets(written)[5]
    damaged = tmp_path / "damaged.tfrecord"
    damaged.write_bytes(flip(Path(corpus.files()[0]).read_bytes(), offset + 12 + 7))
    with iter(fi.TFRecordDataset([str(damaged), corpus.files()[1]])) as it:
        before = [next(it) for _ in range(5)]
        with pytest.raises(DataLossError):
            next(it)
        after = list(it)
    assert before == written[:5]
    assert after == corpus.records(1)


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_truncated_compressed_file(corpus, framing, tmp_path, compression):
    source = Path(corpus.files(compression)[0]).read_bytes()
    path = tmp_path / f"cut.{compression.lower()}"
    path.write_bytes(source[:len(source) // 2])

    tf_records, tf_offset = tf_read_until_error(str(path), compression)
    records, error = read_until_error(fi.TFRecordDataset(str(path), compression_type=compression))

    assert isinstance(error, DataLossError)
    assert error.path == str(path) and error.offset == tf_offset
    assert str(path) in str(error) and f"offset {tf_offset} of the decompressed data" in str(error)
    assert records == tf_records and 0 < len(records) < len(corpus.records(0))


def test_corrupt_compressed_data(corpus, framing, tmp_path):
    source = Path(corpus.files("GZIP")[0]).read_bytes()
    path = tmp_path / "corrupt.gz"
    path.write_bytes(source[:200] + bytes(1000) + source[1200:])
    records, error = read_until_error(fi.TFRecordDataset(str(path), compression_type="GZIP"))
    assert isinstance(error, DataLossError)
    assert str(path) in str(error) and f"offset {error.offset} " in str(error)
    assert records == corpus.records(0)[:len(records)]


@pytest.mark.timeout(60)  # the bug this guards against was a loop that never ended
@pytest.mark.parametrize("buffer_size", [None, 100])
def test_multi_member_gzip_gives_every_member_like_tf_data(corpus, framing, tmp_path, buffer_size):
    """``cat a.gz b.gz`` is a valid gzip file; tf.data reads every member. The members here span many reads
    (a 1.5 MB record) and include one of no records (TensorFlow writes a gzip header even then)."""
    files = corpus.files("GZIP")
    path = tmp_path / "members.gz"
    path.write_bytes(b"".join(Path(files[i]).read_bytes() for i in [0, 2, 1, 3]))
    records = list(fi.TFRecordDataset(str(path), compression_type="GZIP", buffer_size=buffer_size))
    assert records == corpus.tf_data([str(path)], "GZIP")
    assert records == [r for i in [0, 2, 1, 3] for r in corpus.records(i)]


@pytest.mark.timeout(60)
def test_concatenated_zlib_streams_are_all_read(corpus, framing, tmp_path):
    """A deliberate difference: tf.data stops at the end of the first ZLIB stream and drops the rest without a
    word; fastinput reads on, as it does gzip members (and as ``zlib.decompressobj`` allows)."""
    files = corpus.files("ZLIB")
    path = tmp_path / "streams.zlib"
    path.write_bytes(Path(files[1]).read_bytes() + Path(files[0]).read_bytes())
    assert list(fi.TFRecordDataset(str(path), compression_type="ZLIB")) == corpus.records(1) + corpus.records(0)
    assert corpus.tf_data([str(path)], "ZLIB") == corpus.records(1)


@pytest.mark.timeout(60)
def test_an_empty_gzip_member_does_not_end_the_file(corpus, framing, tmp_path):
    """A deliberate difference: tf.data stops reading at a gzip member with nothing in it and drops every
    member after it without a word; fastinput reads on, as ``gzip -d`` does."""
    first, second = corpus.records(1)[:3], corpus.records(1)[3:5]
    path = tmp_path / "empty-member.gz"
    path.write_bytes(b"".join(gzip.compress(b"".join(frame(r) for r in part)) for part in [first, [], second]))
    assert list(fi.TFRecordDataset(str(path), compression_type="GZIP")) == first + second
    assert corpus.tf_data([str(path)], "GZIP") == first


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_every_record_before_damage_in_a_compressed_read_comes_out(framing, tmp_path, compression):
    """zlib fails a whole decompress call and drops its output; the records inflated before the damage in
    that call still come out, then DataLossError (tf.data hands out some of them, or none: the ones it had
    inflated into its buffer are lost). The data is stored (level 0), and the second stored block's length
    check is broken: zlib fails there, after the first block's records."""
    records = [bytes([i]) * 2000 for i in range(60)]
    data = b"".join(frame(r) for r in records)
    compressed = bytearray(gzip.compress(data, 0) if compression == "GZIP" else zlib.compress(data, 0))
    header = 10 if compression == "GZIP" else 2
    first_block = struct.unpack_from("<H", compressed, header + 1)[0]  # a stored block: 1 byte, LEN, NLEN, data
    compressed[header + 5 + first_block + 3] ^= 0xFF  # the second block's NLEN, the ones' complement of LEN
    path = tmp_path / "damaged"
    path.write_bytes(bytes(compressed))
    got, error = read_until_error(fi.TFRecordDataset(str(path), compression_type=compression))
    import tensorflow as tf

    expected = []
    with pytest.raises(tf.errors.DataLossError):
        for record in tf.data.TFRecordDataset(str(path), compression_type=compression).as_numpy_iterator():
            expected.append(record)
    assert isinstance(error, DataLossError) and got == records[:first_block // len(frame(records[0]))]
    assert expected == got[:len(expected)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
@pytest.mark.parametrize("trailer", [b"\x1f", b"garbage after the stream", bytes(64)], ids=["1 byte", "text", "zeros"])
def test_bytes_after_the_compressed_stream_are_data_loss(corpus, framing, tmp_path, compression, trailer):
    """Every record, then DataLossError naming the file and where the bytes that are no stream begin. tf.data
    gives the same records and DataLossError for GZIP, but ends quietly where the bytes are too few to tell (a
    deliberate difference: a cut stream is data lost), and for ZLIB ignores whatever follows the first stream."""
    source = Path(corpus.files(compression)[0]).read_bytes()
    path = tmp_path / f"trailer.{compression.lower()}"
    path.write_bytes(source + trailer)
    records, error = read_until_error(fi.TFRecordDataset(str(path), compression_type=compression))
    assert records == corpus.records(0)
    assert isinstance(error, DataLossError) and error.path == str(path)
    assert f"stream starting at byte {len(source)}" in str(error)
    if compression == "GZIP" and len(trailer) > 1:
        import tensorflow as tf

        tf_records = tf.data.TFRecordDataset(str(path), compression_type=compression).as_numpy_iterator()
        assert [next(tf_records) for _ in records] == records
        with pytest.raises(tf.errors.DataLossError):
            next(tf_records)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"compression_type": "gzip"}, "compression_type"),
        ({"compression_type": "BZIP2"}, "compression_type"),
        ({"compression_type": 1}, "compression_type"),
        ({"buffer_size": -1}, "buffer_size"),
        ({"buffer_size": 1.5}, "buffer_size"),
        ({"num_parallel_reads": 0}, "num_parallel_reads"),
        ({"num_parallel_reads": -5}, "num_parallel_reads"),
        ({"storage_options": "anon"}, "storage_options"),
        ({"filenames": 3}, "filenames"),
        ({"filenames": ["a.tfrecord", 5]}, "filenames[1]"),
        ({"filenames": np.array([["a", "b"], ["c", "d"]])}, "filenames must be a scalar or a vector"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, named):
    kwargs = {"filenames": "never-opened.tfrecord", **kwargs}
    with pytest.raises(InvalidArgumentError, match=re.escape(named)) as info:
        fi.TFRecordDataset(**kwargs)
    if named == "compression_type":
        assert "'GZIP'" in str(info.value) and "'ZLIB'" in str(info.value)


def test_stage_string_reads_like_the_call(corpus):
    assert str(fi.TFRecordDataset("a.tfrecord")) == "TFRecordDataset('a.tfrecord')"
    ds = fi.TFRecordDataset(corpus.files("GZIP"), compression_type="GZIP", num_parallel_reads=fi.AUTOTUNE)
    assert str(ds) == "TFRecordDataset(<4 files>, compression_type='GZIP', num_parallel_reads=AUTOTUNE)"
    with iter(ds) as it:
        assert it.stats()[0].name == str(ds)


@pytest.mark.parametrize("num_parallel_reads", [None, 4, fi.AUTOTUNE])
def test_no_threads_left_behind(corpus, tmp_path, num_parallel_reads):
    files = corpus.files("GZIP")
    ds = fi.TFRecordDataset(files, compression_type="GZIP", num_parallel_reads=num_parallel_reads)
    assert len(list(ds)) == len(corpus.tf_data(files, "GZIP"))
    with iter(ds) as it:  # stopped early
        next(it)
        assert bool(fastinput_threads()) == (num_parallel_reads is not None)
    damaged = tmp_path / "damaged.tfrecord"
    damaged.write_bytes(Path(corpus.files()[0]).read_bytes()[:100])
    records, error = read_until_error(fi.TFRecordDataset([str(damaged)] + files, num_parallel_reads=num_parallel_reads))
    assert isinstance(error, DataLossError)
    assert wait_for_fastinput_threads() == []


def test_framing_is_what_tensorflow_writes(framing, tmp_path):
    import tensorflow as tf

    records = [b"", b"x", bytes(range(256)) * 100]
    path = str(tmp_path / "written.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    assert Path(path).read_bytes() == b"".join(frame(r) for r in records)


def test_impossible_length_fails_at_once(framing, tmp_path):
    length = struct.pack("<Q", 1 << 50)
    header = length + struct.pack("<I", masked_crc32c(length))
    path = tmp_path / "huge.tfrecord"
    path.write_bytes(frame(b"ok") + header + b"\0" * 100)
    records, error = read_until_error(fi.TFRecordDataset(str(path)))
    assert records == [b"ok"]
    assert isinstance(error, DataLossError) and error.offset == 18 and "truncated record at offset 18" in str(error)


# -- remote storage (moto's S3 server and the GCS emulator on loopback) -------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("num_parallel_reads", [None, 2])
@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_remote_files_read_the_same_as_local_ones(corpus, store, remote_files, compression, num_parallel_reads):
    local = corpus.files(compression)
    expected = corpus.tf_data(local, compression, num_parallel_reads)
    ds = fi.TFRecordDataset(remote_files[compression], compression_type=compression,
                            num_parallel_reads=num_parallel_reads, storage_options=store.storage_options)
    assert list(ds) == expected


@pytest.mark.slow
def test_remote_listing_feeds_the_reader(corpus, store, remote_files):
    files = fi.Dataset.list_files(f"{store.scheme}://tfrecords/plain/*.tfrecord", shuffle=False,
                                  storage_options=store.storage_options)
    ds = fi.TFRecordDataset(files, num_parallel_reads=2, storage_options=store.storage_options)
    assert list(ds) == corpus.tf_data(corpus.files(), "", 2)


@pytest.mark.slow
def test_remote_small_buffer_reads_the_same(corpus, store, remote_files):
    ds = fi.TFRecordDataset(remote_files[""][0], buffer_size=1000, storage_options=store.storage_options)
    assert list(ds) == corpus.records(0)


def test_a_remote_file_ending_in_a_carriage_return_reads_whole(store, tmp_path):
    """A TFRecord file ends in its last CRC's high byte, 0x0D (a carriage return) in one file of 256: such a file
    uploaded to the store (the test servers' upload path) reads back whole, every record."""
    rng = np.random.default_rng(3)
    records = [rng.bytes(700) for _ in range(3)]
    while masked_crc32c(records[-1]) >> 24 != 0x0D:
        records[-1] = rng.bytes(700)
    path = tmp_path / "ends-in-cr.tfrecord"
    path.write_bytes(b"".join(frame(r) for r in records))
    assert path.read_bytes()[-1:] == b"\r"
    store.make_bucket("carriage")
    url = store.upload(path, "carriage", "ends-in-cr.tfrecord")
    assert list(fi.TFRecordDataset(url, storage_options=store.storage_options)) == records


@pytest.mark.slow
def test_missing_remote_object_raises_not_found(store, remote_files):
    missing = f"{store.scheme}://tfrecords/plain/no-such-object.tfrecord"
    records, error = read_until_error(
        fi.TFRecordDataset([remote_files[""][1], missing], storage_options=store.storage_options))
    assert isinstance(error, NotFoundError) and missing in str(error)
    assert len(records) == len(RECORD_SIZES[1])


@pytest.mark.slow
def test_no_threads_left_behind_after_remote_reads(store, remote_files):
    ds = fi.TFRecordDataset(remote_files["GZIP"], compression_type="GZIP", num_parallel_reads=3,
                            storage_options=store.storage_options)
    assert len(list(ds)) == sum(len(sizes) for sizes in RECORD_SIZES)
    assert fastinput_threads() == []
    with iter(ds) as it:
        next(it)
        assert fastinput_threads() != []
    assert fastinput_threads() == []


def test_records_straddling_reads_at_every_position(framing, tmp_path):
    rng = np.random.default_rng(11)
    records = [rng.bytes(int(size)) for size in rng.integers(0, 40, size=300)]
    path = tmp_path / "small.tfrecord"
    path.write_bytes(b"".join(frame(r) for r in records))
    for buffer_size in [1, 5, 11, 12, 13, 16, 17, 29, 64, 101, 1000]:
        assert list(fi.TFRecordDataset(str(path), buffer_size=buffer_size)) == records, buffer_size
