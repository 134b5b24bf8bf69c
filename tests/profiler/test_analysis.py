"""``fi.profiler.analyze`` and ``ds.profile``: the stage made slow on purpose is the one named, with its fix.

Real pipelines get one stage that sleeps 2 ms per element while every other
stage costs microseconds, so the slow stage is busy nearly all its time and
the others nearly never: the assertions are on which stage is named and on the
class, which hold with wide margins on a loaded machine, never on times.
The branches of the advice are checked on hand-made statistics.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

import fastinput as fi
from fastinput._engine.traits import StageTraits
from fastinput.ops.batch import BatchDataset, PaddedBatchDataset
from fastinput.ops.filter import FilterDataset
from fastinput.ops.map import MapDataset
from fastinput.ops.prefetch import PrefetchDataset
from fastinput.ops.repeat import RepeatDataset
from fastinput.ops.sources import RangeDataset, TensorSlicesDataset
from fastinput.profiler import advice
from fastinput.profiler.analysis import analyze_summary, summary_since
from fastinput.profiler.report import HIGH, MODERATE, NOT_INPUT_BOUND, input_bound_class
from fastinput.readers.tfrecord import TFRecordDataset

MAP, RANGE, PREFETCH, FILTER = MapDataset.traits, RangeDataset.traits, PrefetchDataset.traits, FilterDataset.traits
BATCH, PADDED_BATCH, REPEAT = BatchDataset.traits, PaddedBatchDataset.traits, RepeatDataset.traits
TFRECORD, SLICES = TFRecordDataset.traits, TensorSlicesDataset.traits

SLOW = 0.002
CPUS = 8
"""Cores the advice is sized for in these tests, whatever the machine has."""


def slow(x: Any) -> Any:
    time.sleep(SLOW)
    return x


def cheap(x: Any) -> Any:
    return x + 1


def slow_records(shard: int = 0) -> Iterator[int]:
    for i in range(10**6):
        time.sleep(SLOW)
        yield shard * 10**6 + i


def run(ds: fi.Dataset, steps: int = 40, step_seconds: float = 0.0, warmup: int = 3) -> fi.profiler.Report:
    """Take ``steps`` elements after ``warmup`` ones, sleeping ``step_seconds`` after each like a training step,
    and analyse the steps (as ``ds.profile`` does, but with a consumer that takes time)."""

    def take(count: int) -> None:
        for _ in range(count):
            next(it)
            if step_seconds:
                time.sleep(step_seconds)

    with iter(ds) as it:
        take(warmup)
        before = it.stats_summary()
        take(steps)
        return analyze_summary(summary_since(before, it.stats_summary()), cpus=CPUS)


# -- real pipelines with a stage made slow on purpose ------------------------------------------------------------


@pytest.mark.parametrize("batched", [False, True])
def test_a_sequential_map_is_named_with_more_parallel_calls(batched: bool) -> None:
    ds = fi.Dataset.range(10**6).map(cheap, num_parallel_calls=2).map(slow)
    ds = (ds.batch(4) if batched else ds).prefetch(2)
    report = run(ds, steps=15 if batched else 40)
    assert report.input_bound == HIGH
    assert (
        "map(slow)" in report.limiting_stage
    )  # batched: map_and_batch(slow, ...) [fused: map(slow) -> batch(4)]
    assert report.stage(report.limiting_stage).utilisation > 0.5
    assert report.recommendation == f"raise map(slow)'s num_parallel_calls from 1 to {CPUS} (fi.AUTOTUNE)"
    assert advice.PREFETCH_AT_END not in report.suggestions


def test_a_map_on_the_consumer_thread_without_prefetch_gets_both_fixes() -> None:
    report = run(fi.Dataset.range(10**6).map(slow), steps=30, step_seconds=SLOW)
    assert report.input_bound == HIGH  # about half the time in next()
    assert report.limiting_stage == "map(slow)"
    assert report.stage("map(slow)").host is None
    assert report.recommendation.startswith("raise map(slow)'s num_parallel_calls from 1 to")
    assert advice.PREFETCH_AT_END in report.suggestions


def test_a_map_at_all_cores_needs_cheaper_work() -> None:
    report = run(fi.Dataset.range(10**6).map(slow, num_parallel_calls=2).prefetch(2), steps=60)
    assert report.limiting_stage == "map(slow, num_parallel_calls=2)"
    report_for_two_cores = analyze_summary(_summary_of(report), cpus=2)
    assert "already runs on 2 threads for 2 cores" in report_for_two_cores.recommendation
    assert "vectorise" in report_for_two_cores.recommendation


def test_a_slow_generator_source_is_named_with_parallel_reads() -> None:
    ds = fi.Dataset.from_generator(slow_records).map(cheap, num_parallel_calls=2).batch(8).prefetch(2)
    report = run(ds, steps=12)
    assert report.input_bound == HIGH
    assert report.limiting_stage == "from_generator(slow_records)"
    assert (
        "interleave(" in report.recommendation and "num_parallel_calls=fi.AUTOTUNE" in report.recommendation
    )


def test_a_sequential_reader_is_told_to_read_in_parallel() -> None:
    ds = (
        fi.Dataset.range(4)
        .interleave(lambda shard: fi.Dataset.from_generator(slow_records, args=(shard,)), cycle_length=2)
        .map(cheap, num_parallel_calls=2)
        .prefetch(2)
    )
    report = run(ds)
    # the generators inside the interleave's datasets are the limit (their stage shows below the interleave)
    assert report.limiting_stage == "from_generator(slow_records)"
    assert report.stage("from_generator(slow_records)").inner_of.startswith("interleave(<lambda>, cycle_length=2")
    assert "reads its datasets one at a time" in report.recommendation
    assert "num_parallel_calls=fi.AUTOTUNE" in report.recommendation


def test_a_parallel_reader_at_capacity_is_the_source_limit() -> None:
    # Short files: a reader's busy time is counted when a read of up to 64 records ends, so short files
    # keep that count smooth over the run.
    ds = (
        fi.Dataset.range(10**6)
        .interleave(
            lambda shard: fi.Dataset.from_generator(slow_records, args=(shard,)).take(8),
            cycle_length=2,
            num_parallel_calls=2,
        )
        .prefetch(2)
    )
    report = run(ds, steps=120)
    # the reads inside the interleave's datasets, which its 2 threads run at once, are the limit
    assert report.limiting_stage == "from_generator(slow_records)"
    assert report.stage("from_generator(slow_records)").inner_of.startswith(
        "interleave(<lambda>, cycle_length=2, block_length=1, num_parallel_calls=2"
    )
    assert report.recommendation.startswith("the source is the limit")
    assert "faster storage or more files" in report.recommendation


def test_a_slow_consumer_is_not_input_bound_and_nothing_drastic_is_recommended() -> None:
    ds = fi.Dataset.range(10**6).map(cheap, num_parallel_calls=2).batch(8).prefetch(2)
    report = run(ds, steps=30, step_seconds=0.02)  # long steps: scheduler hiccups inside next() stay a small share
    assert report.input_bound == NOT_INPUT_BOUND
    assert report.limiting_stage is None
    assert report.recommendation.startswith("nothing to change in the input pipeline")
    assert report.suggestions == ()


# -- ds.profile ---------------------------------------------------------------------------------------------------


def test_profile_writes_a_trace_that_analyze_reads_back_to_the_same_conclusion(tmp_path, capsys) -> None:
    path = tmp_path / "profile.json"
    ds = fi.Dataset.range(10**6).map(cheap, num_parallel_calls=2).map(slow).prefetch(2)
    report = ds.profile(steps=30, trace_path=str(path), warmup=2)
    printed = capsys.readouterr().out
    assert report.steps == 30  # the warm-up is left out
    assert report.limiting_stage == "map(slow)" and report.input_bound == HIGH
    assert str(report) == printed.rstrip("\n")
    for line in (report.verdict, report.recommendation, "map(slow)", "elements/s", "utilisation"):
        assert line in printed
    with open(path) as f:
        trace = json.load(f)
    assert any(e["name"] == "map(slow)" and e["ph"] == "X" for e in trace["traceEvents"])
    for source in (path, trace):
        again = fi.profiler.analyze(source)
        assert isinstance(again, fi.profiler.Report)
        assert (again.limiting_stage, again.input_bound, again.recommendation) == (
            report.limiting_stage,
            report.input_bound,
            report.recommendation,
        )


def test_profile_without_a_trace_path_prints_nothing_when_asked(tmp_path, capsys) -> None:
    ds = fi.Dataset.from_generator(slow_records).prefetch(2)
    report = ds.profile(steps=20, print_report=False)
    assert capsys.readouterr().out == ""
    assert report.limiting_stage == "from_generator(slow_records)"
    assert list(tmp_path.iterdir()) == []


def test_profile_stops_at_the_end_of_a_short_dataset() -> None:
    report = fi.Dataset.range(3).profile(steps=100, warmup=0, print_report=False)
    assert report.steps == 3


def test_profile_checks_its_arguments() -> None:
    with pytest.raises(fi.errors.InvalidArgumentError, match="steps"):
        fi.Dataset.range(3).profile(steps=0)
    with pytest.raises(fi.errors.InvalidArgumentError, match="warmup"):
        fi.Dataset.range(3).profile(warmup=-1)


# -- the model and the advice on hand-made statistics -------------------------------------------------------------


def stage(
    name: str,
    depth: int,
    traits: StageTraits,
    *,
    parallel: bool = False,
    parallelism: int = 1,
    elements: int = 1000,
    self_seconds: float = 0.0,
    call_seconds: float = 0.0,
) -> dict:
    """One entry of ``stats_summary()["stages"]``; ``traits``: what kind of stage it is, not its name, decides."""
    return {
        "name": name,
        "traits": dataclasses.asdict(traits),
        "depth": depth,
        "parallel": parallel,
        "elements": elements,
        "call_seconds": call_seconds,
        "self_seconds": self_seconds,
        "wait_seconds": 0.0,
        "buffer_occupancy": 0,
        "buffer_capacity": 0,
        "bytes_buffered": 0,
        "parallelism": parallelism,
        "elapsed_seconds": 10.0,
    }


def summary(*stages: dict, consumer: float = 10.0, waited: float = 9.0) -> dict:
    return {
        "pipeline": "<test>",
        "steps": 1000,
        "consumer_seconds": consumer,
        "input_wait_seconds": waited,
        "stages": list(stages),
    }


def _summary_of(report: fi.profiler.Report) -> dict:
    """A report's figures back as a summary (to analyse the same run for another core count)."""
    window = report.consumer_seconds
    stages = [
        stage(
            s.name,
            s.depth,
            s.traits,
            parallel=s.parallel,
            parallelism=s.parallelism,
            elements=s.elements,
            self_seconds=s.seconds_per_element * s.elements,
        )
        for s in report.stages
    ]
    return summary(*stages, consumer=window, waited=report.input_wait_seconds)


