"""``as_tf_dataset`` against fastinput's own iteration, on the differential tester's random pipelines.

For a seed, the pipeline of :func:`tests.conformance.differential.generate` (one compared exactly: no
``deterministic=False`` stage), maybe with string leaves added by a last map (:class:`Strings`, whose variant
leaves them packed, as ``make_batched_features_dataset``'s parser does) and a stage that passes elements through,
is iterated by fastinput and, handed to TensorFlow with ``ds.as_tf_dataset()``, by TensorFlow: with
``FASTINPUT_TF_OPS=off`` (graph ops cut the packed strings) and ``require`` (fastinput's native op cuts them where
every string leaf holds one number of values, known from the element spec). The events must be the same, element
by element; errors compare by place only (TensorFlow raises every pipeline error as an InvalidArgumentError). A
pipeline that ends in ``sparse_batch`` gets no string leaves (the map that adds them takes dense leaves).
Pipelines whose element spec leaves a rank unknown (``as_tf_dataset`` refuses them) are left out.

    python -m tests.conformance.as_tf --seeds 2000 [--start N]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastinput._engine.traits import PacksStrings
from fastinput.tf_values import PackedStrings
from tests.conformance.differential import generate
from tests.conformance.oracle import MAX_EVENTS, Event, Outcome, iterate
from tests.conformance.pipeline import Pipeline

MODES = ("off", "require")
"""The ``FASTINPUT_TF_OPS`` settings each pipeline crosses with."""


def _text(value: Any) -> bytes:
    """A number as bytes of varied length: empty for multiples of 5, NUL bytes after some."""
    n = int(np.real(value))
    return b"" if n % 5 == 0 else b"%d" % n + b"\x00" * (n % 3)


class Strings(PacksStrings):
    """``x -> (x, strings)``: string leaves made from the element's first leaf, whose variant
    (``packing_strings``) gives them as ``PackedStrings``. ``kind``: ``one`` (a scalar string: one value per
    element, the native op's case), ``each`` (a string per value of the first leaf, in its shape) or ``both``."""

    def __init__(self, kind: str, packed: bool = False) -> None:
        self.kind = kind
        self.packed = packed

    def __repr__(self) -> str:
        return f"Strings({self.kind!r})"

    def packing_strings(self) -> Strings:
        return Strings(self.kind, packed=True)

    def _leaf(self, values: np.ndarray) -> Any:
        texts = np.array([_text(v) for v in values.ravel()] + [None], dtype=object)[:-1].reshape(values.shape)
        if not self.packed:
            return texts[()] if texts.ndim == 0 else texts
        packed = PackedStrings.of(texts)
        return PackedStrings(packed.blob, packed.offsets, values.shape)

    def __call__(self, *args: Any) -> Any:
        element = args if len(args) > 1 else args[0]
        first = element
        while isinstance(first, tuple | dict):
            first = first[min(first)] if isinstance(first, dict) else first[0]
        first = np.asarray(first)
        strings = {}
        if self.kind in ("one", "both"):
            strings["one"] = self._leaf(np.asarray(first.sum()))
        if self.kind in ("each", "both"):
            strings["each"] = self._leaf(first)
        return element, strings


@dataclasses.dataclass
class Case:
    """A seed's pipeline as fastinput builds it, with what was added after it."""

    pipeline: Pipeline
    strings: str | None
    after: str | None

    def __repr__(self) -> str:
        tail = "" if self.strings is None else f".map(Strings({self.strings!r}))"
        return f"{self.pipeline!r}{tail}{'' if self.after is None else '.' + self.after}"

    def build(self, workdir: str) -> Any:
        ds = self.pipeline.build("fi", workdir)
        if self.strings is not None:
            ds = ds.map(Strings(self.strings))
        if self.after == "prefetch(2)":
            ds = ds.prefetch(2)
        elif self.after == "take(40)":
            ds = ds.take(40)
        return ds


def case_of(seed: int) -> Case | None:
    """The seed's case, or None where its pipeline is not compared exactly."""
    pipeline, mode = generate(seed)
    if mode != "exact":
        return None
    rng = random.Random(seed)
    strings = rng.choice([None, "one", "one", "each", "both"])
    after = rng.choice([None, None, "prefetch(2)", "take(40)"])
    if pipeline.steps[-1].op == "sparse_batch":  # sparse elements: the Strings map makes strings of dense leaves
        strings = None
    return Case(pipeline, strings, after)


@contextlib.contextmanager
def tf_ops_mode(mode: str) -> Iterator[None]:
    """``FASTINPUT_TF_OPS=mode`` inside the block (``as_tf_dataset`` reads it when it is called)."""
    before = os.environ.get("FASTINPUT_TF_OPS")
    os.environ["FASTINPUT_TF_OPS"] = mode
    try:
        yield
    finally:
        if before is None:
            del os.environ["FASTINPUT_TF_OPS"]
        else:
            os.environ["FASTINPUT_TF_OPS"] = before


def _by_place(outcome: Outcome) -> list[Event]:
    return [Event("error", "") if event.what == "error" else event for event in outcome.events]


@dataclasses.dataclass
class Result:
    case: Case | None
    problems: list[str]
    left_out: str | None = None
    native_op: bool = False
    """Whether the native op cut the strings (``require``: every string leaf holds one static number of values)."""


def check_seed(seed: int) -> Result:
    """fastinput's events of the seed's case, and TensorFlow's through ``as_tf_dataset`` in each mode of
    ``MODES``; the problems found. Each run builds the pipeline afresh in a folder of its own: a cache replays (and
    leaves out the errors of) what an earlier iteration recorded."""
    import fastinput as fi

    case = case_of(seed)
    if case is None:
        return Result(None, [], left_out="not compared exactly")
    with tempfile.TemporaryDirectory(prefix="as-tf-") as workdir:
        try:
            ds = case.build(workdir)
        except Exception as exc:
            return Result(case, [], left_out=f"fastinput refuses it: {type(exc).__name__}")
        expected = Outcome()
        iterate(ds, "fi", expected, MAX_EVENTS)
    problems: list[str] = []
    for mode in MODES:
        with tempfile.TemporaryDirectory(prefix="as-tf-") as workdir, tf_ops_mode(mode):
            ds = case.build(workdir)
            try:
                adapted = ds.as_tf_dataset()
            except fi.errors.InvalidArgumentError as exc:
                if "unknown rank" in str(exc):
                    return Result(case, [], left_out="a rank unknown")
                problems.append(f"{mode}: as_tf_dataset raised {exc}")
                continue
            actual = Outcome()
            iterate(adapted, "tf", actual, MAX_EVENTS)
        e, a = _by_place(expected), _by_place(actual)
        if e != a:
            first = next(i for i in range(max(len(e), len(a))) if i >= min(len(e), len(a)) or e[i] != a[i])
            problems.append(f"FASTINPUT_TF_OPS={mode}: event {first}: fastinput {_at(e, first)}, through "
                            f"as_tf_dataset {_at(a, first)}; errors: {actual.details[:2]}")
    return Result(case, problems, native_op=_cut_by_native_op(ds))


def _cut_by_native_op(ds: Any) -> bool:
    from fastinput import tf_adapter
    from fastinput.optional import tensorflow

    specs = tf_adapter._component_specs(tf_adapter.tf_element_spec(ds.element_spec))
    tf = tensorflow("as_tf_dataset")
    shapes = [spec.shape for spec in specs if spec.dtype == tf.string]
    return bool(shapes) and tf_adapter._common_size(shapes) is not None


def _at(events: list[Event], i: int) -> str:
    return repr(events[i]) if i < len(events) else "nothing"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=500, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    args = parser.parse_args(argv)
    started, failing, left_out, native, checked = time.monotonic(), 0, 0, 0, 0
    for seed in range(args.start, args.start + args.seeds):
        result = check_seed(seed)
        if result.left_out is not None:
            left_out += 1
            continue
        checked += 1
        native += result.native_op
        if result.problems:
            failing += 1
            print(f"--- seed {seed}: {result.case!r}", *result.problems[:3], sep="\n  ", flush=True)
    print(f"=== {args.seeds} seeds in {time.monotonic() - started:.0f} s: {checked} checked ({native} with strings cut "
          f"by the native op), {failing} failing, {left_out} left out")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
