"""``sample_from_datasets`` on random inputs (``tests/conformance/sample.py``): the choices it makes, the elements
against tf.data choosing the same, save and restore, and the proportions. The script runs thousands of seeds."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conformance import sample
from tests.conformance.oracle import check, run

SEEDS = 60
CHUNK = 20


@pytest.mark.slow
@pytest.mark.parametrize("first", range(0, SEEDS, CHUNK))
def test_random_mixes_match_tf_data_choosing_the_same(tf, first: int) -> None:
    seeds = range(first, first + CHUNK)
    results = [sample.check_seed(seed) for seed in seeds]
    failures = [f"--- seed {seed}: {r.mix!r}\n  " + "\n  ".join(r.problems[:3])
                for seed, r in zip(seeds, results) if r.problems]
    assert not failures, f"{len(failures)} of {len(seeds)} mixes fail:\n" + "\n".join(failures)
    assert sum(r.left_out is None for r in results) >= len(seeds) * 3 // 4


@pytest.mark.parametrize("seed", range(8))
def test_the_mix_follows_its_weights(seed: int) -> None:
    assert sample.proportions_problem(seed) is None


def test_the_proportions_check_sees_a_skewed_mix() -> None:
    assert sample.counts_problem((1.0, 1.0), [10_200, 9_800]) is None  # within 6 sigma (sigma 71)
    assert sample.counts_problem((1.0, 1.0), [10_500, 9_500]) is not None  # what weights (1.1, 1.0) would give
    assert sample.counts_problem((1.0, 0.0, 3.0), [5_000, 0, 15_000]) is None
    assert sample.counts_problem((1.0, 0.0, 3.0), [5_000, 1, 14_999]) is not None  # a weight 0 input drawn


def test_a_seed_always_makes_the_same_mix() -> None:
    assert [repr(sample.generate(seed)) for seed in range(50)] == [repr(sample.generate(seed)) for seed in range(50)]


def test_the_seeds_cover_what_the_checks_are_about() -> None:
    """The CI seeds together have one input and several, weights of 0 and None, both ``stop_on_empty_dataset``,
    failing inputs, typed sources, steps after the mix and a mix nested in them (a zip or a concatenation)."""
    mixes = [sample.generate(seed) for seed in range(SEEDS)]
    assert {len(m.inputs) for m in mixes} >= {1, 2, 3, 4}
    assert any(m.weights is None for m in mixes) and any(m.weights and 0.0 in m.weights for m in mixes)
    assert {m.stop for m in mixes} == {True, False}
    assert any("FailAt(" in repr(m.inputs) for m in mixes) and any("laid(" in repr(m.inputs) for m in mixes)
    assert any(repr(m.pipeline) != repr(m.sampled()) for m in mixes)
    assert any(repr(m).count("sample_from_datasets") > 1 for m in mixes)


def test_the_checks_see_wrong_choices(tf) -> None:
    mix = next(m for m in map(sample.generate, range(SEEDS))
               if len(m.inputs) > 1 and repr(m.pipeline) == repr(m.sampled()))
    counts = [len(run(pipeline, "tf").events) - 1 for pipeline in mix.inputs]
    choices = sample.probe_choices(mix, counts)
    assert sample.choice_problems(mix, counts, choices) == []
    assert check(mix.pipeline, "exact", sample.sampled_through_choices(sample._choosing(mix.pipeline, choices))) is None
    rotated = choices[1:] + choices[:1]
    assert rotated != choices
    assert check(mix.pipeline, "exact", sample.sampled_through_choices(sample._choosing(mix.pipeline, rotated)))


def test_choice_problems_name_each_broken_rule() -> None:
    mix = sample.Mix((), (1.0, 0.0, 2.0), 0, stop=False)
    assert sample.choice_problems(mix, [2, 1, 1], [0, 2, 0]) == []
    assert sample.choice_problems(mix, [2, 1, 1], [0, 1, 2, 0]) == ["input 1 (weight 0) drawn 1 times"]
    assert sample.choice_problems(mix, [2, 1, 1], [0, 2, 0, 0]) == [
        "input 0 drawn 3 times, it has 2 events",
        "the mix ended before every input of weight > 0 did (drawn [3, 0, 1], events [2, 1, 1])"]
    assert sample.choice_problems(mix, [2, 1, 1], [0, 2]) == [
        "the mix ended before every input of weight > 0 did (drawn [1, 0, 1], events [2, 1, 1])"]
    stopping = dataclasses.replace(mix, stop=True)
    assert sample.choice_problems(stopping, [2, 1, 1], [0, 2]) == []  # input 2 ended: the next draw of it ends all
    assert sample.choice_problems(stopping, [2, 1, 2], [0, 2]) == [
        "stop_on_empty_dataset: the mix ended with no input ended (drawn [1, 0, 1], events [2, 1, 2])"]
