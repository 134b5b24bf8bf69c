"""``--busy-cores N``: processes that keep N cores busy beside the pipelines measured.

They stand in for the training step's own host work (the framework's
Python, the optimizer on the CPU, logging): an input pipeline that only
reaches its figure on an otherwise idle machine will not reach it in
training. Each is a separate Python process spinning on pure CPU work; none
touches memory or disk. They start before the timed runs and are stopped
and reaped when the ``with`` block ends, however it ends (an error, Ctrl-C).
Should the benchmark itself die without cleaning up (``kill -9``), each
notices that its parent changed and exits on its own.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

SPIN = """
import os
parent = os.getppid()
while os.getppid() == parent:
    sum(i * i for i in range(10_000))
"""
"""A busy process's program: spin until stopped, or until its parent is gone (then it is re-parented)."""

STOP_SECONDS = 5.0
"""How long a busy process gets to exit after SIGTERM before it is killed."""


@contextlib.contextmanager
def busy_cores(count: int) -> Iterator[list[subprocess.Popen]]:
    """Keep ``count`` cores busy for the duration of the block; yields the processes (none for 0)."""
    processes: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            processes.append(subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield processes
    finally:
        stop(processes)


def stop(processes: list[subprocess.Popen]) -> None:
    """Terminate every process, then wait for each (killing any that outlives ``STOP_SECONDS``)."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
