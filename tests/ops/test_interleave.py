"""interleave: tf.data's order (sequential and parallel), sloppy mode, errors, early stop."""

import threading

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import (
    as_ints,
    assert_same_elements,
    fi_elements,
    fi_outcomes,
    fi_raising_at,
    no_leaked_threads,
    tf_elements,
    tf_outcomes,
    tf_raising_at,
)

LENGTHS = [3, 0, 5, 1, 7, 2, 2, 6, 0, 4, 9, 1]


def _fi_inner(x):
    return fi.Dataset.range(x * 100, x * 100 + np.int64(LENGTHS[int(x)]))


def _tf_inner(tf):
    lengths = tf.constant(LENGTHS, tf.int64)
    return lambda x: tf.data.Dataset.range(x * 100, x * 100 + lengths[x])


@pytest.mark.parametrize("cycle_length", [1, 2, 3, 5, 16])
@pytest.mark.parametrize("block_length", [1, 2, 4])
@pytest.mark.parametrize("num_parallel_calls", [None, 1, 2, fi.AUTOTUNE])
def test_interleave_order_matches_tf(tf, cycle_length, block_length, num_parallel_calls):
    if num_parallel_calls not in (None, fi.AUTOTUNE) and num_parallel_calls > cycle_length:
        with pytest.raises(fi.errors.InvalidArgumentError, match="at most cycle_length"):
            fi.Dataset.range(3).interleave(_fi_inner, cycle_length, block_length, num_parallel_calls)
        return
    fi_ds = fi.Dataset.range(len(LENGTHS)).interleave(_fi_inner, cycle_length, block_length, num_parallel_calls)
    tf_ds = tf.data.Dataset.range(len(LENGTHS)).interleave(_tf_inner(tf), cycle_length, block_length,
                                                           num_parallel_calls)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


@pytest.mark.parametrize("num_parallel_calls", [2, 4])
def test_sloppy_interleave_is_a_permutation(num_parallel_calls):
    def slow_inner(x):
        def gen():
            for i in range(LENGTHS[int(x)]):
                threading.Event().wait(0.001 * (int(x) % 3))
                yield int(x) * 100 + i
        return fi.Dataset.from_generator(gen)

    ds = fi.Dataset.range(len(LENGTHS)).interleave(slow_inner, cycle_length=4, num_parallel_calls=num_parallel_calls,
                                                    deterministic=False)
    expected = sorted(x * 100 + i for x, n in enumerate(LENGTHS) for i in range(n))
    assert sorted(as_ints(fi_elements(ds))) == expected


def test_flat_map_matches_tf(tf):
    assert_same_elements(fi_elements(fi.Dataset.range(len(LENGTHS)).flat_map(_fi_inner)),
                         tf_elements(tf.data.Dataset.range(len(LENGTHS)).flat_map(_tf_inner(tf))))


def test_interleave_tuple_elements_are_unpacked():
    ds = fi.Dataset.from_tensor_slices((np.array([1, 2]), np.array([10, 20]))).interleave(
        lambda start, n: fi.Dataset.range(start, start + 2), cycle_length=2)
    assert as_ints(fi_elements(ds)) == [1, 2, 2, 3]


@pytest.mark.parametrize("num_parallel_calls", [None, 2])
def test_map_func_must_return_a_dataset(num_parallel_calls):
    with pytest.raises(fi.errors.InvalidArgumentError, match="must be a fastinput Dataset"):  # seen while building
        fi.Dataset.range(3).interleave(lambda x: [x], cycle_length=2, num_parallel_calls=num_parallel_calls)

    def odd_ones_only(x):  # cannot be traced on a placeholder (0): found while iterating
        if x % 2 == 0:
            raise ValueError("even")
        return [x]

    ds = fi.Dataset.range(1, 3).interleave(odd_ones_only, cycle_length=2, num_parallel_calls=num_parallel_calls)
    with pytest.raises(fi.errors.InvalidArgumentError, match="result must be a fastinput Dataset"):
        list(ds)


@pytest.mark.parametrize("num_parallel_calls", [None, 2])
def test_inner_error_arrives_in_order(num_parallel_calls):
    def inner(x):
        def fn(y):
            if x == 1 and y == 101:
                raise OSError("read failed")
            return y
        return fi.Dataset.range(x * 100, x * 100 + 3).map(fn)

    it = iter(fi.Dataset.range(2).interleave(inner, cycle_length=2, num_parallel_calls=num_parallel_calls))
    got = []
    with pytest.raises(OSError, match="read failed"):
        while True:
            got.append(int(next(it)))
    assert got == [0, 100, 1]
    it.close()


