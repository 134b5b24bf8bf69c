"""sparse_batch against tf.data's sparse_batch: batches, element specs, the errors in their places (an element of
another rank, one larger than the row shape, an input's error), and the SparseArrays through as_tf_dataset."""

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import DataLossError, InvalidArgumentError
from tests.helpers import (
    assert_same_with_errors,
    elements_and_errors,
    fails_at,
    tf_elements,
    tf_fails_at,
)


def vectors(lib, n, bad=()):
    """Element k: the k values k*10, k*10+1, ... (a vector of length k); an error at each value in ``bad``."""
    if lib == "fi":
        return fi.Dataset.range(n).map(fails_at(set(bad))).map(lambda k: np.arange(k) + 10 * k)
    import tensorflow as tf

    return tf.data.Dataset.range(n).map(tf_fails_at(set(bad))).map(lambda k: tf.range(k) + 10 * k)


def matrices(lib, n):
    """Element k: a (2, k) float matrix."""
    if lib == "fi":
        return fi.Dataset.range(n).map(lambda k: np.arange(2 * k, dtype=np.float32).reshape(2, k))
    import tensorflow as tf

    return tf.data.Dataset.range(n).map(lambda k: tf.reshape(tf.range(2 * k, dtype=tf.float32), [2, -1]))


def strings(lib, n):
    """Element k: k strings."""
    if lib == "fi":
        return fi.Dataset.range(n).map(lambda k: np.array([b"%d" % i for i in range(k)], dtype=object))
    import tensorflow as tf

    return tf.data.Dataset.range(n).map(lambda k: tf.strings.as_string(tf.range(k)))


def scalars(lib, n):
    if lib == "fi":
        return fi.Dataset.range(n)
    import tensorflow as tf

    return tf.data.Dataset.range(n)


CASES = [
    (vectors, [8]), (vectors, [None]), (vectors, [20]),
    (matrices, [2, None]), (matrices, [2, 9]), (matrices, [None, None]),
    (strings, [6]), (strings, [None]),
    (scalars, []),
]


def assert_same_spec(tf, fi_spec, tf_spec):
    assert isinstance(fi_spec, fi.SparseSpec) and isinstance(tf_spec, tf.SparseTensorSpec)
    assert fi_spec.shape == tuple(tf_spec.shape.as_list())
    assert fi_spec.dtype == (np.dtype(object) if tf_spec.dtype == tf.string else tf_spec.dtype.as_numpy_dtype)


@pytest.mark.parametrize("make,row_shape", CASES)
@pytest.mark.parametrize("size", [0, 1, 7])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_sparse_batch_matches_tf(tf, make, row_shape, size, batch_size):
    fi_ds = make("fi", size).sparse_batch(batch_size, row_shape)
    tf_ds = make("tf", size).sparse_batch(batch_size, row_shape)
    assert_same_with_errors(elements_and_errors(fi_ds), elements_and_errors(tf_ds))
    assert_same_spec(tf, fi_ds.element_spec, tf_ds.element_spec)
    assert fi_ds.cardinality() == int(tf_ds.cardinality())


def test_every_value_is_stored_zeros_too(tf):
    rows = np.array([[0, 1, 0], [2, 0, 0]])
    fi_batches = elements_and_errors(fi.Dataset.from_tensor_slices(rows).sparse_batch(2, [3]))
    tf_batches = elements_and_errors(tf.data.Dataset.from_tensor_slices(rows).sparse_batch(2, [3]))
    assert_same_with_errors(fi_batches, tf_batches)
    assert fi_batches[0].values.tolist() == [0, 1, 0, 2, 0, 0]


@pytest.mark.parametrize("row_shape", [[4], [3], [0]])
@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_an_element_larger_than_the_row_shape_fails_in_its_place_like_tf(tf, row_shape, batch_size):
    # tf.data reads element by element: the failing one ends its batch (the elements gathered dropped), the next
    # batch starts after it
    fi_ds = vectors("fi", 8).sparse_batch(batch_size, row_shape)
    tf_ds = vectors("tf", 8).sparse_batch(batch_size, row_shape)
    assert_same_with_errors(elements_and_errors(fi_ds), elements_and_errors(tf_ds))
    with pytest.raises(DataLossError, match=r"sparse_batch.*input element had shape \[\d\] that is larger than the "
                                            rf"row shape \[{row_shape[0]}\]"):
        for _ in vectors("fi", 8).sparse_batch(batch_size, row_shape):
            pass


def test_an_element_of_another_rank_fails_in_its_place_like_tf(tf):
    fi_ds = vectors("fi", 5).sparse_batch(2, [4, 2])
    tf_ds = vectors("tf", 5).sparse_batch(2, [4, 2])
    outcomes = elements_and_errors(fi_ds)
    assert_same_with_errors(outcomes, elements_and_errors(tf_ds))
    assert len(outcomes) == 5  # one error per element
    with pytest.raises(InvalidArgumentError, match=r"input element had shape \[0\] that is incompatible with the "
                                                   r"row shape \[4, 2\]"):
        next(iter(fi_ds))


@pytest.mark.parametrize("bad", [{0}, {3}, {2, 3}, {7}])
def test_an_input_error_drops_the_elements_gathered_like_tf(tf, bad):
    fi_ds = vectors("fi", 8, bad).sparse_batch(3, [None])
    tf_ds = vectors("tf", 8, bad).sparse_batch(3, [None])
    assert_same_with_errors(elements_and_errors(fi_ds), elements_and_errors(tf_ds))


def test_sparse_batch_through_as_tf_dataset(tf):
    fi_ds = matrices("fi", 7).sparse_batch(3, [2, None])
    tf_ds = matrices("tf", 7).sparse_batch(3, [2, None])
    adapted = fi_ds.as_tf_dataset()
    assert adapted.element_spec == tf_ds.element_spec
    assert_same_with_errors(tf_elements(adapted), tf_elements(tf_ds))


def test_a_tensor_shape_is_a_row_shape(tf):
    assert vectors("fi", 3).sparse_batch(2, tf.TensorShape([None])).element_spec == fi.SparseSpec((None, None),
                                                                                                   np.int64)


@pytest.mark.parametrize("dataset,kwargs,match", [
    (fi.Dataset.range(3), {"batch_size": 0, "row_shape": []}, "batch_size"),
    (fi.Dataset.range(3), {"batch_size": 2, "row_shape": [-2]}, r"row_shape\[0\]"),
    (fi.Dataset.range(3), {"batch_size": 2, "row_shape": 4}, "row_shape must be a sequence"),
    (fi.Dataset.range(3).map(lambda x: (x, x)), {"batch_size": 2, "row_shape": []}, "single dense tensors"),
])
def test_sparse_batch_arguments_are_checked(dataset, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        dataset.sparse_batch(**kwargs)


def test_sparse_batch_str():
    assert str(fi.Dataset.range(3).sparse_batch(2, [None, 4])) == "sparse_batch(2, row_shape=[None, 4])"
