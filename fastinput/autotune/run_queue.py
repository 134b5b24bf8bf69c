"""How long a stage's worker threads waited for a core: the run-queue delay Linux keeps per thread.

The tuner splits a worker's wall time per element into CPU time, waiting for a core, and waiting for anything
else (storage, a lock): only the last overlaps when workers are added. Waiting for a core cannot be told from
the other two by wall and CPU time alone once other processes load the machine (two helpers' benchmarks, the
training step's own host work): a computing stage's workers then look half idle, and every worker added looked a
gain (the README image pipeline climbed to 9-16 workers on 2 cores, ~30 us more CPU per image than on 2). The
kernel counts that time per thread: the second field of ``/proc/self/task/TID/schedstat`` (nanoseconds runnable
but not running), so the tuner reads it for each stage's workers once a round, at no cost to the workers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

AVAILABLE = os.path.exists("/proc/self/schedstat")
"""Whether the kernel keeps the figures (Linux with ``CONFIG_SCHED_INFO``, as distributions build it)."""


def run_delays(native_ids: Iterable[int]) -> dict[int, int] | None:
    """Nanoseconds each of this process's threads ``native_ids`` has spent runnable but not running since it
    started, for those still alive; None where the kernel does not say (no ``/proc``, or built without
    ``CONFIG_SCHED_INFO``): the tuner then estimates the delay from wall and CPU time."""
    if not AVAILABLE:
        return None
    delays = {}
    for tid in native_ids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat", "rb") as f:
                delays[tid] = int(f.read().split()[1])
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
        except (OSError, IndexError, ValueError):  # unreadable, or not in the expected format
            return None
    return delays
