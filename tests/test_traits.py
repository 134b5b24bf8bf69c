"""Stage traits: every stage declares what it is, and the profiler, the TF adapter and the tuner read that.

A stage's string is for people: renaming a stage changes no decision.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

import fastinput as fi
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import UNKNOWN, KnobKind, PacksStrings, StageKind, StageTraits, TuningKind
from fastinput.dataset import Dataset
from fastinput.ops.map import MapDataset
from fastinput.options import Options
from fastinput.profiler.analysis import analyze_summary, summary_since
from fastinput.readers.batched_features import BatchParser
from tests.helpers import package_dataset_classes

CPUS = 8




def test_every_dataset_class_declares_its_own_traits() -> None:
    classes = package_dataset_classes()
    assert len(classes) > 20
    undeclared = [c.__name__ for c in classes if not isinstance(vars(c).get("traits"), StageTraits)]
    assert not undeclared, undeclared
    assert all(c.traits.op for c in classes)
    assert Dataset.traits is UNKNOWN and UNKNOWN.kind is StageKind.OTHER


def test_a_stage_that_passes_elements_through_keeps_their_spec() -> None:
    with pytest.raises(ValueError, match="keeps their spec"):
        StageTraits("odd", passes_through=True)


def test_instances_declare_what_depends_on_their_arguments() -> None:
    assert fi.Dataset.from_tensors([1, 2]).traits.op == "from_tensors"
    assert fi.Dataset.from_tensor_slices([1, 2]).traits.op == "from_tensor_slices"
    fused = fi.Dataset.range(8).map(lambda x: x + 1).batch(4)
    with iter(fused) as it:
        (stage, _) = it.stats()
    assert stage.name.startswith("map_and_batch(") and stage.traits.stands_for == "map(<lambda>)"
    assert fused.traits.stands_for is None  # the user's nodes are never changed


def test_traits_travel_through_stats_and_traces() -> None:
    with iter(fi.Dataset.range(4).map(lambda x: x, num_parallel_calls=2).prefetch(2)) as it:
        next(it)
        stages = it.stats_summary()["stages"]
    kinds = [StageTraits.from_summary(s["traits"]).kind for s in stages]
    assert kinds == [StageKind.PREFETCH, StageKind.MAP, StageKind.IN_MEMORY]
    reloaded = json.loads(json.dumps(stages))  # as a trace file stores them
    assert [StageTraits.from_summary(s["traits"]) for s in reloaded] == [
        StageTraits.from_summary(s["traits"]) for s in stages
    ]


def test_traces_without_traits_degrade_to_kind_other() -> None:
    """Traces written before stages recorded traits: their stages are of kind "other", and the advice is the one
    for a stage of unknown kind (never an error)."""
    assert StageTraits.from_summary(None) is UNKNOWN
    assert StageTraits.from_summary({"op": "map", "kind": "a kind from the future"}).kind is StageKind.OTHER
    assert StageTraits.from_summary({"kind": "map", "a field from the future": 1}) == StageTraits("", StageKind.MAP)
    old = _summary(_stage("map(decode)", 0, None, 9.8), consumer=10.0, waited=9.0)
    report = analyze_summary(old, cpus=CPUS)
    assert report.limiting_stage == "map(decode)"
    assert report.recommendation.startswith("map(decode) runs on the consumer's thread")


# -- the advice does not depend on a stage's string ------------------------------------------------------------


class _RenamedMap(MapDataset):
    """A map whose string reads like nothing the profiler knows."""

    def __str__(self) -> str:
        return f"transform({self.label})"


def _stage(name: str, depth: int, traits: StageTraits | None, self_seconds: float, **figures: Any) -> dict:
    recorded = {} if traits is None else {"traits": dataclasses.asdict(traits)}
    return {"name": name, "depth": depth, "parallel": False, "elements": 1000, "call_seconds": 0.0,
            "self_seconds": self_seconds, "wait_seconds": 0.0, "buffer_occupancy": 0, "buffer_capacity": 0,
            "bytes_buffered": 0, "parallelism": 1, "elapsed_seconds": 10.0, **recorded, **figures}


def _summary(*stages: dict, consumer: float, waited: float) -> dict:
    return {"pipeline": "<test>", "steps": 1000, "consumer_seconds": consumer, "input_wait_seconds": waited,
            "stages": list(stages)}


@pytest.mark.parametrize("traits", [MapDataset.traits, fi.TFRecordDataset.traits,
                                    fi.Dataset.from_generator(lambda: iter(())).traits])
def test_renamed_stages_get_the_same_advice(traits: StageTraits) -> None:
    def report(name: str) -> Any:
        stages = [_stage("repeat()", 0, fi.Dataset.range(1).repeat().traits, 0.1),
                  _stage(name, 1, traits, 9.5), _stage("range(10)", 2, fi.Dataset.range(1).traits, 0.1)]
        return analyze_summary(_summary(*stages, consumer=10.0, waited=9.0), cpus=CPUS)

    plain, renamed = report("stage(a)"), report("something else entirely")
    assert renamed.limiting_stage == "something else entirely"
    assert renamed.recommendation == plain.recommendation.replace("stage(a)", "something else entirely")
    assert renamed.suggestions == tuple(s.replace("stage(a)", "something else entirely") for s in plain.suggestions)
    assert any("cache after" in s for s in renamed.suggestions)  # below the repeat, known by its kind


def test_a_renamed_map_on_a_real_pipeline_gets_the_maps_advice() -> None:
    def slow(x: Any) -> Any:
        time.sleep(0.002)
        return x

    def analysed(ds: fi.Dataset) -> Any:
        with iter(ds.prefetch(2)) as it:
            for _ in range(3):
                next(it)
            before = it.stats_summary()
            for _ in range(40):
                next(it)
            return analyze_summary(summary_since(before, it.stats_summary()), cpus=CPUS)

    source = fi.Dataset.range(10**6)
    plain, renamed = analysed(source.map(slow)), analysed(_RenamedMap(source, slow, None, None))
    assert (plain.limiting_stage, renamed.limiting_stage) == ("map(slow)", "transform(slow)")
    assert plain.recommendation == f"raise map(slow)'s num_parallel_calls from 1 to {CPUS} (fi.AUTOTUNE)"
    assert renamed.recommendation == plain.recommendation.replace("map(slow)", "transform(slow)")


# -- the tuner's view of each parallel stage --------------------------------------------------------------------


def _running_stages(ds: Dataset) -> list[DatasetIterator]:
    root = ds.make_iterator(IteratorContext(Options()))
    return [it for _, it in root.walk()]


@pytest.mark.parametrize(("make", "kind", "knobs"), [
    (lambda: fi.Dataset.range(8).map(lambda x: x, num_parallel_calls=2), TuningKind.PARALLEL,
     {KnobKind.WORKERS, KnobKind.OUTPUT_BUFFER}),
    (lambda: fi.Dataset.range(8).map_and_batch(lambda x: x, 4, num_parallel_calls=2), TuningKind.PARALLEL,
     {KnobKind.WORKERS, KnobKind.OUTPUT_BUFFER}),
    (lambda: fi.Dataset.range(8).prefetch(fi.AUTOTUNE), TuningKind.PREFETCH, {KnobKind.OUTPUT_BUFFER}),
    (lambda: fi.Dataset.range(4).interleave(lambda x: fi.Dataset.range(x), cycle_length=3, num_parallel_calls=2),
     TuningKind.INTERLEAVE, {KnobKind.WORKERS, KnobKind.PER_INPUT_BUFFER, KnobKind.INPUTS_AHEAD}),
    (lambda: fi.Dataset.range(8).map(lambda x: x), TuningKind.SYNC, set()),
])
def test_each_running_stage_declares_what_the_tuner_turns(make, kind, knobs) -> None:
    stage, *inputs = _running_stages(make())
    try:
        profile = stage.tuning_profile()
        assert profile.kind is kind
        assert {k.kind for k in stage.knobs()} == knobs
        assert len(stage.knobs()) == len(knobs)  # one knob of each kind: the model looks them up by kind
        if kind is TuningKind.INTERLEAVE:
            assert profile.cycle_length == 3
        if kind is TuningKind.PARALLEL:
            assert profile.chunk_size >= 1
        assert all(it.tuning_profile().kind is TuningKind.SYNC for it in inputs)
    finally:
        stage.close()


def test_the_example_parser_declares_that_it_packs_strings() -> None:
    parser = BatchParser(None, None)  # type: ignore[arg-type]
    assert isinstance(parser, PacksStrings)
    assert isinstance(parser.packing_strings(), BatchParser)
