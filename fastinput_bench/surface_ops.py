"""The ops of tf.data's wider surface (window, scan, unique, take_while, ignore_errors, counter, random,
sparse_batch),
fastinput vs tf.data on the same pipeline, elements/sec.

Each pipeline runs in one process, on the same machine, for both libraries: tf.data with graph-mode functions
(what a tf.data user writes), fastinput with the same functions in numpy. These ops run in the consumer's
thread in both libraries (tf.data has no parallel form of them); the figure is the time each library takes for
the whole pipeline (ratio: tf.data's time over fastinput's). ``window``'s is mostly ``flat_map`` opening a small
dataset per window, in both libraries.

    python -m fastinput_bench.surface_ops [--elements 200000] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput_bench.report import write_figures

FAIL_EVERY = 100
"""``ignore_errors``: one element in this many raises."""


def _fi_fail(x: Any) -> Any:
    if x % FAIL_EVERY == 0:
        raise ValueError(f"bad element {x}")
    return x


def _tf_fail(x: Any) -> Any:
    import tensorflow as tf

    with tf.control_dependencies([tf.debugging.assert_none_equal(x % FAIL_EVERY, tf.constant(0, tf.int64))]):
        return tf.identity(x)


def pipelines(n: int) -> dict[str, Callable[[Any, Callable], Any]]:
    """Name -> ``build(Dataset, fail)``: the same pipeline for ``tf.data.Dataset`` or ``fi.Dataset``."""
    return {
        "window(8, 4).flat_map(batch(8))": lambda D, fail: D.range(n // 4).window(8, 4).flat_map(lambda w: w.batch(8)),
        "scan(running sum)": lambda D, fail: D.range(n).scan(np.int64(0), lambda s, x: (s + x, s)),
        "map(x % 1000).unique()": lambda D, fail: D.range(n).map(lambda x: x % 1000).unique(),
        "take_while(x < n)": lambda D, fail: D.range(n).take_while(lambda x: x < n),
        "map(fail 1%).ignore_errors()": lambda D, fail: D.range(n).map(fail).ignore_errors(),
        "counter().take(n)": lambda D, fail: D.counter().take(n),
        "random(seed=1).take(n)": lambda D, fail: D.random(seed=1).take(n),
        "batch(8).sparse_batch(32, [8])": lambda D, fail: D.range(n).batch(8).sparse_batch(32, [8]),
    }


def timed(dataset: Any) -> tuple[int, float]:
    """(elements, seconds) of one run through ``dataset``."""
    start = time.perf_counter()
    count = sum(1 for _ in dataset)
    return count, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--elements", type=int, default=200_000)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    import fastinput as fi

    results = []
    print(f"{'pipeline':<36} {'outputs':>9} {'fastinput s':>12} {'tf.data s':>12} {'ratio':>7}")
    for name, build in pipelines(args.elements).items():
        count, fast = timed(build(fi.Dataset, _fi_fail))
        tf_count, slow = timed(build(tf.data.Dataset, _tf_fail))
        if count != tf_count:
            raise RuntimeError(f"{name}: fastinput gave {count} elements, tf.data {tf_count}")
        results.append({"pipeline": name, "elements": count, "fastinput_seconds": fast, "tf_data_seconds": slow,
                        "ratio": slow / fast})
        print(f"{name:<36} {count:>9,} {fast:>12.3f} {slow:>12.3f} {slow / fast:>6.1f}x")
    summary = {"results": results}
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    write_figures(args.json, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
