"""Checkpointing rebatch, ragged_batch, sparse_batch, group_by_window and bucket_by_sequence_length: saved at every
position (errors included) and restored in a fresh iterator, the rest of the run is the uninterrupted run's rest."""

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


@pytest.mark.parametrize("window_size", [1, 3, 50])
def test_group_by_window(window_size):
    check_every_cut(fi.Dataset.range(23).group_by_window(lambda x: x % 4, lambda k, w: w.batch(2), window_size))


def test_group_by_window_with_errors_and_a_window_size_func():
    check = fails_at(5, 11)
    check_every_cut(fi.Dataset.range(20).map(fails_at(3, 9)).group_by_window(
        lambda x: check(x) % 3, lambda k, w: w.map(fails_at(7)).batch(2), window_size_func=lambda k: k + 2))


def test_group_by_window_over_a_parallel_map():
    check_every_cut(fi.Dataset.range(30).map(lambda x: x * 2, num_parallel_calls=3).group_by_window(
        lambda x: x % 3, lambda k, w: w.batch(4), window_size=4))


@pytest.mark.parametrize("options", [{}, {"drop_remainder": True}, {"pad_to_bucket_boundary": True}])
def test_bucket_by_sequence_length(options):
    ds = fi.Dataset.range(1, 30).map(lambda n: np.arange(n % 11))
    check_every_cut(ds.bucket_by_sequence_length(len, [3, 7], [2, 3, 2], **options))


def test_bucket_by_sequence_length_with_errors():
    ds = fi.Dataset.range(1, 30).map(fails_at(4, 12)).map(lambda n: np.arange(n % 11))
    check_every_cut(ds.bucket_by_sequence_length(len, [3, 7], [2, 3, 2], pad_to_bucket_boundary=True))


@pytest.mark.parametrize("drop_remainder", [False, True])
def test_ragged_batch(drop_remainder):
    ds = fi.Dataset.range(13).map(lambda k: (np.arange(k % 5), k))
    check_every_cut(ds.ragged_batch(3, drop_remainder, row_splits_dtype="int32"))


def test_ragged_batch_with_errors_and_its_arrays_saved_as_values():
    ds = fi.Dataset.range(20).map(fails_at(4, 13)).map(lambda k: np.arange(k % 6))
    check_every_cut(ds.ragged_batch(3))
    # the shuffle buffer holds RaggedArrays, saved as values
    check_every_cut(ds.ragged_batch(2).shuffle(4, seed=1, reshuffle_each_iteration=False))


@pytest.mark.parametrize("row_shape", [[4], [None]])
def test_sparse_batch(row_shape):
    # element k: k % 6 values; with row_shape [4] the elements of 5 values fail in their places
    check_every_cut(fi.Dataset.range(20).map(fails_at(7)).map(lambda k: np.arange(k % 6)).sparse_batch(3, row_shape))
