"""Checkpointing rebatch, ragged_batch, group_by_window and bucket_by_sequence_length: saved at every position
(errors included) and restored in a fresh iterator, the rest of the run is the uninterrupted run's rest."""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from tests.checkpoint.test_seq import check_every_cut, fails_at, generator_dataset


@pytest.mark.parametrize("batch_size", [2, [1, 3], [4, 1, 2]])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_rebatch(batch_size, drop_remainder):
    check_every_cut(fi.Dataset.range(17).batch(3).rebatch(batch_size, drop_remainder))


def test_rebatch_with_errors():
    check_every_cut(fi.Dataset.range(20).map(fails_at(3, 9, 10)).batch(2).rebatch([3, 1]))
    check_every_cut(generator_dataset(10, bad=(6,)).batch(4).rebatch(3))


def test_rebatch_of_structures():
    value = {"a": np.arange(22).reshape(11, 2), "b": np.array([b"x%d" % i for i in range(11)], dtype=object)}
    check_every_cut(fi.Dataset.from_tensor_slices(value).batch(4).rebatch([3, 2]))
