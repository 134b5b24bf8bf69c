"""The profiler's words are true of the pipeline it looks at (issue 18): a stage that makes batches, or maps over
them, is timed "per batch"; a map_and_batch at every core is not told to use map_and_batch; a finite pipeline that
ends before the steps asked says so; a stage that made nothing in the steps profiled reads "idle", not 0.0/s."""

from __future__ import annotations

import fastinput as fi
from fastinput.fused_ops.map_and_batch import MapAndBatchDataset
from fastinput.ops.batch import BatchDataset
from fastinput.ops.map import MapDataset
from fastinput.ops.sources import RangeDataset
from fastinput.ops.unbatch import UnbatchDataset
from fastinput.profiler.analysis import analyze_summary
from fastinput.profiler.report import IDLE_NOTE
from tests.profiler.test_analysis import CPUS, prefetched, stage

FUSED = MapAndBatchDataset.traits
RANGE = RangeDataset.traits


def test_a_fused_map_and_batch_at_every_core_is_timed_per_batch_and_not_told_to_fuse() -> None:
    name = f"map_and_batch(preprocess, batch_size=64, num_parallel_calls={CPUS})"
    stats = prefetched(stage(name, 0, FUSED, parallel=True, parallelism=CPUS, elements=100, self_seconds=76.0),
                       stage("range(6400)", 1, RANGE, elements=6400))
    report = analyze_summary(stats, cpus=CPUS)
    assert report.limiting_stage == name
    assert "760 ms per batch)" in report.verdict, report.verdict
    assert "map_and_batch" not in report.recommendation.replace(name, "")
    assert "make its function cheaper" in report.recommendation


def test_profile_says_when_a_finite_pipeline_ends_before_the_steps_asked(capsys) -> None:
    report = fi.Dataset.range(30).batch(1).profile(steps=200, warmup=3)
    assert report.steps == 27
    assert "the pipeline ended after 27 of the 200 steps asked, after 3 warm-up steps" in capsys.readouterr().out


def test_profile_of_enough_steps_says_nothing_of_it(capsys) -> None:
    fi.Dataset.range(100).profile(steps=20, warmup=2)
    assert "the pipeline ended after" not in capsys.readouterr().out


def test_a_map_over_batches_is_timed_per_batch_and_one_after_unbatch_per_element() -> None:
    name = "map(augment_batch, num_parallel_calls=2)"
    stats = prefetched(stage(name, 0, MapDataset.traits, parallel=True, parallelism=2, elements=100, self_seconds=19.0),
                       stage("batch(64)", 1, BatchDataset.traits, elements=100),
                       stage("range(6400)", 2, RANGE, elements=6400))
    report = analyze_summary(stats, cpus=2)
    assert report.limiting_stage == name and "per batch)" in report.verdict, report.verdict
    stats = prefetched(stage(name, 0, MapDataset.traits, parallel=True, parallelism=2, elements=6400,
                             self_seconds=19.0),
                       stage("unbatch()", 1, UnbatchDataset.traits, elements=6400),
                       stage("batch(64)", 2, BatchDataset.traits, elements=100),
                       stage("range(6400)", 3, RANGE, elements=6400))
    assert "per element)" in analyze_summary(stats, cpus=2).verdict


def test_a_stage_that_made_nothing_in_the_steps_profiled_reads_idle(capsys) -> None:
    ds = fi.Dataset.range(50).shuffle(1000).repeat().map(lambda x: x + 1).batch(5)  # range read whole in warm-up
    report = ds.profile(steps=5, warmup=2)
    assert report.stage("range(50)").elements == 0
    row = next(line for line in str(report).splitlines() if line.strip().startswith("range(50)"))
    assert "idle*" in row and IDLE_NOTE in str(report)
