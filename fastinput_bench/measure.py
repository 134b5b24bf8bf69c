"""Timing a pipeline against an infinitely fast model: examples/sec over intervals, CPU use, peak memory.

The consumer does nothing but take each batch, so any shortfall is the input
pipeline's. After ``warmup`` batches (buffers fill, threads start, the
autotuner settles), ``steps`` batches are timed in ``intervals`` equal
stretches; the rate of each stretch gives the median and the spread, which
say more on a shared, noisy machine than one overall figure.

CPU utilisation is the process's CPU time (all threads, user + system) over
the timed wall time, divided by the cores the process may use. Peak memory is
the process's resident high-water mark (``ru_maxrss``); it is reset when a
run starts (Linux ``/proc/self/clear_refs``) so that two pipelines measured in
one process each get their own peak. It includes everything resident, such
as TensorFlow's libraries, which both pipelines load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

from fastinput import structure
from fastinput.options import available_cpus

Progress = Callable[[int, float | None], None]
"""Called after every batch with the batches taken so far (warm-up included) and the latest rate, if any."""

Beside = Callable[[], float | None]
"""Reads the work the busy processes beside have done so far, in seconds of their rate alone
(``busy.BusyProcesses.alone_seconds``); None where not measured."""


def relative_spread(minimum: float, maximum: float, median: float) -> float:
    """``(maximum - minimum) / median``, 0 where the median is 0."""
    return (maximum - minimum) / median if median else 0.0


@dataclasses.dataclass(frozen=True)
class Measurement:
    """What one pipeline delivered: per-interval rates and the process's CPU and memory figures."""

    examples: int
    seconds: float
    interval_rates: tuple[float, ...]
    cpu_utilization: float
    """Fraction of all the process's cores kept busy while timed (1.0: every core all the time)."""
    peak_memory_bytes: int
    beside_share: float | None = None
    """The work the busy processes beside (``--busy-cores``) did while this was timed, as a share of their work with
    no pipeline running; None: none ran (or their rate alone was not measured)."""

    @property
    def median(self) -> float:
        return statistics.median(self.interval_rates)

    @property
    def minimum(self) -> float:
        return min(self.interval_rates)

    @property
    def maximum(self) -> float:
        return max(self.interval_rates)

    @property
    def relative_spread(self) -> float:
        """(max - min) / median of the interval rates: the spread as a share of the rate, so that pipelines of
        different speeds compare (a pipeline 1.4x as fast, timed over the same number of batches, has intervals
        1.4x as short, in which the same hiccup weighs 1.4x as much in images/s)."""
        return relative_spread(self.minimum, self.maximum, self.median)

    def pooled(self, other: Measurement) -> Measurement:
        """This and ``other`` (the same thing timed again) as one measurement: both runs' intervals, examples and
        seconds; CPU use over both; the higher peak."""
        seconds = self.seconds + other.seconds

        def by_time(mine: float, theirs: float) -> float:
            """The two runs' figures averaged by their timed seconds."""
            return (mine * self.seconds + theirs * other.seconds) / seconds

        beside = (None if self.beside_share is None or other.beside_share is None
                  else by_time(self.beside_share, other.beside_share))
        return Measurement(self.examples + other.examples, seconds, self.interval_rates + other.interval_rates,
                           by_time(self.cpu_utilization, other.cpu_utilization),
                           max(self.peak_memory_bytes, other.peak_memory_bytes), beside)

    @property
    def mean(self) -> float:
        """Examples over the whole timed stretch divided by its wall time."""
        return self.examples / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "median_per_second": self.median,
            "min_per_second": self.minimum,
            "max_per_second": self.maximum,
            "relative_spread": self.relative_spread,
            "mean_per_second": self.mean,
            "interval_rates": list(self.interval_rates),
            "examples": self.examples,
            "seconds": self.seconds,
            "cpu_utilization": self.cpu_utilization,
            "peak_memory_bytes": self.peak_memory_bytes,
            "beside_share": self.beside_share,
        }


def batch_length(batch: Any) -> int:
    """Examples in a batch: the leading dimension of its first leaf (numpy, TensorFlow, PyTorch or JAX arrays)."""
    return int(structure.flatten(batch)[0].shape[0])


def interval_bounds(steps: int, intervals: int) -> list[int]:
    """The step counts at which each of ``intervals`` (at most ``steps``) nearly equal intervals ends."""
    intervals = max(1, min(intervals, steps))
    return [round(steps * (i + 1) / intervals) for i in range(intervals)]


def reset_peak_memory() -> None:
    """Reset the process's resident high-water mark to its current size (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_memory_bytes() -> int:
    """The process's resident high-water mark in bytes (``ru_maxrss``, kilobytes on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(batches: Iterator[Any], *, warmup: int, steps: int, intervals: int,
            progress: Progress | None = None, beside: Beside | None = None) -> Measurement:
    """Take ``warmup`` then ``steps`` batches from ``batches`` and time the latter in ``intervals`` stretches.

    Call ``reset_peak_memory()`` before building the pipeline, so that its
    start-up counts towards the peak. ``beside`` is read as the timing starts and ends (``Beside``).
    """
    report = progress or (lambda taken, rate: None)
    for taken in range(1, warmup + 1):
        next(batches)
        report(taken, None)
    rates: list[float] = []
    examples = done = 0
    cpu_start = _cpu_seconds()
    beside_start = beside() if beside else None
    start = interval_start = time.perf_counter()
    for end in interval_bounds(steps, intervals):
        interval_examples = 0
        while done < end:
            interval_examples += batch_length(next(batches))
            done += 1
            report(warmup + done, rates[-1] if rates else None)
        now = time.perf_counter()
        rates.append(interval_examples / (now - interval_start))
        examples += interval_examples
        interval_start = now
    seconds = interval_start - start
    cpu = (_cpu_seconds() - cpu_start) / seconds / available_cpus()
    beside_end = beside() if beside else None
    beside_share = None if beside_start is None or beside_end is None else (beside_end - beside_start) / seconds
    report(warmup + done, rates[-1])
    return Measurement(examples, seconds, tuple(rates), cpu, peak_memory_bytes(), beside_share)
