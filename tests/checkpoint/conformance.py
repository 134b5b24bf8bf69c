"""Checkpoint conformance: save a running pipeline, restore it in a fresh process, compare what comes next.

In the style of Grain's and torchdata's checkpoint tests. A case is a pipeline that a fresh process can rebuild
from a short key: ``op:<name>`` (a row of :data:`CASES`, one or more per op) or ``seed:<n>`` (the differential
tester's random chain of that seed, :func:`tests.conformance.differential.generate`). :func:`check_case` runs the
pipeline uninterrupted, carrying on after errors as a tf.data user does, and saves its state (``get_state``, then a
JSON round trip) at several points: before the first element, in the middle, right after an error was raised and at
the end of an epoch. A child process (``python -m tests.checkpoint.conformance --restore``) rebuilds the pipeline,
restores each state into a fresh iterator and returns what follows. Deterministic pipelines must continue with the
same events (elements, errors, the end) as the uninterrupted run; a ``deterministic=False`` pipeline must, with
what came before the save, give each epoch's multiset unchanged. A case may have a thread turn the autotuner's knobs
all through the run (``turn_knobs``), so that states are saved while the parallelism changes.

Stages that cannot save yet raise ``UnimplementedError``; :data:`NOT_YET_SAVED` lists them (by their traits' op),
and a case that meets that error in a pipeline using one of them is left out, not failed.

    python -m tests.checkpoint.conformance --seeds 2000 [--start N]

runs that many random chains and prints each failing seed's pipeline and difference.
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import dataclasses
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import fastinput as fi
from tests.checkpoint.readers import BUILDERS
from tests.conformance.differential import generate
from tests.conformance.functions import AddConst, FailAt, Gen, Mod, Pair, Vec
from tests.conformance.oracle import END, Event, canonical, error_kind
from tests.conformance.pipeline import AUTOTUNE, CacheFile, DatasetFn, P, Pipeline, Spec, element_range
from tests.conformance.sample import generate as generate_mix

NOT_YET_SAVED: frozenset[str] = frozenset()
"""The stages (their traits' ``op``) whose ``get_state`` may still raise ``UnimplementedError``: a case that meets it
in a pipeline using one of them is left out. Emptied as the stages learn to save; an op not listed must save."""

MAX_EVENTS = 600
"""Events recorded per run before the output counts as endless."""


@dataclasses.dataclass(frozen=True)
class Case:
    """A pipeline a fresh process rebuilds from its key, and how restored runs are compared."""

    pipeline: Pipeline | Callable[[str], fi.Dataset]
    """A description, or a function that makes the pipeline in a working folder (readers: their files there)."""
    mode: str = "exact"
    """``exact``, or ``multiset:N`` (``deterministic=False``: each of N equal epochs the same multiset)."""
    turn_knobs: bool = False
    """Keep setting every knob to random values from another thread during the uninterrupted run."""

    @property
    def writes_files(self) -> bool:
        """Whether running the pipeline writes into its working folder (a cache file)."""
        return isinstance(self.pipeline, Pipeline) and "CacheFile(" in repr(self.pipeline)

    def build(self, workdir: str) -> fi.Dataset:
        if isinstance(self.pipeline, Pipeline):
            return self.pipeline.build("fi", workdir)
        return self.pipeline(workdir)


def _slices(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64) * 3 - 5


CASES: dict[str, Case] = {
    # sources
    "range": Case(P.range(23)),
    "range_step": Case(P.range(40, 3, -3)),
    "from_tensor_slices": Case(P.from_tensor_slices(_slices(17))),
    "from_tensor_slices_tuple": Case(P.from_tensor_slices((_slices(9), _slices(9) * 10))),
    "from_tensors": Case(P.from_tensors(np.arange(3, dtype=np.int64)).repeat(4)),
    "from_generator": Case(P.from_generator(Gen(15), Spec((), "int64"))),
    "from_generator_error": Case(P.from_generator(Gen(15, fail_at=6), Spec((), "int64"))),
    # sequential ops
    "map": Case(P.range(20).map(AddConst(3))),
    "map_error": Case(P.range(20).map(FailAt(3, 11, 12))),
    "map_tuple": Case(P.range(12).map(Pair())),
    "filter": Case(P.range(30).filter(Mod(3, 1))),
    "filter_error": Case(P.range(30).filter(FailAt(4, 12, predicate=True))),
    "take": Case(P.range(30).take(11)),
    "take_while": Case(P.from_tensor_slices(np.concatenate([_slices(10) * 2, _slices(7)])).take_while(Mod(2, 0))),
    "unique": Case(P.from_tensor_slices(_slices(20) % 7).unique()),
    "ignore_errors": Case(P.range(30).map(FailAt(3, 4, 17), num_parallel_calls=2).ignore_errors()),
    "skip": Case(P.range(30).skip(7)),
    "shard": Case(P.range(30).shard(3, 1)),
    "enumerate": Case(P.range(10, 20).enumerate(5)),
    "batch": Case(P.range(23).batch(4)),
    "batch_drop_remainder": Case(P.range(23).batch(5, drop_remainder=True)),
    "batch_error": Case(P.range(23).map(FailAt(6)).batch(4)),
    "padded_batch": Case(P.range(15).map(Vec(1)).padded_batch(3)),
    "unbatch": Case(P.from_tensor_slices(np.arange(24, dtype=np.int64).reshape(6, 4)).unbatch()),
    "unbatch_of_batch": Case(P.range(17).batch(5).unbatch()),
    "repeat": Case(P.range(7).repeat(3)),
    "repeat_forever": Case(P.range(5).repeat().take(17)),
    "zip": Case(P.zip_datasets((P.range(10), P.range(5, 20).map(AddConst(100))))),
    "concatenate": Case(P.range(6).concatenate(P.range(10, 15))),
    "cache_memory": Case(P.range(9).map(AddConst(1)).cache("").repeat(3)),
    "cache_file": Case(P.range(9).cache(CacheFile()).repeat(3)),
    # parallel map, map_and_batch, prefetch
    "map_parallel": Case(P.range(40).map(AddConst(1), num_parallel_calls=3)),
    "map_parallel_autotune": Case(P.range(40).map(AddConst(1), num_parallel_calls=AUTOTUNE)),
    "map_parallel_error": Case(P.range(40).map(FailAt(5, 17, 18), num_parallel_calls=2)),
    "map_parallel_unordered": Case(P.range(40).map(AddConst(1), num_parallel_calls=3, deterministic=False).repeat(2),
                                   "multiset:2"),
    "map_and_batch": Case(P.range(41).map_and_batch(AddConst(1), 4, num_parallel_calls=2)),
    "map_and_batch_drop_remainder": Case(P.range(41).map_and_batch(AddConst(1), 4, drop_remainder=True)),
    "map_and_batch_error": Case(P.range(41).map_and_batch(FailAt(9), 4, num_parallel_calls=AUTOTUNE)),
    "map_then_batch_fused": Case(P.range(30).map(AddConst(2), num_parallel_calls=2).batch(3)),
    "prefetch": Case(P.range(20).prefetch(3)),
    "prefetch_autotune": Case(P.range(20).map(AddConst(1)).prefetch(AUTOTUNE)),
    "prefetch_error": Case(P.range(20).map(FailAt(4)).prefetch(2)),
    # interleave
    "interleave": Case(P.range(1, 8).interleave(DatasetFn(element_range(5)), cycle_length=3, block_length=2)),
    "interleave_parallel": Case(P.range(1, 9).interleave(DatasetFn(element_range(6)), cycle_length=3,
                                                         num_parallel_calls=2)),
    "interleave_parallel_error": Case(P.range(1, 9).interleave(DatasetFn(element_range(6).map(FailAt(3))),
                                                               cycle_length=2, num_parallel_calls=AUTOTUNE)),
    "interleave_unordered": Case(P.range(1, 9).interleave(DatasetFn(element_range(6)), cycle_length=3,
                                                          num_parallel_calls=2, deterministic=False).repeat(2),
                                 "multiset:2"),
    "flat_map": Case(P.range(1, 7).flat_map(DatasetFn(element_range(4)))),
    # shuffle
    "shuffle": Case(P.range(50).shuffle(10, seed=3)),
    "shuffle_unseeded": Case(P.range(50).shuffle(10)),
    "shuffle_buffer_larger_than_input": Case(P.range(12).shuffle(100, seed=1)),
    "shuffle_reshuffle_each_epoch": Case(P.range(15).shuffle(6, seed=4).repeat(3)),
    "shuffle_same_each_epoch": Case(P.range(15).shuffle(6, seed=4, reshuffle_each_iteration=False).repeat(2)),
    "shuffle_error": Case(P.range(30).map(FailAt(7)).shuffle(5, seed=2)),
    "shuffle_then_batch": Case(P.range(40).shuffle(8, seed=5).batch(3)),
    # the autotuner turning knobs while states are saved
    "autotuner_turns_knobs": Case(P.range(80).map(AddConst(1), num_parallel_calls=AUTOTUNE)
                                  .map_and_batch(AddConst(2), 3, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE),
                                  turn_knobs=True),
    "autotuner_turns_knobs_interleave": Case(P.range(1, 12).interleave(DatasetFn(element_range(7)), cycle_length=3,
                                                                       num_parallel_calls=AUTOTUNE)
                                             .map(AddConst(1), num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE),
                                             turn_knobs=True),
    # readers, list_files, with_options
    **{name: Case(make) for name, make in BUILDERS.items()},
}
"""The op table: every op, with errors, parallelism and ``deterministic=False`` where the op has them."""


def case_of(key: str) -> Case:
    """The case a key names: ``op:<row of CASES>``, ``seed:<n>`` (a random chain) or ``sample:<n>`` (a random
    ``sample_from_datasets`` mix)."""
    kind, _, name = key.partition(":")
    if kind == "op":
        return CASES[name]
    if kind == "seed":
        pipeline, mode = generate(int(name))
        return Case(pipeline, "multiset:1" if mode == "multiset" else "exact")  # a seeded shuffle restores exactly
    if kind == "sample":  # a sample_from_datasets mix of tests.conformance.sample: its seed fixes its elements
        return Case(generate_mix(int(name)).pipeline)
    raise ValueError(f"not a case key: {key!r}")


# -- running ---------------------------------------------------------------------------------------------------


class NotSaved(Exception):
    """``get_state`` raised ``UnimplementedError`` in a pipeline that uses a stage of :data:`NOT_YET_SAVED`."""


class Invalid(Exception):
    """The pipeline raises when built or when its iterator is made (a random chain tf.data rejects too)."""


def _open(case: Case, workdir: str) -> fi.Iterator:
    try:
        return iter(case.build(workdir))
    except Exception as exc:
        raise Invalid(f"{type(exc).__name__}: {exc}") from exc


def _step(it: fi.Iterator) -> Event:
    try:
        return Event("value", canonical(next(it)))
    except StopIteration:
        return END
    except Exception as exc:  # a user or data error: recorded, and the run carries on as tf.data's does
        return Event("error", error_kind(exc))


def _save(it: fi.Iterator) -> Any:
    """The iterator's state after a JSON round trip; ``NotSaved`` where a stage still lacks saving."""
    try:
        state = it.get_state()
    except fi.errors.UnimplementedError as exc:
        ops = {stage.traits.op for stage in it.stats()}
        if ops & NOT_YET_SAVED:
            raise NotSaved(str(exc)) from exc
        raise
    return json.loads(json.dumps(state))


class _KnobTurner:
    """A thread that keeps setting every knob of a running pipeline to random values (the autotuner at its busiest)
    while the consumer takes elements and saves."""

    def __init__(self, it: fi.Iterator, seed: int) -> None:
        self._it, self._rng = it, random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="knob-turner", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.0005):
            for knob in self._it.knobs():
                knob.set(self._rng.randint(knob.minimum, min(knob.maximum, knob.minimum + 4)))

    def __enter__(self) -> _KnobTurner:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclasses.dataclass