def prefetched(*stages: dict, **kwargs: Any) -> dict:
    """``stages`` (depth 0 first) below a final ``prefetch(2)`` that spends little of its own.

    A prefetch records only its own work (1 s here); its 9 s inside its input are the input's.
    """
    below = [dict(s, depth=s["depth"] + 1) for s in stages]
    top = stage("prefetch(2)", 0, PREFETCH, parallel=True, self_seconds=1.0, call_seconds=9.0)
    below[0]["call_seconds"] = 10.0
    return summary(top, *below, **kwargs)


@pytest.mark.parametrize(
    ("share", "expected"),
    [
        (0.0, NOT_INPUT_BOUND),
        (0.049, NOT_INPUT_BOUND),
        (0.05, MODERATE),
        (0.199, MODERATE),
        (0.2, HIGH),
        (1.0, HIGH),
    ],
)
def test_input_bound_classes(share: float, expected: str) -> None:
    assert input_bound_class(share) == expected


def test_summary_since_subtracts_the_counters() -> None:
    before = summary(stage("map(decode)", 0, MAP, elements=100, self_seconds=1.0), consumer=2.0, waited=1.5)
    after = summary(stage("map(decode)", 0, MAP, elements=1100, self_seconds=9.0), consumer=12.0, waited=9.5)
    after["steps"] = 1100
    since = summary_since(before, after)
    assert (since["steps"], since["consumer_seconds"], since["input_wait_seconds"]) == (100, 10.0, 8.0)
    (decode,) = since["stages"]
    assert (decode["elements"], decode["self_seconds"], decode["elapsed_seconds"]) == (1000, 8.0, 0.0)


