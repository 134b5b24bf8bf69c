"""Parquet reading benchmark: ``make_parquet_dataset`` (shuffled batches) vs ``pyarrow.parquet.read_table`` on the
same files, and vs tf.data's ``make_csv_dataset`` reading the same rows from CSV.

Uses the Criteo-like CSV files of ``fastinput_bench.csv_read`` (a label, 13
integer and 26 string columns, with missing values) and the same rows written
as Parquet (cached under ``/tmp``, row groups of 64k rows). In one process,
alternating runs (best of each; tf.data's after all the others), it measures rows/s of:

- ``pyarrow.parquet.read_table(files)``: the reference (a table in memory, no batches, no shuffle);
- ``fi.make_parquet_dataset(..., batch_size=1024, label_name="label", num_epochs=1)``: shuffled batches (row
  groups shuffled, rows through a 10,000-row shuffle buffer), strings as numpy object arrays of ``bytes``;
- ``fi.ParquetDataset(..., batch_size=1024)``: batches in file order;
- both again with ``string_type="packed"`` (all columns only): string columns as ``fi.PackedStrings``, one blob
  and offsets per batch column instead of a ``bytes`` object per value;
- tf.data's ``make_csv_dataset`` on the CSV files, shuffled the same way.

Each is measured twice: on all 40 columns, and on the 14 numeric ones (no strings: a string column costs one
Python ``bytes`` object per row to deliver, which ``read_table`` never makes; ``pyarrow_to_numpy`` shows that
cost: ``read_table`` and every column's ``to_numpy``). The issue's goal: shuffled batches at no less than 80% of
pyarrow's rows/s.

What bounds the ratio on 2 cores (CPU per epoch of 400,000 rows, measured per thread; session 14): decoding
costs fastinput's readers as much CPU as the whole of ``read_table`` (~40-44 ms numeric, ~320 ms all 40
columns), and a shuffle buffer moves each value once in and once out (numeric: ~10.5 ms in C; strings: an
arrow take, ~10 ns a value). With no other cost and perfect overlap the ratio could reach ~0.76 (numeric) and
~0.67 (packed strings); ``bytes`` objects (~18 ns each, made and freed under the GIL) cap the default strings
near 0.41. Reaching 0.8 needs fewer decode cycles than ``read_table`` spends, or more cores.

    python -m fastinput_bench.parquet [--rows 400000] [--files 8] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from fastinput_bench.csv_read import criteo_csv_files
from fastinput_bench.report import write_figures

ROW_GROUP_SIZE = 1 << 16


def criteo_parquet_files(csv_pattern: str) -> str:
    """The CSV files' rows written (once) as Parquet files beside them; returns their glob pattern."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder = Path(csv_pattern).parent / "parquet"
    done = folder / "_complete"
    if not done.exists():
        folder.mkdir(exist_ok=True)
        for csv in sorted(Path(csv_pattern).parent.glob(Path(csv_pattern).name)):
            table = pacsv.read_csv(csv)
            tmp = folder / f".{csv.stem}.parquet.tmp"
            pq.write_table(table, tmp, row_group_size=ROW_GROUP_SIZE)
            tmp.rename(folder / f"{csv.stem}.parquet")
        done.touch()
    return str(folder / "part-*.parquet")


def _time(rows_of: Callable[[], Iterable[int]]) -> tuple[float, int]:
    """Wall seconds to build and consume a pipeline, and the rows it gave."""
    start = time.perf_counter()
    total = sum(rows_of())
    return time.perf_counter() - start, total


def run_pyarrow(pattern: str, batch_size: int, columns: list[str] | None) -> tuple[float, int]:
    import glob

    import pyarrow.parquet as pq

    return _time(lambda: [pq.read_table(sorted(glob.glob(pattern)), columns=columns).num_rows])


def run_pyarrow_to_numpy(pattern: str, batch_size: int, columns: list[str] | None) -> tuple[float, int]:
    import glob

    import pyarrow.parquet as pq

    def rows() -> list[int]:
        table = pq.read_table(sorted(glob.glob(pattern)), columns=columns)
        return [len([column.to_numpy() for column in table.columns][0])]

    return _time(rows)


def run_fastinput_shuffled(pattern: str, batch_size: int, columns: list[str] | None,
                           string_type: str = "bytes") -> tuple[float, int]:
    import fastinput as fi

    return _time(lambda: (len(label) for _, label in fi.make_parquet_dataset(
        pattern, batch_size, columns=columns, label_name="label", num_epochs=1, shuffle_seed=1,
        string_type=string_type)))


def run_fastinput_ordered(pattern: str, batch_size: int, columns: list[str] | None,
                          string_type: str = "bytes") -> tuple[float, int]:
    import fastinput as fi

    return _time(lambda: (len(batch["label"]) for batch in fi.ParquetDataset(
        pattern, columns=columns, batch_size=batch_size, string_type=string_type)))


