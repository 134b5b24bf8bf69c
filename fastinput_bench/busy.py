"""``--busy-cores N``: processes that keep N cores busy beside the pipelines measured.

They stand in for the training step's own host work (the framework's
Python, the optimizer on the CPU, logging): an input pipeline that only
reaches its figure on an otherwise idle machine will not reach it in
training. Each is a separate Python process spinning on pure CPU work,
counting it into an 8-byte shared file. They start before the timed runs and are stopped
and reaped when the ``with`` block ends, however it ends (an error, Ctrl-C).
Should the benchmark itself die without cleaning up (``kill -9``), each
notices that its parent changed and exits on its own.

The work the busy processes did while a pipeline was timed, as a share of
what they do with no pipeline running (``BusyProcesses.alone_seconds``:
``Measurement.beside_share``), is what the pipeline left the training step. A
pipeline that runs more threads gets more of the cores, and what runs on the
other cores slows the busy processes too: on 2 cores, one busy process beside
the README image pipeline with 3 workers fixed did 53% of its work alone (the
pipeline 8% more images/s), with 2 workers 60%, beside tf.data's pipeline 63%;
its CPU time (0.71, 0.78 and 0.69 cores) did not tell those apart.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

SPIN = """
import mmap, os, sys
parent = os.getppid()
with open(sys.argv[1], "r+b") as f:
    done = mmap.mmap(f.fileno(), 8)
units = 0
while os.getppid() == parent:
    sum(i * i for i in range(10_000))
    units += 1
    done[:] = units.to_bytes(8, "little")
"""
"""A busy process's program: spin, counting units of work into the file ``argv[1]`` names, until stopped, or until
its parent is gone (then it is re-parented)."""

STOP_SECONDS = 5.0
"""How long a busy process gets to exit after SIGTERM before it is killed."""

ALONE_SECONDS = 1.0
"""How long the busy processes' rate is measured with no pipeline running, once they have all started."""

START_SECONDS = 60.0
"""How long the busy processes may take to start (a loaded machine) before their rate goes unmeasured."""


class BusyProcesses:
    """The busy processes of a run, and the work they have done (units of ``SPIN``'s loop, each process counting
    into a file of its own)."""

    def __init__(self, folder: str) -> None:
        self._folder = folder
        self.processes: list[subprocess.Popen] = []
        self._counters: list[mmap.mmap] = []
        self.rate_alone: float | None = None
        """Units a second with no pipeline running (None: not measured)."""

    def start(self, count: int) -> None:
        """Start ``count`` processes, each with its counter file in the folder."""
        folder = self._folder
        for k in range(count):
            path = os.path.join(folder, f"busy-{k}")
            with open(path, "wb") as f:
                f.write(bytes(8))
            with open(path, "r+b") as f:
                self._counters.append(mmap.mmap(f.fileno(), 8))
            self.processes.append(subprocess.Popen([sys.executable, "-c", SPIN, path], stdin=subprocess.DEVNULL,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def work(self) -> int:
        """Units done so far by all of them."""
        return sum(_count(counter) for counter in self._counters)

    def measure_alone(self) -> None:
        """Their rate with nothing else running: once every process counts, ``ALONE_SECONDS`` of it."""
        deadline = time.monotonic() + START_SECONDS
        while any(_count(c) == 0 for c in self._counters) and time.monotonic() < deadline:
            time.sleep(0.01)
        start, before = time.perf_counter(), self.work()
        time.sleep(ALONE_SECONDS)
        done = self.work() - before
        self.rate_alone = done / (time.perf_counter() - start) if done > 0 else None

    def alone_seconds(self) -> float | None:
        """Work done so far in seconds of their rate alone (None: not measured): the difference over a timed
        stretch, divided by its length, is the share of their work the pipeline left them."""
        return self.work() / self.rate_alone if self.rate_alone else None

    def close(self) -> None:
        for counter in self._counters:
            counter.close()


def _count(counter: mmap.mmap) -> int:
    """A busy process's count, read until two reads agree (a write may be under way)."""
    value, again = -1, int.from_bytes(counter[:8], "little")
    while value != again:
        value, again = again, int.from_bytes(counter[:8], "little")
    return value


@contextlib.contextmanager
def busy_cores(count: int) -> Iterator[BusyProcesses]:
    """Keep ``count`` cores busy for the duration of the block (their rate alone measured first); yields the
    processes (none for 0)."""
    with tempfile.TemporaryDirectory(prefix="fastinput-busy-") as folder:
        busy = BusyProcesses(folder)
        try:
            busy.start(count)
            if count:
                busy.measure_alone()
            yield busy
        finally:
            stop(busy.processes)
            busy.close()


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
