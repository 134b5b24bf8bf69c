"""AUTOTUNE on the ResNet-50 image pipeline, against a grid search over its knobs and against tf.data's AUTOTUNE.

Every knob of fastinput's image pipeline (fastinput_bench/image_pipelines.py) is
set by hand at each point of a grid (file reads in parallel, batch
preprocessing workers, prefetch depth) and measured; then the same pipeline
with every knob AUTOTUNE is measured per 1-second window from its first
batch. The issue's figures: AUTOTUNE reaches 95% of the best grid point's
images/sec within 10 seconds, and at least tf.data's AUTOTUNE images/sec.
Called by ``python -m fastinput_bench.autotune images``.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np

from fastinput_bench.image_pipelines import SHUFFLE_BUFFER, ResNetBatchPreprocess, tf_data_images

BATCH_SIZE = 64
GRID = {"read_parallelism": [1, 2], "map_parallelism": [1, 2, 3, 4], "prefetch": [1, 4]}


def image_pipeline(files: list[str], read_parallelism: int, map_parallelism: int, prefetch: int) -> Any:
    import fastinput as fi

    return (fi.Dataset.list_files(files, shuffle=True)
            .interleave(fi.TFRecordDataset, cycle_length=2, num_parallel_calls=read_parallelism, deterministic=False)
            .shuffle(SHUFFLE_BUFFER)
            .repeat()
            .batch(BATCH_SIZE, drop_remainder=True)
            .map(ResNetBatchPreprocess(np.uint8), num_parallel_calls=map_parallelism, deterministic=False)
            .prefetch(prefetch))


def measure(dataset: Any, seconds: float, warmup_batches: int = 3) -> float:
    """Images/sec after ``warmup_batches``, over ``seconds``."""
    it = iter(dataset)
    try:
        for _ in range(warmup_batches):
            next(it)
        start, batches = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            next(it)
            batches += 1
        return batches * BATCH_SIZE / (time.perf_counter() - start)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def autotune_windows(files: list[str], seconds: float) -> tuple[list[float], dict]:
    """Images/sec in each 1-second window from the first batch, and the knob values at the end."""
    import fastinput as fi

    dataset = image_pipeline(files, fi.AUTOTUNE, fi.AUTOTUNE, fi.AUTOTUNE)
    windows: list[float] = []
    with iter(dataset) as it:
        next(it)
        start = window_start = time.perf_counter()
        count = 0
        while (now := time.perf_counter()) - start < seconds:
            next(it)
            count += BATCH_SIZE
            if now - window_start >= 1.0:
                windows.append(count / (now - window_start))
                window_start, count = now, 0
        knobs = {f"{k.stage[:40]}.{k.name}": k.value for k in it.knobs()}
    return windows, knobs


def run_images(seconds: float) -> dict:
    from fastinput_bench.data.imagenet_synthetic import ensure_imagenet_synthetic

    files = ensure_imagenet_synthetic()
    grid = {}
    for values in itertools.product(*GRID.values()):
        point = dict(zip(GRID, values))
        grid[str(point)] = measure(image_pipeline(files, **point), seconds=4.0)
        print(f"  grid {point}: {grid[str(point)]:7.0f} images/s")
    best_point = max(grid, key=grid.get)
    best = grid[best_point]
    windows, knobs = autotune_windows(files, seconds)
    reached = next((i + 1 for i, rate in enumerate(windows) if rate >= 0.95 * best), None)
    steady = float(np.median(windows[len(windows) // 2:]))
    tf_rate = measure(tf_data_images(files, BATCH_SIZE, "uint8"), seconds=min(seconds, 10.0))
    print(f"best grid point {best_point}: {best:.0f} images/s")
    print(f"AUTOTUNE: steady {steady:.0f} images/s ({steady / best:.0%} of the best grid point); "
          f"first 1 s window at >= 95%: {reached if reached else 'not reached'} s after the first batch")
    print(f"tf.data AUTOTUNE: {tf_rate:.0f} images/s; fastinput AUTOTUNE / tf.data: {steady / tf_rate:.2f}x")
    print(f"tuned knobs: {knobs}")
    return {"benchmark": "images autotune vs grid", "grid": grid, "best_grid_point": best_point,
            "best_grid_images_per_second": best,
            "autotune_windows": windows, "autotune_steady_images_per_second": steady, "seconds_to_95_percent": reached,
            "tf_data_autotune_images_per_second": tf_rate, "autotune_knobs": knobs}
