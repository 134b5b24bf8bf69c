"""Random pipelines, seeded, run through tf.data and fastinput: outputs and element specs must agree.

CI runs ``SEEDS`` seeds in chunks (one failing chunk names its seeds; rerun one with
``python -m tests.conformance.differential --seeds 1 --start SEED`` for a minimised reproducer).
The script runs thousands.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conformance.differences import SHUFFLE_REPEAT_ERRORS
from tests.conformance.differential import ROW_DTYPES, check_seed, generate
from tests.conformance.functions import FailAt
from tests.conformance.oracle import check, spec_mismatch
from tests.conformance.pipeline import AUTOTUNE, LAYOUTS, DatasetFn, P, element_tensors

SEEDS = 200
CHUNK = 20
CHUNKS = [range(start, start + CHUNK) for start in range(0, SEEDS, CHUNK)]


def _ids(seeds: range) -> str:
    return f"seeds{seeds.start}-{seeds.stop - 1}"


@pytest.mark.slow
@pytest.mark.parametrize("seeds", CHUNKS, ids=_ids)
def test_random_pipelines_match_tf_data(seeds: range) -> None:
    failures = []
    for seed in seeds:
        mismatch = check_seed(seed)
        if mismatch is not None:
            failures.append(f"--- seed {seed}\n{mismatch}")
    assert not failures, f"{len(failures)} of {len(seeds)} seeds differ from tf.data:\n" + "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("seeds", CHUNKS, ids=_ids)
def test_random_pipeline_element_specs(seeds: range) -> None:
    failures = [found for seed in seeds if (found := spec_mismatch(generate(seed)[0])) is not None]
    assert not failures, f"{len(failures)} of {len(seeds)} element specs differ from tf.data:\n" + "\n".join(failures)


def test_a_seed_always_makes_the_same_pipeline() -> None:
    assert [repr(generate(seed)) for seed in range(50)] == [repr(generate(seed)) for seed in range(50)]


def test_the_seeds_cover_every_op() -> None:
    """The CI seeds together use every op and comparison mode the tester knows."""
    used = set()
    for seed in range(SEEDS):
        pipeline, mode = generate(seed)
        used.add(mode.split(":")[0])
        text = repr(pipeline)
        used.update(op for op in _OPS if f".{op}(" in text or f"D.{op}(" in text)
        used.update(name for name in ("num_parallel_calls=2", "deterministic=False", "FailAt(") if name in text)
    assert used >= set(_OPS) | {"exact", "multiset", "shuffle", "num_parallel_calls=2", "deterministic=False",
                                "FailAt("}


def test_the_seeds_reach_the_rows_path() -> None:
    """The CI seeds together make typed sources of every dtype, every memory layout, nests, zero-size dimensions,
    and mixes of typed sources batched."""
    texts = [repr(generate(seed)[0]) for seed in range(SEEDS)]
    text = " ".join(texts)
    for needed in [*(f"'{dtype}')" for dtype in ROW_DTYPES), *(f"'{layout}')" for layout in LAYOUTS), "{'",
                   "reshape(0", ", 0)"]:
        assert needed in text or needed.replace(")", ").reshape") in text, needed
    assert any(t.startswith("D.choose_from_datasets((D.from_tensor_slices(") and "batch(" in t for t in texts)


_OPS = ["range", "from_tensor_slices", "from_tensors", "from_generator", "zip_datasets", "map", "filter", "batch",
        "padded_batch", "unbatch", "shuffle", "repeat", "take", "skip", "shard", "interleave", "flat_map",
        "concatenate", "enumerate", "cache", "prefetch", "map_and_batch", "choose_from_datasets", "sparse_batch"]


def test_shuffled_epochs_of_different_lengths_compare_by_tf_data_epochs() -> None:
    # A cache replays its first epoch without the input's errors, so a map_and_batch after it makes fewer batches
    # in the first epoch than in the next (seed 1448): epochs are compared where tf.data ends them, not in halves.
    from tests.conformance.oracle import Event, Outcome, canonical, compare

    def outcome(*epochs: list[int]) -> Outcome:
        return Outcome(events=[Event("value", canonical(np.int64(v))) for epoch in epochs for v in epoch]
                       + [Event("end", None)])

    tf_data = outcome([1, 2, 3], [4, 5, 6, 7, 8])
    assert compare(P.range(1), tf_data, outcome([3, 1, 2], [8, 7, 6, 5, 4]), "shuffle:2") is not None  # halves
    assert compare(P.range(1), tf_data, outcome([3, 1, 2], [8, 7, 6, 5, 4]), "shuffle:2", lambda: [3]) is None
    assert compare(P.range(1), tf_data, outcome([3, 1, 4], [8, 7, 6, 5, 2]), "shuffle:2", lambda: [3]) is not None
    assert compare(P.range(1), outcome([1, 2], [3, 4]), outcome([1, 3], [2, 4]), "shuffle:2", lambda: [2]) is not None
    assert check(SEED_1448, "shuffle:2", SHUFFLE_REPEAT_ERRORS) is None


SEED_1448 = P.from_tensor_slices(np.arange(13, dtype=np.int64) * 3 - 5).map(FailAt(22, 29)).concatenate(
    P.from_tensor_slices(np.arange(13, dtype=np.int64) * 3 - 5).map(FailAt(22, 29)).map(FailAt(-2))).flat_map(
    DatasetFn(element_tensors().repeat(2))).cache("").map_and_batch(
    FailAt(5), 6, num_parallel_calls=AUTOTUNE, drop_remainder=False).shuffle(
    100, seed=94, reshuffle_each_iteration=False).repeat(2)
"""The pipeline of seed 1448 before the generator changed in session 16 (``check_seed`` runs it so)."""