def test_the_consumers_wait_share_is_input_wait_over_consumer_time() -> None:
    report = analyze_summary(prefetched(stage("range(10)", 0, RANGE)), cpus=CPUS)
    assert report.input_wait_share == pytest.approx(0.9)


def test_an_under_parallel_map_is_raised_to_the_core_count() -> None:
    stats = prefetched(
        stage("map(parse, num_parallel_calls=2)", 0, MAP, parallel=True, parallelism=2, self_seconds=19.0),
        stage("range(10)", 1, RANGE),
    )
    report = analyze_summary(stats, cpus=CPUS)
    assert report.limiting_stage == "map(parse, num_parallel_calls=2)"
    assert report.stage(report.limiting_stage).utilisation == pytest.approx(0.95)
    assert (
        report.recommendation
        == f"raise map(parse, num_parallel_calls=2)'s num_parallel_calls from 2 to {CPUS} (fi.AUTOTUNE)"
    )


def test_prefetchs_input_calls_are_not_its_own_work() -> None:
    """The prefetch records its own work only (the engine subtracts its input calls), and the analysis takes it."""
    stats = summary(
        stage("prefetch(2)", 0, PREFETCH, parallel=True, self_seconds=1.0),
        stage("range(10)", 1, RANGE, self_seconds=0.1, call_seconds=9.0),
    )
    report = analyze_summary(stats, cpus=CPUS)
    assert report.stage("prefetch(2)").utilisation == pytest.approx(0.1)  # 10 s running, 9 of them in its input

    def slow(x):
        time.sleep(0.002)
        return x

    with iter(fi.Dataset.range(200).map(slow).prefetch(2)) as it:
        list(it)
        prefetch, mapped = it.stats()[:2]
    assert mapped.call_seconds > 0.4  # 200 calls of 2 ms, made by the prefetch thread
    assert prefetch.self_seconds < 0.25 * mapped.call_seconds


