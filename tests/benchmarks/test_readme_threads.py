"""``python -m fastinput_bench.readme_threads``: the README pipeline at a fixed worker count, measured (never timed)."""

from __future__ import annotations

import pytest

from fastinput_bench import readme_threads
from fastinput_bench.synthetic import synthetic_files


def test_a_run_reports_its_rate_cpu_and_switches_at_the_workers_asked(cache_dir):
    pytest.importorskip("tensorflow")  # the synthetic photos are written with TensorFlow
    files = synthetic_files("images", "small", cache_dir)
    run = readme_threads.measure(files, parallelism=2, batches=2)
    assert run["parallelism"] == 2 and run["workers_at_end"] == 2
    assert run["images_per_second"] > 0 and run["cpu_ms_per_image"] > 0
    assert run["voluntary_switches_per_image"] >= 0 <= run["involuntary_switches_per_image"]
