"""The checkpoint conformance suite (``tests/checkpoint/conformance.py``): every op, and random chains of ops, saved
mid-run and restored in a fresh process, continue as the uninterrupted run does."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

import fastinput as fi
from tests.checkpoint import conformance
from tests.checkpoint.conformance import CASES, END, Case, Event, Run, check_case, differences
from tests.conformance.oracle import canonical
from tests.conformance.pipeline import DatasetFn, P, element_range

SEEDS = 120
CHUNKS = [range(start, min(start + 30, SEEDS)) for start in range(0, SEEDS, 30)]


def _checked(key: str) -> conformance.Result:
    result = check_case(key)
    if result.not_saved is not None:
        pytest.skip(f"a stage listed in NOT_YET_SAVED cannot save yet: {result.not_saved}")
    return result


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_op_restores_in_a_fresh_process(name: str) -> None:
    result = _checked(f"op:{name}")
    assert not result.problems, f"{result.case.pipeline!r} ({result.case.mode}):\n" + "\n".join(result.problems)


@pytest.mark.slow
@pytest.mark.parametrize("kind, seeds", [*(("seed", chunk) for chunk in CHUNKS), ("sample", range(20))],
                         ids=lambda value: f"{value.start}-{value.stop - 1}" if isinstance(value, range) else value)
def test_random_chains_restore_in_a_fresh_process(kind: str, seeds: range) -> None:
    """The differential tester's chains (``seed:``), and ``sample_from_datasets`` mixes (``sample:``)."""
    failures = []
    for seed in seeds:
        result = check_case(f"{kind}:{seed}")
        if result.problems:
            failures.append(f"--- seed {seed}: {result.case.pipeline!r}\n  " + "\n  ".join(result.problems[:5]))
    assert not failures, f"{len(failures)} of {len(seeds)} chains restore wrongly:\n" + "\n".join(failures)


def test_the_table_covers_every_op_and_the_hard_moments() -> None:
    text = " ".join(repr(case.pipeline) for case in CASES.values() if isinstance(case.pipeline, P))
    for op in ("range", "from_tensor_slices", "from_tensors", "from_generator", "zip_datasets", "map(", "filter",
               "batch", "padded_batch", "unbatch", "shuffle", "repeat", "take", "skip", "shard", "interleave",
               "flat_map", "concatenate", "enumerate", "cache", "prefetch", "map_and_batch", "FailAt",
               "deterministic=False", "AUTOTUNE"):
        assert op in text, op
    assert {"TFRecordDataset", "TFRecordDataset_gzip", "list_files", "CsvDataset", "make_csv_dataset",
            "make_batched_features_dataset", "with_options"} <= set(CASES)
    assert any(case.turn_knobs for case in CASES.values())
    assert any(case.mode.startswith("multiset:") and case.mode != "multiset:1" for case in CASES.values())


def test_not_yet_saved_names_real_stages() -> None:
    """The list is by traits' op: a misspelt name would leave a stage out forever."""
    package = pathlib.Path(fi.__file__).parent
    ops = {op for path in package.rglob("*.py") for op in re.findall(r'StageTraits\("(\w+)"', path.read_text())}
    assert conformance.NOT_YET_SAVED <= ops, conformance.NOT_YET_SAVED - ops


# -- the harness finds what it must ----------------------------------------------------------------------------

def _v(value: int) -> Event:
    return Event("value", canonical(np.int64(value)))


def _run(*values: int) -> Run:
    return Run([_v(v) for v in values] + [END], {})


def test_a_restore_that_skips_or_repeats_is_reported() -> None:
    case = Case(P.range(4))
    run = _run(0, 1, 2, 3)
    assert differences(case, run, {1: [_v(1), _v(2), _v(3), END]}) == []
    skipped = differences(case, run, {1: [_v(2), _v(3), END]})
    assert skipped == ["saved before event 1: event 1 is 2, the uninterrupted run had 1"]
    assert differences(case, run, {4: [END]}) == []
    assert differences(case, run, {4: [_v(0)]}) != []  # a restore at the end must end


def test_unordered_runs_compare_each_epoch_as_a_multiset() -> None:
    case = Case(P.range(2), "multiset:2")
    run = _run(1, 0, 0, 1)
    assert differences(case, run, {1: [_v(0), _v(1), _v(0), END]}) == []
    lost = differences(case, run, {1: [_v(0), _v(1), END]})
    assert lost and "epoch 0" in lost[0]
    crossed = differences(case, run, {1: [_v(0), _v(1), _v(1), END]})
    assert crossed  # an element of the first epoch delivered again in the second


def test_the_command_line_runs_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert conformance.main(["--seeds", "2", "--start", "7"]) == 0
    assert "=== 2 cases" in capsys.readouterr().out


def test_a_pipeline_that_cannot_be_built_is_invalid_not_failed(tmp_path) -> None:
    rejected = P.range(3).interleave(DatasetFn(element_range(2)), cycle_length=1, num_parallel_calls=2)
    with pytest.raises(conformance.Invalid, match="num_parallel_calls"):
        conformance.record(Case(rejected), str(tmp_path))
