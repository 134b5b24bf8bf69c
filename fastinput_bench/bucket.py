"""Batching variable-length text: ``bucket_by_sequence_length`` (and ``rebatch``), fastinput vs tf.data.

The input is ``--sequences`` token sequences of random lengths (1 to 256, int32 tokens), sliced from one
array in memory by both libraries: each maps an index to its slice (fastinput: one Python call per element;
tf.data: graph mode). Each is timed padded-batched in
arrival order (``padded_batch(64)``) and bucketed (boundaries 16, 32, 64, 128; batches of 64, padded to the
batch's longest), so the figures say what bucketing costs over plain padded batching as well as how the two
libraries compare. (The sequences alone are not timed: tf.data's per-element eager iteration would dominate.)
``rebatch`` cuts batches of 64 of fixed-length rows into batches of 48.

    python -m fastinput_bench.bucket [--sequences 200000] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from fastinput_bench.report import write_figures

BOUNDARIES = [16, 32, 64, 128]
BATCH = 64


def make_sequences(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, row_splits): ``count`` sequences of 1 to 256 int32 tokens, one after another."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 257, count)
    splits = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=splits[1:])
    return rng.integers(0, 30_000, int(splits[-1]), dtype=np.int32), splits


def _rate(make: Callable[[], Iterable[Any]], rows: Callable[[Any], int]) -> dict[str, float]:
    """Sequences per second through one full pass of the pipeline ``make()`` returns, and per second of CPU time
    the process spent (all its threads): the steadier figure on a shared machine."""
    start, cpu = time.perf_counter(), time.process_time()
    total = sum(rows(batch) for batch in make())
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return {"sequences": total, "seconds": seconds, "sequences_per_second": total / seconds,
            "sequences_per_cpu_second": total / cpu_seconds}


def fastinput_pipelines(tokens: np.ndarray, splits: np.ndarray) -> dict[str, Callable[[], Any]]:
    import fastinput as fi

    def sequence(i: Any) -> np.ndarray:
        return tokens[splits[i]:splits[i + 1]]

    source = fi.Dataset.range(len(splits) - 1).map(sequence, output_signature=fi.TensorSpec([None], np.int32))
    sizes = [BATCH] * (len(BOUNDARIES) + 1)
    fixed = fi.Dataset.range(len(splits) - 1).map(lambda i: np.full(16, i, np.int32))
    return {
        "bucket_by_sequence_length": lambda: source.bucket_by_sequence_length(len, BOUNDARIES, sizes),
        "padded_batch": lambda: source.padded_batch(BATCH),
        "rebatch": lambda: fixed.batch(BATCH).rebatch(48),
    }


def tf_pipelines(tokens: np.ndarray, splits: np.ndarray) -> dict[str, Callable[[], Any]]:
    import tensorflow as tf

    flat, offsets = tf.constant(tokens), tf.constant(splits)
    source = tf.data.Dataset.range(len(splits) - 1).map(lambda i: flat[offsets[i]:offsets[i + 1]])
    sizes = [BATCH] * (len(BOUNDARIES) + 1)
    fixed = tf.data.Dataset.range(len(splits) - 1).map(lambda i: tf.fill([16], tf.cast(i, tf.int32)))
    return {
        "bucket_by_sequence_length": lambda: source.bucket_by_sequence_length(
            lambda x: tf.shape(x)[0], BOUNDARIES, sizes),
        "padded_batch": lambda: source.padded_batch(BATCH),
        "rebatch": lambda: fixed.batch(BATCH).rebatch(48),
    }


def _rows(batch: Any) -> int:
    return int(batch.shape[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=200_000)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    tokens, splits = make_sequences(args.sequences)
    results: dict[str, dict[str, Any]] = {}
    for library, pipelines in (("fastinput", fastinput_pipelines(tokens, splits)),
                               ("tf.data", tf_pipelines(tokens, splits))):
        for name, make in pipelines.items():
            results[f"{library} {name}"] = _rate(make, _rows)
    ratios = {name: results[f"fastinput {name}"]["sequences_per_second"]
              / results[f"tf.data {name}"]["sequences_per_second"]
              for name in ("bucket_by_sequence_length", "padded_batch", "rebatch")}
    cpu_ratios = {name: results[f"fastinput {name}"]["sequences_per_cpu_second"]
                  / results[f"tf.data {name}"]["sequences_per_cpu_second"] for name in ratios}
    summary = {
        "sequences": args.sequences,
        "results": results,
        "ratio_fastinput_vs_tf_data": ratios,
        "ratio_fastinput_vs_tf_data_per_cpu_second": cpu_ratios,
    }
    print(f"{'pipeline':<45} {'sequences':>10} {'sequences/s':>14} {'per CPU-second':>15}")
    for name, r in results.items():
        print(f"{name:<45} {r['sequences']:>10,} {r['sequences_per_second']:>14,.0f} "
              f"{r['sequences_per_cpu_second']:>15,.0f}")
    for name, ratio in ratios.items():
        print(f"fastinput / tf.data, {name}: {ratio:.2f}x ({cpu_ratios[name]:.2f}x per CPU-second)")
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}")
    write_figures(args.json, summary)


if __name__ == "__main__":
    main()
