"""``python -m fastinput_bench.readme_cpu``: the README pipeline's CPU per image, per stage, beside the kernel's
(measured, never timed)."""

from __future__ import annotations

import pytest

from fastinput_bench import readme_cpu
from fastinput_bench.synthetic import synthetic_files


def test_a_round_reports_the_pipeline_per_stage_and_the_kernel(cache_dir):
    pytest.importorskip("tensorflow")  # the synthetic photos are written with TensorFlow
    files = synthetic_files("images", "small", cache_dir)
    run = readme_cpu.run_pipeline(files, batches=2, parallelism=2)
    assert run["images_per_second"] > 0 and run["workers_at_end"] == 2
    assert "map_and_batch" in run["per_stage_us"] and run["per_stage_us"]["threads that ended"] >= 0
    kernel = readme_cpu.run_kernel(readme_cpu.load_jpegs(files)[:4])
    assert kernel["images_per_second"] > 0 and kernel["cpu_us_per_image"] >= 0


def test_a_thread_counts_for_its_stage():
    assert readme_cpu._stage("fastinput map_and_batch(preprocess, batch_size=64) #3") == "map_and_batch"
    assert readme_cpu._stage("fastinput prefetch(AUTOTUNE) #0") == "prefetch"
    assert readme_cpu._stage("fastinput autotuner") == "autotuner"
    assert readme_cpu._stage("MainThread") == "MainThread"
