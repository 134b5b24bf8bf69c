"""as_tf_dataset's native op (fastinput.tf_ops): what it cuts, how it checks its arguments, and that every way its
build or load can fail leaves the graph ops in place."""

import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import fastinput as fi
from fastinput import tf_ops
from tests.helpers import assert_same_elements, fi_elements, tf_elements


@pytest.fixture
def cut_op(tf, monkeypatch):
    """The op, built into (or found in) the user's cache."""
    monkeypatch.setenv("FASTINPUT_TF_OPS", "require")
    return tf_ops.cut_strings(tf)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty cache for built ops."""
    monkeypatch.setenv("FASTINPUT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def unloaded(monkeypatch):
    """As if the op were not loaded in this process yet (another test may have loaded it)."""
    monkeypatch.setattr(tf_ops, "_op", None)


def _compiler(tmp_path, monkeypatch, body):
    """$CXX: a shell script running ``body`` (its arguments in "$@")."""
    path = tmp_path / "fake-c++"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("CXX", str(path))
    return path


def _join_builds():
    for thread in threading.enumerate():
        if thread.name == tf_ops.BUILD_THREAD_NAME:
            thread.join(60)


def test_the_op_cuts_each_leafs_values_out_of_an_unaligned_blob(tf, cut_op):
    blob = np.frombuffer(b"?ab\x00cdef", np.uint8)[1:]  # unaligned: TensorFlow's flat<uint8>() would CHECK-fail
    offsets = tf.constant([0, 1, 3, 3, 3, 7], tf.int64)
    leaves = cut_op(tf.constant(blob), offsets, count=2, size=2)
    assert [leaf.numpy().tolist() for leaf in leaves] == [[b"a", b"b\x00"], [b"", b"cdef"]]
    assert [leaf.dtype for leaf in leaves] == [tf.string, tf.string]
    assert cut_op(tf.zeros([0], tf.uint8), tf.zeros([3], tf.int64), count=3, size=0)[2].shape == [0]


@pytest.mark.parametrize("blob, offsets, count, size, message", [
    ([[1, 2]], [0, 1], 1, 1, "blob must be a vector"),
    ([1, 2], [[0, 1]], 1, 1, "offsets must be a vector"),
    ([1, 2], [0, 1, 2], 1, 1, "3 offsets, expected count"),
    ([1, 2], [0, 1], 2, 1, "2 offsets, expected count"),
    ([1, 2], [0, 1], 4, 2 ** 62, "overflows"),
    ([1, 2], [0, 2, 1], 1, 2, "offsets decrease at value 1"),
    ([1, 2], [-1, 1], 1, 1, "outside the blob of 2 bytes"),
    ([1, 2], [0, 1, 1, 3], 2, 1, r"leaf 1's offsets \[1, 3\] fall outside the blob"),
], ids=["blob not a vector", "offsets not a vector", "too many offsets", "too few offsets", "count * size overflows",
        "offsets decrease", "before the blob", "past the blob"])
def test_the_op_checks_its_arguments_before_it_cuts(tf, cut_op, blob, offsets, count, size, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        cut_op(tf.constant(blob, tf.uint8), tf.constant(offsets, tf.int64), count=count, size=size)


def _write_examples(tf, path):
    """20 Examples with two scalar string features (one missing in some, one with NUL bytes) and a number."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(20):
            feature = {"n": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
                       "v": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"v\x00" * (i % 4)]))}
            if i % 3:
                feature["s"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"s%d" % i]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def _adapted_elements(tf, dataset, mode, monkeypatch):
    monkeypatch.setenv("FASTINPUT_TF_OPS", mode)
    adapted = dataset.as_tf_dataset()
    return adapted.element_spec, tf_elements(adapted)


