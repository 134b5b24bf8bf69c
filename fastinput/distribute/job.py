"""Starting a ``distribute`` job's actors on a Ray cluster, or joining the job of the same ``job_name``; stopping it.

A job is one coordinator actor and ``num_workers`` worker actors. Unnamed jobs belong to one consumer (one
iterator). Named jobs (``job_name``) are Ray named actors in the ``fastinput`` namespace, so consumers in other
processes of the same cluster find them: each joining consumer is counted by the coordinator, and the last one to
leave stops the actors.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

from fastinput.distribute import transfer
from fastinput.distribute.coordinator import Coordinator
from fastinput.distribute.splits import SplitPlan
from fastinput.distribute.worker import Worker
from fastinput.errors import InvalidArgumentError

NAMESPACE = "fastinput"
"""The Ray namespace of named jobs' actors."""

STOP_WAIT_SECONDS = 10.0
"""How long stopping a job waits for its killed workers to be gone before it unlinks their leftover segments."""

MAX_RESTARTS = 3
"""How often Ray restarts a worker actor that died before the consumer is told the job failed."""


@dataclasses.dataclass
class Job:
    """A running job's actors, as one consumer holds them."""

    ray: Any
    coordinator: Any
    workers: list[Any]
    pipeline: Any  # the shipped pipeline's object ref: kept while the job runs, so Ray can restart a worker with it
    segment_prefix: str  # the workers' shared-memory segments' (transfer.py)
    node: str  # this consumer's Ray node: workers on it send chunks through shared memory


@functools.cache
def _actor_classes(ray: Any) -> tuple[Any, Any]:
    """The coordinator and worker classes as Ray actor classes (made once per process)."""
    coordinator = ray.remote(num_cpus=0, max_restarts=0)(Coordinator)
    worker = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=0)(Worker)
    return coordinator, worker


def start_job(ray: Any, config: dict[str, Any], pipeline: bytes, plan: SplitPlan | None,
              worker_resources: dict[str, Any]) -> Job:
    """Start the job ``config`` describes (or join the running one of its ``job_name``, which must run the same)."""
    coordinator_class, worker_class = _actor_classes(ray)
    name = config["job_name"]

    def named(role: str) -> dict[str, Any]:
        if name is None:
            return {}
        return {"name": f"{name}/{role}", "namespace": NAMESPACE, "get_if_exists": True}

    coordinator = coordinator_class.options(**named("coordinator")).remote(config, plan.count if plan else 0,
                                                                           transfer.job_prefix())
    running = ray.get(coordinator.config.remote())
    if running != config:
        raise InvalidArgumentError(f"distribute: job {name!r} runs {running['pipeline']} with "
                                   f"{running['num_workers']} worker(s) in {running['processing_mode']}, not "
                                   f"{config['pipeline']} with {config['num_workers']} in {config['processing_mode']}")
    ray.get(coordinator.attach.remote())
    prefix = ray.get(coordinator.segment_prefix.remote())
    if name is None:
        transfer.track(prefix)
    shipped = ray.put(pipeline)
    workers = [worker_class.options(**worker_resources, **named(f"worker{i}")).remote(shipped, i, coordinator, plan,
                                                                                     prefix)
               for i in range(config["num_workers"])]
    return Job(ray, coordinator, workers, shipped, prefix, ray.get_runtime_context().get_node_id())


def stop_job(job: Job) -> None:
    """This consumer leaves the job; the last one stops its actors and, once they are gone, unlinks the segments
    of chunks that were still in flight."""
    ray = job.ray
    transfer.untrack(job.segment_prefix)
    if ray.get(job.coordinator.detach.remote()) > 0:
        return
    actors = [*job.workers, job.coordinator]
    for actor in actors:
        ray.kill(actor, no_restart=True)
    _wait_until_gone(ray, job.workers)
    transfer.sweep(job.segment_prefix)


def _wait_until_gone(ray: Any, actors: list[Any]) -> None:
    """Return once each of ``actors`` (killed) is dead, so none makes a segment after the sweep (at most
    ``STOP_WAIT_SECONDS`` in all)."""
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    for actor in actors:
        while time.monotonic() < deadline:
            try:
                ray.get(actor.__ray_ready__.remote(), timeout=max(0.01, deadline - time.monotonic()))
            except ray.exceptions.RayActorError:
                break
            except ray.exceptions.GetTimeoutError:
                return
            time.sleep(0.01)
