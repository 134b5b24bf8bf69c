"""batch, padded_batch and unbatch against tf.data, and the batch/unbatch round trip."""

from typing import Any

import numpy as np
import pytest

import fastinput as fi
from fastinput.structure import SparseArray
from tests.helpers import (
    ERROR,
    NO_REWRITES,
    assert_same_elements,
    assert_same_with_errors,
    elements_and_errors,
    fails_at,
    fi_elements,
    tf_elements,
    tf_fails_at,
)


@pytest.mark.parametrize("size", [0, 1, 10, 11, 64])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 100])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_batch_matches_tf(tf, size, batch_size, drop_remainder):
    fi_ds = fi.Dataset.range(size).batch(batch_size, drop_remainder=drop_remainder)
    tf_ds = tf.data.Dataset.range(size).batch(batch_size, drop_remainder=drop_remainder)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


def test_batch_of_structures_matches_tf(tf):
    value = {"img": np.arange(60, dtype=np.uint8).reshape(10, 2, 3), "name": [f"n{i}" for i in range(10)],
             "pair": (np.arange(10, dtype=np.float32), np.arange(10) % 2 == 0)}
    fi_ds = fi.Dataset.from_tensor_slices(value).batch(4)
    tf_ds = tf.data.Dataset.from_tensor_slices(value).batch(4)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


def test_batch_shape_mismatch_is_a_clear_error():
    ds = fi.Dataset.range(1, 5).map(lambda n: np.zeros(int(n))).batch(3)
    with pytest.raises(fi.errors.InvalidArgumentError,
                       match=r"different shapes in component 0.*\[1\].*element 1.*\[2\]"):
        list(ds)


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, None])
def test_batch_size_must_be_positive_int(batch_size):
    with pytest.raises(fi.errors.InvalidArgumentError, match="batch_size"):
        fi.Dataset.range(3).batch(batch_size)


FAILING = [{1}, {0}, {3}, {1, 2}, {1, 5}, {4}, {9}, {8, 9}]


@pytest.mark.parametrize("bad", FAILING)
@pytest.mark.parametrize("drop_remainder", [False, True])
@pytest.mark.parametrize("num_parallel_calls", [None, 3])
@pytest.mark.parametrize("deterministic", [None, False])
def test_map_then_batch_drops_whole_batches_around_errors_like_tf(tf, bad, drop_remainder, num_parallel_calls,
                                                                  deterministic):
    # tf.data fuses map -> batch (map_and_batch): each batch is batch_size input positions and one that
    # meets an error is dropped, its first error raised: range(10), bad {1} -> error, [4..7], [8, 9].
    tf_deterministic = deterministic if num_parallel_calls else None  # tf.data warns about it without parallelism
    expected = elements_and_errors(tf.data.Dataset.range(10).map(
        tf_fails_at(bad), num_parallel_calls=num_parallel_calls,
        deterministic=tf_deterministic).batch(4, drop_remainder))
    for options in (fi.Options(), NO_REWRITES):
        ds = fi.Dataset.range(10).map(fails_at(bad), num_parallel_calls, deterministic).batch(4, drop_remainder)
        actual = elements_and_errors(ds.with_options(options))
        if tf_deterministic is False:  # either library may hand out a batch finished early first (a busy machine)
            actual, expected = _in_one_order(actual), _in_one_order(expected)
        assert_same_with_errors(actual, expected)


def _in_one_order(events: list[Any]) -> list[Any]:
    """``elements_and_errors``' batches and errors sorted (errors first, batches by their values): what a
    ``deterministic=False`` pipeline guarantees is each batch and error, not their order."""
    return sorted(events, key=lambda event: (0, []) if isinstance(event, str) else (1, np.asarray(event).tolist()))


