"""The fuzz suite in CI: a few thousand inputs per target, each batch in a child process; none may crash,
hang or disagree with TensorFlow. ``python -m tests.fuzz.run`` runs the long campaigns (see __init__)."""

from __future__ import annotations

import pickle

import pytest

from tests.fuzz.runner import run_campaign

CI_INPUTS = {"tfrecord": 1500, "example": 2000, "jpeg": 6000, "mix": 2000, "shuffle": 3000}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("target", list(CI_INPUTS))
def test_no_crash_hang_or_mismatch(target, tmp_path):
    report = run_campaign(target, CI_INPUTS[target], seed=2026, out_dir=tmp_path, batch=CI_INPUTS[target])
    assert report.failures == [], report.summary() + "\n" + "\n".join(report.failures)
    assert report.inputs == CI_INPUTS[target]


@pytest.mark.timeout(300)
def test_the_runner_catches_crashes_hangs_and_mismatches_and_saves_the_inputs(tmp_path):
    report = run_campaign("selftest", 10, seed=0, out_dir=tmp_path, batch=10, input_timeout=5)
    assert (report.inputs, report.crashes, report.hangs, report.mismatches, report.oracle_crashes) == (10, 1, 1, 1, 1)
    for index, kind in [(3, "crash"), (5, "hang"), (7, "mismatch")]:
        saved = tmp_path / f"selftest-seed0-input{index}.pickle"
        assert pickle.loads(saved.read_bytes())[1] == kind
        assert any(f.startswith(f"{kind} at input {index}, saved to {saved}") for f in report.failures)
    assert "SIGABRT" in next(f for f in report.failures if f.startswith("crash"))
