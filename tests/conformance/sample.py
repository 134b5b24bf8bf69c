"""``sample_from_datasets`` on the differential tester's random inputs, checked where tf.data can say something.

tf.data is no element-by-element oracle for ``sample_from_datasets``: fastinput draws its own random numbers
(README, "Where fastinput differs": *`sample_from_datasets` draws its own random choices*), so the differential
tester leaves it out. For a seed, this checker makes 1-4 inputs of one element type (a source of the differential
generator and variants of it: skips, takes, failing maps, filters; one seed in seven an input of 1,025-1,800
elements with errors past the 1,024 a mix reads ahead at a time, the mix then batched), random weights (now and
then 0, or None), a seed and ``stop_on_empty_dataset``, the mix, and random steps after it (``Generator.step``).
Then:

- *The choices.* The same mix over probe inputs (input ``i`` replaced by ``n_i`` copies of ``i``, ``n_i`` the
  events, elements and errors, tf.data gives for input ``i``) hands out the inputs it drew. They never name an input
  of weight 0, name input ``i`` at most ``n_i`` times, and end: with ``stop_on_empty_dataset``, at the first draw of
  an input that has ended (so one of weight > 0 was drawn ``n_i`` times); without, when every input of weight > 0
  was drawn ``n_i`` times. A second run gives the same choices (the seed fixes them).
- *The elements.* The mix over the real inputs, with the steps after it, against tf.data running
  ``choose_from_datasets(inputs, choices, stop_on_empty_dataset)`` and the same steps, event by event (every
  ``sample_from_datasets`` step of the pipeline, nested ones too, becomes that ``choose_from_datasets``): each
  input's elements in its own order, none lost or repeated, each input's error in its place, the same end.
- *Save and restore.* A state saved at a random event (after a JSON round trip) and restored into a fresh iterator
  gives the rest of the uninterrupted run.
- *The proportions* (``proportions_problem``): over ``DRAWS`` draws from endless inputs, each input's count is within
  six standard deviations of its weight's share (a fixed seed gives the same counts on every run: it cannot flake).

    python -m tests.conformance.sample --seeds 2000 [--start N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import sys
import tempfile
import time
from typing import Any

import numpy as np

from tests.conformance.differences import (
    interleave_input_errors,
    sampled_through_choices,
    stop_iteration_at_an_input_start,
)
from tests.conformance.differential import Generator, LeafType, State, _same
from tests.conformance.functions import AddConst, FailAt
from tests.conformance.minimise import SeedTimeout, time_limit
from tests.conformance.oracle import END, TRUNCATED, Event, canonical, check, error_kind, run, tf_outcome
from tests.conformance.pipeline import P, Pipeline, Step

INPUT_OPS = ["map_add", "map_fail", "map_fail", "filter", "filter_fail", "take", "skip", "prefetch"]
"""The steps an input may have after its source (element-wise ones: an input stays small and exact)."""

WEIGHTS = [0.0, 0.5, 1.0, 1.0, 2.0, 5.0]

DRAWS = 20_000
"""Draws of the proportions check."""


@dataclasses.dataclass(frozen=True)
class Mix:
    """A seed's case: ``sample_from_datasets(inputs, weights, seed, stop)`` in ``pipeline``."""

    inputs: tuple[Pipeline, ...]
    weights: tuple[float, ...] | None
    seed: int
    stop: bool
    pipeline: Pipeline = Pipeline(())
    """The pipeline fastinput runs: the mix and the steps after it (a zip or a concatenation may hold it twice)."""

    def sampled(self, inputs: tuple[Pipeline, ...] | None = None) -> Pipeline:
        """The mix alone (over ``inputs``: the probe's)."""
        return P.sample_from_datasets(inputs or self.inputs, self.weights, self.seed, self.stop)

    def __repr__(self) -> str:
        return repr(self.pipeline)


def generate(seed: int) -> Mix:
    """The seed's inputs, weights, mix seed, ``stop_on_empty_dataset`` and steps after the mix."""
    g = Generator(seed)
    long = g.chance(0.15)  # inputs longer than the mix reads ahead at a time (1,024 elements), errors past that
    if long:
        n = g.rng.randint(1025, 1800)
        s = State(P.range(n).map(FailAt(*g.rng.sample(range(n), 2)), num_parallel_calls=g.npc()), LeafType(0), n)
    else:
        s = g.typed_source(g.recipe(), g.rng.randint(0, 25)) if g.chance(0.4) else g.source()
    for _ in range(g.rng.randint(0, 2)):
        s = g.step_from(s, INPUT_OPS)
    inputs = [s]
    for _ in range(g.choice([0, 1, 1, 2, 3])):
        other = g.variant(s)
        inputs.append(other if _same(other.structure, s.structure) else s.then(s.pipeline.map(AddConst(100))))
    weights = None if g.chance(0.25) else tuple(g.choice(WEIGHTS) for _ in inputs)
    if weights is not None and not any(weights):
        weights = (*weights[:-1], 1.0)
    mix = Mix(tuple(i.pipeline for i in inputs), weights, g.rng.randint(0, 2**31 - 1), g.chance(0.5))
    state = s.then(mix.sampled(), length=sum(i.length for i in inputs))
    if long:  # batched: a few hundred events
        state = g.op_batch(state, 1, size=g.choice([16, 64]))
    for _ in range(g.rng.randint(0, 3)):
        state = g.step(state, 1)
    return dataclasses.replace(mix, pipeline=state.pipeline)


