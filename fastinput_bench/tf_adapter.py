"""Cost of handing a pipeline to TensorFlow: batches/sec of a pipeline iterated directly vs through ``as_tf_dataset()``.

The issue's figure: the adapter keeps at least 90% of the pipeline's own
batches/sec. Measured on the benchmark CLI's real pipelines (the synthetic
sets it caches): the ResNet-50 image pipeline (64 x 224 x 224 x 3 uint8
batches) and the tabular one (make_batched_features_dataset, 1024 examples
x 40 features). TensorFlow consumes the adapted pipeline two ways:

- "training step": a ``tf.function`` that takes the next batch from the
  iterator inside its graph, called once per batch, which is how Keras
  ``model.fit`` consumes a dataset (with ``steps_per_execution=1``);
- "python loop": ``next(iterator)`` in Python, which also makes every
  component an EagerTensor and rebuilds the nest in Python (TensorFlow's own
  cost, about 0.5 ms a batch of 40 components even for a tf.data pipeline).

Runs of the direct pipeline and of both consumers alternate; medians are
compared. Also printed: the adapter's cost per batch, 1/adapted - 1/direct.

Each run opens a fresh iterator, and its timed part lasts at least
``--batches`` batches and ``--seconds`` seconds (after 5 untimed). A new
TensorFlow iteration starts slower than it goes on: its first batch takes
~65 ms against the direct pipeline's ~20 (TensorFlow's iterator and
functions start, the feed opens its own fastinput iterator), and the next
~20 batches ~0.7 ms more each (2026-12-07, tabular, median of 8 fresh
iterators). A training run pays that once an epoch; what it keeps paying is
the rate after it. In the 60 batches that were once the whole timed part of
a tabular run (0.15 s) the start weighed ~7%: over 8 interleaved runs in
one process the ratio was 0.89 with 60-batch runs and 0.96 with 400 (and
about 1.0 over 2-second rounds of iterators kept open). So the timed part
lasts at least a second (the image pipeline's 60 batches take longer).

On an idle 2-core machine neither path uses both cores (tabular: direct
~1.3, training step ~1.45), and what holds the training step back is the
GIL, not CPU: the queue to TensorFlow is full at almost every step, and the
step, which lets the GIL go and takes it back a few times, waits to take it
back behind the pipeline's Python (a bare ``tf.function`` call: 0.9 ms at
the median beside the running tabular pipeline, 0.15 quiet; 2026-12-07).
The direct consumer's ``next()`` takes a ready batch without letting the GIL
go. So the less the pipeline holds the GIL (the shuffle's draws in C: 40 ->
36% of the time), the closer the two.

Two references put that cost in proportion, both consumed by the same
training step: the equivalent tf.data pipeline (what a TensorFlow user would
otherwise feed the model: the ratio adapted / tf.data is what switching
gains), and TensorFlow's own cost of taking such batches from any dataset,
measured on ``tf.data.Dataset.from_tensors(batch).repeat()`` (a floor no
pipeline handed to TensorFlow goes below).

Beside the rates, each run's process CPU time per batch (every thread's):
on a machine whose cores are all busy (the 2-core machine shared by other
work), batches/sec follow CPU per batch, so the ratio there tends to
``cpu_ratio`` = direct CPU / training step CPU, and TensorFlow's own CPU
per batch caps it, whatever the adapter does, at ``cpu_bound_ceiling`` =
direct / (direct + TensorFlow's own). For the tabular pipeline (2.4-3.0 ms
CPU a batch direct; 0.55-0.8 ms TensorFlow's own, measured at loads 1-14 on
2 cores) that ceiling is 0.78-0.83: the target of 0.90 is out of reach on
busy cores. Where TensorFlow's 0.6 ms goes (perf, per thread): 26 string
tensors of 1024 values cost 0.6-0.7 ms a batch on their own (against 0.24
ms for one tensor), most of it ``Tensor::TotalBytes`` walking every string
of every string tensor to count bytes (autotune's accounting of buffered
elements: 32% of all CPU in that measurement; with autotune off it costs
~0.2 ms less); ~0.15 ms is the ``tf.function`` call itself. The adapter's
own cost on top of that, 0.7-1.1 ms CPU a batch, is the feed thread's
packing and enqueue (~0.13 ms, holding the GIL), the graph ops that cut the
26 string features out of one blob (~0.5 ms, without the GIL; ~0.65 ms
before they became one ``substr`` over all leaves) and TensorFlow's
accounting of the unpacking map's buffer. Where the string features are
of one size, as here, fastinput's native op (``fastinput.tf_ops``, built
on first use) now does the cut (figures below). On an idle 2-core
machine the direct pipeline runs ~500 batches/s on ~1.3 cores (2.55 ms CPU
a batch); the adapted one needed ~4.3 ms CPU a batch with the graph cut, so
even both cores fully busy, with no GIL contention, would give ~465
batches/s: ~0.93 at best, and 0.90 needs all but perfect overlap.

The same split in instructions (callgrind, every thread, 60 batches after
10; load-independent, unlike CPU time, which the shared machine's loads of
4-11 inflated 1.5-2x): direct 29.2 M instructions a batch, adapted training
step 39.5 M (ratio 0.74). The parse threads run 22-24 M in both (packing
strings costs as much as making bytes objects; the CPU the packed parse
saves is freeing 26k bytes objects, 1.6 M in direct's consumer, and the
memory they touch). On top: the cut 6.6 M in tf.data's workers (TensorFlow's
map_parallelization makes the unpacking map a ParallelMap; ``substr`` and
``tstring::assign`` take ~250 instructions a value), TensorFlow's inter-op
pool spinning for work 2.1 M, the ``tf.function`` call 1.9 M, the feed
1.6 M, ``TotalBytes`` 1.3 M. Tried and not kept: unpacking inside the
generator's next function, no map (39.2 M: the same ops in another thread).

The native op (``FastinputCutStrings``, ``fastinput/tf_ops``): each value
written once into its output, where the graph cut made ~1 MB of
temporaries a batch (the blob's serialized copy, four int64 arrays of 26k
offsets, ``substr``'s output) that glibc gives back to the kernel and that
fault in again every batch. Measured on 2026-12-07 (2-core AMD EPYC,
TensorFlow 2.21): in instructions (callgrind as above, 60 batches) direct
28.05 M a batch, graph cut 39.19 M (ratio 0.716), op 35.72 M (0.785); the
cut itself 6.6 -> 1.1 M (``CutStringsOp::Compute``: ~41 instructions a
value, checks included). Alternated in one process (three runs of 10, 8
and 14 rounds of 300 batches, loads 3-10), the batches/s ratio's median
rose in each: 0.747 -> 0.774, 0.841 -> 0.863, 0.705 -> 0.767 (higher in 10
of 14 rounds in the last), but CPU time per batch did not follow: the op
used less in 9 of 10, 2 of 8 and 6 of 14 rounds (medians 6.79 against
7.53, 9.50 against 8.89, 7.80 against 7.69 ms), and the graph cut's page
faults came and went (13-77 a batch against 11-25): on busy cores the CPU
counts TensorFlow's pool spinning as much as work, so only the instructions
are a clean figure. This benchmark across processes, 5 x 2 runs at
loads 4-13: CPU ratio 0.52-0.67 -> 0.68-0.79 (higher in every pair). Its build: 6-7 s wall, 6-7 s
CPU, 683 MB peak RSS at load 0.7 (19 s wall, 8.6 s CPU at load 7), a 46 KB
library. An earlier prototype
(a ``[count, size]`` matrix then ``unstack``) saved as much; with glibc's
trimming off (MALLOC_TRIM_THRESHOLD_=256 MB, MALLOC_MMAP_THRESHOLD_=32 MB,
MALLOC_TOP_PAD_=64 MB, process-wide, so only a user's tip) the graph cut
also faults ~12 pages a batch and was no slower than the op (7.93 against
8.84 ms, 3 rounds at loads 8-9). The benchmark builds the op before it
times anything (``string_cut``); without a compiler (and with
``FASTINPUT_TF_OPS=off``) it measures the graph cut: the line "strings cut
by" says which.

    python -m fastinput_bench.tf_adapter [--batches 60] [--seconds 1] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from typing import Any, NamedTuple

from fastinput_bench.report import write_figures


class Rate(NamedTuple):
    """How fast a call ran: calls per second, and the process's CPU time per call (every thread's: the
    pipeline's, the feed's, TensorFlow's), in ms."""

    per_second: float
    cpu_ms: float


