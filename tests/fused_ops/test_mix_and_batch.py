"""The fused ``sample_from_datasets`` / ``choose_from_datasets`` -> ``batch`` stage gives the unfused pipeline's
batches and errors, saves and restores at every position, and its states are the unfused pipeline's."""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from fastinput.fused_ops.mix_and_batch import MixAndBatchDataset
from fastinput.fused_ops.rewrites import optimize
from tests.checkpoint.stages import Ints
from tests.checkpoint.test_interleave import check_resume, check_resume_across, outcomes, total

UNFUSED = fi.Options(optimization=fi.OptimizationOptions(mix_and_batch_fusion=False))


def _as_bytes(x):
    return b"r%d" % int(x)


def _inputs(kind: str, bad: bool) -> list[fi.Dataset]:
    """Three inputs of unequal length (the second fails mid-way where asked): int64 scalars, bytes (the fused stage
    writes those into the batch itself), or nests."""
    inputs = [Ints(0, 40), Ints(100, 113, {105, 109} if bad else ()), Ints(200, 290)]
    if kind == "bytes":
        return [ds.map(_as_bytes) for ds in inputs]
    if kind == "nested":
        return [ds.map(lambda x: {"a": x, "b": (_as_bytes(x), np.full(2, x))}) for ds in inputs]
    return inputs


def _sample(kind, bad=False, weights=None, seed=0, stop=False):
    return fi.Dataset.sample_from_datasets(_inputs(kind, bad), weights, seed=seed, stop_on_empty_dataset=stop)


def _choose(kind, bad=False, stop=True):
    choices = Ints(0, 200).map(lambda x: np.int64((x * 7) % 5 - 1))  # -1 and 3 are out of range: errors in place
    return fi.Dataset.choose_from_datasets(_inputs(kind, bad), choices, stop_on_empty_dataset=stop)


def _run(ds: fi.Dataset) -> list:
    with iter(ds) as it:
        return outcomes(it)


def _is_fused(ds: fi.Dataset) -> bool:
    return isinstance(optimize(ds, ds.options()), MixAndBatchDataset)


@pytest.mark.parametrize("kind", ["ints", "bytes", "nested"])
@pytest.mark.parametrize("bad", [False, True])
@pytest.mark.parametrize("stop", [False, True])
@pytest.mark.parametrize("weights, seed", [(None, 0), (None, 1), ([0.6, 0.3, 0.1], 2), ([0.0, 1.0, 0.5], 3)])
@pytest.mark.parametrize("batch_size", [1, 3, 16, 200])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_sample_batches_are_the_unfused_ones(kind, bad, stop, weights, seed, batch_size, drop_remainder):
    ds = _sample(kind, bad, weights, seed, stop).batch(batch_size, drop_remainder)
    assert _is_fused(ds) and not _is_fused(ds.with_options(UNFUSED))
    assert _run(ds) == _run(ds.with_options(UNFUSED))


@pytest.mark.parametrize("kind", ["ints", "bytes"])
@pytest.mark.parametrize("bad", [False, True])
@pytest.mark.parametrize("stop", [False, True])
@pytest.mark.parametrize("batch_size", [1, 4, 64])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_choose_batches_are_the_unfused_ones(kind, bad, stop, batch_size, drop_remainder):
    ds = _choose(kind, bad, stop).batch(batch_size, drop_remainder)
    assert _run(ds) == _run(ds.with_options(UNFUSED))


def test_a_batch_of_bytes_is_an_object_array_as_batch_makes_it():
    fused = next(iter(_sample("bytes").batch(8)))
    unfused = next(iter(_sample("bytes").batch(8).with_options(UNFUSED)))
    assert fused.dtype == unfused.dtype == object and fused.shape == (8,)
    assert fused.tolist() == unfused.tolist()


def test_a_batch_of_bytes_and_other_elements_is_stacked_as_batch_stacks_it():
    inputs = [fi.Dataset.from_tensor_slices(np.array([b"a", b"b", b"c"], dtype=object)),
              fi.Dataset.from_tensor_slices(np.array([b"x", b"y", b"z"], dtype=object)).map(np.bytes_)]
    ds = fi.Dataset.sample_from_datasets(inputs, seed=4).batch(6)
    assert _run(ds) == _run(ds.with_options(UNFUSED))


@pytest.mark.parametrize("mix", ["sample", "sample, errors", "sample, stop", "choose"])
@pytest.mark.parametrize("batch_size, drop_remainder", [(1, False), (4, False), (7, True)])
def test_the_fused_stage_resumes_at_every_position(mix, batch_size, drop_remainder):
    make = {"sample": lambda: _sample("ints", weights=[0.2, 0.3, 0.5], seed=3),
            "sample, errors": lambda: _sample("bytes", bad=True, seed=4),
            "sample, stop": lambda: _sample("ints", seed=5, stop=True),
            "choose": lambda: _choose("ints", bad=True, stop=False)}[mix]
    ds = make().batch(batch_size, drop_remainder)
    assert _is_fused(ds)
    for n in range(total(ds) + 2):
        check_resume(ds, n)


@pytest.mark.parametrize("saved_fused", [True, False])
def test_a_state_restores_with_the_rewrite_on_or_off(saved_fused):
    """The fused stage saves what the unfused pipeline saves, so a checkpoint outlives a change of options."""
    fused = _sample("ints", bad=True, seed=6).batch(5)
    unfused = fused.with_options(UNFUSED)
    first, second = (fused, unfused) if saved_fused else (unfused, fused)
    check_resume_across(first, second)


def test_stats_name_the_fused_stage():
    ds = _sample("ints", seed=1).batch(4)
    with iter(ds) as it:
        next(it)
        root = it.stats()[0]
    assert root.name.startswith("sample_from_datasets_and_batch(4) [fused: sample_from_datasets(<3 datasets>")
    assert root.traits.stands_for.startswith("sample_from_datasets(<3 datasets>")
    assert str(optimize(_choose("ints").batch(2, True), fi.Options())).startswith(
        "choose_from_datasets_and_batch(2, drop_remainder=True) [fused: choose_from_datasets(")


@pytest.mark.parametrize("drop_remainder", [False, True])
def test_spec_and_cardinality_are_the_batchs(drop_remainder):
    ds = _sample("nested").batch(4, drop_remainder)
    fused = optimize(ds, ds.options())
    assert fused.element_spec == ds.element_spec
    assert fused.cardinality() == ds.cardinality()
    endless = fi.Dataset.sample_from_datasets([fi.Dataset.range(3).repeat()], seed=1).batch(2)
    assert optimize(endless, endless.options()).cardinality() == endless.cardinality() == fi.INFINITE_CARDINALITY


def test_closing_mid_way_leaves_no_thread():
    inputs = [fi.Dataset.range(1000).map(lambda x: x, num_parallel_calls=2).prefetch(4) for _ in range(3)]
    ds = fi.Dataset.sample_from_datasets(inputs, seed=1).batch(10)
    assert _is_fused(ds)
    with iter(ds) as it:
        next(it)
