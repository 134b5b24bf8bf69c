"""ds.save and fi.Dataset.load: every element type round-trips exactly, as tf.data's save/load gives it back;
sharding, compression and reader_func as in tf.data; a missing, unfinished, truncated or corrupt saved dataset is
a clear error naming the file. Folders tf.data's save wrote are read too, as tf.data reads them."""

import collections
import json
import os

import numpy as np
import pytest

import fastinput as fi
from fastinput.structure import SparseArray
from tests.helpers import assert_same_elements, fi_elements, tf_elements

Point = collections.namedtuple("Point", "x y")


def _sparse(tf_or_fi, i):
    indices, values, shape = np.array([[0, 1], [2, i % 3]]), np.array([1.5, i], np.float32), np.array([4, 5])
    if tf_or_fi == "fi":
        return SparseArray(indices, values, shape)
    import tensorflow as tf

    return tf.SparseTensor(indices, values, shape)


# ``D`` is fi.Dataset or tf.data.Dataset, ``lib`` "fi" or "tf": the same elements from either library.
ELEMENTS = {
    "int64": lambda D, lib: D.range(10),
    "ints and floats": lambda D, lib: D.from_tensor_slices(tuple(
        np.arange(6).astype(t) for t in ("int8", "uint8", "int16", "int32", "uint64", "float16", "float32",
                                         "float64", "bool"))),
    "strings": lambda D, lib: D.from_tensor_slices(np.array([b"", b"a", b"\x00\xff" * 500, b"xyz"])),
    "string vectors": lambda D, lib: D.from_tensor_slices(np.array([[b"a", b"bc"], [b"", b"d"]], dtype=object)),
    "arrays": lambda D, lib: D.from_tensor_slices(np.arange(60, dtype=np.float32).reshape(5, 3, 4)),
    "nested": lambda D, lib: D.from_tensor_slices({"a": np.arange(5), "b": (np.arange(5) * 2.5,
                                                   {"c": np.array([b"p", b"q", b"r", b"s", b"t"])})}),
    "sparse": lambda D, lib: D.from_tensors(_sparse(lib, 1)).concatenate(D.from_tensors(_sparse(lib, 2))),
    "empty": lambda D, lib: D.range(0),
    "many": lambda D, lib: D.range(5000).map(lambda x: (x, x * 2)),
}


@pytest.mark.parametrize("compression", [None, "GZIP"])
@pytest.mark.parametrize("case", ELEMENTS)
def test_round_trip_matches_tf(tf, tmp_path, case, compression):
    build = ELEMENTS[case]
    source = build(fi.Dataset, "fi")
    source.save(str(tmp_path / "fi"), compression=compression)
    loaded = fi.Dataset.load(str(tmp_path / "fi"), compression=compression)
    build(tf.data.Dataset, "tf").save(str(tmp_path / "tf"), compression=compression)
    expected = tf_elements(tf.data.Dataset.load(str(tmp_path / "tf"), compression=compression))
    assert_same_elements(fi_elements(loaded), expected)
    assert_same_elements(fi_elements(loaded), fi_elements(source))
    assert loaded.element_spec == source.element_spec


def test_round_trip_is_exact_for_values_tf_has_no_type_for(tmp_path):
    """Leaves kept as they are: numpy scalars stay scalars, 0-d arrays arrays, namedtuples namedtuples, shapes
    that vary from element to element each their own."""
    source = fi.Dataset.range(3).map(lambda x: Point(x, np.array([x * 1.5])[0:1].reshape(())))
    source.save(str(tmp_path / "a"))
    loaded, expected = fi_elements(fi.Dataset.load(str(tmp_path / "a"))), fi_elements(source)
    assert [type(p).__name__ for p in loaded] == ["Point"] * 3 and loaded == expected
    assert [type(leaf) for leaf in loaded[0]] == [type(leaf) for leaf in expected[0]]
    fi.Dataset.range(6).map(lambda x: np.arange(x)).save(str(tmp_path / "b"))
    assert [e.tolist() for e in fi.Dataset.load(str(tmp_path / "b"))] == [list(range(i)) for i in range(6)]


def test_large_elements_are_chunked_and_come_back_in_order(tmp_path):
    ds = fi.Dataset.range(40).map(lambda x: np.full(100_000, x, dtype=np.int64))  # 800 KB each: 5 per record
    ds.save(str(tmp_path))
    metadata = json.loads((tmp_path / "fastinput-dataset.json").read_text())
    assert metadata["chunk"] == 5 and len(metadata["shards"]) >= 2
    assert [int(e[0]) for e in fi.Dataset.load(str(tmp_path))] == list(range(40))