def calls_per_second(call, calls: int, warmup: int = 5, seconds: float = 0.0) -> Rate:
    """Rate of ``call()`` over at least ``calls`` calls and ``seconds`` seconds, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    start, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < calls or time.perf_counter() - start < seconds:
        call()
        done += 1
    return Rate(done / (time.perf_counter() - start), 1e3 * (time.process_time() - cpu) / done)


def rate(dataset, batches: int, warmup: int = 5, seconds: float = 0.0) -> Rate:
    """Batches/sec of iterating ``dataset`` (fastinput or tf.data) for ``batches`` (and ``seconds``) after
    ``warmup``."""
    it = iter(dataset)
    try:
        return calls_per_second(lambda: next(it), batches, warmup, seconds)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def training_step_rate(dataset, batches: int, warmup: int = 5, seconds: float = 0.0) -> Rate:
    """Batches/sec of a tf.data dataset consumed as Keras's training step does: ``next`` inside a tf.function."""
    import tensorflow as tf

    iterator = iter(dataset)

    @tf.function
    def step(iterator):
        batch = next(iterator)
        return tf.nest.flatten(batch)[0][:1]  # uses the batch, as a model would, but costs nothing

    return calls_per_second(lambda: step(iterator), batches, warmup, seconds)


def pipelines() -> dict:
    """Each benchmarked pipeline by name: (the fastinput pipeline, the equivalent tf.data pipeline)."""
    from fastinput_bench.image_pipelines import fastinput_images, tf_data_images
    from fastinput_bench.pipelines import PipelineConfig, fastinput_tabular, tf_data_tabular
    from fastinput_bench.synthetic import cache_root, synthetic_files

    root = cache_root(None)
    images = synthetic_files("images", "default", root)
    tabular = PipelineConfig(synthetic_files("tabular", "default", root), 1024)
    return {
        "images (batch 64)": (fastinput_images(images, 64, "uint8"), tf_data_images(images, 64, "uint8")),
        "tabular (batch 1024)": (fastinput_tabular(tabular), tf_data_tabular(tabular)),
    }


