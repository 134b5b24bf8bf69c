"""How steadily do batches arrive? The gaps between consecutive batches of an image pipeline, fastinput's and tf.data's.

``fastinput-bench`` reports the spread of its timed intervals; this says where a wide one comes from. For each
library, in one process: the images/s of each interval, the gaps between consecutive batches (percentiles and
their coefficient of variation) and the share of "bursts", batches that came less than ``BURST_SECONDS`` after the
one before (they were finished together, after a long gap), with, for fastinput, every change of a knob's value
seen between batches (the autotuner's moves), and the garbage collector's pauses while fastinput's batches were timed.
This is how issue 20's spread was traced to ``map_and_batch`` giving each worker a batch of its own (16 workers on
2 cores made 16 batches at once, which came out in bursts), then, with the parallelism pinned (``--parallelism``),
to two workers each finishing a batch of their own: batches in pairs, whether the tuner moved or not.

    python -m fastinput_bench.batch_gaps [--pipeline readme|map-batch|tuned] [--parallelism N] [--busy-cores N]
                                         [--batches 200]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

BATCH_SIZE = 64
WARMUP_BATCHES = 20
INTERVALS = 10
BURST_SECONDS = 0.002


def arrivals(batches: Iterator[Any], count: int, knobs: Any = None) -> tuple[list[float], list[tuple[int, dict]]]:
    """The times ``count`` batches arrived (after ``WARMUP_BATCHES``, one time more: the last warm-up batch's), and
    the knobs (``knobs()``: knob objects) at the first batch and those that changed at each batch where some did."""
    for _ in range(WARMUP_BATCHES - 1):
        next(batches)
    times, changes, last = [], [], None
    for index in range(count + 1):
        next(batches)
        times.append(time.perf_counter())
        if knobs is not None:
            values = {f"{k.stage}.{k.name}": k.value for k in knobs()}
            if values != last:
                changes.append((index, {k: v for k, v in values.items() if last is None or last.get(k) != v}))
                last = values
    return times, changes


def summary(times: list[float]) -> dict[str, Any]:
    """Interval rates (images/s), gap percentiles (ms), the gaps' coefficient of variation and the burst share."""
    gaps = np.diff(times)
    bounds = np.linspace(0, len(gaps), min(INTERVALS, len(gaps)) + 1).round().astype(int)
    rates = [(end - start) * BATCH_SIZE / (times[end] - times[start]) for start, end in zip(bounds, bounds[1:])]
    return {"interval_rates": rates, "median": statistics.median(rates), "spread": max(rates) - min(rates),
            "gap_ms": {p: float(np.percentile(gaps, p) * 1e3) for p in (10, 50, 90, 100)},
            "gap_cv": float(gaps.std() / gaps.mean()), "bursts": float(np.mean(gaps < BURST_SECONDS))}


class GcPauses:
    """The garbage collector's pauses (seconds) while in a ``with`` block, timed by ``gc.callbacks``."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._start = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._start)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


def run(files: list[str], pipeline: str, batches: int, with_tf: bool = True,
        parallelism: int | None = None) -> dict[str, Any]:
    """Both libraries' figures (tf.data's only if ``with_tf``), fastinput's first, fastinput's knob changes and GC
    pauses. ``parallelism``: the README pipeline's map_and_batch workers pinned (None: AUTOTUNE)."""
    from fastinput_bench import image_pipelines
    from fastinput_bench.pipelines import IMAGE_PIPELINES, PipelineConfig
    from fastinput_bench.readme_pipeline import readme_images

    if parallelism is None:
        dataset = IMAGE_PIPELINES[pipeline](PipelineConfig(files, BATCH_SIZE, pipeline=pipeline))
    else:
        dataset = readme_images(files, BATCH_SIZE, num_parallel_calls=parallelism)
    with iter(dataset) as it, GcPauses() as gc_pauses:
        times, changes = arrivals(it, batches, it.knobs)
    result = {"fastinput": summary(times), "knob_changes": changes, "gc_pauses": gc_pauses.pauses}
    if with_tf:
        result["tf.data"] = summary(arrivals(iter(image_pipelines.tf_data_images(files, BATCH_SIZE, "uint8")),
                                             batches)[0])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", choices=["readme", "map-batch", "tuned"], default="readme")
    parser.add_argument("--parallelism", type=int, help="pin the readme pipeline's map_and_batch workers")
    parser.add_argument("--busy-cores", type=int, default=0)
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    if args.parallelism is not None and args.pipeline != "readme":
        parser.error("--parallelism pins the readme pipeline's map_and_batch only")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fastinput_bench.busy import busy_cores
    from fastinput_bench.synthetic import cache_root, synthetic_files

    files = synthetic_files("images", "default", cache_root(None))
    load = os.getloadavg()[0]
    with busy_cores(args.busy_cores):
        result = run(files, args.pipeline, args.batches, parallelism=args.parallelism)
    workers = "AUTOTUNE" if args.parallelism is None else args.parallelism
    print(f"{args.pipeline} pipeline ({workers} workers), {args.batches} batches of {BATCH_SIZE}, "
          f"{args.busy_cores} busy core(s); {os.cpu_count()} cores, load average at start {load:.1f}")
    for name in ("fastinput", "tf.data"):
        s = result[name]
        gaps = " ".join(f"p{p} {ms:.0f}" for p, ms in s["gap_ms"].items())
        print(f"{name:>9}: {s['median']:,.0f} images/s, spread {s['spread']:,.0f}; gaps ms {gaps}, "
              f"CV {s['gap_cv']:.2f}, bursts {s['bursts']:.0%}")
        print(f"{'':>11}intervals: {' '.join(f'{r:,.0f}' for r in s['interval_rates'])}")
    pauses = result["gc_pauses"]
    print(f"fastinput's GC pauses: {len(pauses)}, longest {max(pauses, default=0) * 1e3:.1f} ms, "
          f"{sum(pauses) * 1e3:.1f} ms in all")
    for index, values in result["knob_changes"]:
        print(f"  batch {index:>4}: {values}")


if __name__ == "__main__":
    main()
