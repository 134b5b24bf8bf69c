"""The README image pipeline with its ``map_and_batch`` at fixed worker counts and at AUTOTUNE, in one process.

For each setting: images/s, the process's CPU time per image (user + system,
all threads: it stays meaningful when other processes share the machine), and
the context switches per image of the process's threads (voluntary: a thread
blocked, on the GIL, a lock or a condition; involuntary: it was preempted),
with the map_and_batch's worker count at the end. Rounds go over every
setting in turn, so a burst of load from elsewhere hits them alike; the best
rate and the median CPU per image are kept. This is how issue 20's question
"what do 16 threads on 2 cores cost?" was answered, and, with
``--busy-cores 1`` (busy processes beside, as ``fastinput-bench`` runs them),
how many workers pay when the training step's host work shares the cores
(``fastinput.autotune.model.BLOCKED_WORKERS_PER_CORE``).

    python -m fastinput_bench.readme_threads [--parallelism 2 3 4 8 16 autotune] [--rounds 3] [--batches 40]
                                             [--busy-cores N] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Generic, NamedTuple, TypeVar

from fastinput_bench.busy import busy_cores
from fastinput_bench.report import script_machine, write_figures

BATCH_SIZE = 64
WARMUP_BATCHES = 10
Sample = TypeVar("Sample")


def _context_switches() -> tuple[int, int]:
    """(voluntary, involuntary) context switches of all the process's threads so far, ended ones included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw, usage.ru_nivcsw


class TimedRun(NamedTuple, Generic[Sample]):
    """``timed_run``'s result: the timed batches' wall seconds, the samples taken just before and just after them,
    and the map_and_batch's worker count at the end."""

    seconds: float
    before: Sample
    after: Sample
    workers: int


def timed_run(files: list[str], parallelism: int, batches: int, sample: Callable[[], Sample]) -> TimedRun[Sample]:
    """The README pipeline with ``map_and_batch(num_parallel_calls=parallelism)``: ``WARMUP_BATCHES`` batches, then
    ``batches`` timed ones between two calls of ``sample`` (what the caller counts: CPU times, context switches),
    while the pipeline's threads are all alive."""
    from fastinput_bench.readme_pipeline import readme_images

    with iter(readme_images(files, BATCH_SIZE, num_parallel_calls=parallelism)) as it:
        for _ in range(WARMUP_BATCHES):
            next(it)
        before, start = sample(), time.perf_counter()
        for _ in range(batches):
            next(it)
        seconds = time.perf_counter() - start
        after = sample()
        workers = next(k.value for k in it.knobs() if k.stage.startswith("map_and_batch") and k.name == "parallelism")
    return TimedRun(seconds, before, after, workers)


def measure(files: list[str], parallelism: int, batches: int) -> dict:
    """One run of the README pipeline with ``map_and_batch(num_parallel_calls=parallelism)``."""
    import fastinput as fi

    seconds, (switches, cpu), (switches_end, cpu_end), workers = timed_run(
        files, parallelism, batches, lambda: (_context_switches(), os.times()))
    images = batches * BATCH_SIZE
    cpu_seconds = (cpu_end.user - cpu.user) + (cpu_end.system - cpu.system)
    return {"parallelism": "autotune" if parallelism == fi.AUTOTUNE else parallelism, "workers_at_end": workers,
            "images_per_second": images / seconds, "cpu_ms_per_image": cpu_seconds / images * 1e3,
            "voluntary_switches_per_image": (switches_end[0] - switches[0]) / images,
            "involuntary_switches_per_image": (switches_end[1] - switches[1]) / images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parallelism", nargs="+", default=["2", "3", "4", "8", "16", "autotune"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--busy-cores", type=int, default=0, metavar="N", help="busy processes beside (default 0)")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import fastinput as fi
    from fastinput_bench.data.imagenet_synthetic import ensure_imagenet_synthetic

    files = ensure_imagenet_synthetic(num_images=2048, num_files=8)
    settings = [fi.AUTOTUNE if p == "autotune" else int(p) for p in args.parallelism]
    runs: dict[str, list[dict]] = {}
    load = os.getloadavg()[0]
    with busy_cores(args.busy_cores):
        for _ in range(args.rounds):
            for parallelism in settings:
                run = measure(files, parallelism, args.batches)
                runs.setdefault(str(run["parallelism"]), []).append(run)
    print(f"README pipeline, batch {BATCH_SIZE}, {args.batches} batches per run, best of {args.rounds} rounds; "
          f"{args.busy_cores} busy core(s) beside; {os.cpu_count()} cores, load average at start {load:.1f}")
    print(f"{'parallelism':>11} {'images/s':>9} {'CPU ms/img':>10} {'vol sw/img':>10} {'invol sw/img':>12} "
          f"{'workers':>8}")
    results = []
    for name, group in runs.items():
        def median(key: str, group: list[dict] = group) -> float:
            return statistics.median(r[key] for r in group)

        row = {"parallelism": name, "best_images_per_second": max(r["images_per_second"] for r in group),
               "median_cpu_ms_per_image": median("cpu_ms_per_image"),
               "median_voluntary_switches_per_image": median("voluntary_switches_per_image"),
               "median_involuntary_switches_per_image": median("involuntary_switches_per_image"),
               "workers_at_end": [r["workers_at_end"] for r in group], "runs": group}
        results.append(row)
        print(f"{name:>11} {row['best_images_per_second']:>9,.0f} {row['median_cpu_ms_per_image']:>10.3f} "
              f"{row['median_voluntary_switches_per_image']:>10.2f} "
              f"{row['median_involuntary_switches_per_image']:>12.2f} "
              f"{'/'.join(map(str, row['workers_at_end'])):>8}")
    write_figures(args.json, {"machine": {**script_machine(), "load_average": load}, "batch_size": BATCH_SIZE,
                              "batches": args.batches, "busy_cores": args.busy_cores, "results": results})


if __name__ == "__main__":
    main()
