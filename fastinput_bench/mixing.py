"""Mixing benchmark: ``sample_from_datasets`` of 8 sources against reading one, fastinput and tf.data, in one run.

The issue's figure: mixing 8 sources costs no more than 5% of the throughput of reading one
(``8 sources / 1 source >= 0.95``). The data are 8 TFRecord files of ~1 KB records (the size of a serialized
``tf.train.Example``), read forever (``repeat()``) and consumed in batches of 1,024, as a training input takes it:

- one source:  ``TFRecordDataset(files).repeat().batch(1024)`` (the 8 files one after another)
- 8 sources:   ``sample_from_datasets([TFRecordDataset(f).repeat() for f in files], seed=0).batch(1024)``

Both read the same bytes (reading one of the files over and over would keep it in the CPU's caches, which 8 files
do not fit: that is not the mix's cost). The same with tf.data, and (``--sources memory``) with in-memory sources
(``from_tensor_slices`` of int64s: 8 slices of 100,000, or one of 800,000), where the mix's own cost is all there
is to see. Each pipeline is timed over
``--batches`` batches, ``--rounds`` times in turn; the best round counts (the machine may be shared). The default,
1,500 batches, times the mix's steady rate: over 300 the elements its warm-up pulled flattered it (see
``elements_per_second``).

In memory, the ratio no longer measures a cost the mix adds to reading: ``from_tensor_slices`` sources hand ``batch``
and the mix runs of rows as array slices (``fastinput._engine.row_slices``), so one source's batch is a slice and one
copy (~8 us of CPU a batch of 1,024), and the mix's choices, serving and gather (~19 us) are most of the 8-source
pipeline. Quiet, 2-core AMD EPYC: one source 14.4 M -> 128 M elements/s, 8 sources 12.5 M -> 60 M (~1,100x
tf.data's mix), ratio 0.864 -> 0.47. The ratio that says what mixing costs a reader is the files one.

    python -m fastinput_bench.mixing [--batches 1500] [--rounds 3] [--sources files,memory] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MIXED = 8
BATCH = 1024
RECORD_BYTES = 1_000


def _sources(library: Any, kind: str, paths: list[str], count: int) -> list[Any]:
    """The data as ``count`` endless sources (1 or ``MIXED``) of ``library`` (``fi`` or ``tf.data``)."""
    import numpy as np

    if kind == "files":
        return [library.TFRecordDataset(list(part)).repeat() for part in np.array_split(paths, count)]
    values = np.arange(MIXED * 100_000, dtype=np.int64)
    return [library.Dataset.from_tensor_slices(part).repeat() for part in np.array_split(values, count)]


def pipelines(kind: str, paths: list[str]) -> dict[str, Callable[[], Iterable]]:
    """The four pipelines of one source kind: (library, one or mixed) -> a function making the batch iterable."""
    import tensorflow as tf

    import fastinput as fi

    def fi_one():
        return _sources(fi, kind, paths, 1)[0].batch(BATCH)

    def fi_mixed():
        return fi.Dataset.sample_from_datasets(_sources(fi, kind, paths, MIXED), seed=0).batch(BATCH)

    def tf_one():
        return _sources(tf.data, kind, paths, 1)[0].batch(BATCH).as_numpy_iterator()

    def tf_mixed():
        return tf.data.Dataset.sample_from_datasets(_sources(tf.data, kind, paths, MIXED), seed=0).batch(BATCH) \
            .as_numpy_iterator()

    return {"fastinput, 1 source": fi_one, f"fastinput, {MIXED} sources": fi_mixed,
            "tf.data, 1 source": tf_one, f"tf.data, {MIXED} sources": tf_mixed}


def elements_per_second(make: Callable[[], Iterable], batches: int) -> float:
    """Elements/s over ``batches`` batches, after 10 to warm up (threads start, buffers fill).

    A mix's warm-up pulls more than it hands out: its first pulls (8,192 in-memory int64s from each of 8 inputs,
    when that was ``directed_interleave.MAX_PULL``) leave ~55,000 elements, ~54 batches' worth, made before the
    clock starts. Over 300 batches the mixed pipeline then makes only 0.85 of the elements it hands out (0.99 over
    1,500), so the short run flatters it: 8 in-memory
    sources / 1 read 0.87-0.95 at 300 batches and 0.80-0.85 at 1,500, the steady rate (issue 19), hence the default
    of 1,500."""
    iterator = iter(make())
    try:
        for _ in range(10):
            next(iterator)
        start = time.perf_counter()
        total = 0
        for _ in range(batches):
            total += len(next(iterator))
        return total / (time.perf_counter() - start)
    finally:
        close = getattr(iterator, "close", None)  # a fastinput iterator stops its threads now
        if close is not None:
            close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=1500, help="batches of 1,024 timed per pipeline and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all pipelines in turn; the best counts")
    parser.add_argument("--sources", default="files,memory", help="files, memory or both (comma-separated)")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from fastinput_bench.tfrecord_read import write_files

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as directory:
        paths = write_files(directory, "mix", RECORD_BYTES, MIXED * 4_000 * RECORD_BYTES, MIXED)
        for kind in args.sources.split(","):
            runs = pipelines(kind, paths)
            best = dict.fromkeys(runs, 0.0)
            for _ in range(args.rounds):
                for name, make in runs.items():
                    best[name] = max(best[name], elements_per_second(make, args.batches))
            results[kind] = best
    summary: dict[str, Any] = {"batch_size": BATCH, "sources_mixed": MIXED, "results": {}}
    print(f"{'sources':<8} {'pipeline':<26} {'elements/s':>14}")
    for kind, best in results.items():
        fi_one, fi_mixed, tf_one, tf_mixed = best.values()
        summary["results"][kind] = {"elements_per_second": best, "fastinput_mixed_over_one": fi_mixed / fi_one,
                                    "tf_data_mixed_over_one": tf_mixed / tf_one,
                                    "fastinput_mixed_over_tf_data_mixed": fi_mixed / tf_mixed}
        for name, rate in best.items():
            print(f"{kind:<8} {name:<26} {rate:>14,.0f}")
        print(f"{kind:<8} fastinput {MIXED} sources / 1 source: {fi_mixed / fi_one:.3f} (target >= 0.95); "
              f"tf.data: {tf_mixed / tf_one:.3f}; fastinput / tf.data mixing {MIXED}: {fi_mixed / tf_mixed:.2f}x")
    print(f"best of {args.rounds} rounds of {args.batches} batches of {BATCH}; cores: {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    from fastinput_bench.report import write_figures  # as a script, the repository joins sys.path after the imports

    write_figures(args.json, summary)


if __name__ == "__main__":
    main()
