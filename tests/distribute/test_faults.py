"""A worker actor killed mid-epoch (``ray.kill``) is restarted by Ray and resumes from the last state its consumer
has of it: nothing lost, nothing twice. When Ray will not restart it, the consumer gets a clear error."""

from __future__ import annotations

import collections
import time

import pytest

import fastinput as fi
from fastinput.errors import UnavailableError


def slow(x):
    time.sleep(0.002)  # so the kill lands while the workers are busy
    return x


def worker(ray, job_name: str, index: int):
    return ray.get_actor(f"{job_name}/worker{index}", namespace="fastinput")


def run_with_a_kill(ray, dataset, job_name: str, kill_after: int, no_restart: bool = False) -> list[int]:
    got = []
    with iter(dataset) as it:
        for element in it:
            got.append(int(element))
            if len(got) == kill_after:
                ray.kill(worker(ray, job_name, 0), no_restart=no_restart)
    return got


def resumed(caplog: pytest.LogCaptureFixture) -> bool:
    """Whether the consumer resumed worker 0 after a kill (and not, say, after it had finished its share)."""
    return any("worker 0 stopped" in record.getMessage() for record in caplog.records)


@pytest.mark.slow
@pytest.mark.parametrize("pipeline", ["map", "shuffle-batch-unbatch"])
def test_distributed_epoch_survives_a_killed_worker_exactly_once(ray_cluster, caplog, pipeline: str) -> None:
    ds = fi.Dataset.range(400).map(slow)
    if pipeline != "map":
        ds = ds.shuffle(16, seed=2).batch(3).unbatch()
    name = f"kill-{pipeline}"
    got = run_with_a_kill(ray_cluster, ds.distribute(2, "distributed_epoch", job_name=name), name, 60)
    assert sorted(got) == list(range(400))
    assert resumed(caplog)


@pytest.mark.slow
def test_parallel_epochs_survives_a_killed_worker(ray_cluster, caplog) -> None:
    ds = fi.Dataset.range(300).map(slow).distribute(2, "parallel_epochs", job_name="kill-parallel")
    got = run_with_a_kill(ray_cluster, ds, "kill-parallel", 50)
    assert collections.Counter(got) == collections.Counter(2 * list(range(300)))
    assert resumed(caplog)


@pytest.mark.slow
def test_a_worker_that_cannot_be_restarted_fails_the_run_clearly(ray_cluster) -> None:
    ds = fi.Dataset.range(2000).map(slow).distribute(2, "distributed_epoch", job_name="kill-final")
    with pytest.raises(UnavailableError, match=r"worker 0 died and cannot be restarted \(Ray restarts a worker up to"):
        run_with_a_kill(ray_cluster, ds, "kill-final", 20, no_restart=True)
