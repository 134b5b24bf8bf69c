"""A short run of the surface-ops benchmark (``python -m fastinput_bench.surface_ops``): both libraries give the
same number of elements for each pipeline, and every figure is reported."""

import json

from fastinput_bench import surface_ops


def test_a_short_run_reports_every_pipeline(tmp_path, capsys):
    out = tmp_path / "surface_ops.json"
    assert surface_ops.main(["--elements", "2000", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["pipeline"] for r in result["results"]] == list(surface_ops.pipelines(2000))
    assert all(r["elements"] > 0 and r["ratio"] > 0 for r in result["results"])
    assert "ignore_errors" in capsys.readouterr().out
