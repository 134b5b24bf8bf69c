"""How many cores the pipeline could have used in the last tuning round: those its process used plus those the
machine left idle.

The model (``fastinput.autotune.model``) tells a worker's waiting (storage, locks), which more workers overlap,
from its CPU time queued for a core, which they cannot shorten. Queueing behind the pipeline's own workers shows in
its measurements; queueing behind other processes (a training step's host work, other jobs on a shared machine)
looks like waiting unless the model knows that the cores were all busy. Linux's scheduler shares the CPU between
sessions, not threads, so more workers do not win a bigger share from those processes either: what the pipeline
can have is what it got plus what nobody used.
"""

from __future__ import annotations

import os
import time

PROC_STAT = "/proc/stat"
MIN_CORES = 0.25
"""The least a round reports: a pipeline on a machine this busy still gets some CPU, and a round's CPU figures below
it are mostly the clock's granularity."""


def _machine_jiffies() -> tuple[int, int] | None:
    """(idle, total) CPU time of the whole machine so far, in clock ticks; None where it cannot be read."""
    try:
        with open(PROC_STAT, "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if len(fields) < 6 or fields[0] != b"cpu":
        return None
    ticks = [int(value) for value in fields[1:]]
    return ticks[3] + ticks[4], sum(ticks[:8])  # idle + iowait; user..steal (guest time is counted in user)


class AvailableCores:
    """Measures, between calls, the cores the process used and the cores the machine left idle."""

    def __init__(self, budget: float) -> None:
        self._budget = budget
        self._machine_cores = os.cpu_count() or 1
        self._last = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, tuple[int, int] | None]:
        return time.monotonic(), time.process_time(), _machine_jiffies()

    def since_last(self) -> float:
        """Cores the process could have used since the last call (at most the budget); the budget where the
        machine's idle time cannot be read."""
        (wall0, cpu0, jiffies0), now = self._last, self._sample()
        self._last = now
        wall1, cpu1, jiffies1 = now
        if jiffies0 is None or jiffies1 is None or wall1 <= wall0 or jiffies1[1] <= jiffies0[1]:
            return self._budget
        used = (cpu1 - cpu0) / (wall1 - wall0)
        idle = (jiffies1[0] - jiffies0[0]) / (jiffies1[1] - jiffies0[1]) * self._machine_cores
        return max(min(MIN_CORES, self._budget), min(self._budget, used + idle))
