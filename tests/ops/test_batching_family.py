"""The batching family (rebatch, ragged_batch, sparse_batch, group_by_window, bucket_by_sequence_length):
cardinality() against tf.data's, and their stats."""

import numpy as np
import pytest

import fastinput as fi


def pipelines(dataset_class, tf=None):
    """The same pipelines in both libraries (tf.data's when ``tf`` is given): (name, dataset)."""
    if tf is not None:
        vectors, length = (lambda n: tf.range(n)), (lambda x: tf.shape(x)[0])
    else:
        vectors, length = (lambda n: np.arange(n)), len
    r = dataset_class.range
    for name, source in (("finite", r(10)), ("infinite", r(10).repeat()), ("empty", r(0))):
        yield f"{name} rebatch", source.batch(3).rebatch(2)
        yield f"{name} rebatch drop", source.batch(3, True).rebatch(3, True)
        yield f"{name} ragged_batch", source.map(vectors).ragged_batch(3)
        yield f"{name} ragged_batch drop", source.map(vectors).ragged_batch(3, True)
        yield f"{name} sparse_batch", source.map(vectors).sparse_batch(3, [None])
        yield f"{name} group_by_window", source.group_by_window(lambda x: x % 2, lambda k, w: w.batch(2), 2)
        yield f"{name} bucket", source.map(vectors).bucket_by_sequence_length(length, [3], [2, 2])


@pytest.mark.parametrize("index", range(21))
def test_cardinality_matches_tf(tf, index):
    fi_name, fi_ds = list(pipelines(fi.Dataset))[index]
    _, tf_ds = list(pipelines(tf.data.Dataset, tf))[index]
    assert fi_ds.cardinality() == int(tf_ds.cardinality()), fi_name


def test_the_batching_family_shows_in_stats():
    """Each stage records its metrics and traits like every other (what the profiler reads)."""
    ds = (fi.Dataset.range(40).map(lambda n: np.arange(n % 7))
          .bucket_by_sequence_length(len, [3], [4, 4]).rebatch(2)
          .group_by_window(lambda b: b.shape[1] % 2, lambda k, w: w.unbatch(), 2).ragged_batch(5)
          .unbatch().sparse_batch(10, [None]))
    with iter(ds) as it:
        assert sum(int(b.dense_shape[0]) for b in it) == 40
        ops = {stats.name: (stats.traits.op, stats.elements) for stats in it.stats()}
    assert ops["sparse_batch(10, row_shape=[None])"] == ("sparse_batch", 4)
    assert ops["ragged_batch(5)"] == ("ragged_batch", 8)
    assert ops["rebatch(2)"][0] == "rebatch"
    assert ops["group_by_window(<lambda>, <lambda>, window_size=2)"][0] == "group_by_window"
    assert ops["bucket_by_sequence_length(len, [3], [4, 4])"] == ("bucket_by_sequence_length", 11)
