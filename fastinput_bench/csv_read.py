"""CSV reading benchmark: ``make_csv_dataset`` on Criteo-like files, fastinput vs tf.data.

Generates (once, cached under ``/tmp``) CSV files shaped like the Criteo
click logs: a 0/1 ``label``, 13 integer columns ``I1..I13`` and 26 columns
``C1..C26`` of 8-digit hex strings, with missing values and skewed category
frequencies. Then, in one process, it consumes

    make_csv_dataset(pattern, batch_size=1024, label_name="label", num_epochs=1, shuffle=False)

with fastinput and with tf.data (alternating runs, best of each), and prints
rows/s for both and the ratio (the issue's target: fastinput at least 10x
tf.data), with the CPU time per row.

    python -m fastinput_bench.csv_read [--rows 400000] [--files 8] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np

from fastinput_bench.report import write_figures

NUM_INT = 13
NUM_CAT = 26
CATEGORY_CARDINALITIES = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
    27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)
"""Distinct values per categorical column in the Criteo Kaggle data set."""


def _hex8(values: np.ndarray) -> np.ndarray:
    """uint32 values as an array of 8-character lowercase hex strings (``S8``), vectorised."""
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    shifts = np.arange(28, -1, -4, dtype=np.uint32)
    nibbles = (values[:, None] >> shifts) & 0xF
    return digits[nibbles].reshape(-1).view("S8")


def _criteo_table(rows: int, rng: np.random.Generator):
    """One pyarrow Table of Criteo-like rows (nulls become empty fields when written)."""
    import pyarrow as pa

    columns = {"label": pa.array((rng.random(rows) < 0.25).astype(np.int32))}
    for i in range(NUM_INT):
        values = np.floor(np.exp(rng.normal(1.0 + i % 5, 1.0 + (i % 3) * 0.5, rows))).astype(np.int64)
        if i == 1:
            values -= 3  # Criteo's I2 goes negative
        missing = rng.random(rows) < (0.05 + 0.03 * i)
        columns[f"I{i + 1}"] = pa.array(values, mask=missing)
    for i, cardinality in enumerate(CATEGORY_CARDINALITIES):
        ids = (rng.zipf(1.1, rows) - 1) % cardinality
        hashed = (ids.astype(np.uint64) * np.uint64(2654435761) + np.uint64(i * 97 + 1)) & np.uint64(0xFFFFFFFF)
        strings = _hex8(hashed.astype(np.uint32))
        missing = rng.random(rows) < (0.02 * (i % 6))
        columns[f"C{i + 1}"] = pa.array(strings.astype(object), type=pa.binary(), mask=missing).cast(pa.string())
    return pa.table(columns)


def criteo_csv_files(rows: int, files: int, root: str = "/tmp/fastinput_bench_csv") -> str:
    """Write (or reuse) ``files`` CSV files with ``rows`` rows in all; returns their glob pattern."""
    import pyarrow.csv as pacsv

    folder = Path(root) / f"criteo_{rows}_{files}"
    pattern = str(folder / "part-*.csv")
    done = folder / "_complete"
    if done.exists():
        return pattern
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2024)
    per_file = -(-rows // files)
    for index in range(files):
        count = min(per_file, rows - index * per_file)
        table = _criteo_table(count, rng)
        tmp = folder / f".part-{index:05d}.csv.tmp"
        pacsv.write_csv(table, tmp, write_options=pacsv.WriteOptions(quoting_style="none"))
        tmp.rename(folder / f"part-{index:05d}.csv")
    done.touch()
    return pattern


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _consume(make_dataset, count_rows) -> tuple[float, int, float]:
    """Wall seconds, rows, and CPU seconds (all threads) to build the pipeline and read every batch."""
    cpu, start = _cpu_seconds(), time.perf_counter()
    total = 0
    for _features, label in make_dataset():
        total += count_rows(label)
    return time.perf_counter() - start, total, _cpu_seconds() - cpu


def run_fastinput(pattern: str, batch_size: int) -> tuple[float, int, float]:
    import fastinput as fi

    def make():
        return fi.make_csv_dataset(pattern, batch_size=batch_size, label_name="label", num_epochs=1, shuffle=False)

    return _consume(make, len)


def run_tf_data(pattern: str, batch_size: int) -> tuple[float, int, float]:
    import tensorflow as tf

    def make():
        return tf.data.experimental.make_csv_dataset(pattern, batch_size=batch_size, label_name="label",
                                                     num_epochs=1, shuffle=False)

    return _consume(make, lambda label: int(label.shape[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each library, alternating; the best one counts")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    pattern = criteo_csv_files(args.rows, args.files)
    fast_runs, tf_runs = [], []
    for _ in range(args.repeats):  # alternating, so both see the same machine load
        fast_runs.append(run_fastinput(pattern, args.batch_size))
        tf_runs.append(run_tf_data(pattern, args.batch_size))
    fast_seconds, fast_rows, fast_cpu = min(fast_runs)
    tf_seconds, tf_rows, tf_cpu = min(tf_runs)
    if fast_rows != tf_rows or fast_rows != args.rows:
        raise SystemExit(f"row counts differ: fastinput {fast_rows}, tf.data {tf_rows}, expected {args.rows}")

    fast_rate, tf_rate = fast_rows / fast_seconds, tf_rows / tf_seconds
    summary = {
        "rows": args.rows,
        "files": args.files,
        "batch_size": args.batch_size,
        "fastinput_rows_per_second": fast_rate,
        "fastinput_runs_seconds": [seconds for seconds, _, _ in fast_runs],
        "fastinput_cpu_seconds": fast_cpu,
        "tf_data_rows_per_second": tf_rate,
        "tf_data_runs_seconds": [seconds for seconds, _, _ in tf_runs],
        "tf_data_cpu_seconds": tf_cpu,
        "ratio": fast_rate / tf_rate,
    }
    print(f"data: {pattern} ({args.rows:,} rows, {args.files} files, 40 columns)")
    print(f"fastinput make_csv_dataset: {fast_rate:>12,.0f} rows/s (best of {args.repeats}), "
          f"{fast_cpu / fast_rows * 1e6:.2f} CPU-us/row")
    print(f"tf.data   make_csv_dataset: {tf_rate:>12,.0f} rows/s (best of {args.repeats}), "
          f"{tf_cpu / tf_rows * 1e6:.2f} CPU-us/row")
    print(f"fastinput / tf.data: {summary['ratio']:.1f}x (target >= 10x); cores: {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    write_figures(args.json, summary)


if __name__ == "__main__":
    main()
