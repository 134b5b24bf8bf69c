"""``batch_gaps --parallelism N`` pins the README pipeline's map_and_batch workers, and the GC's pauses are timed
(issue 20: were the bursts the tuner's moves, or the collector's pauses?)."""

from __future__ import annotations

import gc

import pytest

from fastinput_bench import batch_gaps
from fastinput_bench.synthetic import synthetic_files


def test_pinned_workers_stay_as_pinned(cache_dir):
    pytest.importorskip("tensorflow")  # the synthetic photos are written with TensorFlow
    files = synthetic_files("images", "small", cache_dir)
    result = batch_gaps.run(files, "readme", batches=3, with_tf=False, parallelism=3)
    (index, knobs), *later = result["knob_changes"]
    workers = [value for name, value in knobs.items()
               if name.startswith("map_and_batch") and name.endswith(".parallelism")]
    assert index == 0 and workers == [3]
    assert not any(name.startswith("map_and_batch") for _, changed in later for name in changed)
    assert all(pause >= 0 for pause in result["gc_pauses"])


def test_gc_pauses_are_timed_inside_the_block_only():
    with batch_gaps.GcPauses() as pauses:
        gc.collect()
    assert len(pauses.pauses) == 1 and pauses.pauses[0] >= 0
    gc.collect()
    assert len(pauses.pauses) == 1
