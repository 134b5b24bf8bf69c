"""Runs a fuzz campaign: batches of inputs in child processes, crashes and hangs caught, inputs saved.

Input ``i`` of a campaign with seed ``s`` is made from ``numpy.random.default_rng((s, i))``, so a child
needs only the range of indices, and the parent remakes any input to save it. The child (``child.py``)
reports on stdout, one line each: ``READY``, then per input ``F i`` (fastinput runs on it), ``O i`` (the
oracle, TensorFlow, runs on it), ``S i`` (the oracle was skipped: fastinput refused an input TensorFlow's
kernel would crash on), ``M i message`` (a mismatch), and ``END`` after the last. A child that dies or
says nothing for ``input_timeout`` seconds is a crash or a hang of whoever ran last: fastinput's is a
failure, the oracle's own is counted apart and skipped; either way a new child goes on after that input.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

TARGETS = ("tfrecord", "example", "jpeg", "mix", "shuffle")
ORACLE_SKIPPED = "oracle skipped"
"""What a target's ``check`` returns when it did not run TensorFlow: fastinput refused an input on which
TensorFlow's kernel would crash (``check`` returns None when all agreed, else the mismatch in words)."""
_STARTUP_TIMEOUT = 180.0
"""Seconds a child may take to import what it needs (TensorFlow) on a busy machine."""


def target_module(name: str) -> ModuleType:
    if name not in (*TARGETS, "selftest"):  # selftest: the runner's own test (test_fuzz.py)
        raise ValueError(f"unknown fuzz target {name!r}; one of {', '.join(TARGETS)}")
    return importlib.import_module(f"tests.fuzz.target_{name}")


def make_input(target: ModuleType, seed: int, index: int) -> Any:
    return target.make_input(np.random.default_rng((seed, index)))


@dataclasses.dataclass
class Report:
    """What a campaign found. ``failures``: one line per crash, hang or mismatch, naming the saved input."""

    target: str
    seed: int
    inputs: int = 0
    crashes: int = 0
    hangs: int = 0
    mismatches: int = 0
    oracle_crashes: int = 0
    oracle_skipped: int = 0
    seconds: float = 0.0
    failures: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.target}: {self.inputs} inputs (seed {self.seed}) in {self.seconds:.0f} s: "
                f"{self.crashes} crashes, {self.hangs} hangs, {self.mismatches} mismatches; "
                f"TensorFlow's own crashes skipped: {self.oracle_crashes}; oracle not run (fastinput refused an "
                f"input TensorFlow's kernel would crash on): {self.oracle_skipped}")


def save_input(target: ModuleType, seed: int, index: int, out_dir: Path) -> Path:
    """Input ``index`` pickled for ``--replay``, with its main bytes beside it (a .tfrecord, .jpg, ...)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    inp = make_input(target, seed, index)
    stem = out_dir / f"{target.NAME}-seed{seed}-input{index}"
    stem.with_suffix(".pickle").write_bytes(pickle.dumps((target.NAME, inp)))
    data, suffix = target.payload(inp)
    stem.with_suffix(suffix).write_bytes(data)
    return stem.with_suffix(".pickle")


def run_campaign(target_name: str, inputs: int, seed: int = 0, *, out_dir: Path, batch: int = 2000,
                 input_timeout: float = 60.0, start: int = 0, progress: bool = False) -> Report:
    """Run inputs ``start`` .. ``start + inputs - 1`` of ``target_name`` with ``seed``, ``batch`` per child."""
    target = target_module(target_name)
    report = Report(target_name, seed)
    began = time.monotonic()
    index, stop = start, start + inputs
    while index < stop:
        index = _run_child(target, seed, index, min(stop, index + batch), input_timeout, out_dir, report)
        report.seconds = time.monotonic() - began
        if progress:
            print(f"[{time.strftime('%H:%M:%S')}] {report.summary()}", flush=True)
    return report


def _run_child(target: ModuleType, seed: int, first: int, stop: int, input_timeout: float, out_dir: Path,
               report: Report) -> int:
    """Run inputs first .. stop-1 in one child; returns where the next child starts."""
    command = [sys.executable, "-m", "tests.fuzz.child", target.NAME, str(seed), str(first), str(stop)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONFAULTHANDLER="1")
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    phase, index, ready = "F", first, False
    buffer = b""
    stderr_tail = b""
    try:
        while True:
            timeout = input_timeout if ready else _STARTUP_TIMEOUT
            readable, _, _ = select.select([child.stdout, child.stderr], [], [], timeout)
            if not readable:  # silent too long: a hang
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                if not ready:
                    raise RuntimeError(f"fuzz child for {target.NAME} did not start in {_STARTUP_TIMEOUT} s")
                _fault(target, seed, index, phase, "hang", f"no progress for {input_timeout} s", out_dir, report)
                return index + 1
            if child.stderr in readable:
                stderr_tail = (stderr_tail + os.read(child.stderr.fileno(), 65536))[-4000:]
            if child.stdout not in readable:
                continue
            chunk = os.read(child.stdout.fileno(), 65536)
            if not chunk:  # the child has gone
                code = child.wait()
                if not ready:
                    raise RuntimeError(f"fuzz child for {target.NAME} failed to start (exit {code}):\n"
                                       f"{stderr_tail.decode(errors='replace')}")
                detail = _describe_exit(code, stderr_tail)
                _fault(target, seed, index, phase, "crash", detail, out_dir, report)
                return index + 1
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                kind, _, rest = line.decode().partition(" ")
                if kind == "READY":
                    ready = True
                elif kind == "END":
                    child.wait()
                    return stop
                elif kind in ("F", "O"):
                    phase, index = kind, int(rest)
                    if kind == "F":
                        report.inputs += 1
                elif kind == "S":
                    report.oracle_skipped += 1
                elif kind == "M":
                    number, _, message = rest.partition(" ")
                    report.mismatches += 1
                    path = save_input(target, seed, int(number), out_dir)
                    report.failures.append(f"mismatch at input {number}, saved to {path}: {json.loads(message)}")
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        child.stdout.close()
        child.stderr.close()


def _describe_exit(code: int, stderr_tail: bytes) -> str:
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    last = stderr_tail.decode(errors="replace").strip().splitlines()[-6:]
    return how + ("; stderr ends: " + " | ".join(last) if last else "")


def _fault(target: ModuleType, seed: int, index: int, phase: str, kind: str, detail: str, out_dir: Path,
           report: Report) -> None:
    """Record a crash or hang at input ``index``: fastinput's is a failure (input saved), the oracle's is not."""
    if phase == "O":
        report.oracle_crashes += 1
        return
    if kind == "hang":
        report.hangs += 1
    else:
        report.crashes += 1
    path = save_input(target, seed, index, out_dir)
    report.failures.append(f"{kind} at input {index}, saved to {path}: {detail}")
