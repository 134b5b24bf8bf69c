"""Saving and resuming a distributed pipeline: ``get_state`` at every position, ``set_state`` on a fresh iterator
(new workers), and the run holds every element exactly once (once per worker in parallel_epochs)."""

from __future__ import annotations

import collections
import itertools
import json

import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError, UnimplementedError
from tests.distribute.test_distribute import double, rows


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["distributed_epoch", "parallel_epochs"])
def test_saved_at_every_position_it_resumes_exactly(ray_cluster, mode: str) -> None:
    ds = fi.Dataset.range(16).map(double).shuffle(5, seed=1).batch(4).distribute(2, mode)
    whole = rows(ds)
    assert whole == collections.Counter({2 * i: 1 if mode == "distributed_epoch" else 2 for i in range(16)})
    positions = sum(1 for _ in ds)  # in distributed_epoch a run's batch count varies: batches are cut per worker
    for position in range(positions + 1):
        with iter(ds) as it:
            before = list(itertools.islice(it, position))  # fewer if this run has fewer batches
            state = json.loads(json.dumps(it.get_state()))
        with iter(ds) as resumed:
            resumed.set_state(state)
            after = list(resumed)
        assert rows(before) + rows(after) == whole, position


@pytest.mark.parametrize("mode", ["distributed_epoch", "parallel_epochs"])
def test_saved_after_the_end_it_resumes_at_the_end(ray_cluster, mode: str) -> None:
    """The workers stop as the run ends; the state read after that is the end's, not a fresh start's."""
    ds = fi.Dataset.range(8).batch(2).distribute(2, mode)
    with iter(ds) as it:
        whole = list(it)
        state = json.loads(json.dumps(it.get_state()))
    with iter(ds) as resumed:
        resumed.set_state(state)
        assert list(resumed) == []
    assert rows(whole) == collections.Counter({i: 1 if mode == "distributed_epoch" else 2 for i in range(8)})


def test_a_state_of_another_pipeline_is_refused(ray_cluster) -> None:
    with iter(fi.Dataset.range(6).distribute(2)) as it:
        state = it.get_state()
    with pytest.raises(InvalidArgumentError, match="saved with 2 worker"):
        iter(fi.Dataset.range(6).distribute(3)).set_state(state)
    with pytest.raises(InvalidArgumentError, match="different pipeline|differs|saved"):
        iter(fi.Dataset.range(6).prefetch(1)).set_state(state)


def test_a_job_shared_by_name_is_not_saved_by_a_consumer(ray_cluster) -> None:
    with iter(fi.Dataset.range(6).distribute(1, job_name="unsaved")) as it:
        next(it)
        with pytest.raises(UnimplementedError, match="shared by name"):
            it.get_state()
