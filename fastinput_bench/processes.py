"""Python functions past the GIL: ``map(fn, workers="process")`` against threads, PyTorch's DataLoader and Grain.

Three workloads, each run by every loader on the same inputs, in one process, one after the other:

- ``gil``: a pure-Python function of about 1 ms per element (a toy tokenizer: it hashes the words of a
  generated sentence in a Python loop), batched by 32. It holds the GIL all the time, so threads run it on one
  core; processes (fastinput's, DataLoader's ``num_workers``, Grain's ``mp_prefetch``) on every core.
- ``pil``: an augmentation written with PIL, as many users write it: decode a JPEG (ImageNet-sized photos of the
  synthetic set), random resized crop to 224x224, random flip, to a uint8 array; batched by 32.
- ``trivial``: ``x + 1``, batched by 256: what a worker process costs when the function costs nothing (use
  threads for such functions).

Each figure is elements/s after the first batch (each loader's start-up, its processes' included, is reported
beside it as ``first_batch_seconds``). Processes run ``--workers`` (default: the CPU count) in every loader.

    python -m fastinput_bench.processes [--elements 3000] [--workers N] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from fastinput_bench.report import script_machine, write_figures

BATCH = 32
TRIVIAL_BATCH = 256
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "input", "pipeline", "tokens", "model")


def tokenize(i: Any) -> np.ndarray:
    """A GIL-bound per-element function (~1 ms): hash each word of a generated 2500-word sentence, in Python."""
    i = int(i)
    ids = []
    for n in range(2500):
        word = WORDS[(i * 7 + n * 13) % len(WORDS)]
        h = 0
        for ch in word:
            h = (h * 31 + ord(ch)) & 0xFFFF
        ids.append(h)
    return np.asarray(ids[:64], np.int64)


def trivial(x: Any) -> Any:
    return x + 1


def jpegs(count: int = 16) -> list[bytes]:
    """ImageNet-sized JPEG photos of the synthetic ImageNet-like set (about 110 KB each)."""
    from fastinput_bench.data.imagenet_synthetic import synthetic_image

    return [synthetic_image(0, index).jpeg for index in range(count)]


def augment(data: Any) -> np.ndarray:
    """Decode with PIL, random resized crop (8-100% of the area) to 224x224, random flip, to a uint8 array."""
    from PIL import Image

    rng = np.random.default_rng()
    image = Image.open(io.BytesIO(bytes(data))).convert("RGB")
    width, height = image.size
    area = width * height * rng.uniform(0.08, 1.0)
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    w = int(min(width, round(np.sqrt(area * ratio))))
    h = int(min(height, round(np.sqrt(area / ratio))))
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    image = image.resize((224, 224), Image.BILINEAR, box=(left, top, left + w, top + h))
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(image)


def inputs(name: str, elements: int) -> list[Any]:
    """The workload's input elements: numbers, or JPEG photos (the same 16, over and over)."""
    if name != "pil":
        return list(range(elements))
    photos = jpegs()
    return [photos[i % len(photos)] for i in range(elements)]


FUNCTIONS = {"gil": (tokenize, BATCH), "pil": (augment, BATCH), "trivial": (trivial, TRIVIAL_BATCH)}


def _timed(batches: Iterable, count: Callable[[Any], int]) -> dict[str, float]:
    """Elements/s after the first batch, and the seconds to the first batch."""
    start = time.perf_counter()
    iterator = iter(batches)
    first = next(iterator)
    first_seconds = time.perf_counter() - start
    elements, timed_from = 0, time.perf_counter()
    for batch in iterator:
        elements += count(batch)
    seconds = time.perf_counter() - timed_from
    del first
    return {"elements": elements, "seconds": seconds, "elements_per_second": elements / seconds,
            "first_batch_seconds": first_seconds}


def run_fastinput(fn: Callable, batch: int, data: list[Any], workers: str, processes: int) -> dict[str, Any]:
    import fastinput as fi

    parallel = fi.AUTOTUNE if workers == "thread" else processes
    source = fi.Dataset.from_tensor_slices(np.array(data, dtype=object if isinstance(data[0], bytes) else None))
    ds = source.map(fn, num_parallel_calls=parallel, workers=workers).batch(batch)
    it = iter(ds)
    try:
        result = _timed(it, len)
    finally:
        it.close()
    label = "AUTOTUNE threads" if workers == "thread" else f"{processes} processes"
    return {"loader": f'fastinput map(workers="{workers}") ({label})', **result}


class _Mapped:
    """A map-style dataset of ``fn(data[i])`` for PyTorch's DataLoader."""

    def __init__(self, fn: Callable, data: list[Any]) -> None:
        self.fn, self.data = fn, data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Any:
        return self.fn(self.data[i])


def run_torch(fn: Callable, batch: int, data: list[Any], processes: int) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    loader = DataLoader(_Mapped(fn, data), batch_size=batch, num_workers=processes)
    return {"loader": f"torch DataLoader(num_workers={processes})", **_timed(loader, len)}


def run_grain(fn: Callable, batch: int, data: list[Any], processes: int) -> dict[str, Any]:
    import grain
    from absl import flags

    if not flags.FLAGS.is_parsed():  # Grain reads absl flags, which a program without absl.app never parses
        flags.FLAGS.mark_as_parsed()
    ds = (grain.MapDataset.source(data).map(fn).batch(batch).to_iter_dataset()
          .mp_prefetch(grain.MultiprocessingOptions(num_workers=processes)))
    return {"loader": f"grain mp_prefetch(num_workers={processes})", **_timed(ds, len)}


def run_workload(name: str, elements: int, processes: int) -> dict[str, Any]:
    fn, batch = FUNCTIONS[name]
    data = inputs(name, elements)
    start = time.perf_counter()
    for element in data[:20]:
        fn(element)
    per_element = (time.perf_counter() - start) / 20
    runs = [run_fastinput(fn, batch, data, "thread", processes),
            run_fastinput(fn, batch, data, "process", processes),
            run_torch(fn, batch, data, processes)]
    if name != "trivial":
        runs.append(run_grain(fn, batch, data, processes))
    threads, procs = runs[0]["elements_per_second"], runs[1]["elements_per_second"]
    summary: dict[str, Any] = {
        "function_ms_per_element": per_element * 1e3, "batch_size": batch, "runs": runs,
        "processes_vs_threads": procs / threads,
        "processes_vs_torch_dataloader": procs / runs[2]["elements_per_second"],
    }
    if len(runs) > 3:
        summary["processes_vs_grain"] = procs / runs[3]["elements_per_second"]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--elements", type=int, default=3000, help="elements per run (the trivial workload: 100x)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="worker processes in every loader")
    parser.add_argument("--workloads", default="gil,pil,trivial")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    summary: dict[str, Any] = {"machine": {**script_machine(), "load_average_before": os.getloadavg()[0]}}
    for name in args.workloads.split(","):
        elements = args.elements * (100 if name == "trivial" else 1)
        summary[name] = result = run_workload(name, elements, args.workers)
        print(f"{name}: {result['function_ms_per_element']:.2f} ms per element, batch {result['batch_size']}")
        for run in result["runs"]:
            print(f"  {run['loader']:<55} {run['elements_per_second']:>12,.0f} elements/s "
                  f"(first batch {run['first_batch_seconds']:.2f} s)")
        ratios = {k: v for k, v in result.items() if k.startswith("processes_vs")}
        print("  " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    summary["machine"]["load_average_after"] = os.getloadavg()[0]
    write_figures(args.json, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
