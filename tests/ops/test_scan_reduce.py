"""``scan``, ``reduce`` and ``get_single_element`` against tf.data."""

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import fi_outcomes, fi_raising_at, tf_outcomes, tf_raising_at


def running_sum(state, x):
    return state + x, state + x


SCANS = {
    "running sum": lambda D, fail: D.range(8).scan(np.int64(0), running_sum),
    "empty": lambda D, fail: D.range(0).scan(np.int64(0), running_sum),
    "tuple state and output": lambda D, fail: D.range(6).scan(
        (np.int64(0), np.int64(1)), lambda s, x: ((s[0] + x, s[1] * 2), (x, s[0], s[1]))),
    "tuple elements": lambda D, fail: D.zip((D.range(5), D.range(5))).scan(
        np.int64(0), lambda s, xy: (s + xy[0] * xy[1], s)),
    "input error keeps the state": lambda D, fail: D.range(6).map(fail(2)).scan(np.int64(0), running_sum),
    "errors then repeat": lambda D, fail: D.range(4).map(fail(1, 3)).scan(np.int64(0), running_sum).repeat(2),
    "parallel input": lambda D, fail: D.range(20).map(fail(5), num_parallel_calls=2).scan(np.int64(0), running_sum),
}


@pytest.mark.parametrize("case", SCANS)
def test_scan_matches_tf(tf, case):
    build = SCANS[case]
    assert fi_outcomes(build(fi.Dataset, fi_raising_at)) == tf_outcomes(build(tf.data.Dataset, tf_raising_at))


def test_a_scan_function_error_keeps_the_state_like_tf(tf):
    def tf_fn(s, x):
        y = tf.py_function(fi_raising_at(2), [x], tf.int64)
        y.set_shape([])
        return s + y, s + y

    def fi_fn(s, x):
        y = fi_raising_at(2)(x)
        return s + y, s + y

    expected = tf_outcomes(tf.data.Dataset.range(6).scan(np.int64(0), tf_fn))
    assert fi_outcomes(fi.Dataset.range(6).scan(np.int64(0), fi_fn)) == expected


def test_scan_element_spec_and_cardinality_match_tf(tf):
    def fn(s, x):
        return s + 1, (x, np.float32(1.5) * np.float32(s), np.zeros(2, np.int32))

    def tf_fn(s, x):
        return s + 1, (x, tf.cast(s, tf.float32) * 1.5, tf.zeros(2, tf.int32))

    spec = fi.Dataset.range(5).scan(np.int64(0), fn).element_spec
    tf_spec = tf.data.Dataset.range(5).scan(np.int64(0), tf_fn).element_spec
    assert [(s.shape, s.dtype) for s in spec] == [(tuple(t.shape.as_list()), t.dtype.as_numpy_dtype) for t in tf_spec]
    assert fi.Dataset.range(5).scan(np.int64(0), fn).cardinality() == 5
    assert fi.Dataset.range(5).repeat().scan(np.int64(0), fn).cardinality() == fi.INFINITE_CARDINALITY


def test_a_state_that_grows_gets_an_unknown_dimension(tf):
    def grow(s, x):
        return np.concatenate([s, [x]]), s

    spec = fi.Dataset.range(4).scan(np.zeros(0, np.int64), grow).element_spec
    assert spec == fi.TensorSpec((None,), np.int64)
    assert [v.tolist() for v in fi.Dataset.range(4).scan(np.zeros(0, np.int64), grow)] == [[], [0], [0, 1], [0, 1, 2]]


def test_scan_refuses_a_new_state_of_another_dtype(tf):
    with pytest.raises(TypeError):
        tf.data.Dataset.range(5).scan(np.int32(0), lambda s, x: (x, x))
    with pytest.raises(fi.errors.InvalidArgumentError, match="initial state"):
        fi.Dataset.range(5).scan(np.int32(0), lambda s, x: (x, x))
    with pytest.raises(fi.errors.InvalidArgumentError, match="pair"):
        list(fi.Dataset.range(5).scan(np.int64(0), lambda s, x: x))


@pytest.mark.parametrize("n", [0, 1, 10])
def test_reduce_matches_tf(tf, n):
    expected = tf.data.Dataset.range(n).reduce(np.int64(7), lambda s, x: s + x).numpy()
    assert fi.Dataset.range(n).reduce(np.int64(7), lambda s, x: s + x) == expected
    pairs = fi.Dataset.range(n).reduce((np.int64(0), np.int64(1)), lambda s, x: (s[0] + x, s[1] * 2))
    tf_pairs = tf.data.Dataset.range(n).reduce((np.int64(0), np.int64(1)), lambda s, x: (s[0] + x, s[1] * 2))
    assert [int(v) for v in pairs] == [int(v) for v in tf_pairs]


def test_reduce_raises_the_first_error(tf):
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.data.Dataset.range(5).map(tf_raising_at(2)).reduce(np.int64(0), lambda s, x: s + x)
    with pytest.raises(ValueError, match="injected error at 2"):
        fi.Dataset.range(5).map(fi_raising_at(2), num_parallel_calls=2).reduce(np.int64(0), lambda s, x: s + x)


def test_get_single_element_matches_tf(tf):
    assert fi.Dataset.range(5).skip(4).get_single_element() == tf.data.Dataset.range(5).skip(4).get_single_element()
    pair = fi.Dataset.from_tensors((np.int64(1), b"a")).get_single_element()
    assert pair == (1, b"a")
    for n, message in ((0, "Dataset was empty"), (2, "Dataset had more than one element")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            tf.data.Dataset.range(n).get_single_element()
        with pytest.raises(fi.errors.InvalidArgumentError, match=message):
            fi.Dataset.range(n).prefetch(2).get_single_element()
    with pytest.raises(ValueError, match="injected"):
        fi.Dataset.range(1).map(fi_raising_at(0)).get_single_element()
