"""Starting a ``distribute`` job's actors on a Ray cluster, or joining the job of the same ``job_name``; stopping it.

A job is one coordinator actor and ``num_workers`` worker actors. Unnamed jobs belong to one consumer (one
iterator). Named jobs (``job_name``) are Ray named actors in the ``fastinput`` namespace, so consumers in other
processes of the same cluster find them: each joining consumer is counted by the coordinator, and the last one to
leave stops the actors.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
from typing import Any

from fastinput.distribute import transfer
from fastinput.distribute.coordinator import Coordinator
from fastinput.distribute.splits import SplitPlan
from fastinput.distribute.worker import Worker
from fastinput.errors import InvalidArgumentError

NAMESPACE = "fastinput"
"""The Ray namespace of named jobs' actors."""

MAX_RESTARTS = 3
"""How often Ray restarts a worker actor that died before the consumer is told the job failed."""


@dataclasses.dataclass(eq=False)
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
    transfer.sweep_orphans()  # what the jobs of a consumer killed on this node left

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
    shipped = ray.put(pipeline)
    workers = [worker_class.options(**worker_resources, **named(f"worker{i}")).remote(shipped, i, coordinator, plan,
                                                                                     prefix)
               for i in range(config["num_workers"])]
    job = Job(ray, coordinator, workers, shipped, prefix, ray.get_runtime_context().get_node_id())
    _stop_at_exit()
    _running.add(job)
    return job


def stop_job(job: Job) -> None:
    """This consumer leaves the job; the last one stops its actors and, once they are gone, unlinks the segments
    of chunks that were still in flight. Leaving twice (at interpreter exit, then as the iterator goes) is leaving
    once."""
    ray = job.ray
    if job not in _running:
        return
    _running.discard(job)
    if ray.get(job.coordinator.detach.remote()) > 0:
        return
    pids = ray.get(job.coordinator.stop.remote())  # every worker process that may make a segment
    for actor in [*job.workers, job.coordinator]:
        ray.kill(actor, no_restart=True)
    transfer.sweep_after_exit(job.segment_prefix, pids, transfer.JOB_END_WAIT_SECONDS)


_running: set[Job] = set()
"""The jobs this process has started or joined and not left: it leaves them at interpreter exit."""


@functools.cache
def _stop_at_exit() -> None:
    """Leave the running jobs at interpreter exit (registered at the first job, after ``ray.init``: exit hooks run
    last-registered first, so this runs while Ray is still connected)."""

    def stop_all() -> None:
        for job in list(_running):
            try:
                stop_job(job)
            except Exception:  # Ray is gone: its actors go with it; their segments still must
                transfer.sweep(job.segment_prefix)

    atexit.register(stop_all)