class Run:
    """An uninterrupted run: its events, the states saved before the event of each index, and the working folder as
    it stood at each of those saves (a copy, where the pipeline writes files: a cache)."""

    events: list[Event]
    states: dict[int, Any]
    folders: dict[int, str] = dataclasses.field(default_factory=dict)


def record(case: Case, root: str, seed: int = 0) -> Run:
    """Run ``case`` to its end in ``root``/run, saving before every step (saving must not change what comes next),
    and keep the states saved before the first element, after each of the first steps and some random ones, right
    after each error, at the end of each epoch and before the end."""
    rng = random.Random(seed)
    workdir = os.path.join(root, "run")
    os.makedirs(workdir, exist_ok=True)
    events: list[Event] = []
    saved: list[Any] = []
    folders: list[str] = []
    with _open(case, workdir) as it, _KnobTurner(it, seed) if case.turn_knobs else contextlib.nullcontext():
        while len(events) < MAX_EVENTS and (not events or events[-1] != END):
            saved.append(_save(it))
            folders.append(_copy(workdir, os.path.join(root, f"at-{len(events)}")) if case.writes_files else workdir)
            events.append(_step(it))
    keep = {0, 1, 2, 3} | {i for i in range(len(saved)) if rng.random() < 0.15}
    keep |= {i + 1 for i, event in enumerate(events) if event.what == "error"}
    keep = sorted(i for i in keep | set(_epoch_ends(case, events)) if i < len(saved))
    return Run(events, {i: saved[i] for i in keep}, {i: folders[i] for i in keep})