def consumption_floor(adapted_ds, batches: int) -> Rate:
    """The training step on one batch of ``adapted_ds`` repeated: TensorFlow's own cost per batch (its CPU time per
    batch is all TensorFlow's: no pipeline runs)."""
    import tensorflow as tf

    batch = next(iter(adapted_ds))
    return training_step_rate(tf.data.Dataset.from_tensors(batch).repeat(), batches)


def string_cut(tf: Any) -> str:
    """What as_tf_dataset will cut packed strings with, the native op built first where it can be: on a first run,
    ``FASTINPUT_TF_OPS=auto`` would build it in the background, a compiler competing with the timed pipelines while
    the graph ops are measured."""
    from fastinput import tf_ops

    cxx = tf_ops.compiler()
    if tf_ops.mode() == "auto" and cxx is not None:
        with contextlib.suppress(tf_ops.BuildError, OSError):  # no op: the graph ops are measured, as a user gets them
            tf_ops.build(tf, cxx, tf_ops.library_path(tf, cxx))
    return "native op" if tf_ops.cut_strings(tf) is not None else f"graph ops (FASTINPUT_TF_OPS={tf_ops.mode()})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=60, help="at least this many batches a timed run")
    parser.add_argument("--seconds", type=float, default=1.0, help="and at least this long (see the docstring)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    parser.add_argument("--only", help="run only the pipelines whose name contains this (e.g. tabular)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf  # imported before timing

    cut = string_cut(tf)
    results = {}
    for name, (ds, tf_data_ds) in pipelines().items():
        if args.only and args.only not in name:
            continue
        adapted_ds = ds.as_tf_dataset()
        runs: dict[str, list[Rate]] = {"direct": [], "training step": [], "python loop": [],
                                       "tf.data training step": []}
        for _ in range(args.repeats):
            window = (args.batches, 5, args.seconds)
            runs["direct"].append(rate(ds, *window))
            runs["training step"].append(training_step_rate(adapted_ds, *window))
            runs["python loop"].append(rate(adapted_ds, *window))
            runs["tf.data training step"].append(training_step_rate(tf_data_ds, *window))
        d = statistics.median(r.per_second for r in runs["direct"])
        d_cpu = statistics.median(r.cpu_ms for r in runs["direct"])
        floor = consumption_floor(adapted_ds, 5 * args.batches)
        results[name] = {"direct_batches_per_second": d, "direct_cpu_ms_per_batch": d_cpu, "strings_cut_by": cut,
                         "runs": {k: [r.per_second for r in v] for k, v in runs.items()},
                         "tensorflow_consumption_ms_per_batch": 1e3 / floor.per_second,
                         "tensorflow_consumption_cpu_ms_per_batch": floor.cpu_ms,
                         "cpu_bound_ceiling": d_cpu / (d_cpu + floor.cpu_ms)}
        line = f"{name:<22} direct {d:7.1f} batches/s"
        for consumer in ("training step", "python loop"):
            a = statistics.median(r.per_second for r in runs[consumer])
            a_cpu = statistics.median(r.cpu_ms for r in runs[consumer])
            key = consumer.replace(" ", "_")
            results[name][key] = {"batches_per_second": a, "ratio": a / d,
                                  "overhead_ms_per_batch": (1 / a - 1 / d) * 1e3, "cpu_ms_per_batch": a_cpu,
                                  "cpu_ratio": d_cpu / a_cpu}
            line += f"   as_tf_dataset, {consumer}: {a:7.1f} batches/s, ratio {a / d:.2f}"
        t = statistics.median(r.per_second for r in runs["tf.data training step"])
        step = results[name]["training_step"]
        results[name]["tf_data_training_step"] = {"batches_per_second": t,
                                                  "adapted_over_tf_data": step["batches_per_second"] / t}
        print(line + "   (target >= 0.90)")
        print(f"{'':<22} tf.data, training step {t:7.1f} batches/s (as_tf_dataset / tf.data "
              f"{step['batches_per_second'] / t:.2f}x); TensorFlow's own cost per batch {1e3 / floor.per_second:.2f}"
              f" ms, {floor.cpu_ms:.2f} ms CPU (from_tensors(batch).repeat())")
        print(f"{'':<22} CPU per batch: direct {d_cpu:.2f} ms, training step {step['cpu_ms_per_batch']:.2f} ms "
              f"(ratio when CPU-bound {step['cpu_ratio']:.2f}; TensorFlow's own cost alone caps it at "
              f"{results[name]['cpu_bound_ceiling']:.2f}); load {os.getloadavg()[0]:.1f}; strings cut by {cut}")
    print(f"cores: {os.cpu_count()}")
    write_figures(args.json, {"benchmark": "as_tf_dataset overhead",
                              "timed_run": {"at_least_batches": args.batches, "at_least_seconds": args.seconds},
                              "results": results})


if __name__ == "__main__":
    main()