def test_parsed_strings_are_the_same_cut_by_the_op_or_by_graph_ops(tf, cut_op, tmp_path, monkeypatch):
    """Batches of a static size (drop_final_batch), so every string leaf holds as many values: the op's case."""
    _write_examples(tf, tmp_path / "a.tfrecord")
    features = {"n": tf.io.FixedLenFeature([], tf.int64), "s": tf.io.FixedLenFeature([], tf.string, b"none"),
                "v": tf.io.FixedLenFeature([], tf.string)}
    args = dict(file_pattern=str(tmp_path / "a.tfrecord"), batch_size=8, features=features, num_epochs=1,
                shuffle=False, drop_final_batch=True)
    ds = fi.make_batched_features_dataset(**args)
    op_spec, by_op = _adapted_elements(tf, ds, "require", monkeypatch)
    graph_spec, by_graph = _adapted_elements(tf, ds, "off", monkeypatch)
    assert op_spec == graph_spec
    assert_same_elements(by_op, by_graph)
    assert_same_elements(by_op, fi_elements(ds))
    assert_same_elements(by_op, tf_elements(tf.data.experimental.make_batched_features_dataset(**args)))
    assert {key: value.dtype for key, value in by_op[0].items()} == {"n": np.int64, "s": object, "v": object}


class _FailingAt(list):
    """Batches whose item ``at`` raises."""

    def __init__(self, at, batches):
        super().__init__(batches)
        self.at = at

    def __getitem__(self, i):
        if i == self.at:
            raise ValueError(f"no batch {i}")
        return super().__getitem__(i)


def test_an_error_reaches_tensorflow_in_its_place_either_way(tf, monkeypatch):
    """A batch that fails between packed ones: the same elements and the same error, op or graph ops."""
    from tests.test_tf_adapter import _Batches, _packed

    def batch(i):
        return {"a": [b"a%d" % i, b""], "b": [b"b\x00", b"%d" % i]}

    plain = [{key: np.array(values, dtype=object) for key, values in batch(i).items()} for i in range(4)]
    fn = _Batches(plain)
    fn.packed_variant = [{key: _packed(values) for key, values in batch(i).items()} for i in range(4)]
    fn.packed_variant = _FailingAt(2, fn.packed_variant)

    def run(mode):
        monkeypatch.setenv("FASTINPUT_TF_OPS", mode)
        it = iter(fi.Dataset.range(4).map(fn).as_tf_dataset())
        items = []
        for _ in range(4):
            try:
                items.append(tf.nest.map_structure(lambda t: t.numpy(), next(it)))
            except tf.errors.InvalidArgumentError as error:
                items.append(error.message.split("\n")[0])
        return items

    by_op, by_graph = run("require"), run("off")
    assert by_op[2] == by_graph[2] and "ValueError: no batch 2" in by_op[2]
    for i in (0, 1, 3):
        assert_same_elements([by_op[i]], [plain[i]])
        assert_same_elements([by_graph[i]], [plain[i]])


@pytest.mark.usefixtures("unloaded")
def test_a_failing_build_leaves_graph_ops_with_one_warning_and_is_not_retried(tf, cache, tmp_path, monkeypatch,
                                                                           caplog):
    _compiler(tmp_path, monkeypatch, 'echo "no such header: op.h" >&2; exit 1')
    monkeypatch.setenv("FASTINPUT_TF_OPS", "auto")
    with caplog.at_level(logging.WARNING, logger="fastinput"):
        assert tf_ops.cut_strings(tf) is None  # the build starts in the background; graph ops meanwhile
        _join_builds()
        assert tf_ops.cut_strings(tf) is None
        _join_builds()
    assert len([r for r in caplog.records if "could not build its TensorFlow op" in r.message]) == 1
    (log,) = cache.glob("tf_ops/*/failed.log")
    assert "no such header: op.h" in log.read_text()
    assert not list(cache.glob("tf_ops/*/*.so*"))
    monkeypatch.setenv("FASTINPUT_TF_OPS", "require")  # retries, and says why it failed
    with pytest.raises(tf_ops.BuildError, match="exited with 1"):
        tf_ops.cut_strings(tf)


