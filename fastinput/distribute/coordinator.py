"""The coordinator actor: hands out the source's splits (``distributed_epoch``) and counts a job's consumers.

One per job (named after ``job_name`` when consumers share it). Each split number is handed out once, to the
worker that asks first, and written into that worker's log: asking again for its ``k``-th split (a restarted
worker, restored from a saved state) gives the same split again. Its whole state is a few integers per split, so
a consumer's saved state carries it (``state`` / ``load``).

It also keeps the pids of the job's worker processes (``register``), so the consumer that ends the job knows every
process that may still make a shared-memory segment, including a worker that had not made one yet (``stop``).
"""

from __future__ import annotations

from typing import Any


class Coordinator:
    """Run as a Ray actor (``job.start_job``); the methods are its remote calls."""

    def __init__(self, config: dict[str, Any], num_splits: int, segment_prefix: str) -> None:
        self._config = config
        self._segment_prefix = segment_prefix
        self._num_splits = num_splits
        self._next = 0  # the next split number not yet handed out
        self._logs: list[list[int]] = [[] for _ in range(config["num_workers"])]
        self._consumers = 0
        self._worker_pids: list[int] = []  # every worker process started, restarts included
        self._stopping = False

    def config(self) -> dict[str, Any]:
        """What the job runs (mode, workers, the pipeline's description): a consumer joining by name checks it."""
        return self._config

    def segment_prefix(self) -> str:
        """The shared-memory segment name prefix of the job's workers (``transfer.py``): the first consumer's."""
        return self._segment_prefix

    def split(self, worker: int, k: int) -> int | None:
        """Worker ``worker``'s ``k``-th split: from its log if it had it, else the next one left (None: none left)."""
        log = self._logs[worker]
        if k < len(log):
            return log[k]
        if k > len(log):
            raise ValueError(f"worker {worker} asked for its split {k} before its split {len(log)}")
        if self._next >= self._num_splits:
            return None
        log.append(self._next)
        self._next += 1
        return log[-1]

    def state(self) -> dict[str, Any]:
        """The hand-out so far (JSON-able)."""
        return {"next": self._next, "logs": [list(log) for log in self._logs]}

    def load(self, state: dict[str, Any]) -> None:
        """Continue the hand-out ``state`` recorded."""
        self._next = int(state["next"])
        self._logs = [[int(s) for s in log] for log in state["logs"]]

    def attach(self) -> int:
        """A consumer joins; returns how many there are now."""
        self._consumers += 1
        return self._consumers

    def detach(self) -> int:
        """A consumer leaves; returns how many are left (the last one stops the job)."""
        self._consumers -= 1
        return self._consumers

    def register(self, pid: int) -> bool:
        """A worker process starts; whether it may make shared-memory segments (not once the job is stopping)."""
        if self._stopping:
            return False
        self._worker_pids.append(pid)
        return True

    def stop(self) -> list[int]:
        """The job ends: no worker registers from now on; the pids of those that did."""
        self._stopping = True
        return list(self._worker_pids)