@pytest.mark.parametrize("bad", FAILING)
@pytest.mark.parametrize("drop_remainder", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_batch_of_other_inputs_drops_what_it_gathered_before_an_error_like_tf(tf, bad, drop_remainder, padded):
    # tf.data's batch and padded_batch (not after a map): the error is raised at once, the elements gathered
    # for that batch are dropped, the next batch starts after the error: bad {1} -> error, [2..5], [6..9].
    def batched(ds):
        return ds.padded_batch(4, drop_remainder=drop_remainder) if padded else ds.batch(4, drop_remainder)

    expected = elements_and_errors(batched(tf.data.Dataset.range(10).map(tf_fails_at(bad)).prefetch(1)))
    actual = elements_and_errors(batched(fi.Dataset.range(10).map(fails_at(bad)).prefetch(1)))
    assert_same_with_errors(actual, expected)


def _ragged(tf_module=None):
    def gen():
        for n in [3, 1, 4, 1, 5, 9, 2]:
            yield np.arange(n, dtype=np.int32), np.full((n, 2), n, dtype=np.float32), b"x" * n
    return gen


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7])
def test_padded_batch_matches_tf(tf, batch_size):
    signature = (tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 2], tf.float32), tf.TensorSpec([], tf.string))
    fi_ds = fi.Dataset.from_generator(_ragged(), output_signature=signature).padded_batch(batch_size)
    tf_ds = tf.data.Dataset.from_generator(_ragged(), output_signature=signature).padded_batch(batch_size)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


def test_padded_batch_with_shapes_and_values_matches_tf(tf):
    signature = (tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 2], tf.float32), tf.TensorSpec([], tf.string))
    shapes, values = ([10], [None, 2], []), (-1, 0.5, b"?")
    fi_ds = fi.Dataset.from_generator(_ragged(), output_signature=signature).padded_batch(
        3, padded_shapes=shapes, padding_values=values, drop_remainder=True)
    tf_ds = tf.data.Dataset.from_generator(_ragged(), output_signature=signature).padded_batch(
        3, padded_shapes=shapes, padding_values=(tf.constant(-1), tf.constant(0.5), tf.constant(b"?")),
        drop_remainder=True)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


@pytest.mark.parametrize("padding", [{}, {"padding_values": "PAD"}, {"padding_values": b"PAD"}])
@pytest.mark.parametrize("padded_shapes", [None, 5, [5], [-1], np.array([5])])
def test_padded_batch_of_strings_gives_arrays_of_bytes_like_tf(tf, padding, padded_shapes):
    # vectors of strings padded with b"" or the padding value (a str becomes bytes); scalars stacked as they are
    tf_ds = tf.data.Dataset.range(5).map(lambda x: (tf.fill([x], "s"), tf.strings.as_string(x)))
    fi_ds = fi.Dataset.range(5).map(lambda x: (np.full(int(x), "s"), str(x)))
    shapes = None if padded_shapes is None else (padded_shapes, [])
    values = None if not padding else (padding["padding_values"], b"")
    expected = tf_elements(tf_ds.padded_batch(2, padded_shapes=shapes, padding_values=values))
    actual = fi_elements(fi_ds.padded_batch(2, padded_shapes=shapes, padding_values=values))
    assert_same_elements(actual, expected)
    assert all(type(value) is bytes for batch in actual for leaf in batch for value in leaf.flat)


@pytest.mark.parametrize("padded_shapes", [[4.0], ["4"], ([2.5], []), {"a": [None, 1.0]}, [-2]])
def test_padded_shapes_that_are_not_dimensions_are_rejected_when_the_pipeline_is_built(tf, padded_shapes):
    if not isinstance(padded_shapes, dict):
        with pytest.raises((TypeError, ValueError)):
            tf.data.Dataset.range(3).map(lambda x: (tf.fill([x], x), x)).padded_batch(2, padded_shapes=padded_shapes)
    with pytest.raises(fi.errors.InvalidArgumentError, match=r"padded_shapes\[\d+\] must be"):
        fi.Dataset.range(3).padded_batch(2, padded_shapes=padded_shapes)