def test_a_build_in_the_background_is_used_from_the_next_call(tf, cut_op, tmp_path, monkeypatch):
    """In a fresh interpreter (this one has the op loaded already), with a compiler that "builds" by copying the op
    built for this TensorFlow to its ``-o`` argument."""
    cxx = _compiler(tmp_path, monkeypatch, f'while [ "$1" != -o ]; do shift; done; cp '
                    f'{tf_ops.library_path(tf, tf_ops.compiler())} "$2"')
    env = {**os.environ, "CXX": str(cxx), "FASTINPUT_CACHE_DIR": str(tmp_path / "cache"), "FASTINPUT_TF_OPS": "auto",
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(Path(fi.__file__).resolve().parent.parent)}
    code = textwrap.dedent("""
        import threading, tensorflow as tf
        from fastinput import tf_ops
        print(tf_ops.cut_strings(tf) is None)
        for thread in threading.enumerate():
            if thread.name == tf_ops.BUILD_THREAD_NAME:
                thread.join(60)
        print(tf_ops.cut_strings(tf) is not None)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.stdout.split() == ["True", "True"], result.stderr[-3000:]
    assert len(list((tmp_path / "cache").glob("tf_ops/*/cut_strings.so"))) == 1


@pytest.mark.usefixtures("unloaded")
def test_without_a_compiler_graph_ops_cut_the_strings(tf, cache, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("FASTINPUT_TF_OPS", "auto")
    assert tf_ops.cut_strings(tf) is None
    assert not cache.exists()
    monkeypatch.setenv("FASTINPUT_TF_OPS", "require")
    with pytest.raises(tf_ops.BuildError, match="no C\\+\\+ compiler"):
        tf_ops.cut_strings(tf)


@pytest.mark.usefixtures("unloaded")
def test_a_library_that_does_not_load_leaves_graph_ops(tf, cache, tmp_path, monkeypatch, caplog):
    """A stale or broken library in the cache (an ABI mismatch looks the same to the loader)."""
    cxx = _compiler(tmp_path, monkeypatch, "exit 1")
    library = tf_ops.library_path(tf, str(cxx))
    library.parent.mkdir(parents=True)
    library.write_bytes(b"not a shared library")
    monkeypatch.setenv("FASTINPUT_TF_OPS", "auto")
    with caplog.at_level(logging.WARNING, logger="fastinput"):
        assert tf_ops.cut_strings(tf) is None
        assert tf_ops.cut_strings(tf) is None
    assert len([r for r in caplog.records if "cannot use its TensorFlow op" in r.message]) == 1
    monkeypatch.setenv("FASTINPUT_TF_OPS", "require")
    with pytest.raises(tf_ops.BuildError, match="could not load"):
        tf_ops.cut_strings(tf)


@pytest.mark.usefixtures("unloaded")
def test_off_never_builds_and_a_wrong_mode_is_an_error(tf, cache, monkeypatch):
    monkeypatch.setenv("FASTINPUT_TF_OPS", "off")
    assert tf_ops.cut_strings(tf) is None
    assert not cache.exists()
    monkeypatch.setenv("FASTINPUT_TF_OPS", "yes")
    with pytest.raises(ValueError, match="FASTINPUT_TF_OPS='yes': expected one of auto, off, require"):
        tf_ops.cut_strings(tf)


def test_builds_at_once_compile_once_under_the_lock(tf, cache, tmp_path, monkeypatch):
    """Two builders of one library (as two processes would be: flock holds between open files): the second waits
    for the first and finds its library."""
    calls = tmp_path / "calls"
    cxx = _compiler(tmp_path, monkeypatch, f'[ "$1" = --version ] && exit; echo x >> {calls}; sleep 1; '
                                           'while [ "$1" != -o ]; do shift; done; echo built > "$2"')
    library = tf_ops.library_path(tf, str(cxx))
    builders = [threading.Thread(target=tf_ops.build, args=(tf, str(cxx), library)) for _ in range(2)]
    for builder in builders:
        builder.start()
    for builder in builders:
        builder.join(30)
    assert calls.read_text() == "x\n"
    assert library.read_text() == "built\n"
    assert sorted(path.name for path in library.parent.iterdir()) == ["cut_strings.so", "lock"]


def test_the_cache_key_does_not_depend_on_where_fastinput_lies(tf, cache, tmp_path, monkeypatch):
    """Two checkouts (or a reinstall elsewhere) of the same source share one build; a changed source does not."""
    cxx = _compiler(tmp_path, monkeypatch, "exit 1")
    here = tf_ops.library_path(tf, str(cxx))
    elsewhere = tmp_path / "elsewhere" / tf_ops.SOURCE.name
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(tf_ops.SOURCE.read_bytes())
    monkeypatch.setattr(tf_ops, "SOURCE", elsewhere)
    assert tf_ops.library_path(tf, str(cxx)) == here
    elsewhere.write_bytes(tf_ops.SOURCE.read_bytes() + b"\n// changed\n")
    assert tf_ops.library_path(tf, str(cxx)) != here