def test_shard_func_and_reader_func_like_tf(tf, tmp_path):
    fi.Dataset.range(100).save(str(tmp_path / "fi"), shard_func=lambda x: x % 3)
    tf.data.Dataset.range(100).save(str(tmp_path / "tf"), shard_func=lambda x: x % 3)
    files = [name for name in os.listdir(tmp_path / "fi") if name.endswith(".tfrecord")]
    assert len(files) == 3
    reader = lambda datasets: datasets.interleave(lambda x: x, cycle_length=1)  # noqa: E731
    fi_values = [int(x) for x in fi.Dataset.load(str(tmp_path / "fi"), reader_func=reader)]
    tf_values = [int(x) for x in tf.data.Dataset.load(str(tmp_path / "tf"), reader_func=reader)]
    assert sorted(fi_values) == sorted(tf_values) == list(range(100))
    assert fi_values == sorted(fi_values, key=lambda v: v % 3)  # shard by shard, each in order
    shuffled = fi.Dataset.load(str(tmp_path / "fi"), reader_func=lambda datasets: datasets.shuffle(3).interleave(
        lambda x: x, cycle_length=3, num_parallel_calls=fi.AUTOTUNE))
    assert sorted(int(x) for x in shuffled) == list(range(100))


def test_element_spec_can_be_given(tmp_path):
    fi.Dataset.range(3).save(str(tmp_path))
    spec = fi.TensorSpec((), "int64")
    assert fi.Dataset.load(str(tmp_path), element_spec=spec).element_spec == spec


def test_saving_again_replaces_the_dataset(tmp_path):
    fi.Dataset.range(5).save(str(tmp_path))
    fi.Dataset.range(100, 103).save(str(tmp_path))
    assert [int(x) for x in fi.Dataset.load(str(tmp_path))] == [100, 101, 102]
    metadata = json.loads((tmp_path / "fastinput-dataset.json").read_text())
    files = sorted(name for name in os.listdir(tmp_path) if name.endswith(".tfrecord"))
    assert files == sorted(entry["file"] for entry in metadata["shards"])  # the first save's files are gone


