"""``fastinput-bench images --kernel-limit``: the JPEG kernel alone on the same cores, the ceiling of any pipeline.

An image pipeline cannot deliver images faster than its decode kernel runs
on the machine's cores with nothing else to do. This times exactly that, in
the same run as the pipelines (the machine's speed drifts between runs: a
figure from another run is no ceiling): one thread per core, each calling
``fi.image.decode_random_crop_resize`` (a fresh 224x224 image per call, the
README's settings, the run's dtype) on JPEGs taken from the benchmark's own
files, round and round, with nothing else per image but a count. Its batches
are counts of finished images, so the same ``measure`` times it as a
pipeline: the median over the same intervals, its spread, its CPU. The
pipeline's share of this rate is how close it comes to the hardware's limit
(issue 20 asks for 90%).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import numpy as np

from fastinput.options import available_cpus

JPEGS = 512
"""JPEGs decoded round and round: more than fit the CPU's caches at once, as a pipeline's do."""


def load_jpegs(files: list[str], count: int = JPEGS) -> list[bytes]:
    """The first ``count`` JPEGs (``image/encoded``) of ``files``, or all of them if there are fewer."""
    import fastinput as fi

    features = {"image/encoded": fi.FixedLenFeature([], bytes)}
    records = list(fi.TFRecordDataset(files).take(count))
    return list(fi.parse_example(records, features)["image/encoded"]) if records else []


class _Counter:
    """Images the kernel threads finished; a reader waits until the next ``batch_size`` of them are done."""

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size
        self._cond = threading.Condition(threading.Lock())
        self._done = 0
        self._handed = 0  # batches handed to the reader
        self.stopped = False

    def add(self) -> None:
        with self._cond:
            self._done += 1
            if self._done % self._batch_size == 0:
                self._cond.notify()

    def next_batch(self) -> None:
        with self._cond:
            self._handed += 1
            while self._done < self._handed * self._batch_size:
                self._cond.wait()


@contextlib.contextmanager
def kernel_batches(jpegs: list[bytes], batch_size: int, dtype: str = "uint8",
                   threads: int | None = None) -> Iterator[Iterator[np.ndarray]]:
    """Yields an iterator of "batches": each ``next()`` returns once ``batch_size`` more images are decoded, as a
    ``[batch_size, 0]`` array (``measure`` reads the batch's length only). ``threads`` (default: one per core)
    decode until the block ends, then are joined."""
    import fastinput as fi

    if not jpegs:
        raise ValueError("kernel_batches: no JPEGs to decode")
    counter = _Counter(batch_size)
    decode = fi.image.decode_random_crop_resize

    def work(start: int) -> None:
        index = start
        while not counter.stopped:
            decode(jpegs[index % len(jpegs)], size=(224, 224), dtype=dtype)
            counter.add()
            index += 1

    def batches() -> Iterator[np.ndarray]:
        empty = np.empty((batch_size, 0), np.uint8)
        while True:
            counter.next_batch()
            yield empty

    count = threads or available_cpus()
    workers = [threading.Thread(target=work, args=(i * len(jpegs) // count,), daemon=True,
                                name=f"decode kernel #{i}") for i in range(count)]
    for worker in workers:
        worker.start()
    try:
        yield batches()
    finally:
        counter.stopped = True
        for worker in workers:
            worker.join()
