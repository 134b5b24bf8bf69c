"""Sources: range, from_tensor_slices, from_tensors, from_generator, against tf.data."""

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import assert_same_elements, fi_elements, tf_elements


@pytest.mark.parametrize("args", [(5,), (0,), (2, 10), (2, 10, 3), (10, 0, -2), (-3, 3), (5, 5)])
def test_range_matches_tf(tf, args):
    assert_same_elements(fi_elements(fi.Dataset.range(*args)), tf_elements(tf.data.Dataset.range(*args)))


def test_range_output_type(tf):
    actual = fi_elements(fi.Dataset.range(4, output_type=tf.int32))
    assert_same_elements(actual, tf_elements(tf.data.Dataset.range(4, output_type=tf.int32)))


@pytest.mark.parametrize("args", [(), (1, 2, 3, 4), (1.5,), (0, 5, 0)])
def test_range_bad_arguments(args):
    with pytest.raises(fi.errors.InvalidArgumentError):
        fi.Dataset.range(*args)


@pytest.mark.parametrize(
    "value",
    [
        np.arange(12).reshape(4, 3),
        np.array([1.5, 2.5], dtype=np.float32),
        [1, 2, 3],
        [[1, 2], [3, 4]],
        (np.arange(3), np.array([b"a", b"b", b"c"], dtype=object)),
        {"x": np.arange(4), "y": np.ones((4, 2), dtype=np.float64)},
        ["a", "bc"],
        {"nested": (np.arange(2), {"z": [7, 8]})},
    ],
    ids=["2d", "float32", "list", "nested-list", "tuple", "dict", "strings", "deep"],
)
def test_from_tensor_slices_matches_tf(tf, value):
    assert_same_elements(fi_elements(fi.Dataset.from_tensor_slices(value)),
                         tf_elements(tf.data.Dataset.from_tensor_slices(value)))


def test_from_tensors_matches_tf(tf):
    value = {"a": np.arange(3), "b": np.float32(2.0)}
    assert_same_elements(fi_elements(fi.Dataset.from_tensors(value)), tf_elements(tf.data.Dataset.from_tensors(value)))


def test_from_tensor_slices_checks_lengths():
    with pytest.raises(fi.errors.InvalidArgumentError, match="same first dimension"):
        fi.Dataset.from_tensor_slices((np.arange(3), np.arange(4)))
    with pytest.raises(fi.errors.InvalidArgumentError, match="scalar"):
        fi.Dataset.from_tensor_slices(np.int64(3))


def test_from_generator_with_signature_matches_tf(tf):
    def gen():
        for i in range(5):
            yield i, [float(i)] * (i % 3), f"s{i}"

    signature = (tf.TensorSpec([], tf.int64), tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.string))
    actual = fi_elements(fi.Dataset.from_generator(gen, output_signature=signature))
    assert_same_elements(actual, tf_elements(tf.data.Dataset.from_generator(gen, output_signature=signature)))


def test_from_generator_args_and_fresh_generator_per_iteration():
    calls = []

    def gen(n):
        calls.append(n)
        yield from range(n)

    ds = fi.Dataset.from_generator(gen, args=(3,))
    assert [int(x) for x in ds] == [0, 1, 2]
    assert [int(x) for x in ds] == [0, 1, 2]
    assert calls == [3, 3]


def test_from_generator_shape_mismatch_is_reported():
    def gen():
        yield np.zeros(2)
        yield np.zeros(3)

    ds = fi.Dataset.from_generator(gen, output_types=np.float64, output_shapes=[2])
    it = iter(ds)
    assert next(it).shape == (2,)
    with pytest.raises(fi.errors.InvalidArgumentError, match="shape"):
        next(it)


def test_from_generator_error_reaches_consumer_after_earlier_elements():
    def gen():
        yield 1
        yield 2
        raise RuntimeError("generator broke")

    it = iter(fi.Dataset.from_generator(gen).prefetch(2))
    assert [int(next(it)), int(next(it))] == [1, 2]
    with pytest.raises(RuntimeError, match="generator broke") as info:
        next(it)
    assert any("from_generator(gen)" in note for note in info.value.__notes__)


def test_from_generator_rejects_non_callable():
    with pytest.raises(fi.errors.InvalidArgumentError, match="callable"):
        fi.Dataset.from_generator([1, 2, 3])
