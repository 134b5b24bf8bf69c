"""Smoke test of the process-workers benchmark (``python -m fastinput_bench.processes``): every loader runs every
workload on a few elements and the figures are reported (timings are never asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastinput_bench import processes


@pytest.mark.slow
def test_every_loader_runs_every_workload(tmp_path, capsys) -> None:
    out = tmp_path / "processes.json"
    assert processes.main(["--elements", "96", "--workers", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for name in ["gil", "pil", "trivial"]:
        loaders = [run["loader"] for run in result[name]["runs"]]
        assert any("thread" in loader for loader in loaders) and any("process" in loader for loader in loaders)
        assert any("DataLoader" in loader for loader in loaders)
        assert all(run["elements"] > 0 and run["elements_per_second"] > 0 for run in result[name]["runs"])
        assert result[name]["processes_vs_threads"] > 0
    assert any("grain" in run["loader"] for run in result["gil"]["runs"])
    assert "processes_vs_grain" in result["pil"]
    assert "elements/s" in capsys.readouterr().out


def test_the_workloads_give_what_they_say() -> None:
    tokens = processes.tokenize(3)
    assert tokens.shape == (64,) and tokens.dtype == np.int64 and (tokens == processes.tokenize(3)).all()
    image = processes.augment(processes.jpegs(1)[0])
    assert image.shape == (224, 224, 3) and image.dtype == np.uint8
