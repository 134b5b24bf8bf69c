"""Saving and restoring the ResNet-50 input pipeline: how big is its state, how long do saving and resuming take?

The pipeline has the image pipeline's shape, ``interleave(TFRecordDataset) -> shuffle(10_000) -> map_and_batch ->
prefetch``, over local TFRecord files of made-up records of ImageNet's size (~110 KB; the map turns a slice of each
into a small image, so that what is measured is the checkpoint, not the decoding). After ``--warmup`` batches (the
shuffle buffer is full from the first one), it saves ``--saves`` times, a few batches apart, and reports medians:

- ``get_state()``: the time the consumer is stopped to save (issue 15's target: under 100 ms), and the time to turn
  the state into JSON text;
- the state's size as JSON (target: under 1 MB: positions, not record bytes, where the source can seek);
- restoring: ``set_state`` on a fresh iterator, and from there to the first batch, which re-reads what the state
  points at (target: under 2 s in all).

    python -m fastinput_bench.checkpoint [--files 16] [--records-per-file 700] [--record-kib 110]
                                         [--shuffle-buffer 10000] [--batch-size 64] [--saves 5] [--json out.json]

Not a timed test: a measurement to read, with a short smoke test in tests/benchmarks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import fastinput as fi
from fastinput_bench.memory import write_files
from fastinput_bench.report import write_figures

TARGETS = {"get_state_ms": 100.0, "state_bytes": 1_000_000, "restore_ms": 2000.0}
"""Issue 15's targets, each an upper bound."""
IMAGE_BYTES = 32 * 32 * 3


def _preprocess(record: bytes) -> np.ndarray:
    """The map: a small image made from the record's first bytes."""
    return np.frombuffer(record, np.uint8, count=IMAGE_BYTES).reshape(32, 32, 3).astype(np.float32)


def pipeline(paths: list[str], shuffle_buffer: int, batch_size: int) -> fi.Dataset:
    """The image pipeline's shape over ``paths`` (deterministic, so that a restore can be checked)."""
    return (fi.Dataset.from_tensor_slices(paths)
            .interleave(fi.TFRecordDataset, cycle_length=4, num_parallel_calls=fi.AUTOTUNE)
            .shuffle(shuffle_buffer, seed=0)
            .map_and_batch(_preprocess, batch_size)
            .prefetch(fi.AUTOTUNE)
            .with_options(fi.Options(checkpoint=fi.CheckpointOptions(positions=True))))  # positions, not bytes


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def save_once(it: fi.Iterator, ds: fi.Dataset) -> dict[str, Any]:
    """One save of ``it`` and one restore of it into a fresh iterator of ``ds``, timed; checks the restored
    iterator's first batch is the one ``it`` gives next."""
    start = time.perf_counter()
    state = it.get_state()
    get_state_ms = _ms(start)
    start = time.perf_counter()
    text = json.dumps(state)
    to_json_ms = _ms(start)
    start = time.perf_counter()
    with iter(ds) as resumed:
        resumed.set_state(json.loads(text))
        set_state_ms = _ms(start)
        first = next(resumed)
        restore_ms = _ms(start)
    expected = next(it)
    return {"get_state_ms": get_state_ms, "to_json_ms": to_json_ms, "state_bytes": len(text.encode()),
            "set_state_ms": set_state_ms, "restore_ms": restore_ms,
            "restored_exactly": _same(first, expected)}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    return bool(np.array_equal(a, b))


def measure(paths: list[str], shuffle_buffer: int, batch_size: int, warmup: int, saves: int,
            batches_between: int = 3) -> dict[str, Any]:
    """Save and restore ``saves`` times after ``warmup`` batches; the median of each figure, and every sample."""
    ds = pipeline(paths, shuffle_buffer, batch_size)
    samples = []
    with iter(ds) as it:
        for _ in range(warmup):
            next(it)
        for _ in range(saves):
            samples.append(save_once(it, ds))
            for _ in range(batches_between):
                next(it)
    medians = {key: statistics.median(sample[key] for sample in samples) for key in samples[0]
               if key != "restored_exactly"}
    return {**{key: round(value, 2) for key, value in medians.items()},
            "restored_exactly": all(sample["restored_exactly"] for sample in samples),
            "within_targets": {key: medians[key] <= bound for key, bound in TARGETS.items()},
            "shuffle_buffer": shuffle_buffer, "batch_size": batch_size, "samples": samples}


def report(result: dict[str, Any]) -> str:
    def verdict(key: str) -> str:
        return "within target" if result["within_targets"][key] else "OVER target"

    return "\n".join([
        f"get_state(): {result['get_state_ms']} ms ({verdict('get_state_ms')}: {TARGETS['get_state_ms']:.0f} ms), "
        f"to JSON {result['to_json_ms']} ms",
        f"state: {result['state_bytes']} bytes as JSON ({verdict('state_bytes')}: {TARGETS['state_bytes']} bytes)",
        f"restore: set_state {result['set_state_ms']} ms, to the first batch {result['restore_ms']} ms "
        f"({verdict('restore_ms')}: {TARGETS['restore_ms']:.0f} ms)",
        f"the restored iterator's first batch is the saved one's next: {result['restored_exactly']}",
    ])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fastinput_bench.checkpoint",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--records-per-file", type=int, default=700)
    parser.add_argument("--record-kib", type=int, default=110)
    parser.add_argument("--shuffle-buffer", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5, help="batches before the first save")
    parser.add_argument("--saves", type=int, default=5, help="how many saves (and restores) to time")
    parser.add_argument("--json", help="also write the figures (and every sample) to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.files, args.records_per_file, args.shuffle_buffer, args.batch_size, args.warmup, args.saves) < 1 \
            or args.record_kib * 1024 < IMAGE_BYTES:
        build_parser().error("every count must be positive, and --record-kib at least 3")
    with tempfile.TemporaryDirectory(prefix="fastinput-checkpoint-") as root:
        paths = write_files(root, args.files, args.records_per_file, args.record_kib << 10)
        try:
            result = measure(paths, args.shuffle_buffer, args.batch_size, args.warmup, args.saves)
        except fi.errors.UnimplementedError as exc:
            print(f"the pipeline cannot be saved yet: {exc}")
            result = {"unimplemented": str(exc)}
    if "unimplemented" not in result:
        result["records"] = args.files * args.records_per_file
        print(report(result))
    write_figures(args.json, result)
    return 0 if result.get("restored_exactly") else 1


if __name__ == "__main__":
    raise SystemExit(main())
