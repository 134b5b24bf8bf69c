"""ragged_batch and fi.RaggedArray against tf.data's ragged_batch and tf.RaggedTensor, and through as_tf_dataset."""

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError, UnimplementedError
from tests.helpers import (
    ERROR,
    assert_same_element,
    elements_and_errors,
    fails_at,
    fi_elements,
    tf_fails_at,
)


def tf_ragged_elements(tf, tf_dataset):
    """tf.data's elements with each tf.RaggedTensor as a fi.RaggedArray (values, row splits)."""
    def convert(value):
        if isinstance(value, tf.RaggedTensor):
            return fi.RaggedArray(value.values.numpy(), value.row_splits.numpy())
        return value.numpy()

    return [tf.nest.map_structure(convert, element, expand_composites=False) for element in tf_dataset]


def assert_same_batches(actual, expected):
    assert len(actual) == len(expected), f"{len(actual)} batches, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        for j, (x, y) in enumerate(zip(fi.structure.flatten(a), fi.structure.flatten(e))):
            if isinstance(y, fi.RaggedArray):
                assert isinstance(x, fi.RaggedArray), f"batch {i} component {j}: {x!r} is not ragged"
                assert x.row_splits.dtype == y.row_splits.dtype, f"batch {i} component {j}: row_splits dtype"
                assert_same_element(x.row_splits, y.row_splits, f"batch {i} component {j} row_splits")
                assert_same_element(x.values, y.values, f"batch {i} component {j} values")
            else:
                assert_same_element(x, y, f"batch {i} component {j}")


def as_fi_spec(tf, tf_spec):
    def convert(s):
        dtype = object if s.dtype == tf.string else s.dtype.as_numpy_dtype
        if isinstance(s, tf.RaggedTensorSpec):
            return fi.RaggedSpec(s.shape, dtype, s.row_splits_dtype.as_numpy_dtype)
        return fi.TensorSpec(s.shape, dtype)

    return tf.nest.map_structure(convert, tf_spec, expand_composites=False)


def elements(lib, n):
    """Per element k: a vector of k values, k itself, a (k, 2) matrix, a fixed (3,) vector and k strings."""
    if lib == "fi":
        return fi.Dataset.range(n).map(lambda k: (np.arange(k), k, np.arange(2 * k).reshape(-1, 2), np.full(3, k),
                                                  np.array([b"%d" % i for i in range(k)], dtype=object)))
    import tensorflow as tf

    return tf.data.Dataset.range(n).map(lambda k: (tf.range(k), k, tf.reshape(tf.range(2 * k), [-1, 2]),
                                                   tf.fill([3], k), tf.strings.as_string(tf.range(k))))


@pytest.mark.parametrize("size", [0, 1, 7])
@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("drop_remainder", [False, True])
@pytest.mark.parametrize("row_splits_dtype", ["int64", "int32"])
def test_ragged_batch_matches_tf(tf, size, batch_size, drop_remainder, row_splits_dtype):
    fi_ds = elements("fi", size).ragged_batch(batch_size, drop_remainder, row_splits_dtype=row_splits_dtype)
    tf_ds = elements("tf", size).ragged_batch(batch_size, drop_remainder,
                                              row_splits_dtype=getattr(tf, row_splits_dtype))
    assert_same_batches(fi_elements(fi_ds), tf_ragged_elements(tf, tf_ds))
    assert fi_ds.element_spec == as_fi_spec(tf, tf_ds.element_spec)


@pytest.mark.parametrize("bad", [{2}, {3, 5}, {6}])
def test_ragged_batch_errors_like_tf(tf, bad):
    # tf.data's ragged_batch is a map fused with its batch: a batch that meets an error is dropped, the error raised
    fi_ds = fi.Dataset.range(8).map(fails_at(bad)).map(lambda k: np.arange(k)).ragged_batch(3)
    tf_ds = tf.data.Dataset.range(8).map(tf_fails_at(bad)).map(lambda k: tf.range(k)).ragged_batch(3)
    actual = [e if isinstance(e, str) else e.to_list() for e in elements_and_errors(fi_ds)]
    expected = []
    it = iter(tf_ds)
    while True:
        try:
            expected.append(next(it).to_list())
        except StopIteration:
            break
        except tf.errors.OpError:
            expected.append(ERROR)
    assert actual == expected


