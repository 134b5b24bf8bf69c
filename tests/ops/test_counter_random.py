"""``Dataset.counter`` and ``Dataset.random`` against tf.data (random: its properties, not TensorFlow's bits)."""

import numpy as np
import pytest

import fastinput as fi
from tests.conformance.oracle import canonical_spec


@pytest.mark.parametrize("args", [(), (5,), (5, -3), (-2, 0), (2**31 - 2, 1)], ids=str)
@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_counter_matches_tf(tf, args, dtype):
    ds = fi.Dataset.counter(*args, dtype=np.dtype(dtype).type)
    tf_ds = tf.data.Dataset.counter(*args, dtype=tf.as_dtype(dtype))
    assert [x.item() for x in ds.take(6)] == [x.item() for x in tf_ds.take(6).as_numpy_iterator()]
    assert canonical_spec(ds.element_spec) == canonical_spec(tf_ds.element_spec)
    assert ds.cardinality() == int(tf_ds.cardinality()) == fi.INFINITE_CARDINALITY
    assert type(next(iter(ds))) is np.dtype(dtype).type


def test_counter_default_dtype_and_string():
    assert fi.Dataset.counter().element_spec == fi.TensorSpec((), np.int64)
    assert str(fi.Dataset.counter(3, 2)) == "counter(start=3, step=2, dtype=int64)"
    with pytest.raises(fi.errors.InvalidArgumentError, match="step"):
        fi.Dataset.counter(0, 1.5)


def draws(ds, n=8):
    return [int(x) for x in ds.take(n)]


def test_random_is_tf_datas_kind_of_number(tf):
    tf_ds = tf.data.Dataset.random(seed=3)
    ds = fi.Dataset.random(seed=3)
    assert canonical_spec(ds.element_spec) == canonical_spec(tf_ds.element_spec)
    assert ds.cardinality() == int(tf_ds.cardinality()) == fi.INFINITE_CARDINALITY
    values = draws(ds, 2000)
    assert all(0 <= v < 2**32 for v in values) and max(values) > 2**31  # the range tf.data's values fall in
    assert all(0 <= int(v) < 2**32 for v in tf_ds.take(2000).as_numpy_iterator())
    assert type(next(iter(ds))) is np.int64


def test_random_is_deterministic_for_a_seed():
    assert draws(fi.Dataset.random(seed=1)) == draws(fi.Dataset.random(seed=1))
    assert draws(fi.Dataset.random(seed=1)) != draws(fi.Dataset.random(seed=2))
    assert draws(fi.Dataset.random(seed=None)) != draws(fi.Dataset.random(seed=None))


def test_without_a_seed_each_dataset_draws_its_own_sequence_once_like_tf(tf):
    tf_ds = tf.data.Dataset.random().take(4)
    assert list(tf_ds.as_numpy_iterator()) == list(tf_ds.as_numpy_iterator())
    ds = fi.Dataset.random().take(4)
    assert draws(ds) == draws(ds)
    assert draws(ds.repeat(2))[:4] == draws(ds)


@pytest.mark.parametrize("rerandomize", [None, False, True])
def test_each_iteration_draws_anew_only_when_asked_like_tf(tf, rerandomize):
    epochs = draws(fi.Dataset.random(seed=5, rerandomize_each_iteration=rerandomize).take(4).repeat(2))
    tf_epochs = [int(x) for x in tf.data.Dataset.random(seed=5, rerandomize_each_iteration=rerandomize)
                 .take(4).repeat(2).as_numpy_iterator()]
    assert (epochs[:4] == epochs[4:]) == (tf_epochs[:4] == tf_epochs[4:]) == (not rerandomize)
    ds = fi.Dataset.random(seed=5, rerandomize_each_iteration=rerandomize)
    assert (draws(ds) == draws(ds)) == (not rerandomize)