def test_synchronous_stages_sharing_a_thread_saturate_it_together() -> None:
    stats = prefetched(
        stage("filter(keep)", 0, FILTER, self_seconds=4.5),
        stage("padded_batch(32)", 1, PADDED_BATCH, self_seconds=4.0),
        stage("map(decode, num_parallel_calls=8)", 2, MAP, parallel=True, parallelism=8, self_seconds=48.0),
    )
    report = analyze_summary(stats, cpus=CPUS)
    assert report.stage("map(decode, num_parallel_calls=8)").utilisation == pytest.approx(0.6)
    assert report.stage("filter(keep)").utilisation == pytest.approx(0.45)
    assert report.limiting_stage == "filter(keep)"  # the group is 85% busy, more than the map's 60%
    assert "one element at a time on the thread that feeds prefetch(2)" in report.recommendation


def test_a_sequential_tfrecord_reader_is_told_to_use_parallel_reads() -> None:
    stats = prefetched(
        stage("TFRecordDataset(<16 files>)", 0, TFRECORD, self_seconds=9.5), stage("from_tensor_slices(<1>)", 1, SLICES)
    )
    report = analyze_summary(stats, cpus=CPUS)
    assert report.limiting_stage == "TFRecordDataset(<16 files>)"
    assert "TFRecordDataset(..., num_parallel_reads=fi.AUTOTUNE)" in report.recommendation


def test_a_costly_map_below_a_repeat_is_offered_a_cache() -> None:
    stats = prefetched(
        stage("batch(32)", 0, BATCH),
        stage("repeat()", 1, REPEAT),
        stage("map(decode)", 2, MAP, self_seconds=9.8),
        stage("range(10)", 3, RANGE),
    )
    report = analyze_summary(stats, cpus=CPUS)
    assert report.limiting_stage == "map(decode)"
    assert any(
        s.startswith("if map(decode)'s output is the same every epoch") and "cache after map(decode)" in s
        for s in report.suggestions
    )
    no_repeat = analyze_summary(prefetched(stage("map(decode)", 0, MAP, self_seconds=9.8)), cpus=CPUS)
    assert not any("cache" in s for s in no_repeat.suggestions)


def test_an_input_bound_run_with_no_busy_stage_asks_for_a_final_prefetch() -> None:
    stats = summary(
        stage("map(parse, num_parallel_calls=8)", 0, MAP, parallel=True, parallelism=8, self_seconds=8.0),
        stage("range(10)", 1, RANGE),
        waited=3.0,
    )
    report = analyze_summary(stats, cpus=CPUS)
    assert report.input_bound == HIGH
    assert report.verdict.startswith("no stage is near its capacity")
    assert report.recommendation == advice.PREFETCH_AT_END
    with_prefetch = analyze_summary(prefetched(stage("range(10)", 0, RANGE, self_seconds=1.0)), cpus=CPUS)
    assert with_prefetch.recommendation.startswith("let more work overlap the step")


def test_a_busy_stage_of_a_pipeline_that_keeps_up_is_reported_as_headroom() -> None:
    stats = prefetched(
        stage("map(parse, num_parallel_calls=8)", 0, MAP, parallel=True, parallelism=8, self_seconds=64.0),
        stage("range(10)", 1, RANGE),
        waited=0.1,
    )
    report = analyze_summary(stats, cpus=CPUS)
    assert report.input_bound == NOT_INPUT_BOUND and report.limiting_stage is None
    (headroom,) = report.suggestions
    assert headroom.startswith("map(parse, num_parallel_calls=8) is the busiest stage (80%")
    assert "1.2x faster" in headroom


