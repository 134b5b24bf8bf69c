"""take, skip, shard, zip, concatenate, enumerate and apply against tf.data."""

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import (
    assert_same_elements,
    fi_elements,
    fi_outcomes,
    fi_raising_at,
    tf_elements,
    tf_outcomes,
    tf_raising_at,
)


@pytest.mark.parametrize("size", [0, 5, 100])
@pytest.mark.parametrize("count", [0, 1, 5, 37, -1])
def test_take_and_skip_match_tf(tf, size, count):
    for op in ("take", "skip"):
        fi_ds = getattr(fi.Dataset.range(size).map(lambda x: x, num_parallel_calls=2), op)(count)
        tf_ds = getattr(tf.data.Dataset.range(size), op)(count)
        assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


@pytest.mark.parametrize("num_shards", [1, 2, 3, 7])
@pytest.mark.parametrize("size", [0, 1, 20, 101])
def test_shard_matches_tf(tf, num_shards, size):
    for index in range(num_shards):
        fi_ds = fi.Dataset.range(size).shard(num_shards, index)
        assert_same_elements(fi_elements(fi_ds), tf_elements(tf.data.Dataset.range(size).shard(num_shards, index)))


@pytest.mark.parametrize("args", [(0, 0), (2, 2), (2, -1), (-1, 0)])
def test_shard_bad_arguments(args):
    with pytest.raises(fi.errors.InvalidArgumentError):
        fi.Dataset.range(3).shard(*args)


def test_take_and_skip_bad_arguments():
    for op in ("take", "skip"):
        with pytest.raises(fi.errors.InvalidArgumentError, match="count"):
            getattr(fi.Dataset.range(3), op)(-2)


def test_zip_matches_tf(tf):
    a, b, c = (fi.Dataset.range(n) for n in (5, 7, 3))
    ta, tb, tc = (tf.data.Dataset.range(n) for n in (5, 7, 3))
    assert_same_elements(fi_elements(fi.Dataset.zip((a, b))), tf_elements(tf.data.Dataset.zip((ta, tb))))
    assert_same_elements(fi_elements(fi.Dataset.zip(a, b, c)), tf_elements(tf.data.Dataset.zip(ta, tb, tc)))
    assert_same_elements(fi_elements(fi.Dataset.zip({"x": a, "y": (b, c)})),
                         tf_elements(tf.data.Dataset.zip({"x": ta, "y": (tb, tc)})))
    assert_same_elements(fi_elements(a.zip(b)), tf_elements(tf.data.Dataset.zip(ta, tb)))


# Positional stages over inputs with errors injected (``fail(*values)``): each error keeps its tf.data place.
# tf.data's skip forgets the elements it skipped before an error and counts again ("skip, errors").
POSITIONAL_WITH_ERRORS = {
    "take, errors inside": lambda D, fail: D.range(10).map(fail(2, 5)).take(5),
    "take, error at the edge": lambda D, fail: D.range(10).map(fail(3)).take(4),
    "take, error just after": lambda D, fail: D.range(10).map(fail(4)).take(4),
    "skip, errors": lambda D, fail: D.range(10).map(fail(2, 5)).skip(3),
    "skip, errors first": lambda D, fail: D.range(10).map(fail(0, 1)).skip(2),
    "skip, error at the edge": lambda D, fail: D.range(10).map(fail(2)).skip(2),
    "skip, parallel input": lambda D, fail: D.range(10).map(fail(1, 6), num_parallel_calls=2).skip(3).prefetch(4),
    "skip, past the end": lambda D, fail: D.range(10).map(fail(2, 5)).skip(20),
    "skip, all": lambda D, fail: D.range(10).map(fail(2, 5)).skip(-1),
    "skip, repeated": lambda D, fail: D.range(4).map(fail(1)).skip(2).repeat(2),
    "shard": lambda D, fail: D.range(10).map(fail(1, 2, 6)).shard(3, 1),
    "shard, error while skipping": lambda D, fail: D.range(12).map(fail(2, 4)).shard(3, 0),
    "shard, errors here and there": lambda D, fail: D.range(20).map(fail(3, 7, 9)).shard(4, 1),
    "shard, parallel input": lambda D, fail: D.range(20).map(fail(1, 2, 5, 6, 7, 15), num_parallel_calls=2).shard(2, 1),
    "shard of a shard": lambda D, fail: D.range(12).concatenate(D.range(3).map(fail(1))).shard(3, 0)
    .concatenate(D.range(3).map(fail(1))).shard(3, 0),
    "concatenate": lambda D, fail: D.range(3).map(fail(2)).concatenate(D.range(5, 8).map(fail(5))),
    "enumerate": lambda D, fail: D.range(5).map(fail(2)).enumerate(),
}


