"""``python -m fastinput_bench.readme_threads``: the README pipeline at a fixed worker count, measured (never timed)."""

from __future__ import annotations

import contextlib
import json

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


def test_busy_cores_run_beside_every_setting(monkeypatch, tmp_path, capsys):
    from fastinput_bench.data import imagenet_synthetic

    busy, seen = [], []

    @contextlib.contextmanager
    def fake_busy_cores(count):
        busy.append(count)
        yield []
        busy.pop()

    def fake_measure(files, parallelism, batches):
        seen.append((parallelism, list(busy)))
        return {"parallelism": parallelism, "workers_at_end": parallelism, "images_per_second": 1.0,
                "cpu_ms_per_image": 1.0, "voluntary_switches_per_image": 0.0, "involuntary_switches_per_image": 0.0}

    monkeypatch.setattr(readme_threads, "busy_cores", fake_busy_cores)
    monkeypatch.setattr(readme_threads, "measure", fake_measure)
    monkeypatch.setattr(imagenet_synthetic, "ensure_imagenet_synthetic", lambda **kwargs: ["f"])
    out = tmp_path / "out.json"
    monkeypatch.setattr("sys.argv", ["readme_threads", "--parallelism", "2", "6", "--rounds", "2", "--busy-cores",
                                     "1", "--json", str(out)])
    readme_threads.main()
    assert seen == [(2, [1]), (6, [1])] * 2
    assert "1 busy core(s) beside" in capsys.readouterr().out
    assert json.loads(out.read_text())["busy_cores"] == 1
