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

Two references put that cost in proportion, both consumed by the same
training step: the equivalent tf.data pipeline (what a TensorFlow user would
otherwise feed the model: the ratio adapted / tf.data is what switching
gains), and TensorFlow's own cost of taking such batches from any dataset,
measured on ``tf.data.Dataset.from_tensors(batch).repeat()`` (a floor no
pipeline handed to TensorFlow goes below; on a small machine it alone keeps
a fast pipeline's batches/sec visibly under its direct rate).

    python -m fastinput_bench.tf_adapter [--batches 60] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def calls_per_second(call, calls: int, warmup: int = 5) -> float:
    """Rate of ``call()`` over ``calls`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return calls / (time.perf_counter() - start)


def rate(dataset, batches: int, warmup: int = 5) -> float:
    """Batches/sec of iterating ``dataset`` (fastinput or tf.data) for ``batches`` after ``warmup``."""
    it = iter(dataset)
    try:
        return calls_per_second(lambda: next(it), batches, warmup)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def training_step_rate(dataset, batches: int, warmup: int = 5) -> float:
    """Batches/sec of a tf.data dataset consumed as Keras's training step does: ``next`` inside a tf.function."""
    import tensorflow as tf

    iterator = iter(dataset)

    @tf.function
    def step(iterator):
        batch = next(iterator)
        return tf.nest.flatten(batch)[0][:1]  # uses the batch, as a model would, but costs nothing

    return calls_per_second(lambda: step(iterator), batches, warmup)


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


def consumption_floor(adapted_ds, batches: int) -> float:
    """Batches/sec of the training step on one batch of ``adapted_ds`` repeated: TensorFlow's own cost per batch."""
    import tensorflow as tf

    batch = next(iter(adapted_ds))
    return training_step_rate(tf.data.Dataset.from_tensors(batch).repeat(), batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf  # noqa: F401  (imported before timing)

    results = {}
    for name, (ds, tf_data_ds) in pipelines().items():
        adapted_ds = ds.as_tf_dataset()
        runs: dict[str, list[float]] = {"direct": [], "training step": [], "python loop": [],
                                        "tf.data training step": []}
        for _ in range(args.repeats):
            runs["direct"].append(rate(ds, args.batches))
            runs["training step"].append(training_step_rate(adapted_ds, args.batches))
            runs["python loop"].append(rate(adapted_ds, args.batches))
            runs["tf.data training step"].append(training_step_rate(tf_data_ds, args.batches))
        d = statistics.median(runs["direct"])
        floor = consumption_floor(adapted_ds, 5 * args.batches)
        results[name] = {"direct_batches_per_second": d, "runs": runs,
                         "tensorflow_consumption_ms_per_batch": 1e3 / floor}
        line = f"{name:<22} direct {d:7.1f} batches/s"
        for consumer in ("training step", "python loop"):
            a = statistics.median(runs[consumer])
            key = consumer.replace(" ", "_")
            results[name][key] = {"batches_per_second": a, "ratio": a / d,
                                  "overhead_ms_per_batch": (1 / a - 1 / d) * 1e3}
            line += f"   as_tf_dataset, {consumer}: {a:7.1f} batches/s, ratio {a / d:.2f}"
        t = statistics.median(runs["tf.data training step"])
        step = results[name]["training_step"]["batches_per_second"]
        results[name]["tf_data_training_step"] = {"batches_per_second": t, "adapted_over_tf_data": step / t}
        print(line + "   (target >= 0.90)")
        print(f"{'':<22} tf.data, training step {t:7.1f} batches/s (as_tf_dataset / tf.data {step / t:.2f}x);"
              f" TensorFlow's own cost per batch {1e3 / floor:.2f} ms (from_tensors(batch).repeat())")
    print(f"cores: {os.cpu_count()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "as_tf_dataset overhead", "cores": os.cpu_count(), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
