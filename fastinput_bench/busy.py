"""``--busy-cores N``: processes that keep N cores busy beside the pipelines measured.

They stand in for the training step's own host work (the framework's
Python, the optimizer on the CPU, logging): an input pipeline that only
reaches its figure on an otherwise idle machine will not reach it in
training. Each is a separate Python process spinning on pure CPU work; none
touches memory or disk. They start before the timed runs and are stopped
and reaped when the ``with`` block ends, however it ends (an error, Ctrl-C).
Should the benchmark itself die without cleaning up (``kill -9``), each
notices that its parent changed and exits on its own.

The CPU time the busy processes got while a pipeline was timed (``cpu_seconds``,
as cores' worth: ``Measurement.cores_beside``) is what the scheduler left them:
a pipeline that runs more threads gets more of the cores' time. It is not their
progress, which also depends on what runs on the other cores (on 2 cores, one
busy process counting its own work beside the README image pipeline: with 3
workers fixed the pipeline did 8% more images/s than with 2, and the process got
0.71 against 0.78 cores and did 53% against 60% of its work alone; beside
tf.data's pipeline it got 0.69 cores and did 63%).
"""

from __future__ import annotations

import contextlib
import os
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


def cpu_seconds(processes: list[subprocess.Popen]) -> float | None:
    """The CPU time (user + system) the processes have used so far; None where ``/proc`` does not tell (not
    Linux), or for none."""
    if not processes:
        return None
    total = 0
    try:
        for process in processes:
            with open(f"/proc/{process.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (the 14th and 15th fields), in clock ticks
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


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
