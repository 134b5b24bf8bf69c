"""Experiment (issue 19; reverted in the next commit, kept in the history): 8 TFRecord sources mixed with records
made at ``take`` from spans of each source's read buffer (``spans.c``), against fastinput's pipelines, one process.

Variants, each timed over ``BATCHES`` batches of 1,024 (main thread's CPU, ``time.thread_time``), alternated:

- ``r1``: ``fi.TFRecordDataset(files).repeat().batch(1024)`` (the benchmark's one source);
- ``rmix``: ``fi.Dataset.sample_from_datasets([fi.TFRecordDataset([f]).repeat() for f in files], seed=0).batch(1024)``;
- ``one``: a standalone reader of the files in turn (``framing.RecordReader``, records made at the walk), a batch
  laid into an object array: ``r1`` without the pipeline's Python;
- ``spans``: the 8 files mixed standalone: each source reads into a 1 MiB buffer of its own, checks both CRCs of its
  whole records and notes their spans (``split_spans``); a batch's records are made in the order of the choices,
  straight into its array (``take_spans``); a source whose spans run out moves its unwalked tail to the front,
  reads the rest of its buffer and walks again. Same choices as ``rmix`` would draw for its own generator:
  uniform over 8, from numpy's ``default_rng(0)`` (the elements were checked equal, batch by batch, to the same
  mix laid out from lists of bytes);
- ``spans_prefetch``: ``spans``, each source's next record fetched into the cache as one is made.

    gcc -O3 -shared -fPIC -I<python include> spans.c -o spans$(python3-config --extension-suffix)
    PYTHONPATH=<repo> python tools/experiments/mix_spans/run.py ROUNDS [variant,...]
"""

import glob
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spans  # noqa: E402

import fastinput as fi  # noqa: E402
from fastinput.readers import framing  # noqa: E402
from fastinput_bench.tfrecord_read import write_files  # noqa: E402

BUF = 1 << 20
SPAN_BUF = int(os.environ.get("SPAN_BUF", BUF))
"""Each span source's read buffer (bytes); ``SPAN_BUF`` in the environment."""
BATCH = 1024


class Stream:
    """A local file as ``framing.RecordReader`` reads it (in place)."""

    reads_in_place = True

    def __init__(self, path):
        self.path, self.size, self.file = path, os.path.getsize(path), open(path, "rb", buffering=0)

    def readinto(self, view):
        return self.file.readinto(view)


def one(paths, batches):
    index, reader = 0, framing.RecordReader(Stream(paths[0]), BUF, False)
    for _ in range(batches):
        records = []
        while len(records) < BATCH:
            before = len(records)
            reader.read_into(records, BATCH - len(records))
            if len(records) == before:  # the file ended: the next one
                index = (index + 1) % len(paths)
                reader = framing.RecordReader(Stream(paths[index]), BUF, False)
        out = np.empty(BATCH, dtype=object)
        out[:] = records
        yield out


class SpanReader:
    """One file, forever, as spans of its own read buffer (the files end at a record's end)."""

    def __init__(self, path):
        self.file = open(path, "rb", buffering=0)
        self.buf = np.empty(SPAN_BUF, dtype=np.uint8)
        self.view = memoryview(self.buf)
        self.spans = np.empty((SPAN_BUF // 16, 2), dtype=np.int64)
        self.have = self.pos = 0

    def refill(self):
        """All spans taken: the unwalked tail to the front, the rest read; returns the new spans' count."""
        tail = self.have - self.pos
        if tail:
            self.view[:tail] = self.view[self.pos:self.have]
        self.have, self.pos = tail, 0
        while True:
            count = self.file.readinto(self.view[self.have:])
            if not count:
                self.file.seek(0)
                continue
            self.have += count
            found, self.pos, _ = spans.split_spans(self.view[:self.have], 0, len(self.spans), self.spans)
            if found:
                return found


def spans_mix(paths, batches, prefetch=False):
    rng = np.random.default_rng(0)
    readers = [SpanReader(p) for p in paths]
    ends = np.array([r.refill() for r in readers], dtype=np.int64)
    cursors = np.zeros(len(paths), dtype=np.int64)
    bases, spans_of = [r.buf for r in readers], [r.spans for r in readers]
    for _ in range(batches):
        choices = rng.integers(0, len(paths), BATCH)
        out = np.empty(BATCH, dtype=object)
        done = 0
        while done < BATCH:
            done += spans.take_spans(choices[done:], bases, spans_of, ends, cursors, out[done:], prefetch)
            if done < BATCH:
                source = int(choices[done])
                ends[source], cursors[source] = readers[source].refill(), 0
        yield out


def pipeline(mixed):
    def run(paths, batches):
        if mixed:
            ds = fi.Dataset.sample_from_datasets([fi.TFRecordDataset([p]).repeat() for p in paths], seed=0)
        else:
            ds = fi.TFRecordDataset(paths).repeat()
        it = iter(ds.batch(BATCH))
        try:
            for _ in range(batches):
                yield next(it)
        finally:
            it.close()
    return run


VARIANTS = {"r1": pipeline(False), "rmix": pipeline(True), "one": one, "spans": spans_mix,
            "spans_prefetch": lambda paths, batches: spans_mix(paths, batches, True)}


def cpu_per_batch(make, paths, batches):
    batches_of = make(paths, batches + 50)
    for _ in range(50):
        next(batches_of)
    start = time.thread_time()
    for _ in range(batches):
        len(next(batches_of))
    return (time.thread_time() - start) / batches * 1e6


def main():
    rounds = int(sys.argv[1])
    chosen = sys.argv[2].split(",") if len(sys.argv) > 2 else list(VARIANTS)
    batches = int(os.environ.get("BATCHES", "1500"))
    with tempfile.TemporaryDirectory() as directory:
        write_files(directory, "mix", 1000, 8 * 4000 * 1000, 8)
        paths = sorted(glob.glob(os.path.join(directory, "*.tfrecord")))
        results = {name: [] for name in chosen}
        for r in range(rounds):
            for name in chosen if r % 2 == 0 else chosen[::-1]:
                results[name].append(cpu_per_batch(VARIANTS[name], paths, batches))
    for name, values in results.items():
        print(f"{name:15} CPU us/batch median {statistics.median(values):6.1f} min {min(values):6.1f}  "
              f"all {' '.join(f'{v:.0f}' for v in values)}")
    print("load average", os.getloadavg())


if __name__ == "__main__":
    main()