# -- the checks ------------------------------------------------------------------------------------------------


def _choosing(value: Any, choices: list[int]) -> Any:
    """``value`` with every ``sample_from_datasets`` step (nested pipelines included) made a
    ``choose_from_datasets`` of the same inputs by ``choices``."""
    if isinstance(value, Pipeline):
        steps = []
        for step in value.steps:
            args = tuple(_choosing(a, choices) for a in step.args)
            if step.op == "sample_from_datasets":
                stop = dict(step.kwargs)["stop_on_empty_dataset"]
                step = P.choose_from_datasets(args[0], P.from_tensor_slices(np.array(choices, np.int64)),
                                              stop_on_empty_dataset=stop).steps[0]
            else:
                step = Step(step.op, args, step.kwargs)
            steps.append(step)
        return Pipeline(tuple(steps))
    if isinstance(value, tuple):
        return tuple(_choosing(v, choices) for v in value)
    if isinstance(value, dict):
        return {k: _choosing(v, choices) for k, v in value.items()}
    return value


def probe_choices(mix: Mix, counts: list[int]) -> list[int]:
    """The inputs the mix draws when input ``i`` gives ``counts[i]`` elements."""
    probes = tuple(P.from_tensor_slices(np.full(n, i, np.int64)) for i, n in enumerate(counts))
    with tempfile.TemporaryDirectory(prefix="sample-") as workdir, iter(mix.sampled(probes).build("fi", workdir)) as it:
        return [int(x) for x in it]


def choice_problems(mix: Mix, counts: list[int], choices: list[int]) -> list[str]:
    """What the drawn inputs get wrong (see the module docstring)."""
    weights = mix.weights or (1.0,) * len(counts)
    drawn = [choices.count(i) for i in range(len(counts))]
    problems = [f"input {i} (weight 0) drawn {drawn[i]} times" for i, w in enumerate(weights) if not w and drawn[i]]
    problems += [f"input {i} drawn {drawn[i]} times, it has {n} events" for i, n in enumerate(counts) if drawn[i] > n]
    live = [i for i, w in enumerate(weights) if w]
    if mix.stop and not any(drawn[i] == counts[i] for i in live):
        problems.append(f"stop_on_empty_dataset: the mix ended with no input ended (drawn {drawn}, events {counts})")
    if not mix.stop and any(drawn[i] != counts[i] for i in live):
        problems.append(f"the mix ended before every input of weight > 0 did (drawn {drawn}, events {counts})")
    return problems


def _events(it: Any, limit: int) -> list[Event]:
    events: list[Event] = []
    while len(events) < limit:
        try:
            events.append(Event("value", canonical(next(it))))
        except StopIteration:
            return [*events, END]
        except Exception as exc:  # noqa: BLE001  # an element's error, recorded as tf.data's iterator goes on
            events.append(Event("error", error_kind(exc)))
    return [*events, TRUNCATED]


def restore_problem(pipeline: Pipeline, events: list[Event], rng: random.Random) -> str | None:
    """The restored run's first difference from ``events`` (the uninterrupted run), if any; a pipeline with a cache
    (which writes files a restore would need copied) is left out."""
    import fastinput as fi

    if "cache" in repr(pipeline) or len(events) < 2:
        return None
    cut = rng.randrange(len(events) - 1)
    with tempfile.TemporaryDirectory(prefix="sample-") as workdir:
        with iter(pipeline.build("fi", workdir)) as it:
            _events(it, cut)
            try:
                state = json.loads(json.dumps(it.get_state()))
            except fi.errors.UnimplementedError:
                return None
        with iter(pipeline.build("fi", workdir)) as it:
            it.set_state(state)
            rest = _events(it, len(events) - cut - (events[-1] == TRUNCATED))  # as far as the run went
    expected = events[cut:]
    if rest == expected:
        return None
    first = next((i for i, (a, b) in enumerate(zip(rest, expected)) if a != b), min(len(rest), len(expected)))
    return (f"restored after event {cut}: event {cut + first} is {_at(rest, first)}, the uninterrupted run had "
            f"{_at(expected, first)}")


