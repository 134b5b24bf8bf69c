"""A few seconds of the memory benchmark (``python -m fastinput_bench.memory``): it runs, samples and reports."""

import json

import pytest

from fastinput_bench import memory


def test_slope_and_its_error():
    slope, error = memory.slope_per_minute([0, 1, 2, 3], [10, 11, 12, 13])
    assert slope == pytest.approx(60.0) and error == pytest.approx(0.0, abs=1e-9)
    assert memory.slope_per_minute([0, 1], [5, 9]) == (0.0, 0.0)


@pytest.mark.slow
def test_a_short_run_reports_every_figure(tmp_path, capsys):
    out = tmp_path / "memory.json"
    assert memory.main(["--seconds", "3", "--files", "2", "--records-per-file", "40", "--record-kib", "16",
                        "--batch-size", "8", "--ram-budget", "8", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["batches"] > 0 and result["samples"] >= 2 and len(result["rss_mib"]) == result["samples"]
    assert 0 < result["baseline_mib"] <= result["peak_mib"]
    assert result["ram_budget_mib"] == 8.0 and isinstance(result["under_budget"], bool)
    assert result["peak_buffered_mib"] <= 8.0  # the stages' buffers keep the budget
    text = capsys.readouterr().out
    assert "second-half slope" in text and "RAM budget 8.0 MiB" in text


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        memory.main(["--seconds", "0"])
