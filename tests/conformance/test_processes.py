"""The table cases of ``test_ops`` that map, and the random pipelines of ``test_differential``, again with every
``map`` and ``map_and_batch`` in worker processes (``workers="process"``): each must still match tf.data event for
event, as on threads."""

from __future__ import annotations

import pytest

from tests.conformance.differential import check_seed
from tests.conformance.oracle import check
from tests.conformance.pipeline import map_workers
from tests.conformance.test_ops import CASES, Case

MAP_CASES = [case for case in CASES if "map" in repr(case.pipeline)]


@pytest.mark.slow
@pytest.mark.parametrize("case", MAP_CASES, ids=repr)
def test_map_cases_with_process_workers_match_tf_data(case: Case) -> None:
    with map_workers("process"):
        mismatch = check(case.pipeline, case.mode, case.differs)
    assert mismatch is None, f"\n{mismatch}"

SEEDS = 40
CHUNK = 20


@pytest.mark.slow
@pytest.mark.parametrize("seeds", [range(s, s + CHUNK) for s in range(0, SEEDS, CHUNK)],
                         ids=lambda seeds: f"seeds{seeds.start}-{seeds.stop - 1}")
def test_random_pipelines_with_process_workers_match_tf_data(seeds: range) -> None:
    failures = []
    with map_workers("process"):
        for seed in seeds:
            mismatch = check_seed(seed)
            if mismatch is not None:
                failures.append(f"--- seed {seed}\n{mismatch}")
    assert not failures, f"{len(failures)} of {len(seeds)} seeds differ from tf.data:\n" + "\n".join(failures)


def test_the_switch_reaches_the_built_pipeline() -> None:
    from tests.conformance.functions import AddConst
    from tests.conformance.pipeline import P

    with map_workers("process"):
        ds = P.range(4).map(AddConst(1)).build("fi", "")
    assert 'workers="process"' in str(ds)
    assert 'workers="process"' not in str(P.range(4).map(AddConst(1)).build("fi", ""))