def _at(events: list[Event], i: int) -> str:
    return repr(events[i]) if i < len(events) else "nothing"


@dataclasses.dataclass
class Result:
    mix: Mix
    problems: list[str]
    left_out: str | None = None


def check_seed(seed: int) -> Result:
    """Every check of the module docstring on the seed's mix (but the proportions)."""
    mix = generate(seed)
    counts = []
    for i, pipeline in enumerate(mix.inputs):
        outcome = run(pipeline, "tf")
        if outcome.construct_error is not None or outcome.events[-1:] != [END]:
            return Result(mix, [], left_out=f"input {i}: tf.data gives {outcome!r}"[:200])
        counts.append(len(outcome.events) - 1)
    choices = probe_choices(mix, counts)
    problems = choice_problems(mix, counts, choices)
    if probe_choices(mix, counts) != choices:
        problems.append("a second run drew other inputs")
    chosen, code = _choosing(mix.pipeline, choices), repr(mix.pipeline)
    differs = sampled_through_choices(chosen)
    mismatch = check(mix.pipeline, "exact", differs)
    if mismatch is not None and "interleave" in code:  # the documented differences, as the differential tester has
        mismatch = check(mix.pipeline, "exact", differs := interleave_input_errors(chosen))
    if mismatch is not None and "exc='stop'" in code and ("enumerate" in code or "zip" in code):
        mismatch = check(mix.pipeline, "exact", differs := stop_iteration_at_an_input_start(chosen))
    if mismatch is not None:
        problems.append(f"against tf.data choosing {choices}:\n{mismatch}")
        return Result(mix, problems)
    events = run(mix.pipeline, "fi").events
    if events != tf_outcome(differs.tf_pipeline, False).events:
        problems.append("a second run gave other events")
    restored = restore_problem(mix.pipeline, events, random.Random(seed))
    return Result(mix, problems + ([restored] if restored else []))


def proportions_problem(seed: int, draws: int = DRAWS) -> str | None:
    """Whether ``draws`` draws from endless inputs (input ``i`` gives ``i`` forever) follow the weights: each count
    within six standard deviations of ``draws * p_i`` (binomial), inputs of weight 0 never drawn."""
    rng = random.Random(seed)
    weights = tuple(rng.choice(WEIGHTS) for _ in range(rng.randint(1, 4)))
    if not any(weights):
        weights = (*weights[:-1], 1.0)
    inputs = tuple(P.from_tensors(np.int64(i)).repeat() for i in range(len(weights)))
    pipeline = P.sample_from_datasets(inputs, weights, rng.randint(0, 2**31 - 1), rng.random() < 0.5).take(draws)
    with tempfile.TemporaryDirectory(prefix="sample-") as workdir, iter(pipeline.build("fi", workdir)) as it:
        counts = np.bincount(np.fromiter((int(x) for x in it), np.int64), minlength=len(weights))
    return counts_problem(weights, counts.tolist())


def counts_problem(weights: tuple[float, ...], counts: list[int]) -> str | None:
    """Whether each input's count of ``sum(counts)`` draws is within six standard deviations (binomial) of its
    weight's share (so one of weight 0 is never drawn)."""
    draws, total = sum(counts), sum(weights)
    for i, w in enumerate(weights):
        p = w / total
        if abs(counts[i] - draws * p) > 6 * math.sqrt(draws * p * (1 - p)):
            return f"weights {weights}: counts {counts} of {draws} draws (input {i} expected {draws * p:.0f})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=500, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--only", type=lambda text: [int(x) for x in text.split(",")], default=None,
                        help="a comma-separated list of seeds to run instead")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds a seed may take before it counts as a hang")
    args = parser.parse_args(argv)
    seeds = args.only if args.only is not None else range(args.start, args.start + args.seeds)
    started, failing, left_out = time.monotonic(), [], 0
    for seed in seeds:
        try:
            with time_limit(args.timeout):
                result = check_seed(seed)
        except SeedTimeout:
            result = Result(generate(seed), [f"HANG (over {args.timeout} s)"])
        if result.left_out is not None:
            left_out += 1
            continue
        problems = result.problems
        if seed % 10 == 0:
            problems = problems + [p for p in [proportions_problem(seed)] if p]
        if problems:
            failing.append(seed)
            print(f"--- seed {seed}: {result.mix!r}", *problems[:3], sep="\n  ", flush=True)
    print(f"=== {len(seeds)} seeds in {time.monotonic() - started:.0f} s: {len(seeds) - left_out} checked, "
          f"{len(failing)} failing {failing[:20]}, {left_out} left out (an input tf.data refuses or that never ends)")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
