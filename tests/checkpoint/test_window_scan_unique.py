"""Checkpointing the ops of issue 19 (window, scan, unique, take_while, ignore_errors, counter, random): saved at
every position (or a spread of them) and resumed in a fresh iterator, errors in their places."""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from tests.checkpoint.test_seq import check_every_cut, fails_at
from tests.checkpoint.test_shuffle import check_restore


@pytest.mark.parametrize("args", [(3,), (3, 1), (2, 3), (3, 2, 2, True), (4, 1, 1, True)], ids=str)
@pytest.mark.parametrize("bad", [(), (2, 7)], ids=["clean", "errors"])
def test_window(args, bad):
    windows = fi.Dataset.range(12).map(fails_at(*bad)).window(*args)
    check_every_cut(windows.flat_map(lambda w: w.batch(4)))
    check_every_cut(windows.flat_map(lambda w: w))


def test_window_of_tuples_in_an_interleave():
    pairs = fi.Dataset.zip((fi.Dataset.range(9), fi.Dataset.range(9).map(lambda x: x * 0.5)))
    windows = pairs.window(4, 3).interleave(lambda a, b: fi.Dataset.zip((a, b)), cycle_length=2)
    check_every_cut(windows)
    parallel = pairs.window(4, 3).interleave(lambda a, b: fi.Dataset.zip((a, b)), cycle_length=2, num_parallel_calls=2)
    check_every_cut(parallel)


@pytest.mark.parametrize("bad", [(), (0, 4)], ids=["clean", "errors"])
def test_scan(bad):
    check_every_cut(fi.Dataset.range(10).map(fails_at(*bad)).scan(np.int64(0), lambda s, x: (s + x, (s, x))))
    check_every_cut(fi.Dataset.range(6).scan((np.zeros(0, np.int64),), lambda s, x: ((np.append(s[0], x),), s[0])))


@pytest.mark.parametrize("bad", [(), (3,)], ids=["clean", "errors"])
def test_unique_take_while_ignore_errors(bad):
    ds = fi.Dataset.range(20).map(fails_at(*bad))
    check_every_cut(ds.map(lambda x: x % 7).unique())
    check_every_cut(fi.Dataset.from_tensor_slices(np.array([b"a", b"b", b"a", b"c"], object)).repeat(2).unique())
    check_every_cut(ds.take_while(lambda x: x < 12))
    check_every_cut(ds.ignore_errors())
    check_every_cut(ds.map(fails_at(5, 6), num_parallel_calls=2).ignore_errors().batch(3))


def test_counter_and_random():
    check_every_cut(fi.Dataset.counter(5, -3, np.int32).take(12))
    check_every_cut(fi.Dataset.random(seed=7).take(15))
    check_every_cut(fi.Dataset.random().take(5).repeat(2))


@pytest.mark.parametrize("seed", [7, None])
@pytest.mark.parametrize("steps", [0, 3, 10])
@pytest.mark.parametrize("rebuild", [True, False])
def test_random_epochs_after_a_restore_draw_what_the_saved_run_would(seed, steps, rebuild):
    check_restore(lambda: fi.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(10), steps,
                  rebuild=rebuild)
    check_restore(lambda: fi.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(4).repeat(3), steps,
                  rebuild=rebuild)