@pytest.mark.parametrize(
    "kwargs", [{"cycle_length": 0}, {"block_length": 0}, {"num_parallel_calls": 0}, {"deterministic": 1}])
def test_bad_arguments(kwargs):
    with pytest.raises(fi.errors.InvalidArgumentError):
        fi.Dataset.range(3).interleave(_fi_inner, **kwargs)


def test_early_stop_joins_reader_threads():
    with no_leaked_threads():
        ds = fi.Dataset.range(1000).interleave(lambda x: fi.Dataset.range(10**6).prefetch(4), cycle_length=4,
                                                num_parallel_calls=4)
        for i, _ in enumerate(ds):
            if i == 50:
                break


def test_interleave_stats_and_knobs_are_visible():
    with iter(fi.Dataset.range(8).interleave(_fi_inner, cycle_length=4, num_parallel_calls=fi.AUTOTUNE)) as it:
        next(it)
        knobs = {k.name: k for k in it.knobs()}
        # the cycle and as many read-ahead datasets
        assert knobs["parallelism"].autotuned and knobs["parallelism"].maximum == 8
        knobs["parallelism"].set(1)
        rest = list(it)
    assert len(rest) == sum(LENGTHS[:8]) - 1


LONG_LENGTHS = [700, 650, 0, 900, 20, 640, 333]
"""Long inner datasets: a batch downstream asks for many elements at once, so whole rounds are handed out together."""


@pytest.mark.parametrize("cycle_length", [2, 4])
def test_whole_rounds_keep_tf_order_in_batches(tf, cycle_length):
    lengths = tf.constant(LONG_LENGTHS, tf.int64)
    fi_ds = fi.Dataset.range(len(LONG_LENGTHS)).interleave(
        lambda x: fi.Dataset.range(x * 1000, x * 1000 + LONG_LENGTHS[int(x)]), cycle_length, 1, cycle_length).batch(256)
    tf_ds = tf.data.Dataset.range(len(LONG_LENGTHS)).interleave(
        lambda x: tf.data.Dataset.range(x * 1000, x * 1000 + lengths[x]), cycle_length, 1, cycle_length).batch(256)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


def test_error_inside_whole_rounds_arrives_after_every_element_before_it(tf):
    def inner(x):
        def fn(y):
            if y == 3500:
                raise OSError("read failed")
            return y
        return fi.Dataset.range(x * 1000, x * 1000 + 600).map(fn)

    expected = [y for i in range(600) for y in (i, 1000 + i, 2000 + i, 3000 + i)]
    expected = expected[:expected.index(3500)]
    it = iter(fi.Dataset.range(4).interleave(inner, cycle_length=4, num_parallel_calls=4).batch(100))
    got = []
    with pytest.raises(OSError, match="read failed"):
        while True:
            got.extend(as_ints(next(it)))
    assert got == expected[:len(got)] and len(expected) - len(got) < 100  # the partial batch is dropped with the error
    it.close()


INTERLEAVES_WITH_ERRORS = {  # ``D``: tf.data.Dataset or fi.Dataset; ``fail(*values)`` raises for those values
    "inner errors": lambda D, fail, **kw: D.range(3).interleave(
        lambda i: D.range(5).map(lambda x: x * 10 + i).map(fail(11, 20, 32)), cycle_length=2, **kw),
    "outer error": lambda D, fail, **kw: D.range(4).map(fail(1)).interleave(
        lambda i: D.range(3).map(lambda x: x * 10 + i), cycle_length=2, **kw),
    "blocks of 2": lambda D, fail, **kw: D.range(3).interleave(
        lambda i: D.range(6).map(lambda x: x * 10 + i).map(fail(11, 40, 2)), cycle_length=3, block_length=2, **kw),
}


@pytest.mark.parametrize("num_parallel_calls", [None, 2])
@pytest.mark.parametrize("case", INTERLEAVES_WITH_ERRORS)
def test_errors_keep_their_place_like_tf(tf, case, num_parallel_calls):
    build = INTERLEAVES_WITH_ERRORS[case]
    expected = tf_outcomes(build(tf.data.Dataset, tf_raising_at, num_parallel_calls=num_parallel_calls))
    assert fi_outcomes(build(fi.Dataset, fi_raising_at, num_parallel_calls=num_parallel_calls)) == expected


def test_flat_map_inner_error_keeps_its_place_like_tf(tf):
    def build(D, fail):
        return D.range(3).flat_map(lambda i: D.range(3).map(lambda x: x * 10 + i).map(fail(11)))

    assert fi_outcomes(build(fi.Dataset, fi_raising_at)) == tf_outcomes(build(tf.data.Dataset, tf_raising_at))
