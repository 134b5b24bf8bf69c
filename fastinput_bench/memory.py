"""Memory under a budget: does a long-running pipeline keep its resident memory flat, and under the RAM budget?

Runs ``interleave(TFRecordDataset) -> map -> batch -> repeat`` over local
TFRecord files for ``--seconds`` (default two minutes), sampling the process's
resident memory (``VmRSS`` in ``/proc/self/status``) and the bytes the
pipeline's stages report buffered (``it.stats()``) once a second. ``repeat``
sits last, so every epoch builds and closes the whole pipeline again: a leak
per epoch shows as a slope. Reported:

- the baseline: resident memory before the first element (interpreter, numpy,
  fastinput, the file names), and the peak and the mean of the second half;
- the slope of resident memory over the second half (least squares, MiB per
  minute, with its standard error: samples swing by tens of MiB as batches come
  and go): "flat" unless it exceeds ``FLAT_MIB_PER_MINUTE`` by more than two
  standard errors;
- with ``--ram-budget`` (MiB; 0 for none), whether the peak stayed under the
  baseline plus the budget (the map's output and the batch being built are not
  buffers, so a budget far below one batch cannot hold: keep it above a few).

    python -m fastinput_bench.memory [--seconds 120] [--ram-budget 64] [--files 16] [--records-per-file 200]
                                [--record-kib 64] [--batch-size 32] [--json out.json]

Not a timed test: a measurement to read, with a short smoke test in tests/benchmarks.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import fastinput as fi
from fastinput.readers.framing import frame
from fastinput_bench.report import write_figures

FLAT_MIB_PER_MINUTE = 2.0
"""Resident memory growing slower than this over the second half counts as flat."""
SAMPLE_SECONDS = 1.0


def resident_bytes() -> int:
    """This process's resident set size (VmRSS), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmRSS line in /proc/self/status")


def write_files(root: str, files: int, records_per_file: int, record_bytes: int) -> list[str]:
    """``files`` TFRecord files of random records (TFRecord framing as TensorFlow writes it)."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(files):
        path = os.path.join(root, f"part-{i:03d}.tfrecord")
        with open(path, "wb") as f:
            for _ in range(records_per_file):
                f.write(frame(rng.bytes(record_bytes)))
        paths.append(path)
    return paths


def _to_pixels(record: bytes) -> np.ndarray:
    """The map: a record's bytes as normalised float32 values (4x the record's size, as decoding does)."""
    return np.frombuffer(record, np.uint8).astype(np.float32) * (1 / 255)


def pipeline(paths: list[str], batch_size: int, ram_budget: int | None) -> fi.Dataset:
    ds = (fi.Dataset.from_tensor_slices(paths)
          .interleave(fi.TFRecordDataset, cycle_length=4, num_parallel_calls=fi.AUTOTUNE)
          .map(_to_pixels, num_parallel_calls=fi.AUTOTUNE)
          .batch(batch_size, drop_remainder=True)
          .repeat())
    if ram_budget:
        ds = ds.with_options(fi.Options(autotune=fi.AutotuneOptions(ram_budget=ram_budget)))
    return ds


def slope_per_minute(times: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope of ``values`` over ``times`` (seconds), per minute, and its standard error
    (0, 0 with fewer than three points)."""
    if len(times) < 3:
        return 0.0, 0.0
    t, v = np.asarray(times, dtype=float), np.asarray(values, dtype=float)
    slope, intercept = np.polyfit(t, v, 1)
    residuals = v - (slope * t + intercept)
    spread = float(np.sum((t - t.mean()) ** 2))
    error = float(np.sqrt(np.sum(residuals ** 2) / (len(t) - 2) / spread)) if spread else 0.0
    return float(slope) * 60, error * 60


