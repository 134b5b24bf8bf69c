"""How long a stage's worker threads waited for a core: the run-queue delay Linux keeps per thread.

The tuner splits a worker's wall time per element into CPU time, waiting for a core, and waiting for anything
else (storage, a lock): only the last overlaps when workers are added. Waiting for a core cannot be told from
the other two by wall and CPU time alone once other processes load the machine (two helpers' benchmarks, the
training step's own host work): a computing stage's workers then look half idle, and every worker added looked a
gain (the README image pipeline climbed to 9-16 workers on 2 cores, ~30 us more CPU per image than on 2). The
kernel counts that time per thread: the second field of ``/proc/self/task/TID/schedstat`` (nanoseconds runnable
but not running), so the tuner reads it for each stage's workers once a round, at no cost to the workers. The first
field (nanoseconds running) gives the rest: the time the thread slept (the GIL, a lock, storage).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

AVAILABLE = os.path.exists("/proc/self/schedstat")
"""Whether the kernel keeps the figures (Linux with ``CONFIG_SCHED_INFO``, as distributions build it)."""


def thread_times(native_ids: Iterable[int]) -> dict[int, tuple[int, int]] | None:
    """(running, runnable but not running) nanoseconds of each of this process's threads ``native_ids`` since it
    started, for those still alive; None where the kernel does not say (no ``/proc``, or built without
    ``CONFIG_SCHED_INFO``): the tuner then estimates the delay from wall and CPU time. A thread's wall time less
    both is the time it slept: on a lock (the GIL), a condition or storage (the tuner's blocked time)."""
    if not AVAILABLE:
        return None
    times = {}
    for tid in native_ids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat", "rb") as f:
                fields = f.read().split()
            times[tid] = (int(fields[0]), int(fields[1]))
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        except (OSError, IndexError, ValueError):  # unreadable, or not in the expected format
            return None
    return times
