"""ds.snapshot against tf.data's: the first pass to the end writes, later passes read (the input is not run again);
an unfinished pass leaves nothing to read; a changed pipeline gets a snapshot of its own."""

import collections
import os

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import assert_same_elements, fi_elements, fi_outcomes, fi_raising_at, tf_elements


class Counted:
    """A map function that counts its calls (the input runs only while the snapshot is written)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return {"x": x, "s": b"v%d" % int(x), "v": np.full(3, x, dtype=np.float32)}


def _tf_pipeline(tf, path):
    return tf.data.Dataset.range(50).map(lambda x: {"x": x, "s": tf.strings.format("v{}", x),
                                                     "v": tf.fill([3], tf.cast(x, tf.float32))}).snapshot(path)


@pytest.mark.parametrize("compression", ["AUTO", None, "GZIP"])
def test_first_pass_writes_later_passes_read_like_tf(tf, tmp_path, compression):
    fn = Counted()
    ds = fi.Dataset.range(50).map(fn).snapshot(str(tmp_path / "fi"), compression=compression)
    tf_ds = _tf_pipeline(tf, str(tmp_path / "tf"))
    first = fi_elements(ds)
    calls = fn.calls
    assert_same_elements(first, tf_elements(tf_ds))
    second = fi_elements(ds)
    assert fn.calls == calls  # read from the snapshot: the map did not run
    assert_same_elements(second, first)  # in the same order (tf.data's reader may interleave the shards otherwise)
    tf_second = tf_elements(tf_ds)
    assert sorted(int(e["x"]) for e in tf_second) == sorted(int(e["x"]) for e in second)


def test_a_new_pipeline_object_reads_the_same_snapshot(tmp_path):
    fn = Counted()
    first = fi_elements(fi.Dataset.range(20).map(fn).snapshot(str(tmp_path)))
    calls = fn.calls
    again = fi_elements(fi.Dataset.range(20).map(fn).snapshot(str(tmp_path)))  # rebuilt, same description
    assert fn.calls == calls + 2  # the two placeholder calls that learn its spec, no element
    assert_same_elements(again, first)


def test_an_unfinished_pass_leaves_nothing_to_read(tmp_path):
    fn = Counted()
    ds = fi.Dataset.range(30).map(fn).snapshot(str(tmp_path))
    with iter(ds) as it:
        [next(it) for _ in range(10)]
    (folder,) = os.listdir(tmp_path)
    assert not os.path.exists(tmp_path / folder / "fastinput-dataset.json")
    assert not [name for name in os.listdir(tmp_path / folder) if name.endswith(".tfrecord")]
    calls = fn.calls
    assert [int(e["x"]) for e in fi_elements(ds)] == list(range(30))
    assert fn.calls == calls + 30  # written now
    assert os.path.exists(tmp_path / folder / "fastinput-dataset.json")


def test_a_changed_pipeline_gets_its_own_snapshot(tmp_path):
    assert [int(x) for x in fi.Dataset.range(5).map(lambda x: x + 1).snapshot(str(tmp_path))] == [1, 2, 3, 4, 5]
    assert [int(x) for x in fi.Dataset.range(5).map(lambda x: x + 2).snapshot(str(tmp_path))] == [2, 3, 4, 5, 6]
    assert [int(x) for x in fi.Dataset.range(6).map(lambda x: x + 1).snapshot(str(tmp_path))] == [1, 2, 3, 4, 5, 6]
    data = [np.arange(3), np.arange(3) + 1]
    assert [[int(x) for x in fi.Dataset.from_tensor_slices(d).snapshot(str(tmp_path))] for d in data] == \
        [d.tolist() for d in data]
    assert len(os.listdir(tmp_path)) == 5
    assert [int(x) for x in fi.Dataset.range(5).map(lambda x: x + 1).snapshot(str(tmp_path))] == [1, 2, 3, 4, 5]
    assert len(os.listdir(tmp_path)) == 5


def test_errors_pass_through_in_place_and_nothing_is_written(tmp_path):
    ds = fi.Dataset.range(8).map(fi_raising_at(2, 5)).snapshot(str(tmp_path))
    expected = [0, 1, "error", 3, 4, "error", 6, 7, "end"]
    assert fi_outcomes(ds) == expected
    assert fi_outcomes(ds) == expected  # every pass meets them: no snapshot was committed
    (folder,) = os.listdir(tmp_path)
    assert not os.path.exists(tmp_path / folder / "fastinput-dataset.json")


def test_shard_func_and_reader_func(tmp_path):
    ds = fi.Dataset.range(100).snapshot(str(tmp_path), shard_func=lambda x: x % 4,
                                        reader_func=lambda datasets: datasets.interleave(lambda x: x, cycle_length=4))
    assert [int(x) for x in ds] == list(range(100))
    read = [int(x) for x in ds]
    assert collections.Counter(read) == collections.Counter(range(100))
    assert read[:4] == [0, 1, 2, 3]  # one from each shard in turn
    (folder,) = os.listdir(tmp_path)
    assert len([name for name in os.listdir(tmp_path / folder) if name.endswith(".tfrecord")]) == 4


def test_spec_and_str(tmp_path):
    ds = fi.Dataset.range(3).snapshot(str(tmp_path))
    assert ds.element_spec == fi.TensorSpec((), "int64")
    assert str(ds) == f"snapshot({str(tmp_path)!r})"


@pytest.mark.parametrize("call, error, match", [
    (lambda p: fi.Dataset.range(3).snapshot(p, compression="SNAPPY"), fi.errors.InvalidArgumentError, "compression"),
    (lambda p: fi.Dataset.range(3).snapshot(p, reader_func=1), fi.errors.InvalidArgumentError, "reader_func"),
    (lambda p: fi.Dataset.range(3).snapshot(p, shard_func="x"), fi.errors.InvalidArgumentError, "shard_func"),
    (lambda p: fi.Dataset.range(3).snapshot(3), fi.errors.InvalidArgumentError, "path"),
])
def test_bad_arguments(tmp_path, call, error, match):
    with pytest.raises(error, match=match):
        call(str(tmp_path))
