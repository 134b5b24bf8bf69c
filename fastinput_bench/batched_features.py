"""Example parsing benchmark: ``make_batched_features_dataset`` on Criteo-like TFRecords, fastinput vs tf.data.

Generates (once, cached under ``/tmp``) TFRecord files of ``tf.train.Example``
protos shaped like the Criteo click logs: 13 int64 features ``I1..I13``, 26
string features ``C1..C26`` (8-character hex strings) and an int64 ``label``.
Then, in one process, it consumes

    make_batched_features_dataset(pattern, batch_size=1024, features, label_key="label",
                                  reader_num_threads=4, shuffle=False, num_epochs=1)

with fastinput and with tf.data (turns alternate, ``--repeats`` each, the
best of each counts) and prints examples/s for both and the ratio (the
issue's target: fastinput at least 2x tf.data), and examples per CPU-second
of the process (what each costs, less sensitive to other load on the machine).

    python -m fastinput_bench.batched_features [--examples 409600] [--files 8] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from fastinput_bench.report import write_figures

NUM_INT = 13
NUM_CAT = 26
BATCH_SIZE = 1024
READER_THREADS = 4


def feature_specs(fixed_len_feature: Callable, int64: object, string: object) -> dict:
    """The 40 features, as ``fi.FixedLenFeature`` or ``tf.io.FixedLenFeature`` specs."""
    specs = {f"I{i}": fixed_len_feature([], int64, default_value=0) for i in range(1, NUM_INT + 1)}
    specs.update({f"C{i}": fixed_len_feature([], string, default_value=b"") for i in range(1, NUM_CAT + 1)})
    specs["label"] = fixed_len_feature([], int64)
    return specs


def _write_file(path: Path, count: int, rng: np.random.Generator) -> None:
    """``count`` Examples into one TFRecord file, written with TensorFlow's writer.

    One Example proto is filled in place for each record (much faster than
    building a new proto per record).
    """
    import tensorflow as tf

    example = tf.train.Example()
    feature = example.features.feature
    ints = [feature[f"I{i}"].int64_list.value for i in range(1, NUM_INT + 1)]
    cats = [feature[f"C{i}"].bytes_list.value for i in range(1, NUM_CAT + 1)]
    label = feature["label"].int64_list.value
    for values in (*ints, label):
        values.append(0)
    for values in cats:
        values.append(b"")
    int_rows = np.floor(np.exp(rng.normal(2.0, 1.5, (count, NUM_INT)))).astype(np.int64).tolist()
    cat_ids = (rng.zipf(1.2, (count, NUM_CAT)).astype(np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    labels = (rng.random(count) < 0.25).astype(np.int64).tolist()
    tmp = path.with_suffix(".tmp")
    with tf.io.TFRecordWriter(str(tmp)) as writer:
        for row, cat_row, y in zip(int_rows, cat_ids.tolist(), labels):
            for values, v in zip(ints, row):
                values[0] = v
            for values, v in zip(cats, cat_row):
                values[0] = b"%08x" % v
            label[0] = y
            writer.write(example.SerializeToString())
    tmp.rename(path)


def criteo_tfrecords(examples: int, files: int, root: str = "/tmp/fastinput_bench_tfrecord") -> str:
    """Write (or reuse) ``files`` TFRecord files with ``examples`` Examples in all; returns their glob pattern."""
    folder = Path(root) / f"criteo_{examples}_{files}"
    done = folder / "_complete"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(2024)
        per_file = -(-examples // files)
        for index in range(files):
            _write_file(folder / f"part-{index:05d}.tfrecord", min(per_file, examples - index * per_file), rng)
        done.touch()
    return str(folder / "part-*.tfrecord")


def _time_consume(make_iterable: Callable[[], Iterable], count: Callable[[object], int]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of the whole process, examples) to consume the pipeline."""
    start, cpu_start = time.perf_counter(), time.process_time()
    total = 0
    for features, _label in make_iterable():
        total += count(features)
    return time.perf_counter() - start, time.process_time() - cpu_start, total


def run_fastinput(pattern: str) -> tuple[float, float, int]:
    import fastinput as fi

    ds = fi.make_batched_features_dataset(pattern, BATCH_SIZE, feature_specs(fi.FixedLenFeature, np.int64, bytes),
                                          label_key="label", reader_num_threads=READER_THREADS, shuffle=False,
                                          num_epochs=1)
    return _time_consume(lambda: ds, lambda f: len(f["I1"]))


def run_tf_data(pattern: str) -> tuple[float, float, int]:
    import tensorflow as tf

    ds = tf.data.experimental.make_batched_features_dataset(
        pattern, BATCH_SIZE, feature_specs(tf.io.FixedLenFeature, tf.int64, tf.string), label_key="label",
        reader_num_threads=READER_THREADS, shuffle=False, num_epochs=1)
    return _time_consume(lambda: ds, lambda f: int(f["I1"].shape[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=409_600)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import tensorflow  # noqa: F401  (imported once up front: its ~5 s import is not pipeline time)

    start = time.perf_counter()
    pattern = criteo_tfrecords(args.examples, args.files)
    print(f"data: {pattern} ({time.perf_counter() - start:.1f} s to generate or find)")
    runs: dict[str, list[float]] = {"fastinput": [], "tf.data": []}
    per_cpu: dict[str, list[float]] = {"fastinput": [], "tf.data": []}
    for _ in range(args.repeats):
        for name, run in (("fastinput", run_fastinput), ("tf.data", run_tf_data)):
            seconds, cpu_seconds, total = run(pattern)
            if total != args.examples:
                raise RuntimeError(f"{name} produced {total} examples, expected {args.examples}")
            runs[name].append(total / seconds)
            per_cpu[name].append(total / cpu_seconds)
    best = {name: max(rates) for name, rates in runs.items()}
    best_per_cpu = {name: max(rates) for name, rates in per_cpu.items()}
    ratio = best["fastinput"] / best["tf.data"]
    print(f"{'pipeline':<12} {'examples/s (best)':>18} {'examples/CPU-s':>15}   runs (examples/s)")
    for name, rates in runs.items():
        print(f"{name:<12} {best[name]:>18,.0f} {best_per_cpu[name]:>15,.0f}   {', '.join(f'{r:,.0f}' for r in rates)}")
    print(f"fastinput / tf.data: {ratio:.2f}x examples/s (target >= 2x), "
          f"{best_per_cpu['fastinput'] / best_per_cpu['tf.data']:.2f}x examples per CPU-second; "
          f"cores: {os.cpu_count()}")
    write_figures(args.json, {"examples": args.examples, "files": args.files, "runs": runs, "best": best,
                              "ratio": ratio, "examples_per_cpu_second": per_cpu})


if __name__ == "__main__":
    main()