def measure(paths: list[str], seconds: float, batch_size: int, ram_budget: int | None) -> dict[str, Any]:
    """Run the pipeline for ``seconds``, sampling memory every second; the figures as a dict (MiB, seconds)."""
    mib = 1 / 2**20
    baseline = resident_bytes()
    samples: list[tuple[float, int, int]] = []  # (seconds since start, VmRSS, bytes buffered by the stages)
    batches = 0
    stop = threading.Event()
    with iter(pipeline(paths, batch_size, ram_budget)) as it:
        start = time.monotonic()

        def sample() -> None:
            while not stop.wait(SAMPLE_SECONDS):
                buffered = sum(s.bytes_buffered for s in it.stats())
                samples.append((time.monotonic() - start, resident_bytes(), buffered))

        sampler = threading.Thread(target=sample, name="memory sampler", daemon=True)
        sampler.start()
        try:
            while time.monotonic() - start < seconds:
                next(it)
                batches += 1
        finally:
            stop.set()
            sampler.join()
        elapsed = time.monotonic() - start
    second_half = [s for s in samples if s[0] >= elapsed / 2]
    rss = [s[1] for s in samples]
    peak = max([baseline, *rss])  # the process may give memory back during the run: the baseline is a sample too
    late = [s[1] for s in second_half]
    slope, error = slope_per_minute([s[0] for s in second_half], [s[1] * mib for s in second_half])
    result: dict[str, Any] = {
        "seconds": round(elapsed, 1),
        "batches": batches,
        "records_per_second": round(batches * batch_size / elapsed),
        "samples": len(samples),
        "baseline_mib": round(baseline * mib, 1),
        "peak_mib": round(peak * mib, 1),
        "second_half_mean_mib": round(float(np.mean(late)) * mib, 1) if late else None,
        "second_half_slope_mib_per_minute": round(slope, 2),
        "slope_standard_error": round(error, 2),
        "flat": slope - 2 * error < FLAT_MIB_PER_MINUTE,
        "peak_buffered_mib": round(max((s[2] for s in samples), default=0) * mib, 1),
        "ram_budget_mib": round(ram_budget * mib, 1) if ram_budget else None,
        "rss_mib": [round(s[1] * mib, 1) for s in samples],
    }
    if ram_budget:
        result["under_budget"] = peak <= baseline + ram_budget
    return result


def report(result: dict[str, Any]) -> str:
    lines = [
        f"ran {result['seconds']} s: {result['batches']} batches, {result['records_per_second']} records/s, "
        f"{result['samples']} samples",
        f"resident memory: baseline {result['baseline_mib']} MiB, peak {result['peak_mib']} MiB, "
        f"second half mean {result['second_half_mean_mib']} MiB",
        f"second-half slope: {result['second_half_slope_mib_per_minute']} +- {result['slope_standard_error']} MiB/min"
        f" -> {'flat' if result['flat'] else 'GROWING'} (flat: not over {FLAT_MIB_PER_MINUTE} MiB/min by 2 s.e.)",
        f"peak bytes the stages reported buffered: {result['peak_buffered_mib']} MiB",
    ]
    if result["ram_budget_mib"] is not None:
        verdict = "under" if result["under_budget"] else "OVER"
        lines.append(f"RAM budget {result['ram_budget_mib']} MiB: peak {verdict} baseline + budget "
                     f"({result['baseline_mib'] + result['ram_budget_mib']:.1f} MiB)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fastinput_bench.memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to run (default 120)")
    parser.add_argument("--ram-budget", type=float, default=64.0,
                        help="AutotuneOptions(ram_budget=...) in MiB; 0: none")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--records-per-file", type=int, default=200)
    parser.add_argument("--record-kib", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", help="also write the figures (and every RSS sample) to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seconds <= 0 or args.ram_budget < 0 or min(args.files, args.records_per_file, args.record_kib,
                                                          args.batch_size) < 1:
        build_parser().error("--seconds, --files, --records-per-file, --record-kib and --batch-size must be "
                             "positive, --ram-budget at least 0")
    with tempfile.TemporaryDirectory(prefix="fastinput-memory-") as root:
        paths = write_files(root, args.files, args.records_per_file, args.record_kib << 10)
        result = measure(paths, args.seconds, args.batch_size, int(args.ram_budget * 2**20) or None)
    print(report(result))
    write_figures(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