def test_ragged_batch_then_unbatch_is_the_identity():
    ds = fi.Dataset.range(9).map(lambda k: np.arange(k))
    for original, row in zip(fi_elements(ds), fi_elements(ds.ragged_batch(4).unbatch()), strict=True):
        assert_same_element(row, original)
    assert ds.ragged_batch(4).unbatch().element_spec == fi.TensorSpec((None,), np.int64)


def test_ragged_batch_through_as_tf_dataset(tf):
    fi_ds = elements("fi", 7).ragged_batch(3, drop_remainder=True, row_splits_dtype="int32")
    tf_ds = elements("tf", 7).ragged_batch(3, drop_remainder=True, row_splits_dtype=tf.int32)
    adapted = fi_ds.as_tf_dataset()
    assert adapted.element_spec == tf_ds.element_spec
    assert_same_batches(tf_ragged_elements(tf, adapted), tf_ragged_elements(tf, tf_ds))


def test_ragged_batch_refuses_more_than_one_ragged_dimension():
    ds = fi.Dataset.range(4).map(lambda k: np.zeros((2, k)))
    with pytest.raises(UnimplementedError, match=r"shape \[2, None\].*more than one ragged dimension"):
        ds.ragged_batch(2)
    with pytest.raises(UnimplementedError, match="RaggedArray has one ragged dimension"):
        fi_elements(fi.Dataset.range(4).map(lambda k: np.arange(k)).ragged_batch(2).batch(2))


@pytest.mark.parametrize("kwargs,match", [({"batch_size": 0}, "batch_size"),
                                          ({"batch_size": 2, "row_splits_dtype": "float32"}, "row_splits_dtype"),
                                          ({"batch_size": 2, "drop_remainder": "yes"}, "drop_remainder")])
def test_ragged_batch_arguments_are_checked(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        fi.Dataset.range(4).map(lambda k: np.arange(k)).ragged_batch(**kwargs)


def test_ragged_array():
    r = fi.RaggedArray.from_row_lengths(np.arange(6).reshape(3, 2), [2, 0, 1], np.int32)
    assert r.shape == (3, None, 2) and r.nrows == 3 and len(r) == 3 and r.ndim == 3
    assert r.row_splits.dtype == np.int32 and r.row_lengths().tolist() == [2, 0, 1]
    assert r.to_list() == [[[0, 1], [2, 3]], [], [[4, 5]]]
    assert r[-1].tolist() == [[4, 5]]
    assert r == fi.RaggedArray(np.arange(6).reshape(3, 2), np.array([0, 2, 2, 3], np.int32))
    assert fi.spec.from_value(r) == fi.RaggedSpec((3, None, 2), np.int64, np.int32)
    with pytest.raises(InvalidArgumentError, match="row_splits must rise from 0"):
        fi.RaggedArray(np.arange(3), np.array([0, 2, 1, 3]))
    with pytest.raises(InvalidArgumentError, match="row_splits must rise from 0"):
        fi.RaggedArray(np.arange(3), np.array([0, 2]))
    with pytest.raises(InvalidArgumentError, match=r"shape must be \(rows, None, ...\)"):
        fi.RaggedSpec((None, 3), np.int64)


def test_ragged_batch_str():
    ds = fi.Dataset.range(4).map(lambda k: np.arange(k))
    assert str(ds.ragged_batch(2, drop_remainder=True, row_splits_dtype="int32")) == \
        "ragged_batch(2, drop_remainder=True, row_splits_dtype=int32)"
