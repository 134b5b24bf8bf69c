"""map_and_batch and the static rewrites: fused and unfused pipelines give identical elements."""

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import (
    NO_REWRITES,
    as_ints,
    assert_same_elements,
    assert_same_with_errors,
    elements_and_errors,
    fails_at,
    fi_elements,
    no_leaked_threads,
    tf_fails_at,
)


def unfused(ds):
    return fi_elements(ds.with_options(NO_REWRITES))


def drain_with_errors(ds):
    """Elements and errors in order (errors as their message)."""
    out = []
    with iter(ds) as it:
        while True:
            try:
                element = next(it)
            except StopIteration:
                return out
            except ValueError as exc:
                out.append(f"error: {exc}")
                continue
            out.append(element)


def _row(x):
    return {"image": np.full((2, 3), x, dtype=np.uint8), "label": x, "name": b"n%d" % x}


@pytest.mark.parametrize("size", [0, 1, 7, 64, 200])
@pytest.mark.parametrize("batch_size", [1, 4, 64])
@pytest.mark.parametrize("num_parallel_calls", [None, 1, 3, fi.AUTOTUNE])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_map_and_batch_equals_map_then_batch(size, batch_size, num_parallel_calls, drop_remainder):
    fused = fi.Dataset.range(size).map_and_batch(_row, batch_size, num_parallel_calls, drop_remainder)
    reference = fi.Dataset.range(size).map(_row).batch(batch_size, drop_remainder)
    assert_same_elements(fi_elements(fused), unfused(reference))


