"""Fuzz target: ``sample_from_datasets`` over TFRecord files, batched, fused and not.

An input is two to four uncompressed TFRecord files (a few records each, now and then one longer than a read
buffer; one file often damaged: bits flipped, cut short, a huge length), a seed, repeat counts, a batch size and
``stop_on_empty_dataset``. fastinput runs ``sample_from_datasets([TFRecordDataset([f]).repeat(r) ...]).batch(b)``
twice: with the mix-and-batch rewrite (which reads such inputs in its own way: spans of each file's buffer, laid
out into the batch) and without it (the mix, then ``batch``, each compared with tf.data in the op tests). Both must
give the same batches and the same errors in the same places, each error a ``fastinput.errors`` exception naming
its file; and a state the fused pipeline saves at a batch picked from the input restores, fused and unfused, to
the same rest. The mix's draws are fastinput's own (tf.data's differ), so TensorFlow is no oracle here; its record
reader is the tfrecord target's.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput.readers.framing import frame
from tests.fuzz.mutate import mutate

NAME = "mix"
MEMORY_LIMIT = 3 << 30
"""The child runs without TensorFlow: an input that asks for a huge allocation fails it, not the machine."""
MAX_OUTCOMES = 400
"""Batches and errors compared per run (every input's pipeline is finite; this bounds a slow one)."""
_folder = ""

Input = tuple[list[bytes], int, list[int], int, bool]
"""(the files' bytes, the mix's seed, each file's repeat count, batch size, stop_on_empty_dataset)."""


def prepare() -> None:
    global _folder
    import fastinput  # noqa: F401

    _folder = tempfile.mkdtemp(prefix="fuzz-mix-")
    atexit.register(shutil.rmtree, _folder, True)


def _file(rng: np.random.Generator) -> bytes:
    sizes = [int(rng.integers(0, 300)) if rng.random() < 0.95 else int(rng.integers(60_000, 1_200_000))
             for _ in range(int(rng.integers(0, 12)))]
    return b"".join(frame(rng.bytes(size)) for size in sizes)


def make_input(rng: np.random.Generator) -> Input:
    files = [_file(rng) for _ in range(int(rng.integers(2, 5)))]
    if rng.random() < 0.7:
        damaged = int(rng.integers(len(files)))
        files[damaged] = mutate(files[damaged], rng)
    repeats = [int(rng.integers(1, 4)) for _ in files]
    return files, int(rng.integers(0, 2**31)), repeats, int(rng.integers(1, 40)), bool(rng.random() < 0.5)


def from_fuzzer_bytes(data: bytes) -> Input:
    """An input from a coverage-guided fuzzer's bytes: the first byte picks the batch size, the rest is two files."""
    if not data:
        return [b"", b""], 0, [1, 1], 1, False
    half = len(data) // 2
    return [data[1:half], data[half:]], data[0], [2, 1], 1 + data[0] % 32, bool(data[0] & 1)


def fuzzer_bytes(inp: Input) -> bytes:
    return bytes([inp[3] % 256]) + b"".join(inp[0][:2])


def payload(inp: Input) -> tuple[bytes, str]:
    return inp[0][0], ".tfrecord"


def _pipeline(paths: list[str], inp: Input, fused: bool) -> Any:
    import fastinput as fi

    _, seed, repeats, batch_size, stop = inp
    sources = [fi.TFRecordDataset([path]).repeat(count) for path, count in zip(paths, repeats)]
    dataset = fi.Dataset.sample_from_datasets(sources, seed=seed, stop_on_empty_dataset=stop).batch(batch_size)
    return dataset.with_options(fi.Options(optimization=fi.OptimizationOptions(mix_and_batch_fusion=fused)))


def _next_outcomes(it: Any, limit: int) -> list[Any]:
    """Up to ``limit`` batches (lists of records) and errors (type, message) from ``it``, in order."""
    out: list[Any] = []
    while len(out) < limit:
        try:
            out.append([bytes(record) for record in next(it)])
        except StopIteration:
            break
        except Exception as exc:  # noqa: BLE001 - which error it is, is what gets compared
            out.append((type(exc).__name__, str(exc)))
    return out


def _outcomes(paths: list[str], inp: Input, fused: bool) -> list[Any]:
    with iter(_pipeline(paths, inp, fused)) as it:
        return _next_outcomes(it, MAX_OUTCOMES)


def _resumed(paths: list[str], inp: Input, cut: int, fused: bool) -> list[Any]:
    """The outcomes after ``cut``, from a state saved there by the fused pipeline and restored in a fresh
    iterator of the fused (or unfused) one."""
    with iter(_pipeline(paths, inp, True)) as it:
        _next_outcomes(it, cut)
        state = json.loads(json.dumps(it.get_state()))
    with iter(_pipeline(paths, inp, fused)) as resumed:
        resumed.set_state(state)
        return _next_outcomes(resumed, MAX_OUTCOMES - cut)


def check(inp: Input, oracle: Callable[[], None]) -> str | None:
    paths = []
    for i, data in enumerate(inp[0]):
        paths.append(os.path.join(_folder, f"{i}.tfrecord"))
        with open(paths[-1], "wb") as f:
            f.write(data)
    from fastinput import errors

    fused, unfused = _outcomes(paths, inp, True), _outcomes(paths, inp, False)
    for outcome in fused:
        if isinstance(outcome, tuple):
            kind, message = outcome
            if not isinstance(getattr(errors, kind, None), type) or not any(path in message for path in paths):
                return f"fused: an error that is no fastinput error naming its file: {kind}: {message[:300]}"
    if fused != unfused:
        return _difference("fused", fused, "unfused", unfused)
    cut = zlib.crc32(inp[0][0]) % (len(fused) + 1)
    for restored_fused in (True, False):
        rest = _resumed(paths, inp, cut, restored_fused)
        if rest != fused[cut:]:
            how = "fused" if restored_fused else "unfused"
            return _difference(f"restored {how} at {cut}", rest, "the uninterrupted run", fused[cut:])
    return None


def _difference(name: str, outcomes: list[Any], other_name: str, other: list[Any]) -> str:
    at = next((i for i, (a, b) in enumerate(zip(outcomes, other)) if a != b), min(len(outcomes), len(other)))
    return (f"{name}: {len(outcomes)} outcomes, {other_name}: {len(other)}; first difference at {at}: "
            f"{_shown(outcomes, at)} vs {_shown(other, at)}")


def _shown(outcomes: list[Any], at: int) -> str:
    if at >= len(outcomes):
        return "the end"
    item = outcomes[at]
    return f"{item[0]}: {item[1][:200]}" if isinstance(item, tuple) else f"a batch of {len(item)}"
