"""Where the README image pipeline's CPU goes, in microseconds per image: the decode kernel and everything else.

Each round runs the README pipeline (``readme_pipeline.readme_images``) for ``--batches`` batches after a warm-up,
reading every thread's CPU time from ``/proc/self/task`` before and after, grouped by stage (fastinput names its
threads after their stage; what threads that ended meanwhile used is the process's total less the live ones'). Then
it runs the decode kernel as the pipeline calls it (``fi.image.decode_random_crop_resize`` into a reused row) on two
threads over the same set's JPEGs, parsed beforehand, for its images/s and CPU per image. The pipeline's CPU per
image less the kernel's is what the pipeline costs beyond the kernel: issue 20 asks for the pipeline at 90% of the
kernel's images/s, which on a machine whose cores are all busy needs it under a tenth of the total. Rounds
alternate the two, so load from elsewhere hits both alike; medians are printed.

    python -m fastinput_bench.readme_cpu [--batches 100] [--parallelism N] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
from collections import defaultdict
from typing import Any

import numpy as np

from fastinput_bench.readme_threads import BATCH_SIZE, timed_run
from fastinput_bench.report import process_cpu, script_machine, write_figures

KERNEL_IMAGES = 256


def _thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each live thread of this process, by native thread id."""
    seconds, pid = {}, os.getpid()
    for tid in os.listdir("/proc/self/task"):
        try:
            seconds[int(tid)] = process_cpu(pid, int(tid))
        except (FileNotFoundError, ProcessLookupError):  # ended meanwhile: before the open, or between it and the read
            continue
    return seconds


def _stage(name: str) -> str:
    """A thread's stage: its name without the worker number (``fastinput map_and_batch(...) #3``)."""
    return name.removeprefix("fastinput ").rsplit(" #", 1)[0].split("(", 1)[0]


def run_pipeline(files: list[str], batches: int, parallelism: int) -> dict[str, Any]:
    """The README pipeline's images/s, CPU per image (us) in all and per stage, and its map_and_batch workers."""
    def sample() -> tuple[dict[int, float], os.times_result, dict[int, str]]:
        return _thread_cpu(), os.times(), {t.native_id: t.name for t in threading.enumerate()}

    seconds, (before, process, _), (after, process_end, names), workers = timed_run(files, parallelism, batches,
                                                                                     sample)
    images = batches * BATCH_SIZE
    per_stage: dict[str, float] = defaultdict(float)
    for tid, cpu in after.items():
        per_stage[_stage(names.get(tid, "other"))] += (cpu - before.get(tid, 0.0)) / images * 1e6
    user, system = process_end.user - process.user, process_end.system - process.system
    total = (user + system) / images * 1e6
    per_stage["threads that ended"] = max(0.0, total - sum(per_stage.values()))
    return {"images_per_second": images / seconds, "cpu_us_per_image": total,
            "system_us_per_image": system / images * 1e6, "per_stage_us": dict(per_stage), "workers_at_end": workers}


def load_jpegs(files: list[str]) -> list[bytes]:
    """The first ``KERNEL_IMAGES`` JPEGs of ``files``."""
    from fastinput_bench.kernel_limit import load_jpegs as load_from

    return load_from(files, KERNEL_IMAGES)


def run_kernel(jpegs: list[bytes], threads: int = 2) -> dict[str, float]:
    """``decode_random_crop_resize`` into a reused row (one per thread) on ``threads`` threads, each over all of
    ``jpegs`` (``image_kernels.measure``)."""
    import fastinput as fi
    from fastinput_bench.image_kernels import measure

    rows = threading.local()

    def kernel(jpeg: bytes, window: object) -> None:
        if not hasattr(rows, "row"):
            rows.row = np.empty((224, 224, 3), np.uint8)
        fi.image.decode_random_crop_resize(jpeg, size=(224, 224), out=rows.row)

    images_per_second, cpu_ms = measure(kernel, [(jpeg, None) for jpeg in jpegs], threads)
    return {"images_per_second": images_per_second, "cpu_us_per_image": cpu_ms * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--parallelism", type=int, help="the map_and_batch workers (default: AUTOTUNE)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import fastinput as fi
    from fastinput_bench.synthetic import cache_root, synthetic_files

    files = synthetic_files("images", "default", cache_root(None))
    jpegs = load_jpegs(files)
    parallelism = fi.AUTOTUNE if args.parallelism is None else args.parallelism
    load = os.getloadavg()[0]
    pipelines, kernels = [], []
    for _ in range(args.rounds):
        pipelines.append(run_pipeline(files, args.batches, parallelism))
        kernels.append(run_kernel(jpegs))

    def median(runs: list[dict], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    cpu, kernel_cpu = median(pipelines, "cpu_us_per_image"), median(kernels, "cpu_us_per_image")
    rate, kernel_rate = median(pipelines, "images_per_second"), median(kernels, "images_per_second")
    stages = sorted({stage for run in pipelines for stage in run["per_stage_us"]})
    per_stage = {stage: statistics.median(run["per_stage_us"].get(stage, 0.0) for run in pipelines) for stage in stages}
    print(f"README pipeline, {args.batches} batches of {BATCH_SIZE}, map_and_batch workers "
          f"{'AUTOTUNE' if args.parallelism is None else args.parallelism} (at the end: "
          f"{'/'.join(str(run['workers_at_end']) for run in pipelines)}); medians of {args.rounds} rounds; "
          f"{os.cpu_count()} cores, load average at start {load:.1f}")
    print(f"  pipeline: {rate:,.0f} images/s, {cpu:.0f} us CPU per image "
          f"({median(pipelines, 'system_us_per_image'):.0f} us of it in the kernel of the OS)")
    print(f"  decode kernel on 2 threads: {kernel_rate:,.0f} images/s, {kernel_cpu:.0f} us CPU per image")
    print(f"  beyond the kernel: {cpu - kernel_cpu:.0f} us per image; pipeline / kernel images/s: "
          f"{rate / kernel_rate:.0%}")
    print("  per stage, us per image: " + ", ".join(f"{stage} {us:.0f}" for stage, us in
                                                     sorted(per_stage.items(), key=lambda item: -item[1])))
    write_figures(args.json, {"machine": {**script_machine(), "load_average": load}, "batches": args.batches,
                              "pipelines": pipelines, "kernels": kernels})


if __name__ == "__main__":
    main()