@pytest.mark.parametrize("num_parallel_calls", [None, 2])
def test_out_keyword_fills_rows_in_place(num_parallel_calls):
    seen_views = []

    def fill(x, out=None):
        seen_views.append(out is not None)
        if out is None:
            return np.full(4, x, np.float32), x
        out[0][...] = x
        out[1][...] = x
        return out

    batches = fi_elements(fi.Dataset.range(10).map_and_batch(fill, 4, num_parallel_calls))
    assert [b[0][:, 0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    assert seen_views.count(True) == 7  # the first row of each batch shows the shapes; the rest fill views


@pytest.mark.parametrize("num_parallel_calls", [None, 2])
@pytest.mark.parametrize("failing", [{2}, {0, 1, 2, 3}, {3, 4, 9}])
def test_errors_match_unfused(num_parallel_calls, failing):
    def fn(x):
        if int(x) in failing:
            raise ValueError(f"bad {int(x)}")
        return x

    def as_lists(seq):
        return [e if isinstance(e, str) else e.tolist() for e in seq]

    fused = drain_with_errors(fi.Dataset.range(12).map_and_batch(fn, 4, num_parallel_calls))
    reference = drain_with_errors(fi.Dataset.range(12).map(fn).batch(4).with_options(NO_REWRITES))
    assert as_lists(fused) == as_lists(reference)


@pytest.mark.parametrize("bad", [{1}, {0}, {3}, {1, 2}, {1, 5}, {4}, {9}, {8, 9}])
@pytest.mark.parametrize("drop_remainder", [False, True])
@pytest.mark.parametrize("num_parallel_calls", [None, 3])
@pytest.mark.parametrize("deterministic", [None, False])
def test_errors_drop_their_whole_batch_like_tf_map_and_batch(tf, bad, drop_remainder, num_parallel_calls,
                                                             deterministic):
    # a batch is batch_size input positions; one that meets an error is dropped and its first error raised,
    # also when it is the last, partial batch under drop_remainder
    expected = elements_and_errors(tf.data.Dataset.range(10).apply(tf.data.experimental.map_and_batch(
        tf_fails_at(bad), 4, num_parallel_calls=num_parallel_calls, drop_remainder=drop_remainder)))
    ds = fi.Dataset.range(10).map_and_batch(fails_at(bad), 4, num_parallel_calls, drop_remainder, deterministic)
    assert_same_with_errors(elements_and_errors(ds), expected)


@pytest.mark.parametrize("num_parallel_calls", [None, 2])
def test_stop_iteration_in_the_function_is_an_error_not_the_end(tf, num_parallel_calls):
    def stop_at_2(x):
        if int(x) == 2:
            raise StopIteration
        return x

    def tf_stop_at_2(x):
        y = tf.py_function(stop_at_2, [x], tf.int64)
        y.set_shape([])
        return y

    expected = elements_and_errors(tf.data.Dataset.range(6).map(tf_stop_at_2).batch(2))
    actual = elements_and_errors(fi.Dataset.range(6).map_and_batch(stop_at_2, 2, num_parallel_calls))
    assert_same_with_errors(actual, expected)


def test_input_errors_take_a_position_in_the_batch(tf):
    expected = elements_and_errors(tf.data.Dataset.range(10).map(tf_fails_at({5})).prefetch(1).apply(
        tf.data.experimental.map_and_batch(lambda x: x * 2, 4)))
    ds = fi.Dataset.range(10).map(fails_at({5})).prefetch(1).map_and_batch(lambda x: x * 2, 4, 2)
    assert_same_with_errors(elements_and_errors(ds), expected)


def test_different_shapes_in_different_batches_are_fine_and_mixed_ones_fail():
    ds = fi.Dataset.range(8).map_and_batch(lambda x: np.zeros(int(x) // 4), 4)
    assert [b.shape for b in fi_elements(ds)] == [(4, 0), (4, 1)]
    bad = fi.Dataset.range(8).map_and_batch(lambda x: np.zeros(int(x) % 2), 4)
    with pytest.raises(fi.errors.InvalidArgumentError, match="different shapes in component 0"):
        fi_elements(bad)


def test_rewrite_replaces_map_batch_and_says_so():
    def parse(x):
        return x * 2

    ds = fi.Dataset.range(10).map(parse, num_parallel_calls=4).batch(3)
    with iter(ds) as it:
        names = [s.name for s in it.stats()]
        assert [b.tolist() for b in it] == [[0, 2, 4], [6, 8, 10], [12, 14, 16], [18]]
    assert names[0] == ("map_and_batch(parse, batch_size=3, num_parallel_calls=4) "
                        "[fused: map(parse, num_parallel_calls=4) -> batch(3)]")
    assert str(ds) == "batch(3)"  # the user's description is untouched


def test_consecutive_maps_fuse():
    def inc(x):
        return x + 1

    def double(x):
        return x * 2

    ds = fi.Dataset.range(5).map(inc).map(double)
    with iter(ds) as it:
        assert as_ints(list(it)) == [2, 4, 6, 8, 10]
        assert it.stats()[0].name == "map(inc -> double)"
    assert as_ints(unfused(ds)) == [2, 4, 6, 8, 10]


def test_maps_with_different_parallelism_do_not_fuse():
    ds = fi.Dataset.range(5).map(lambda x: x + 1, num_parallel_calls=2).map(lambda x: x * 2)
    with iter(ds) as it:
        assert len(it.stats()) == 3


def test_fused_map_keeps_tuple_unpacking():
    ds = (fi.Dataset.from_tensor_slices((np.arange(4), np.arange(4)))
          .map(lambda a, b: (a + b, a)).map(lambda s, a: s * 10 + a))
    assert as_ints(fi_elements(ds)) == as_ints(unfused(ds)) == [0, 21, 42, 63]


@pytest.mark.parametrize("count", [0, 1, 3])
@pytest.mark.parametrize("size", [0, 5, 50])
@pytest.mark.parametrize("buffer_size", [1, 4, 50, 100])
def test_shuffle_and_repeat_fusion_gives_the_same_order(count, size, buffer_size):
    ds = fi.Dataset.range(size).shuffle(buffer_size, seed=11).repeat(count)
    with iter(fi.Dataset.range(size).shuffle(buffer_size, seed=11).repeat(count)) as it:
        fused = "shuffle(" if count == 1 else "shuffle_and_repeat [fused: shuffle("  # repeat(1) is a no-op: removed
        assert it.stats()[0].name.startswith(fused)
    assert as_ints(fi_elements(ds)) == as_ints(
        unfused(fi.Dataset.range(size).shuffle(buffer_size, seed=11).repeat(count)))


def test_shuffle_and_repeat_forever():
    ds = fi.Dataset.range(10).shuffle(4, seed=2).repeat().take(35)
    out = as_ints(fi_elements(ds))
    reference = as_ints(unfused(fi.Dataset.range(10).shuffle(4, seed=2).repeat().take(35)))
    assert out == reference
    assert sorted(out[:10]) == list(range(10)) and sorted(out[10:20]) == list(range(10))


def test_shuffle_and_repeat_of_empty_ends():
    assert fi_elements(fi.Dataset.range(0).shuffle(3).repeat()) == []


def test_early_stop_in_fused_pipeline_joins_threads():
    with no_leaked_threads():
        for i, _ in enumerate(fi.Dataset.range(10**6).map(_row, num_parallel_calls=2).batch(16)):
            if i == 5:
                break


def test_bad_arguments():
    with pytest.raises(fi.errors.InvalidArgumentError, match="batch_size"):
        fi.Dataset.range(3).map_and_batch(lambda x: x, 0)
    with pytest.raises(fi.errors.InvalidArgumentError, match="callable"):
        fi.Dataset.range(3).map_and_batch("f", 2)


def _large_row(x):
    """About 16 KB per element: written straight into preallocated rows (small ones are gathered and stacked)."""
    return {"image": np.full((64, 64), x, dtype=np.float32), "label": x}


@pytest.mark.parametrize("num_parallel_calls", [None, 2])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_large_outputs_equal_map_then_batch(num_parallel_calls, drop_remainder):
    fused = fi.Dataset.range(37).map_and_batch(_large_row, 8, num_parallel_calls, drop_remainder)
    reference = fi.Dataset.range(37).map(_large_row).batch(8, drop_remainder)
    batches = fi_elements(fused)
    assert_same_elements(batches, unfused(reference))
    assert all(b["image"].ctypes.data % 64 == 0 for b in batches[:-1])  # aligned: TensorFlow can take them as they are


@pytest.mark.parametrize("failing", [{2}, {0, 1, 2, 3}, {3, 4, 9}])
def test_large_output_errors_match_unfused(failing):
    def fn(x):
        if int(x) in failing:
            raise ValueError(f"bad {int(x)}")
        return _large_row(x)["image"]

    def as_lists(seq):
        return [e if isinstance(e, str) else e[:, 0, 0].tolist() for e in seq]

    fused = drain_with_errors(fi.Dataset.range(12).map_and_batch(fn, 4, 2))
    reference = drain_with_errors(fi.Dataset.range(12).map(fn).batch(4).with_options(NO_REWRITES))
    assert as_lists(fused) == as_lists(reference)