def test_a_save_that_fails_leaves_the_folder_as_it_was(tmp_path):
    fi.Dataset.range(5).save(str(tmp_path))
    before = sorted(os.listdir(tmp_path))

    def fail(x):
        if int(x) == 3000:
            raise ValueError("bad element")
        return x

    with pytest.raises(ValueError, match="bad element"):
        fi.Dataset.range(5000).map(fail).save(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == before
    assert [int(x) for x in fi.Dataset.load(str(tmp_path))] == list(range(5))
    with pytest.raises(ValueError, match="bad element"):
        fi.Dataset.range(5000).map(fail).save(str(tmp_path / "new"))
    with pytest.raises(fi.errors.NotFoundError, match="did not finish"):
        fi.Dataset.load(str(tmp_path / "new"))


# -- damaged and foreign folders -------------------------------------------------------------------------------


def _saved(tmp_path, compression=None):
    fi.Dataset.range(3000).map(lambda x: (x, b"record %d" % int(x))).save(str(tmp_path), compression=compression,
                                                                          shard_func=lambda x, y: 0)
    (shard,) = [tmp_path / name for name in os.listdir(tmp_path) if name.endswith(".tfrecord")]
    return shard


def _load_all(path):
    return fi_elements(fi.Dataset.load(str(path)))


def test_missing_folder_and_metadata(tmp_path):
    with pytest.raises(fi.errors.NotFoundError, match="no such folder"):
        fi.Dataset.load(str(tmp_path / "nothing"))
    with pytest.raises(fi.errors.NotFoundError, match="fastinput-dataset.json is missing"):
        fi.Dataset.load(str(tmp_path))


@pytest.mark.parametrize("compression", [None, "GZIP"])
@pytest.mark.parametrize("case", [case for case in ELEMENTS if case != "sparse"])
def test_load_reads_what_tf_data_saved(tf, tmp_path, case, compression):
    """tf.data's own format (TensorProto records in TFRecord shard files): the elements, their order and spec
    as tf.data's load gives them."""
    tf_ds = ELEMENTS[case](tf.data.Dataset, "tf")
    tf_ds.save(str(tmp_path), compression=compression)
    loaded = fi.Dataset.load(str(tmp_path), compression=compression)
    expected = tf.data.Dataset.load(str(tmp_path), compression=compression)
    assert_same_elements(fi_elements(loaded), tf_elements(expected))
    assert loaded.element_spec == fi.Dataset.load(str(tmp_path), element_spec=tf_ds.element_spec,
                                                  compression=compression).element_spec


def test_load_reads_what_tf_data_saved_in_many_shards(tf, tmp_path):
    tf.data.Dataset.range(3000).map(lambda x: (x, tf.strings.as_string(x))).save(
        str(tmp_path), shard_func=lambda x, s: x % 5)
    reader = lambda datasets: datasets.interleave(lambda x: x, cycle_length=5)  # noqa: E731
    for reader_func in (None, reader):
        loaded = fi.Dataset.load(str(tmp_path), reader_func=reader_func)
        assert_same_elements(fi_elements(loaded),
                             tf_elements(tf.data.Dataset.load(str(tmp_path), reader_func=reader_func)))


def test_what_fastinput_cannot_read_of_tf_data_saves_is_named(tf, tmp_path):
    tf.data.Dataset.from_tensors(tf.SparseTensor([[0]], [1], [3])).save(str(tmp_path / "sparse"))
    with pytest.raises(fi.errors.UnimplementedError, match="variant"):
        fi.Dataset.load(str(tmp_path / "sparse"))
    tf.data.Dataset.range(3).save(str(tmp_path / "unfinished"))
    os.unlink(tmp_path / "unfinished" / "snapshot.metadata")
    with pytest.raises(fi.errors.NotFoundError, match="did not finish"):
        fi.Dataset.load(str(tmp_path / "unfinished"))
    tf.data.Dataset.range(3).save(str(tmp_path / "damaged"))
    (shard,) = [os.path.join(root, name) for root, _, names in os.walk(tmp_path / "damaged") for name in names
                if name.endswith(".snapshot")]
    data = bytearray(open(shard, "rb").read())
    data[20] ^= 0x10
    open(shard, "wb").write(bytes(data))
    with pytest.raises(fi.errors.DataLossError, match=os.path.basename(shard)):
        fi_elements(fi.Dataset.load(str(tmp_path / "damaged")))


def test_missing_shard_file_is_named(tmp_path):
    shard = _saved(tmp_path)
    shard.unlink()
    with pytest.raises(fi.errors.NotFoundError, match=shard.name):
        _load_all(tmp_path)


@pytest.mark.parametrize("cut", ["at a record's end", "inside a record"])
def test_truncated_shard_file_is_named(tmp_path, cut):
    shard = _saved(tmp_path)
    data = shard.read_bytes()
    if cut == "at a record's end":
        first_record = 12 + int.from_bytes(data[:8], "little") + 4
        data = data[:first_record]
    else:
        data = data[:len(data) - 100]
    shard.write_bytes(data)
    with pytest.raises(fi.errors.DataLossError, match=shard.name):
        _load_all(tmp_path)


def test_truncated_compressed_shard_file_is_named(tmp_path):
    shard = _saved(tmp_path, "GZIP")
    shard.write_bytes(shard.read_bytes()[:-50])
    with pytest.raises(fi.errors.DataLossError, match=shard.name):
        _load_all(tmp_path)


def test_corrupt_shard_file_is_named(tmp_path):
    shard = _saved(tmp_path)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x40
    shard.write_bytes(bytes(data))
    with pytest.raises(fi.errors.DataLossError, match=shard.name):
        _load_all(tmp_path)


def test_a_valid_record_that_is_not_a_chunk_is_named(tmp_path):
    from fastinput.readers.framing import frame

    shard = _saved(tmp_path)
    shard.write_bytes(frame(b"\x05\x00\x00\x00hello"))
    with pytest.raises(fi.errors.DataLossError, match=f"{shard.name}.*not a chunk"):
        _load_all(tmp_path)


def test_corrupt_metadata_is_named(tmp_path):
    _saved(tmp_path)
    (tmp_path / "fastinput-dataset.json").write_text('{"format": "fastinput-saved-dataset", "version": 1}')
    with pytest.raises(fi.errors.DataLossError, match="fastinput-dataset.json"):
        fi.Dataset.load(str(tmp_path))


@pytest.mark.parametrize("call, error, match", [
    (lambda p: fi.Dataset.range(3).save(p, compression="LZ4"), fi.errors.InvalidArgumentError, "compression"),
    (lambda p: fi.Dataset.range(3).save(p, checkpoint_args={}), fi.errors.UnimplementedError, "checkpoint_args"),
    (lambda p: fi.Dataset.range(3).save(p, shard_func=3), fi.errors.InvalidArgumentError, "shard_func"),
    (lambda p: fi.Dataset.range(3).save(p, shard_func=lambda x: -1), fi.errors.InvalidArgumentError, "non-negative"),
    (lambda p: fi.Dataset.range(3).save("s3://bucket/x"), fi.errors.UnimplementedError, "local"),
    (lambda p: fi.Dataset.range(3).save(p) or fi.Dataset.load(p, compression="GZIP"), fi.errors.InvalidArgumentError,
     "saved with compression"),
    (lambda p: fi.Dataset.range(3).save(p) or fi.Dataset.load(p, reader_func=lambda d: 3),
     fi.errors.InvalidArgumentError, "reader_func must return a Dataset"),
])
def test_bad_arguments(tmp_path, call, error, match):
    with pytest.raises(error, match=match):
        call(str(tmp_path / "saved"))
