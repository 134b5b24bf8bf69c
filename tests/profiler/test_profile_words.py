"""The profiler's words are true of the pipeline it looks at (issue 18): a stage that makes batches is timed "per
batch"; a map_and_batch at every core is not told to use map_and_batch; a finite pipeline that ends before the
steps asked says so."""

from __future__ import annotations

import fastinput as fi
from fastinput.fused_ops.map_and_batch import MapAndBatchDataset
from fastinput.ops.sources import RangeDataset
from fastinput.profiler.analysis import analyze_summary
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