@pytest.mark.parametrize("case", POSITIONAL_WITH_ERRORS)
def test_errors_keep_their_place_through_positional_stages_like_tf(tf, case):
    build = POSITIONAL_WITH_ERRORS[case]
    assert fi_outcomes(build(fi.Dataset, fi_raising_at)) == tf_outcomes(build(tf.data.Dataset, tf_raising_at))


# Zips with errors injected (``fail(*values)``), read in chunks by the stage after the zip: the rows must stay
# aligned after an error row, exactly as in tf.data. ``D`` is tf.data.Dataset or fi.Dataset.
ZIPS_WITH_ERRORS = {
    "second parallel": lambda D, fail: D.zip((D.range(10), D.range(10).map(fail(2), num_parallel_calls=2))),
    "with its own skip": lambda D, fail: (lambda ds: D.zip((ds, ds.skip(1))))(D.range(10).map(fail(2))),
    "first of three": lambda D, fail: D.zip((D.range(10).map(fail(3)), D.range(10), D.range(10))),
    "middle of three": lambda D, fail: D.zip((D.range(10), D.range(10).map(fail(3)), D.range(10))),
    "last of three": lambda D, fail: D.zip((D.range(10), D.range(10), D.range(10).map(fail(3)))),
    "same row in two": lambda D, fail: D.zip((D.range(10).map(fail(3)), D.range(10).map(fail(3)))),
    "different rows": lambda D, fail: D.zip((D.range(10).map(fail(3)), D.range(10).map(fail(4, 5)))),
    "error where a later input ends": lambda D, fail: D.zip((D.range(10).map(fail(3)), D.range(3))),
    "error where an earlier input ends": lambda D, fail: D.zip((D.range(3), D.range(10).map(fail(3)))),
    "two errors where the last ends":
        lambda D, fail: D.zip((D.range(10).map(fail(3)), D.range(10).map(fail(3)), D.range(3))),
    "error in the last row": lambda D, fail: D.zip((D.range(4).map(fail(3)), D.range(10))),
    "nested": lambda D, fail: D.zip({"a": D.range(10).map(fail(3)), "b": (D.range(12), D.range(10).map(fail(5, 9)))}),
}
CHUNKED_READERS = {  # stages that read their input many elements at a time
    "prefetch": lambda ds: ds.prefetch(4),
    "parallel map": lambda ds: ds.map(lambda *row: row, num_parallel_calls=2),
    "one by one": lambda ds: ds,
}


@pytest.mark.parametrize("reader", CHUNKED_READERS)
@pytest.mark.parametrize("case", ZIPS_WITH_ERRORS)
def test_zip_stays_aligned_after_errors_like_tf(tf, case, reader):
    build, read = ZIPS_WITH_ERRORS[case], CHUNKED_READERS[reader]
    expected = tf_outcomes(read(build(tf.data.Dataset, tf_raising_at)))
    assert fi_outcomes(read(build(fi.Dataset, fi_raising_at))) == expected


def test_zip_rejects_non_datasets():
    with pytest.raises(fi.errors.InvalidArgumentError, match="Dataset"):
        fi.Dataset.zip((fi.Dataset.range(3), [1, 2]))


@pytest.mark.parametrize("sizes", [(0, 0), (3, 0), (0, 4), (5, 6)])
def test_concatenate_matches_tf(tf, sizes):
    fi_ds = fi.Dataset.range(sizes[0]).concatenate(fi.Dataset.range(100, 100 + sizes[1]).prefetch(2))
    tf_ds = tf.data.Dataset.range(sizes[0]).concatenate(tf.data.Dataset.range(100, 100 + sizes[1]))
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


def test_enumerate_matches_tf(tf):
    x = np.arange(5) * 3
    assert_same_elements(fi_elements(fi.Dataset.from_tensor_slices(x).enumerate(2)),
                         tf_elements(tf.data.Dataset.from_tensor_slices(x).enumerate(2)))


def test_apply_chains_and_checks():
    def double_then_batch(ds):
        return ds.map(lambda x: x * 2).batch(2)

    assert [b.tolist() for b in fi.Dataset.range(4).apply(double_then_batch)] == [[0, 2], [4, 6]]
    with pytest.raises(fi.errors.InvalidArgumentError, match="result must be a fastinput Dataset"):
        fi.Dataset.range(4).apply(lambda ds: [1])
