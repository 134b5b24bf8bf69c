"""Stages that pass every element and error through unchanged and that tf.data removes: ``take(-1)``, ``skip(0)``,
``repeat(1)`` and ``shard(1, 0)``.

tf.data removes them before its other rewrites (its ``noop_elimination``), so ``map -> skip(0) -> batch`` is fused
into ``map_and_batch`` there, whose batches meet errors differently from a plain ``batch``'s. fastinput removes
them too (``fastinput.fused_ops.rewrites``), and ``batch`` looks through them when it decides which of tf.data's
two error rules it follows, so that switching the rewrite off never changes results. (tf.data's source lists
``prefetch(0)`` among its no-ops too, but TensorFlow 2.21, tested here, keeps it: ``map -> prefetch(0) -> batch``
batches as a plain ``batch``, and so does fastinput; ``tests/conformance/test_ops.py`` checks both.)
"""

from __future__ import annotations

from fastinput.dataset import Dataset
from fastinput.ops.repeat import RepeatDataset
from fastinput.ops.slicing import ShardDataset, SkipDataset, TakeDataset


def is_noop(dataset: Dataset) -> bool:
    """Whether ``dataset`` gives exactly its input's elements and errors (tf.data's no-op stages)."""
    kind = type(dataset)
    return ((kind is TakeDataset and dataset.count == -1)
            or (kind is SkipDataset and dataset.count == 0)
            or (kind is RepeatDataset and dataset.count == 1)
            or (kind is ShardDataset and dataset.num_shards == 1))


def without_noops(dataset: Dataset) -> Dataset:
    """``dataset``, or the first stage below it that is not a no-op."""
    while is_noop(dataset):
        dataset = dataset.inputs[0]
    return dataset