def packed(run: Callable[..., tuple[float, int]]) -> Callable[[str, int, list[str] | None], tuple[float, int]]:
    """``run`` with ``string_type="packed"``."""
    return lambda pattern, batch_size, columns: run(pattern, batch_size, columns, string_type="packed")


def run_tf_data_csv(pattern: str, batch_size: int, columns: list[str] | None) -> tuple[float, int]:
    import tensorflow as tf

    return _time(lambda: (int(label.shape[0]) for _, label in tf.data.experimental.make_csv_dataset(
        pattern, batch_size, label_name="label", select_columns=columns, num_epochs=1, shuffle_seed=1)))


TF_DATA_RUN = "tf_data_make_csv_dataset_shuffled"
NUMERIC = ["label"] + [f"I{i}" for i in range(1, 14)]
COLUMN_SETS = {"all_40_columns": None, "numeric_14_columns": NUMERIC}
STRING_RUNS = ("fastinput_make_parquet_dataset_shuffled_packed_strings",
               "fastinput_ParquetDataset_in_order_packed_strings")
"""Runs that differ from the default ones only where there are strings: measured on all columns alone."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each, alternating; the best one counts")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    csv_pattern = criteo_csv_files(args.rows, args.files)
    parquet_pattern = criteo_parquet_files(csv_pattern)
    runs = {"pyarrow_read_table": (run_pyarrow, parquet_pattern),
            "pyarrow_to_numpy": (run_pyarrow_to_numpy, parquet_pattern),
            "fastinput_make_parquet_dataset_shuffled": (run_fastinput_shuffled, parquet_pattern),
            "fastinput_ParquetDataset_in_order": (run_fastinput_ordered, parquet_pattern),
            STRING_RUNS[0]: (packed(run_fastinput_shuffled), parquet_pattern),
            STRING_RUNS[1]: (packed(run_fastinput_ordered), parquet_pattern),
            TF_DATA_RUN: (run_tf_data_csv, csv_pattern)}
    measured = {columns: [name for name in runs if selected is None or name not in STRING_RUNS]
                for columns, selected in COLUMN_SETS.items()}
    timings = {(columns, name): [] for columns in COLUMN_SETS for name in measured[columns]}
    def measure(columns: str, name: str) -> None:
        run, pattern = runs[name]
        seconds, rows = run(pattern, args.batch_size, COLUMN_SETS[columns])
        if rows != args.rows:
            raise SystemExit(f"{name} gave {rows} rows, expected {args.rows}")
        timings[columns, name].append(seconds)

    # Alternating, so all see the same machine load; tf.data after all the others, since once TensorFlow is
    # imported its idle threads take CPU from every later run in this process (read_table's most).
    for _ in range(args.repeats):
        for columns in COLUMN_SETS:
            for name in measured[columns]:
                if name != TF_DATA_RUN:
                    measure(columns, name)
    for _ in range(args.repeats):
        for columns in COLUMN_SETS:
            measure(columns, TF_DATA_RUN)
    print(f"data: {parquet_pattern} and {csv_pattern} ({args.rows:,} rows, {args.files} files)")
    summary = {
        "rows": args.rows, "files": args.files, "batch_size": args.batch_size, "row_group_size": ROW_GROUP_SIZE,
    }
    for columns in COLUMN_SETS:
        rates = {name: args.rows / min(timings[columns, name]) for name in measured[columns]}
        shuffled = rates["fastinput_make_parquet_dataset_shuffled"]
        summary[columns] = {
            "rows_per_second": rates,
            "runs_seconds": {name: timings[columns, name] for name in measured[columns]},
            "shuffled_vs_pyarrow": shuffled / rates["pyarrow_read_table"],
            "shuffled_vs_pyarrow_to_numpy": shuffled / rates["pyarrow_to_numpy"],
            "shuffled_vs_tf_data_csv": shuffled / rates["tf_data_make_csv_dataset_shuffled"],
        }
        if STRING_RUNS[0] in rates:
            summary[columns]["shuffled_packed_strings_vs_pyarrow"] = rates[STRING_RUNS[0]] / rates["pyarrow_read_table"]
        print(f"-- {columns}")
        for name, rate in rates.items():
            print(f"{name:<42} {rate:>12,.0f} rows/s (best of {args.repeats})")
        figures = summary[columns]
        print(f"shuffled batches / pyarrow read_table: {figures['shuffled_vs_pyarrow']:.2f} (goal >= 0.8), "
              f"/ read_table + to_numpy: {figures['shuffled_vs_pyarrow_to_numpy']:.2f}, "
              f"/ tf.data CSV: {figures['shuffled_vs_tf_data_csv']:.1f}x")
        if "shuffled_packed_strings_vs_pyarrow" in figures:
            print(f"shuffled batches with packed strings / pyarrow read_table: "
                  f"{figures['shuffled_packed_strings_vs_pyarrow']:.2f}")
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    write_figures(args.json, summary)


if __name__ == "__main__":
    main()