def _copy(folder: str, to: str) -> str:
    """A copy of ``folder``: the files as a job pre-empted now would leave them (a file the pipeline's threads
    rename or remove meanwhile is left out, as it was gone a moment later)."""
    shutil.copytree(folder, to, copy_function=_copy_file_if_there)
    return to


def _copy_file_if_there(source: str, destination: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.copy2(source, destination)


def _epoch_ends(case: Case, events: list[Event]) -> list[int]:
    """Where the run's epochs end: before the final END, and between the equal epochs of a ``multiset:N`` case."""
    if not events or events[-1] != END:
        return []
    end, epochs = len(events) - 1, _epochs(case)
    return [end] + ([end // epochs * k for k in range(1, epochs)] if end % epochs == 0 else [])


def _epochs(case: Case) -> int:
    return int(case.mode.split(":")[1]) if case.mode.startswith("multiset") else 1


def resume(key: str, saves: list[tuple[int, str, Any]], limit: int) -> dict[int, list[Event]]:
    """For each ``(index, folder, state)`` saved: the events a fresh iterator made in ``folder`` and restored to
    ``state`` yields (at most ``limit``, up to END)."""
    case = case_of(key)
    out = {}
    for index, folder, state in saves:
        events: list[Event] = []
        with iter(case.build(folder)) as it:
            try:
                it.set_state(state)
            except Exception as exc:  # reported as what the restored run gave
                out[index] = [Event("restore failed", f"{type(exc).__name__}: {exc}")]
                continue
            while len(events) < limit and (not events or events[-1] != END):
                events.append(_step(it))
        out[index] = events
    return out


def resume_in_fresh_process(key: str, saves: list[tuple[int, str, Any]], limit: int) -> dict[int, list[Event]]:
    """``resume`` in a new Python process: nothing of the saving process (objects, caches, threads) helps it."""
    request = json.dumps({"key": key, "saves": saves, "limit": limit})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "tests.checkpoint.conformance", "--restore"], input=request,
                          capture_output=True, text=True, cwd=_ROOT, env=env, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"the restoring process failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return pickle.loads(base64.b64decode(done.stdout.strip().splitlines()[-1]))


_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- comparing -------------------------------------------------------------------------------------------------


def differences(case: Case, run: Run, resumed: dict[int, list[Event]]) -> list[str]:
    """What each restored run got wrong, as lines naming the save point."""
    found = []
    for index, events in sorted(resumed.items()):
        if events and events[0].what == "restore failed":
            found.append(f"saved before event {index}: set_state raised {events[0].value}")
            continue
        if case.mode == "exact":
            expected = run.events[index:index + len(events)]  # shorter where the uninterrupted run was cut
            if events[:len(expected)] != expected:
                first = next(i for i, (a, b) in enumerate(zip(events, expected)) if a != b)
                found.append(f"saved before event {index}: event {index + first} is {_at(events, first)}, "
                             f"the uninterrupted run had {_at(expected, first)}")
            continue
        combined = run.events[:index] + events
        for epoch, (want, got) in enumerate(zip(_split(run.events, _epochs(case)), _split(combined, _epochs(case)))):
            if collections.Counter(want) != collections.Counter(got):
                lacks = list((collections.Counter(want) - collections.Counter(got)).elements())[:8]
                extra = list((collections.Counter(got) - collections.Counter(want)).elements())[:8]
                found.append(f"saved before event {index}: epoch {epoch} lacks {lacks}, has extra {extra}")
    return found


def _at(events: list[Event], i: int) -> str:
    return repr(events[i]) if i < len(events) else "nothing"


def _split(events: list[Event], epochs: int) -> list[list[Event]]:
    body = [e for e in events if e != END]
    if epochs == 1 or len(body) % epochs:
        return [events]
    size = len(body) // epochs
    return [body[k * size:(k + 1) * size] for k in range(epochs)]


@dataclasses.dataclass
class Result:
    key: str
    case: Case
    problems: list[str]
    not_saved: str | None = None
    """Why the case was left out (a stage of NOT_YET_SAVED raised UnimplementedError), or None."""
    invalid: str | None = None
    """The error that building the pipeline raised (nothing to save), or None."""


def check_case(key: str, seed: int = 0) -> Result:
    """Record ``key``'s pipeline, restore every saved state in a fresh process, and compare."""
    case = case_of(key)
    with tempfile.TemporaryDirectory(prefix="checkpoint-") as root:
        try:
            run = record(case, root, seed)
        except NotSaved as exc:
            return Result(key, case, [], not_saved=str(exc))
        except Invalid as exc:
            return Result(key, case, [], invalid=str(exc))
        except fi.errors.UnimplementedError as exc:  # a stage not listed in NOT_YET_SAVED must save
            return Result(key, case, [f"get_state raised UnimplementedError: {exc}"])
        limit = MAX_EVENTS if case.mode != "exact" else 12
        saves = [(index, run.folders[index], state) for index, state in run.states.items()]
        resumed = resume_in_fresh_process(key, saves, limit)
    return Result(key, case, differences(case, run, resumed))


def _restore_main() -> None:
    request = json.loads(sys.stdin.read())
    resumed = resume(request["key"], request["saves"], request["limit"])
    sys.stdout.write(base64.b64encode(pickle.dumps(resumed)).decode("ascii") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=200, help="how many random chains to check")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--ops", action="store_true", help="check every row of the op table as well")
    parser.add_argument("--sample", action="store_true",
                        help="check the seeds' sample_from_datasets mixes (tests.conformance.sample) instead")
    parser.add_argument("--restore", action="store_true", help=argparse.SUPPRESS)  # the child's side
    args = parser.parse_args(argv)
    if args.restore:
        _restore_main()
        return 0
    keys = [f"op:{name}" for name in CASES] if args.ops else []
    keys += [f"{'sample' if args.sample else 'seed'}:{seed}" for seed in range(args.start, args.start + args.seeds)]
    started, failing, left_out, invalid = time.monotonic(), 0, 0, 0
    for key in keys:
        result = check_case(key)
        left_out += result.not_saved is not None
        invalid += result.invalid is not None
        if result.problems:
            failing += 1
            print(f"--- {key}: {result.case.pipeline!r} ({result.case.mode})", *result.problems[:5], sep="\n  ",
                  flush=True)
    print(f"=== {len(keys)} cases in {time.monotonic() - started:.0f} s: {failing} failing, {left_out} left out "
          f"(a stage not saved yet), {invalid} invalid pipelines (nothing to save)")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
