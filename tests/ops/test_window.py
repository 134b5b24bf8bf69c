"""``window`` against tf.data: the windows' values, element specs, errors and what surrounds them."""

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import fi_outcomes, fi_raising_at, tf_outcomes, tf_raising_at

ARGUMENTS = [  # (size, shift, stride, drop_remainder)
    (3, None, 1, False), (3, None, 1, True), (3, 1, 1, False), (3, 1, 1, True), (2, 3, 1, False),
    (3, 2, 2, False), (3, 2, 2, True), (1, 1, 3, False), (4, 5, 2, True), (5, 1, 1, False), (20, 1, 1, True),
]


def as_batches(windows, size):
    """Each window as one batch (the usual ``flat_map(lambda w: w.batch(size))``)."""
    return windows.flat_map(lambda w: w.batch(size))


@pytest.mark.parametrize("n", [0, 1, 7, 10])
@pytest.mark.parametrize("args", ARGUMENTS, ids=str)
def test_window_matches_tf(tf, n, args):
    size = args[0]
    expected = tf_outcomes(as_batches(tf.data.Dataset.range(n).window(*args), size))
    assert fi_outcomes(as_batches(fi.Dataset.range(n).window(*args), size)) == expected


@pytest.mark.parametrize("args", ARGUMENTS, ids=str)
def test_window_cardinality_matches_tf(tf, args):
    for n in (0, 1, 7, 10):
        assert fi.Dataset.range(n).window(*args).cardinality() == int(tf.data.Dataset.range(n).window(*args)
                                                                       .cardinality())


# ``D``: tf.data.Dataset or fi.Dataset; ``fail(*values)`` a map function raising at those values.
WITH_ERRORS = {
    "error inside a window": lambda D, fail: D.range(10).map(fail(4)).window(3),
    "error between strides": lambda D, fail: D.range(10).map(fail(1)).window(2, 2, 2),
    "error in overlapping windows": lambda D, fail: D.range(8).map(fail(3)).window(3, 1),
    "error skipped by the shift": lambda D, fail: D.range(12).map(fail(4)).window(2, 5),
    "errors at the end": lambda D, fail: D.range(7).map(fail(6)).window(3, drop_remainder=True),
    "two errors": lambda D, fail: D.range(10).map(fail(0, 9)).window(4, 3),
    "parallel input": lambda D, fail: D.range(20).map(fail(2, 11), num_parallel_calls=2).window(3, 2),
}


@pytest.mark.parametrize("case", WITH_ERRORS)
def test_window_errors_keep_their_place_like_tf(tf, case):
    build = WITH_ERRORS[case]
    expected = tf_outcomes(as_batches(build(tf.data.Dataset, tf_raising_at), 8))
    assert fi_outcomes(as_batches(build(fi.Dataset, fi_raising_at), 8)) == expected


def test_windows_of_nests_are_nests_of_datasets(tf):
    def pipeline(D):
        ds = D.zip((D.range(7), D.range(7).map(lambda x: x * 10)))
        return ds.window(3, 2).flat_map(lambda a, b: D.zip((a.batch(3), b.batch(3))))

    assert fi_outcomes(pipeline(fi.Dataset)) == tf_outcomes(pipeline(tf.data.Dataset))

    def dicts(D):
        ds = D.from_tensor_slices({"x": np.arange(5), "y": np.arange(5) * 2.0})
        return ds.window(2).flat_map(lambda w: D.zip(w).batch(2))

    assert fi_outcomes(dicts(fi.Dataset)) == tf_outcomes(dicts(tf.data.Dataset))


def test_window_element_spec_is_a_nest_of_dataset_specs(tf):
    ds = fi.Dataset.zip((fi.Dataset.range(7), fi.Dataset.range(7).batch(2)))
    windows = ds.window(3)
    assert windows.element_spec == (fi.DatasetSpec(fi.TensorSpec((), np.int64)),
                                    fi.DatasetSpec(fi.TensorSpec((None,), np.int64)))
    tf_windows = tf.data.Dataset.zip((tf.data.Dataset.range(7), tf.data.Dataset.range(7).batch(2))).window(3)
    assert [type(s).__name__ for s in tf_windows.element_spec] == ["DatasetSpec", "DatasetSpec"]
    flat = windows.flat_map(lambda a, b: fi.Dataset.zip((a, b)).batch(3))
    tf_flat = tf_windows.flat_map(lambda a, b: tf.data.Dataset.zip((a, b)).batch(3))
    assert [(s.shape, s.dtype) for s in flat.element_spec] == [
        (tuple(s.shape.as_list()), s.dtype.as_numpy_dtype) for s in tf_flat.element_spec]


def test_a_window_is_a_finite_dataset():
    window = next(iter(fi.Dataset.range(10).window(4)))
    assert isinstance(window, fi.Dataset)
    assert window.cardinality() == 4
    assert [int(x) for x in window] == [0, 1, 2, 3]
    assert [int(x) for x in window.map(lambda x: x + 1)] == [1, 2, 3, 4]
    assert "window" in str(fi.Dataset.range(10).window(4, 2))


@pytest.mark.parametrize("kwargs", [{"size": 0}, {"size": 2, "shift": 0}, {"size": 2, "stride": 0},
                                    {"size": 2, "drop_remainder": "yes"}])
def test_bad_window_arguments(kwargs):
    with pytest.raises(fi.errors.InvalidArgumentError):
        fi.Dataset.range(3).window(**kwargs)


def test_the_new_stages_show_in_stats_and_traces():
    """Each new stage records its metrics and traits like every other (what the profiler reads)."""
    ds = (fi.Dataset.counter().take(40).window(4, 2).flat_map(lambda w: w.batch(4))
          .scan(np.int64(0), lambda s, b: (s + 1, b[0])).unique().take_while(lambda x: x < 30).ignore_errors())
    with iter(ds) as it:
        assert len(list(it)) == 15
        ops = {stats.name: stats.traits.op for stats in it.stats()}
    assert ops == {"ignore_errors()": "ignore_errors", "take_while(<lambda>)": "take_while", "unique()": "unique",
                   "scan(<lambda>)": "scan", "interleave(<lambda>, cycle_length=1, block_length=1)": "interleave",
                   "window(4, shift=2, stride=1, drop_remainder=False)": "window", "take(40)": "take",
                   "counter(start=0, step=1, dtype=int64)": "counter",
                   # the stages of the datasets flat_map opened (the windows, batched), added up below it
                   "batch(4)": "batch", "window_values(<4 element(s)>)": "window_values"}
