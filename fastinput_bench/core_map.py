"""Engine overhead benchmark: ``range(N) -> map(x + 1, AUTOTUNE) -> batch(256)``, fastinput vs tf.data.

Runs in one process, on the same machine, and prints elements/sec for
fastinput, tf.data with a graph-mode map, and tf.data with ``tf.py_function``
in the map (the fair comparison for an arbitrary Python function), with the
ratios. The issue's figures: at least 2x the graph-mode map, at least 20x
the py_function map.

    python -m fastinput_bench.core_map [--elements 2000000] [--py-function-elements 200000] [--json out.json]

The py_function pipeline runs at a few thousand elements/s, so it is timed on
fewer elements by default; the figure compared is elements/sec either way.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable

from fastinput_bench.report import write_figures


def _time_consume(make_iterable: Callable[[], Iterable], count: Callable[[object], int]) -> tuple[float, int]:
    start = time.perf_counter()
    total = 0
    for batch in make_iterable():
        total += count(batch)
    return time.perf_counter() - start, total


def run_fastinput(elements: int, batch_size: int) -> dict:
    import fastinput as fi

    ds = fi.Dataset.range(elements).map(lambda x: x + 1, num_parallel_calls=fi.AUTOTUNE).batch(batch_size)
    seconds, total = _time_consume(lambda: ds, len)
    return {"pipeline": "fastinput map(x + 1, AUTOTUNE)", "elements": total, "seconds": seconds}


def run_tf_data(elements: int, batch_size: int, py_function: bool) -> dict:
    import tensorflow as tf

    if py_function:
        def fn(x):
            return tf.py_function(lambda v: v + 1, [x], tf.int64)
        name = "tf.data map(tf.py_function(x + 1), AUTOTUNE)"
    else:
        def fn(x):
            return x + 1
        name = "tf.data map(x + 1, AUTOTUNE) (graph mode)"
    ds = tf.data.Dataset.range(elements).map(fn, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    seconds, total = _time_consume(lambda: ds, lambda b: int(b.shape[0]))
    return {"pipeline": name, "elements": total, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--elements", type=int, default=2_000_000)
    parser.add_argument("--py-function-elements", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    results = [
        run_fastinput(args.elements, args.batch_size),
        run_tf_data(args.elements, args.batch_size, py_function=False),
        run_tf_data(args.py_function_elements, args.batch_size, py_function=True),
    ]
    for r in results:
        r["elements_per_second"] = r["elements"] / r["seconds"]
    fast, graph, py_fn = (r["elements_per_second"] for r in results)
    summary = {
        "results": results,
        "ratio_vs_graph_map": fast / graph,
        "ratio_vs_py_function_map": fast / py_fn,
    }
    print(f"{'pipeline':<50} {'elements':>10} {'elements/s':>14}")
    for r in results:
        print(f"{r['pipeline']:<50} {r['elements']:>10,} {r['elements_per_second']:>14,.0f}")
    print(f"fastinput / tf.data graph map:    {summary['ratio_vs_graph_map']:.1f}x (target >= 2x)")
    print(f"fastinput / tf.data py_function:  {summary['ratio_vs_py_function_map']:.1f}x (target >= 20x)")
    print(f"cores: {os.cpu_count()}")
    write_figures(args.json, summary)


if __name__ == "__main__":
    main()
