"""Smoke test of the checkpoint benchmark (``python -m fastinput_bench.checkpoint``) on a few small files."""

from __future__ import annotations

import json

import pytest

from fastinput_bench import checkpoint
from tests.checkpoint.conformance import NOT_YET_SAVED
from tests.checkpoint.stages import Batches

STAGES = {"from_tensor_slices", "interleave", "TFRecordDataset", "TFRecordFile", "shuffle", "map_and_batch",
          "prefetch"}


def test_the_benchmark_saves_restores_and_reports(tmp_path, capsys) -> None:
    out = tmp_path / "checkpoint.json"
    status = checkpoint.main(["--files", "3", "--records-per-file", "30", "--record-kib", "4", "--shuffle-buffer",
                              "40", "--batch-size", "8", "--warmup", "2", "--saves", "2", "--json", str(out)])
    result = json.loads(out.read_text())
    if "unimplemented" in result and STAGES & NOT_YET_SAVED:
        pytest.skip(f"a stage listed in NOT_YET_SAVED cannot save yet: {result['unimplemented']}")
    assert status == 0 and result["restored_exactly"]
    assert result["records"] == 90 and len(result["samples"]) == 2
    assert result["state_bytes"] > 0 and result["get_state_ms"] >= 0 and result["restore_ms"] >= result["set_state_ms"]
    assert set(result["within_targets"]) == set(checkpoint.TARGETS)
    assert "get_state()" in capsys.readouterr().out


def test_one_save_is_timed_and_checked() -> None:
    ds = Batches(10)
    with iter(ds) as it:
        next(it)
        sample = checkpoint.save_once(it, ds)
        assert sample["restored_exactly"] and sample["state_bytes"] > len("{}")
        assert sample["restore_ms"] >= sample["set_state_ms"] >= 0


def test_counts_are_checked() -> None:
    with pytest.raises(SystemExit):
        checkpoint.main(["--saves", "0"])
