"""``as_tf_dataset`` on random pipelines (``tests/conformance/as_tf.py``): TensorFlow gets what fastinput's own
iteration gives, with string leaves cut by graph ops and by the native op. The script runs thousands of seeds."""

from __future__ import annotations

import pytest

from tests.conformance import as_tf

SEEDS = range(0, 40)


@pytest.mark.slow
def test_random_pipelines_cross_to_tensorflow_unchanged(tf) -> None:
    results = [as_tf.check_seed(seed) for seed in SEEDS]
    failures = [f"--- seed {seed}: {r.case!r}\n  " + "\n  ".join(r.problems[:3])
                for seed, r in zip(SEEDS, results) if r.problems]
    assert not failures, f"{len(failures)} of {len(SEEDS)} seeds differ through as_tf_dataset:\n" + "\n".join(failures)
    checked = [r for r in results if r.left_out is None]
    assert len(checked) >= len(SEEDS) // 2
    assert any(r.native_op for r in checked), "no seed had its strings cut by the native op"
    assert any(r.case.strings is not None and not r.native_op for r in checked), "no seed cut strings by graph ops"
