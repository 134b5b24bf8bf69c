"""``take_while``, ``unique`` and ``ignore_errors`` against tf.data, errors and what surrounds them included."""

import logging

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import (
    assert_same_with_errors,
    elements_and_errors,
    fi_outcomes,
    fi_raising_at,
    tf_outcomes,
    tf_raising_at,
)

# ``D``: tf.data.Dataset or fi.Dataset; ``fail(*values)`` a map function raising at those values.
CASES = {
    "take_while": lambda D, fail: D.range(10).take_while(lambda x: x < 6),
    "take_while, none": lambda D, fail: D.range(10).take_while(lambda x: x > 6),
    "take_while, all": lambda D, fail: D.range(4).take_while(lambda x: x < 6),
    "take_while, input errors": lambda D, fail: D.range(8).map(fail(2, 5)).take_while(lambda x: x < 6),
    "take_while, error where it stops": lambda D, fail: D.range(8).map(fail(6)).take_while(lambda x: x < 6),
    "take_while, repeated": lambda D, fail: D.range(5).take_while(lambda x: x < 2).repeat(3),
    "take_while, tuples": lambda D, fail: D.range(6).enumerate().take_while(lambda i, x: i + x < 7),
    "unique": lambda D, fail: D.from_tensor_slices(np.array([1, 2, 1, 3, 2, 4, 4])).unique(),
    "unique, int32": lambda D, fail: D.from_tensor_slices(np.array([3, 3, 1], np.int32)).unique(),
    "unique, strings": lambda D, fail: D.from_tensor_slices(np.array([b"a", b"b", b"a", b""], object)).unique(),
    "unique, vectors": lambda D, fail: D.range(5).map(lambda x: x % 2).batch(2).unique(),
    "unique, input errors": lambda D, fail: D.range(8).map(fail(3, 4)).map(lambda x: x % 3).unique(),
    "unique, repeated": lambda D, fail: D.range(4).unique().repeat(2),
    "ignore_errors": lambda D, fail: D.range(10).map(fail(0, 3, 4, 9)).ignore_errors(),
    "ignore_errors, parallel": lambda D, fail: D.range(30).map(fail(*range(5, 25, 3)), num_parallel_calls=3)
    .ignore_errors(),
    "ignore_errors, in batches": lambda D, fail: D.range(10).map(fail(2)).batch(3).ignore_errors(),
    "ignore_errors, all": lambda D, fail: D.range(4).map(fail(0, 1, 2, 3)).ignore_errors(),
    "ignore_errors, zipped": lambda D, fail: D.zip((D.range(6).map(fail(1)), D.range(6).map(fail(4))))
    .ignore_errors(),
    "ignore_errors, prefetched": lambda D, fail: D.range(20).map(fail(7, 8)).prefetch(3).ignore_errors().take(12),
}


@pytest.mark.parametrize("case", CASES)
def test_matches_tf(tf, case):
    build = CASES[case]
    expected = elements_and_errors(build(tf.data.Dataset, tf_raising_at))
    assert_same_with_errors(elements_and_errors(build(fi.Dataset, fi_raising_at)), expected)


def no_fail(*values):
    """A ``fail`` that fails nowhere: placeholder calls that learn the spec must not meet an injected error."""
    return lambda x: x


@pytest.mark.parametrize("case", CASES)
def test_element_spec_and_cardinality_match_tf(tf, case):
    from tests.conformance.oracle import canonical_spec

    ds, tf_ds = CASES[case](fi.Dataset, no_fail), CASES[case](tf.data.Dataset, no_fail)
    assert canonical_spec(ds.element_spec) == canonical_spec(tf_ds.element_spec)
    assert ds.cardinality() == int(tf_ds.cardinality())


def test_a_predicate_error_keeps_its_place_like_tf(tf):
    def fi_predicate(x):
        return bool(fi_raising_at(2)(x) < 6)

    def tf_predicate(x):
        keep = tf.py_function(lambda v: fi_predicate(v), [x], tf.bool)
        keep.set_shape([])
        return keep

    expected = tf_outcomes(tf.data.Dataset.range(8).take_while(tf_predicate))
    assert fi_outcomes(fi.Dataset.range(8).take_while(fi_predicate)) == expected


