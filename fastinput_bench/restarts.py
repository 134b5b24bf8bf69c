"""Restart benchmark: what a ``repeat()`` over one small TFRecord file costs per epoch, against opening the next file.

Mixing sources (``sample_from_datasets([TFRecordDataset(f).repeat() for f in files])``) restarts each source's
``repeat()`` at the end of its file, which makes the input's iterators anew (an epoch) where one source over all the
files only opens the next file. This times both on a file of 10 records of ~1 KB, so the per-epoch and per-file work
is most of what is measured:

- ``TFRecordDataset(f).repeat()``: one epoch = making the input's iterators, opening and reading the file
- ``TFRecordDataset([f] * N)``: one file = opening and reading the next file (no new iterators but the file's)
- ``range(10).repeat()``: one epoch of the engine's bare restart (no file)

Batches of 1,000 elements (100 epochs or files each) are taken for ``--seconds`` per round, ``--rounds`` times in
turn; the best round counts. Times are the consumer thread's CPU time (every stage runs on it), so a shared
machine's other processes count less than in wall time.

    python -m fastinput_bench.restarts [--seconds 0.3] [--rounds 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RECORDS = 10
BATCH = 1_000


def pipelines(path: str) -> dict[str, Callable[[], Any]]:
    """The three pipelines, each a function making a fresh Dataset of batches of ``BATCH``."""
    import fastinput as fi

    return {
        "TFRecordDataset(f).repeat(): an epoch": lambda: fi.TFRecordDataset(path).repeat().batch(BATCH),
        "TFRecordDataset([f] * N): a file": lambda: fi.TFRecordDataset([path] * 10**7).batch(BATCH),
        f"range({RECORDS}).repeat(): an epoch": lambda: fi.Dataset.range(RECORDS).repeat().batch(BATCH),
    }


def microseconds_per_epoch(make: Callable[[], Any], seconds: float) -> float:
    """The consumer's CPU time per ``RECORDS`` elements, over batches taken for about ``seconds`` (after 2 to warm
    up)."""
    with iter(make()) as iterator:
        next(iterator), next(iterator)
        elements = 0
        start, cpu_start = time.perf_counter(), time.thread_time()
        while time.perf_counter() - start < seconds:
            elements += len(next(iterator))
        return (time.thread_time() - cpu_start) / (elements / RECORDS) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="seconds per pipeline and round")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of all pipelines in turn; the best counts")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    import numpy as np

    from fastinput.readers.framing import frame

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "small.tfrecord")
        with open(path, "wb") as f:
            f.write(b"".join(frame(rng.bytes(int(rng.integers(500, 1500)))) for _ in range(RECORDS)))
        runs = pipelines(path)
        best = dict.fromkeys(runs, float("inf"))
        for _ in range(args.rounds):
            for name, make in runs.items():
                best[name] = min(best[name], microseconds_per_epoch(make, args.seconds))
    epoch, next_file, bare = best.values()
    summary = {"records_per_file": RECORDS, "cpu_microseconds": best, "epoch_beyond_next_file": epoch - next_file}
    for name, us in best.items():
        print(f"{name:<40} {us:8.1f} us CPU")
    print(f"{'an epoch beyond opening the next file':<40} {epoch - next_file:8.1f} us CPU")
    print(f"best of {args.rounds} rounds; cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    from fastinput_bench.report import write_figures  # as a script, the repository joins sys.path after the imports

    write_figures(args.json, summary)


if __name__ == "__main__":
    main()
