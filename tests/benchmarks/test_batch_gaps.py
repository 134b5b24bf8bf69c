"""``python -m fastinput_bench.batch_gaps``: the gaps between batches of both libraries, measured (never timed)."""

from __future__ import annotations

import pytest

from fastinput_bench import batch_gaps
from fastinput_bench.synthetic import synthetic_files


def test_a_short_run_reports_intervals_gaps_and_knob_changes(cache_dir):
    pytest.importorskip("tensorflow")  # the synthetic photos are written with TensorFlow; tf.data is compared
    files = synthetic_files("images", "small", cache_dir)
    result = batch_gaps.run(files, "readme", batches=3)
    for name in ("fastinput", "tf.data"):
        figures = result[name]
        assert len(figures["interval_rates"]) == 3 and figures["median"] > 0
        assert 0 <= figures["bursts"] <= 1 and figures["gap_cv"] >= 0
    assert result["knob_changes"][0][0] == 0  # the knobs' values at the first timed batch
