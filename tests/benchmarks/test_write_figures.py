"""``write_figures``: every benchmark script's ``--json`` output says where it ran (RESULTS.md shows each figure
with its core count), and a script run without ``--json`` writes nothing."""

from __future__ import annotations

import json
import os

from fastinput_bench.report import script_machine, write_figures


def test_a_document_without_a_machine_gets_this_one(tmp_path):
    path = tmp_path / "figures.json"
    write_figures(str(path), {"ratio": 1.5, "results": [{"name": "a", "rate": 2.0}]})
    document = json.loads(path.read_text())
    assert document["ratio"] == 1.5 and document["results"] == [{"name": "a", "rate": 2.0}]
    assert document["machine"]["cores"] == len(os.sched_getaffinity(0))
    assert document["machine"]["load_average"] >= 0 and document["machine"]["python"].count(".") == 2


def test_a_document_that_names_its_machine_keeps_it(tmp_path):
    path = tmp_path / "figures.json"
    machine = {**script_machine(), "load_average_before": 3.5}
    write_figures(str(path), {"machine": machine, "ratio": 0.9})
    assert json.loads(path.read_text()) == {"machine": machine, "ratio": 0.9}


def test_no_path_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_figures(None, {"ratio": 1.0})
    write_figures("", {"ratio": 1.0})
    assert list(tmp_path.iterdir()) == []
