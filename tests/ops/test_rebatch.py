"""rebatch against tf.data: values, element_spec, errors and what surrounds them."""

import numpy as np
import pytest

import fastinput as fi
from fastinput.spec import TensorSpec
from tests.helpers import (
    assert_same_elements,
    assert_same_with_errors,
    elements_and_errors,
    fails_at,
    fi_elements,
    tf_elements,
    tf_fails_at,
)


@pytest.mark.parametrize("size", [0, 1, 10, 23])
@pytest.mark.parametrize("input_batch", [1, 3, 8])
@pytest.mark.parametrize("batch_size", [1, 2, 5, [1, 2], [3, 1, 4], [2, 2]])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_rebatch_matches_tf(tf, size, input_batch, batch_size, drop_remainder):
    fi_ds = fi.Dataset.range(size).batch(input_batch).rebatch(batch_size, drop_remainder)
    tf_ds = tf.data.Dataset.range(size).batch(input_batch).rebatch(batch_size, drop_remainder)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


def test_rebatch_of_structures_matches_tf(tf):
    value = {"img": np.arange(60, dtype=np.uint8).reshape(10, 2, 3), "name": [f"n{i}" for i in range(10)],
             "pair": (np.arange(10, dtype=np.float32), np.arange(10) % 2 == 0)}
    fi_ds = fi.Dataset.from_tensor_slices(value).batch(4).rebatch([3, 2])
    tf_ds = tf.data.Dataset.from_tensor_slices(value).batch(4).rebatch([3, 2])
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


@pytest.mark.parametrize("input_batch,drop_input", [(3, False), (3, True), (6, True), (4, True)])
@pytest.mark.parametrize("batch_size", [2, 3, 8, [3, 3], [1, 2]])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_rebatch_element_spec_matches_tf(tf, input_batch, drop_input, batch_size, drop_remainder):
    fi_spec = fi.Dataset.range(10).batch(input_batch, drop_input).rebatch(batch_size, drop_remainder).element_spec
    tf_spec = tf.data.Dataset.range(10).batch(input_batch, drop_input).rebatch(batch_size, drop_remainder).element_spec
    assert fi_spec == TensorSpec(tf_spec.shape, tf_spec.dtype.as_numpy_dtype)


@pytest.mark.parametrize("bad", [{4}, {0}, {4, 9}, {11}, {2, 3}])
@pytest.mark.parametrize("input_batch", [1, 2])
@pytest.mark.parametrize("batch_size", [3, [1, 2], [3, 1]])
def test_rebatch_drops_what_it_gathered_at_an_error_like_tf(tf, bad, input_batch, batch_size):
    # an input error is raised at once, the rows gathered for that batch dropped, the size cycle not advanced
    expected = elements_and_errors(tf.data.Dataset.range(12).map(tf_fails_at(bad)).batch(input_batch)
                                   .rebatch(batch_size))
    actual = elements_and_errors(fi.Dataset.range(12).map(fails_at(bad)).batch(input_batch).rebatch(batch_size))
    assert_same_with_errors(actual, expected)


@pytest.mark.parametrize("batch_size", [0, -1, [], [2, 0], 2.5, None])
def test_rebatch_batch_size_is_checked(batch_size):
    with pytest.raises(fi.errors.InvalidArgumentError, match="batch_size"):
        fi.Dataset.range(4).batch(2).rebatch(batch_size)


def test_rebatch_of_scalars_is_refused_when_built():
    with pytest.raises(fi.errors.InvalidArgumentError, match="scalar"):
        fi.Dataset.range(4).rebatch(2)


def test_rebatch_of_unequal_components_is_a_clear_error():
    ds = fi.Dataset.from_generator(lambda: iter([(np.arange(2), np.arange(3))]),
                                   output_signature=(TensorSpec((None,), np.int64), TensorSpec((None,), np.int64)))
    with pytest.raises(fi.errors.InvalidArgumentError, match=r"different first dimensions \[2, 3\]"):
        fi_elements(ds.rebatch(2))


def test_rebatch_str():
    assert str(fi.Dataset.range(4).batch(2).rebatch([1, 2], drop_remainder=True)) == \
        "rebatch([1, 2], drop_remainder=True)"
    assert str(fi.Dataset.range(4).batch(2).rebatch(3)) == "rebatch(3)"
