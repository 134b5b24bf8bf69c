"""Local TFRecord read benchmark: fi.TFRecordDataset against tf.data.TFRecordDataset, records/s, in one run.

Writes TFRecord files to a temporary directory (small ~1 KB records, the
size of a serialized tf.train.Example, and ~100 KB records, the size of a
JPEG), then for each kind reads every record with both libraries, two ways:
one record at a time into Python (``for r in ds``; tf.data through
``as_numpy_iterator()``), and in batches of 1,024 (``ds.batch(1024)``), which
is how a pipeline that parses Examples in batches consumes them.

    python -m fastinput_bench.tfrecord_read [--mb 100] [--files 4] [--parallel 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RECORD_KINDS = {"~1 KB records": 1_000, "~100 KB records": 100_000}


def write_files(directory: str, kind: str, record_bytes: int, total_bytes: int, files: int) -> list[str]:
    """``files`` TFRecord files of about ``total_bytes`` in all, records of 0.5x-1.5x ``record_bytes``."""
    import numpy as np

    from fastinput.readers.framing import frame

    rng = np.random.default_rng(0)
    pool = rng.bytes(2 * record_bytes + (1 << 20))
    paths = []
    for index in range(files):
        parts, size = [], 0
        while size < total_bytes // files:
            length = int(rng.integers(record_bytes // 2, record_bytes * 3 // 2))
            start = int(rng.integers(0, len(pool) - length))
            parts.append(frame(pool[start:start + length]))
            size += len(parts[-1])
        path = os.path.join(directory, f"{record_bytes}-{index}.tfrecord")
        with open(path, "wb") as f:
            f.write(b"".join(parts))
        paths.append(path)
    return paths


def fastinput_reader(paths: list[str], parallel: int, batched: bool):
    import fastinput as fi

    ds = fi.TFRecordDataset(paths, num_parallel_reads=parallel)
    return (lambda: ds.batch(1024), len) if batched else (lambda: ds, lambda _: 1)


def tf_data_reader(paths: list[str], parallel: int, batched: bool):
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(paths, num_parallel_reads=parallel)
    if batched:
        ds = ds.batch(1024)
    return (ds.as_numpy_iterator, len) if batched else (ds.as_numpy_iterator, lambda _: 1)


def records_per_second(make_iterable, count, repeats: int) -> tuple[float, int]:
    """The best of ``repeats`` full passes, as records/s, and the record count."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        total = sum(count(element) for element in make_iterable())
        best = min(best, time.perf_counter() - start)
    return total / best, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100, help="data per record kind")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=4, help="num_parallel_reads for both libraries")
    parser.add_argument("--repeats", type=int, default=3, help="passes per measurement; the best counts")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    results = []
    with tempfile.TemporaryDirectory() as directory:
        for kind, record_bytes in RECORD_KINDS.items():
            paths = write_files(directory, kind, record_bytes, int(args.mb * 1e6), args.files)
            for batched in (False, True):
                row = {"records": kind, "consumed": "batches of 1,024" if batched else "one at a time"}
                for library, reader in (("fastinput", fastinput_reader), ("tf.data", tf_data_reader)):
                    rate, total = records_per_second(*reader(paths, args.parallel, batched), args.repeats)
                    row[library] = rate
                    row["count"] = total
                results.append(row)

    print(f"{'records':<16} {'consumed':<18} {'fastinput rec/s':>16} {'tf.data rec/s':>14} {'ratio':>7}")
    for row in results:
        print(f"{row['records']:<16} {row['consumed']:<18} {row['fastinput']:>16,.0f} {row['tf.data']:>14,.0f} "
              f"{row['fastinput'] / row['tf.data']:>6.1f}x")
    print(f"num_parallel_reads={args.parallel}, {args.files} files, {args.mb:g} MB per kind, best of {args.repeats}; "
          f"cores: {os.cpu_count()}")
    from fastinput_bench.report import write_figures  # as a script, the repository joins sys.path after the imports

    write_figures(args.json, {"results": results})


if __name__ == "__main__":
    main()
