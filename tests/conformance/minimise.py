"""Minimising a mismatching random pipeline, and grouping mismatches by what they involve.

:func:`minimise` removes steps, shortens nested pipelines, halves range sizes and drops parallelism while
the pipeline still mismatches the same way; :func:`signature` names a mismatch by its ops (errors marked)
and kind of difference, so that thousands of seeds read as a few groups. :func:`time_limit` bounds a seed
or a candidate (a hang in either library is reported, not waited for).
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
from collections.abc import Iterator
from typing import Any

from tests.conformance.functions import FailAt, Gen
from tests.conformance.oracle import Mismatch, compare, run, tf_outcome
from tests.conformance.pipeline import DatasetFn, Pipeline, Step


class SeedTimeout(BaseException):
    """A seed ran past its time limit (a hang in one of the libraries); no ``except Exception`` catches it."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`SeedTimeout` in the main thread after ``seconds`` (None: no limit)."""
    if not seconds:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _alarm(signum: int, frame: Any) -> None:
    raise SeedTimeout


def _smaller_steps(step: Step) -> list[Step]:
    """Simpler versions of one step: nested pipelines shortened, counts halved, parallelism removed."""
    out = []
    for i, arg in enumerate(step.args):
        if isinstance(arg, Pipeline):
            out += [dataclasses.replace(step, args=step.args[:i] + (p,) + step.args[i + 1:]) for p in _smaller(arg)]
        if isinstance(arg, tuple) and all(isinstance(a, Pipeline) for a in arg):
            for j, part in enumerate(arg):
                for p in _smaller(part):
                    parts = arg[:j] + (p,) + arg[j + 1:]
                    out.append(dataclasses.replace(step, args=step.args[:i] + (parts,) + step.args[i + 1:]))
        if isinstance(arg, int) and not isinstance(arg, bool) and step.op == "range" and abs(arg) > 1:
            out.append(dataclasses.replace(step, args=step.args[:i] + (arg // 2,) + step.args[i + 1:]))
    kwargs = dict(step.kwargs)
    if kwargs.get("num_parallel_calls") is not None and step.op == "map":
        out.append(dataclasses.replace(step, kwargs=tuple((k, v) for k, v in step.kwargs if k != "num_parallel_calls")))
    return out


def _smaller(pipeline: Pipeline) -> list[Pipeline]:
    steps = pipeline.steps
    candidates = [Pipeline(steps[:i] + steps[i + 1:]) for i in range(1, len(steps))]
    for i, step in enumerate(steps):
        candidates += [Pipeline(steps[:i] + (smaller,) + steps[i + 1:]) for smaller in _smaller_steps(step)]
    return [c for c in candidates if _finite(c)]


def _finite(pipeline: Pipeline) -> bool:
    """False where an endless repeat is no longer followed by a take (minimising must keep outputs finite)."""
    steps = pipeline.steps
    for i, step in enumerate(steps):
        endless = step.op == "repeat" and (not step.args or step.args[0] in (None, -1))
        if endless and (i + 1 == len(steps) or steps[i + 1].op != "take"):
            return False
    return True


def minimise(mismatch: Mismatch, budget: int = 60, timeout: float | None = None) -> Mismatch:
    """A smaller pipeline that still mismatches the same way (tf.data still accepts it).

    Tries at most ``budget`` candidates, each for at most ``timeout`` seconds.
    """
    kind = mismatch.reason.split(":")[0].split(" ")[0]
    best, tried = mismatch, 0
    improved = True
    while improved and tried < budget:
        improved = False
        for candidate in _smaller(best.pipeline):
            tried += 1
            if tried > budget:
                break
            try:
                with time_limit(timeout):
                    expected = tf_outcome(candidate, shuffle_and_repeat_fusion=False)  # as check_seed runs it
                    if expected.construct_error is not None and mismatch.expected.construct_error is None:
                        continue
                    found = compare(candidate, expected, run(candidate, "fi"), best.mode)
            except (Exception, SeedTimeout):
                continue
            if found is not None and found.reason.split(":")[0].split(" ")[0] == kind:
                best, improved = found, True
                break
    return best


def signature(mismatch: Mismatch) -> str:
    """What a mismatch is about, to group seeds: the pipeline's ops (errors marked) and the kind of difference."""
    features: set[str] = set()

    def visit(pipeline: Pipeline) -> None:
        for step in pipeline.steps:
            name = step.op
            for value in (*step.args, *(v for _, v in step.kwargs)):
                if isinstance(value, FailAt):
                    name += ":stop" if value.exc == "stop" else ":error"
                elif isinstance(value, Gen) and value.fail_at is not None:
                    name += ":error"
                elif isinstance(value, DatasetFn):
                    visit(value.template)
                for nested in value if isinstance(value, tuple) else (value,):
                    if isinstance(nested, Pipeline):
                        visit(nested)
            if name not in ("range", "from_tensor_slices", "from_tensors", "element_range", "element_tensors"):
                features.add(name)

    visit(mismatch.pipeline)
    kind = "".join(c for c in mismatch.reason.split(":")[0] if not c.isdigit()).strip()
    return f"{' '.join(sorted(features))} | {kind}"