def test_take_while_wants_a_scalar_boolean():
    with pytest.raises(fi.errors.InvalidArgumentError, match="scalar boolean"):
        fi.Dataset.range(3).take_while(lambda x: x)


@pytest.mark.parametrize("make", [
    lambda D: D.range(3).map(lambda x: x * 0.5),  # float64
    lambda D: D.range(3).map(lambda x: (x, x)),  # two components
    lambda D: D.from_tensor_slices(np.arange(3, dtype=np.int16)),
])
def test_unique_refuses_what_tf_refuses(tf, make):
    with pytest.raises((TypeError, tf.errors.InvalidArgumentError)):
        make(tf.data.Dataset).unique()
    with pytest.raises(fi.errors.InvalidArgumentError, match="unique"):
        make(fi.Dataset).unique()


def test_unique_checks_elements_whose_spec_is_unknown():
    ds = fi.Dataset.from_generator(lambda: iter([1, 1, 2.5])).unique()
    assert fi_outcomes(ds) == [1, "error", "end"]


def write_records(tf, tmp_path, damage):
    """Three files of five records each, TensorFlow-written; the middle one damaged by ``damage(bytes)``."""
    paths = []
    for i in range(3):
        path = str(tmp_path / f"part-{i}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for j in range(5):
                writer.write(f"file {i} record {j}".encode() * 3)
        paths.append(path)
    data = open(paths[1], "rb").read()
    open(paths[1], "wb").write(damage(data))
    return paths


DAMAGE = {
    "truncated": lambda data: data[:-7],
    "corrupt record": lambda data: data[:70] + bytes([data[70] ^ 0xFF]) + data[71:],
    "corrupt length": lambda data: data[:2] + bytes([data[2] ^ 0x10]) + data[3:],
}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("num_parallel_reads", [None, 2])
def test_ignore_errors_goes_on_with_the_next_file_like_tf(tf, tmp_path, damage, num_parallel_reads):
    paths = write_records(tf, tmp_path, DAMAGE[damage])
    expected = elements_and_errors(tf.data.TFRecordDataset(paths, num_parallel_reads=num_parallel_reads)
                                   .ignore_errors())
    actual = elements_and_errors(fi.TFRecordDataset(paths, num_parallel_reads=num_parallel_reads).ignore_errors())
    assert len(expected) < 15 and sorted(actual) == sorted(expected)
    if num_parallel_reads is None:
        assert actual == expected


def test_ignore_errors_logs_when_asked(caplog):
    with caplog.at_level(logging.WARNING, logger="fastinput"):
        assert [int(x) for x in fi.Dataset.range(4).map(fi_raising_at(1)).ignore_errors(log_warning=True)] == [0, 2, 3]
    assert "injected error at 1" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fastinput"):
        assert [int(x) for x in fi.Dataset.range(4).map(fi_raising_at(1)).ignore_errors()] == [0, 2, 3]
    assert "injected" not in caplog.text
    assert str(fi.Dataset.range(1).ignore_errors(log_warning=True)) == "ignore_errors(log_warning=True)"


@pytest.mark.parametrize("num_parallel_reads", [None, 2])
def test_ignore_errors_skips_a_missing_file(tf, tmp_path, num_parallel_reads):
    """tf.data retries a file it cannot open forever (its iterator hangs); fastinput goes on with the next file
    (a deliberate difference, in the README)."""
    paths = write_records(tf, tmp_path, lambda data: data)
    files = [paths[0], str(tmp_path / "missing.tfrecord"), paths[2]]
    records = [bytes(r) for r in fi.TFRecordDataset(files, num_parallel_reads=num_parallel_reads).ignore_errors()]
    expected = [bytes(r) for path in (paths[0], paths[2]) for r in tf.data.TFRecordDataset(path).as_numpy_iterator()]
    assert sorted(records) == sorted(expected)
    if num_parallel_reads is None:
        assert records == expected
