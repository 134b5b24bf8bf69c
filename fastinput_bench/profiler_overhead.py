"""What the profiler costs: throughput with tracing off and on, and with the hooks idle versus no hooks at all.

1. Tracing on vs off (the issue's figure: at most 5% fewer images/s): one
   running pipeline, timed over consecutive windows of ``--window`` batches
   with tracing off and on in turn (off/on, then on/off, ...), so both sides
   see the same threads, buffers and machine load; each traced window is
   written to a trace file after it is timed. Pipelines: the ResNet-50
   training pipeline of ``fastinput_bench.image_pipelines`` (batch 64) on the
   synthetic ImageNet TFRecords, and ``range -> map(x + 1, AUTOTUNE) ->
   batch(256)`` (tiny elements, the most events per item). The overhead is
   one minus the median ratio of each traced window to its untraced partner;
   next to it, an estimate the noise cannot blur: events recorded per item
   times the cost of recording one.
2. Hooks idle vs no hooks: ``range(N).map(x + 1, AUTOTUNE).batch(256)``, no
   trace active, run by a copy of the package and by a copy whose trace hooks
   (every ``if`` on ``instrument.ACTIVE``) were cut out of the syntax tree, each
   run in a fresh process, alternating; with the estimate: hook checks per
   element (about the events a traced run records per element) times the
   cost of one check.

    python -m fastinput_bench.profiler_overhead [--pairs 8] [--window 20] [--rounds 6] [--core-elements 2000000]
        [--json out.json]

The machine is shared and noisy: read the medians and the spread, not one run.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastinput_bench.report import write_figures

PACKAGE = Path(__file__).resolve().parent.parent / "fastinput"
IMAGE_BATCH = 64
CORE_BATCH = 256
WARMUP_BATCHES = 40
"""Batches taken before the first window: threads start, buffers fill, the autotuner settles."""
CORE_WINDOW_FACTOR = 50
"""Core-map windows are this many times longer (in batches) than image windows: its batches take ~1 ms."""

_CORE_CHILD = """
import sys, time
import fastinput as fi
assert fi.__file__.startswith(sys.argv[2]), fi.__file__
ds = fi.Dataset.range(int(sys.argv[1])).map(lambda x: x + 1, num_parallel_calls=fi.AUTOTUNE).batch(256)
start = time.perf_counter()
count = sum(len(batch) for batch in ds)
print(count / (time.perf_counter() - start))
"""


def core_map(elements: int) -> Any:
    import fastinput as fi

    return fi.Dataset.range(elements).map(lambda x: x + 1, num_parallel_calls=fi.AUTOTUNE).batch(CORE_BATCH)


def image_pipeline() -> Any:
    """The ResNet-50 training pipeline over the synthetic ImageNet files (written on first use), repeated forever."""
    from fastinput_bench.data.imagenet_synthetic import ensure_imagenet_synthetic
    from fastinput_bench.image_pipelines import fastinput_images

    files = ensure_imagenet_synthetic(num_images=2048, num_files=16)
    return fastinput_images(files, IMAGE_BATCH, "uint8")


# -- 1. tracing on vs off, windows of one running pipeline ------------------------------------------------------


def batch_items(batch: Any) -> int:
    """Items in a batch: the first dimension of its first component."""
    return len(batch[0] if isinstance(batch, tuple) else batch)


def timed_window(it: Iterator[Any], batches: int) -> tuple[float, int]:
    """(items/s, items) over the next ``batches`` batches."""
    start, items = time.perf_counter(), 0
    for _ in range(batches):
        items += batch_items(next(it))
    return items / (time.perf_counter() - start), items


def trace_on_off(dataset: Any, pairs: int, window: int, trace_path: str) -> dict:
    """Windows with tracing off and on in turn over one iterator; events recorded per item on the traced side."""
    import fastinput as fi

    rates: dict[str, list[float]] = {"off": [], "on": []}
    events = traced_items = 0
    with iter(dataset) as it:
        for _ in range(WARMUP_BATCHES):
            next(it)
        for pair in range(pairs):
            for side in ("off", "on") if pair % 2 == 0 else ("on", "off"):
                if side == "off":
                    rate, _ = timed_window(it, window)
                else:
                    with fi.profiler.trace(trace_path):
                        rate, items = timed_window(it, window)
                    with open(trace_path) as f:
                        other = json.load(f)["otherData"]
                    events += other["recorded_events"] + other["dropped_events"]
                    traced_items += items
                rates[side].append(rate)
    return {**summarize(rates["off"], rates["on"]), "events_per_item": events / traced_items}


def summarize(base: list[float], other: list[float]) -> dict:
    """Medians of both sides and the overhead: one minus the median of the paired ratios other/base."""
    ratios = [b / a for a, b in zip(base, other)]
    return {"base_median": statistics.median(base), "other_median": statistics.median(other),
            "base": base, "other": other, "overhead_percent": 100 * (1 - statistics.median(ratios))}


# -- 2. idle hooks vs no hooks, in fresh processes --------------------------------------------------------------


class _CutTraceHooks(ast.NodeTransformer):
    """Removes every ``if`` whose test reads ``instrument.ACTIVE`` (or a ``tracer`` taken from it), and those reads."""

    def __init__(self) -> None:
        self.removed = 0

    @staticmethod
    def _reads_tracer(node: ast.AST) -> bool:
        return any((isinstance(n, ast.Attribute) and n.attr == "ACTIVE")
                   or (isinstance(n, ast.Name) and n.id == "tracer")
                   for n in ast.walk(node))

    def visit_If(self, node: ast.If) -> Any:
        self.generic_visit(node)
        if not self._reads_tracer(node.test):
            return node
        self.removed += 1
        return node.orelse or ast.Pass()

    def visit_Assign(self, node: ast.Assign) -> Any:
        return ast.Pass() if self._reads_tracer(node.value) else node


def copy_package(destination: Path, cut_hooks: bool) -> int:
    """Copy the fastinput package under ``destination``; with ``cut_hooks``, without its trace hooks. Returns hooks
    cut."""
    target = destination / "fastinput"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    if not cut_hooks:
        return 0
    removed = 0
    for path in target.rglob("*.py"):
        if "profiler" in path.relative_to(target).parts:
            continue
        cutter = _CutTraceHooks()
        tree = cutter.visit(ast.parse(path.read_text()))
        if cutter.removed:
            path.write_text(ast.unparse(ast.fix_missing_locations(tree)))
            removed += cutter.removed
    return removed


def core_map_in_process(root: Path, elements: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", _CORE_CHILD, str(elements), str(root)], cwd=root, env=env,
                         check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def hooks_idle_vs_none(elements: int, rounds: int) -> dict:
    """``core_map`` throughput: the package with its hooks cut out (base) vs as it is, with no trace active."""
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"none": Path(tmp, "without_hooks"), "idle": Path(tmp, "with_hooks")}
        cut = copy_package(roots["none"], cut_hooks=True)
        copy_package(roots["idle"], cut_hooks=False)
        rates: dict[str, list[float]] = {"none": [], "idle": []}
        for round_index in range(rounds):
            for side in ("none", "idle") if round_index % 2 == 0 else ("idle", "none"):
                rates[side].append(core_map_in_process(roots[side], elements))
    return {**summarize(rates["none"], rates["idle"]), "hooks_cut": cut}


def hook_check_seconds() -> float:
    """The cost of one idle hook: reading ``instrument.ACTIVE`` and comparing it with None."""
    return _seconds_per_call("if _trace.ACTIVE is not None: pass", "from fastinput._engine import instrument as _trace")


def event_record_seconds() -> float:
    """The cost of recording one complete event in an active trace (the times are taken anyway, for the metrics)."""
    return _seconds_per_call("tracer.complete('map(f)', 1, 2, {'elements': 3})",
                             "from fastinput.profiler.tracing import Tracer; tracer = Tracer(1 << 40)")


def _seconds_per_call(statement: str, setup: str) -> float:
    timer = timeit.Timer(statement, setup)
    loops, _ = timer.autorange()
    return min(timer.repeat(5, loops)) / loops


# -- report ---------------------------------------------------------------------------------------------------------


def _lines(title: str, result: dict, base: str, other: str, unit: str) -> list[str]:
    return [f"{title}",
            f"  {base}: median {result['base_median']:,.0f} {unit}/s   "
            f"({', '.join(f'{r:,.0f}' for r in result['base'])})",
            f"  {other}: median {result['other_median']:,.0f} {unit}/s   "
            f"({', '.join(f'{r:,.0f}' for r in result['other'])})",
            f"  overhead (1 - median of paired ratios): {result['overhead_percent']:+.1f}%"]


def _estimate(what: str, per_item: float, seconds_each: float, items_per_second: float, unit: str) -> str:
    """The cost the noise cannot hide: ``per_item`` operations of ``seconds_each`` against an item's time."""
    cost = per_item * seconds_each
    return (f"  estimate: {per_item:.4g} {what} per {unit} x {seconds_each * 1e9:.0f} ns = "
            f"{cost * 1e9:.3g} ns per {unit}, "
            f"{100 * cost * items_per_second:.3g}% of the {1e6 / items_per_second:.3g} us one {unit} takes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=8, help="off/on window pairs per pipeline")
    parser.add_argument("--window", type=int, default=20, help=f"image batches ({IMAGE_BATCH} images) per window")
    parser.add_argument("--rounds", type=int, default=6, help="hooks/no-hooks process pairs")
    parser.add_argument("--core-elements", type=int, default=2_000_000, help="elements of range(N).map(x + 1) per run")
    parser.add_argument("--skip-images", action="store_true", help="leave out the image pipeline (it needs TensorFlow)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    results: dict[str, Any] = {"cpus": os.cpu_count(), "args": vars(args)}
    event = results["event_record_seconds"] = event_record_seconds()
    check = results["hook_check_seconds"] = hook_check_seconds()
    report: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        trace_path = os.path.join(tmp, "trace.json")
        if not args.skip_images:
            images = results["images"] = trace_on_off(image_pipeline(), args.pairs, args.window, trace_path)
            report += _lines(f"ResNet-50 training pipeline, batch {IMAGE_BATCH}, {args.window}-batch windows:",
                             images, "trace off", "trace on ", "images")
            report.append(_estimate("events", images["events_per_item"], event, images["base_median"], "image"))
        core = results["core_map"] = trace_on_off(core_map(2**62), args.pairs, args.window * CORE_WINDOW_FACTOR,
                                                  trace_path)
        report += _lines(f"range -> map(x + 1, AUTOTUNE) -> batch(256), "
                         f"{args.window * CORE_WINDOW_FACTOR}-batch windows:",
                         core, "trace off", "trace on ", "elements")
        report.append(_estimate("events", core["events_per_item"], event, core["base_median"], "element"))
    hooks = results["hooks"] = hooks_idle_vs_none(args.core_elements, args.rounds)
    report += _lines(f"range({args.core_elements:,}) -> map(x + 1, AUTOTUNE) -> batch(256), no trace, fresh processes "
                     f"({hooks['hooks_cut']} hook sites cut):", hooks, "no hooks  ", "idle hooks", "elements")
    report.append(_estimate("hook checks (about the events a traced run records)", core["events_per_item"], check,
                            hooks["base_median"], "element"))
    print("\n".join(report))
    write_figures(args.json, results)


if __name__ == "__main__":
    main()