def test_analyze_reads_every_kind_of_source(tmp_path) -> None:
    stats = prefetched(stage("map(decode)", 0, MAP, self_seconds=9.8))
    trace = {"traceEvents": [], "otherData": {"pipelines": [stats]}}
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(trace))
    expected = analyze_summary(stats, cpus=CPUS)
    for source in (stats, trace, path, str(path)):
        assert fi.profiler.analyze(source, cpus=CPUS) == expected
    with iter(fi.Dataset.range(10).prefetch(2)) as it:
        next(it)
        live = fi.profiler.analyze(it, cpus=CPUS)
        from_stage_stats = fi.profiler.analyze(it.stats(), cpus=CPUS)  # what fastinput-bench passes
    assert live.pipeline == "<fastinput.Dataset range(10) -> prefetch(2)>" and live.steps == 1
    assert from_stage_stats.pipeline == "range(10) -> prefetch(2)" and from_stage_stats.steps == 1
    assert [s.name for s in from_stage_stats.stages] == [s.name for s in live.stages]
    two = fi.profiler.analyze({"traceEvents": [], "otherData": {"pipelines": [stats, stats]}}, cpus=CPUS)
    assert two == [expected, expected]


def test_analyze_rejects_what_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="no pipeline statistics"):
        fi.profiler.analyze({"traceEvents": [], "otherData": {"pipelines": []}})
    with pytest.raises(TypeError, match="expected a trace file path"):
        fi.profiler.analyze(42)


def test_the_printed_report_has_a_row_per_stage_source_first() -> None:
    stats = prefetched(stage("map(decode)", 0, MAP, self_seconds=9.8, elements=2000), stage("range(10)", 1, RANGE))
    text = str(analyze_summary(stats, cpus=CPUS))
    rows = [
        line.split()[0]
        for line in text.splitlines()
        if line.startswith("  ") and line.split()[0] in ("range(10)", "map(decode)", "prefetch(2)")
    ]
    assert rows == ["range(10)", "map(decode)", "prefetch(2)"]
    assert "4.9 ms" in text  # map(decode)'s own time per element: 9.8 s / 2000
    assert "98%" in text and "highly input-bound" in text


def python_loop(x: Any) -> Any:
    """Pure-Python work (~2 ms) that holds the GIL all along."""
    total = 0
    for i in range(60_000):
        total += i % 7
    return x + total % 2


def test_a_map_whose_function_holds_the_gil_is_sent_to_worker_processes() -> None:
    ds = fi.Dataset.range(10**6).map(python_loop, num_parallel_calls=4).prefetch(2)
    report = run(ds, steps=200)
    assert report.limiting_stage == "map(python_loop, num_parallel_calls=4)"
    assert "take turns on one core" in report.verdict and "GIL" in report.verdict
    assert report.recommendation.startswith('run the function in worker processes, one per core: add '
                                            'workers="process" to map(python_loop, num_parallel_calls=4)')


def test_a_map_in_worker_processes_is_not_told_about_the_gil() -> None:
    ds = fi.Dataset.range(10**6).map(python_loop, num_parallel_calls=2, workers="process").prefetch(2)
    report = run(ds, steps=100)
    stage = report.stage('map(python_loop, num_parallel_calls=2, workers="process")')
    assert stage.in_processes and "GIL" not in report.verdict + report.recommendation


def test_stages_under_a_repeat_count_every_epoch_and_stay_after_the_end() -> None:
    """Each epoch of a repeat builds its input's stages anew: their figures go on from the last epoch's, and the
    stats after the end show them, so the stage that limits a finite run is still the one named."""
    ds = fi.Dataset.range(10).map(cheap).repeat(3).batch(4)
    with iter(ds) as it:
        for _ in range(4):  # inside the second epoch
            next(it)
        assert [(s.name, s.elements) for s in it.stats()][1:] == [
            ("repeat(3)", 16), ("map(cheap)", 16), ("range(10)", 16)]
        list(it)
        assert [(s.name, s.elements, s.depth) for s in it.stats()] == [
            ("batch(4)", 8, 0), ("repeat(3)", 30, 1), ("map(cheap)", 30, 2), ("range(10)", 30, 3)]
    ds = fi.Dataset.range(20).map(slow, num_parallel_calls=2).repeat(2).batch(4)
    report = ds.profile(steps=100, warmup=2, print_report=False)  # the run ends first: the analysis covers its steps
    assert report.limiting_stage == "map(slow, num_parallel_calls=2)"