def test_padding_value_of_the_wrong_kind_is_a_clear_error():
    with pytest.raises(fi.errors.InvalidArgumentError, match="padding_values: .* is not a scalar"):
        fi.Dataset.range(3).padded_batch(2, padding_values=object())
    ds = fi.Dataset.range(3).map(lambda x: np.full(int(x), x)).padded_batch(2, padding_values="x")
    with pytest.raises(fi.errors.InvalidArgumentError,
                       match="padding value b'x' of component 0 does not match its int64"):
        fi_elements(ds)


def test_padded_batch_too_small_shape_is_an_error():
    ds = fi.Dataset.range(1, 6).map(lambda n: np.ones(int(n))).padded_batch(5, padded_shapes=[3])
    with pytest.raises(fi.errors.InvalidArgumentError, match="larger than the padded shape"):
        list(ds)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_unbatch_matches_tf(tf, batch_size):
    value = {"a": np.arange(20).reshape(10, 2), "b": [str(i) for i in range(10)]}
    fi_ds = fi.Dataset.from_tensor_slices(value).batch(batch_size).unbatch()
    tf_ds = tf.data.Dataset.from_tensor_slices(value).batch(batch_size).unbatch()
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


@pytest.mark.parametrize("size", [0, 1, 17, 1000])
@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_batch_then_unbatch_is_identity(size, batch_size):
    value = (np.arange(size), np.arange(size * 3, dtype=np.float32).reshape(size, 3))
    original = fi_elements(fi.Dataset.from_tensor_slices(value))
    assert_same_elements(fi_elements(fi.Dataset.from_tensor_slices(value).batch(batch_size).unbatch()), original)


def test_unbatch_rejects_scalars():
    with pytest.raises(fi.errors.InvalidArgumentError, match="scalar"):
        list(fi.Dataset.range(3).unbatch())


def test_batching_sparse_arrays_matches_tf(tf):
    rows = [[1, 2], [], [3], [4, 5, 6]]
    fi_ds = fi.Dataset.from_generator(
        lambda: ({"v": SparseArray(np.arange(len(r))[:, None], np.array(r, dtype=np.int64), [len(r)])} for r in rows)
    ).batch(3)
    tf_ds = tf.data.Dataset.from_generator(
        lambda: ({"v": tf.sparse.from_dense(tf.constant(r, tf.int64)) if r
                  else tf.SparseTensor(tf.zeros([0, 1], tf.int64), tf.zeros([0], tf.int64), [0])} for r in rows),
        output_signature={"v": tf.SparseTensorSpec([None], tf.int64)}).batch(3)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


def test_an_identity_map_before_batch_keeps_map_and_batch_rule_where_tf_data_removes_the_map(tf):
    # README, "Where fastinput differs": tf.data's optimizer drops a map returning its input unchanged, so its
    # batch takes batch's rule (the next batch starts after the error); fastinput keeps map's rule.
    tf_events = elements_and_errors(tf.data.Dataset.range(12).map(tf_fails_at({1})).prefetch(1)
                                    .map(lambda x: x).batch(4))
    fi_events = elements_and_errors(fi.Dataset.range(12).map(fails_at({1})).prefetch(1).map(lambda x: x).batch(4))
    assert [e if isinstance(e, str) else e.tolist() for e in tf_events] == [ERROR, [2, 3, 4, 5], [6, 7, 8, 9], [10, 11]]
    assert [e if isinstance(e, str) else e.tolist() for e in fi_events] == [ERROR, [4, 5, 6, 7], [8, 9, 10, 11]]
    # with a function that is not the identity, both take map_and_batch's rule
    tf_plus = elements_and_errors(tf.data.Dataset.range(12).map(tf_fails_at({1})).prefetch(1)
                                  .map(lambda x: x + 1).batch(4))
    fi_plus = elements_and_errors(fi.Dataset.range(12).map(fails_at({1})).prefetch(1).map(lambda x: x + 1).batch(4))
    assert_same_with_errors(fi_plus, tf_plus)
