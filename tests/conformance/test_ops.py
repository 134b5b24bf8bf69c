"""Table-driven conformance cases, op by op: each pipeline runs through tf.data and fastinput and must agree.

Cases are written from tf.data's documented behaviour (the values, dtypes and shapes of each element,
where an error comes and what follows it, the end of sequence, and what tf.data rejects when the pipeline
is built). Each case is also checked for equal ``element_spec`` (``test_element_spec``).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from tests.conformance import differences
from tests.conformance.differences import (
    PADDED_SHAPE_TOO_SMALL,
    SHUFFLE_REPEAT_ERRORS,
    STOP_ITERATION_IN_FILTER,
    Difference,
    concatenated_mix,
    padding_value_cast,
)
from tests.conformance.functions import (
    AddConst,
    AddPair,
    AsList,
    Const,
    FailAt,
    First,
    Gen,
    Half,
    Identity,
    Mod,
    Pair,
    Sum,
    ToStr,
    Vec,
    WithList,
)
from tests.conformance.oracle import (
    canonical_spec,
    check,
    run,
    spec_mismatch,
)
from tests.conformance.pipeline import (
    AUTOTUNE,
    CacheFile,
    DatasetFn,
    DType,
    P,
    Pipeline,
    Sparse,
    Spec,
    element_range,
    element_tensors,
)


class Case(NamedTuple):
    pipeline: Pipeline
    mode: str = "exact"
    differs: Difference | None = None
    """A documented difference from tf.data that the case meets (see ``differences``)."""

    def __repr__(self) -> str:
        return repr(self.pipeline) if self.mode == "exact" else f"{self.pipeline!r} [{self.mode}]"


def _errors(n: int) -> list[FailAt | None]:
    """No error, and errors at the first, a middle, the last and every element of a source of ``n``."""
    return [None, FailAt(0), FailAt(n // 2), FailAt(n - 1), FailAt(*range(n))]


def range_cases() -> list[Case]:
    return [Case(P.range(*args))
            for args in [(5,), (0,), (-3,), (2, 8), (8, 2, -2), (1, 10, 3), (5, 5), (0, 10, 0)]] + [
        Case(P.range(4, output_type=DType("int32"))),
        Case(P.range(1, 4, output_type=DType("float32"))),
    ]


def from_tensor_slices_cases() -> list[Case]:
    inputs = [
        np.arange(5), np.arange(6).reshape(3, 2), np.arange(4, dtype=np.float32) / 2, np.array([True, False]),
        np.zeros((0,), np.int64), np.zeros((0, 3), np.int64), np.array([b"a", b"bc"]),
        (np.arange(3), np.array([b"x", b"y", b"z"])), {"a": np.arange(2), "b": np.array([1.5, 2.5], np.float32)},
        ((np.arange(2), np.arange(2) * 10), np.arange(2) + 100),
        [1, 2, 3], [1.5, 2.5], ["a", "bc"], [b"a", b"bc"], [[1, 2], [3, 4]],
        (np.arange(3), np.arange(4)),  # unequal lengths: rejected when built
        np.int64(3),  # a scalar has no rows: rejected when built
    ]
    return [Case(P.from_tensor_slices(x)) for x in inputs]


def from_tensors_cases() -> list[Case]:
    inputs = [np.int64(1), [np.int64(1)], [np.int64(2**40)], [1, 2], 1.5, "text", b"bytes", (1, b"x", [1, 2]),
              {"a": 1.5, "b": np.arange(3)}, np.arange(6).reshape(2, 3), np.zeros((0, 2), np.float32)]
    return [Case(P.from_tensors(x)) for x in inputs] + [
        Case(P.from_tensors(np.arange(3)).repeat(3)),
        Case(P.from_tensors(Sparse(((0, 0), (1, 2)), (7, 8), (2, 3)))),
        Case(P.from_tensors(Sparse(((0, 0), (1, 2)), (7, 8), (2, 3))).repeat(3).batch(2)),
        Case(P.from_tensors(Sparse(((0, 0), (1, 2)), (7, 8), (2, 3))).repeat(2).padded_batch(2)),
    ]


def from_generator_cases() -> list[Case]:
    sig = Spec((), "int64")
    return [
        Case(P.from_generator(Gen(5), sig)),
        Case(P.from_generator(Gen(0), sig)),
        Case(P.from_generator(Gen(5, fail_at=2), sig)),
        Case(P.from_generator(Gen(5, fail_at=0), sig)),
        Case(P.from_generator(Gen(3), sig).repeat(2)),
        Case(P.from_generator(Gen(3, empty_calls=1), sig).repeat(3)),
        Case(P.from_generator(Gen(4), sig).take(2).repeat(2)),
        Case(P.from_generator(Gen(4), sig).batch(3)),
    ]


def map_cases() -> list[Case]:
    cases = []
    source = P.range(10)
    for npc in (None, 1, 2, AUTOTUNE):
        for deterministic in (None, False):
            for fail in _errors(10):
                fn = fail if fail is not None else AddConst(1)
                pipeline = source.map(fn, num_parallel_calls=npc, deterministic=deterministic)
                parallel = npc is not None and npc != 1
                cases.append(Case(pipeline, "multiset" if parallel and deterministic is False else "exact"))
    for npc in (None, 2):
        cases.append(Case(source.map(FailAt(2, exc="stop"), num_parallel_calls=npc)))
    cases += [Case(source.map(fn)) for fn in (Pair(), AsList(), ToStr(), Vec(), Const(7), Const(1.5), Const("abc"),
                                               Const(None), Const([1, 2]), Const((np.int64(1), b"x")))]
    cases += [
        Case(P.range(3).map(Pair()).map(AddPair())),
        Case(P.range(3).map(Pair()).map(AddPair(), num_parallel_calls=2)),
        Case(P.range(3).map(AsList()).map(AddPair())),
        Case(P.range(3).map(WithList())),
        Case(P.range(3).map(Const(7)).map(Half())),
        Case(P.range(3).map(Half())),
        Case(P.range(0).map(FailAt(0))),
        Case(P.range(4).map(Pair()).map(First())),
        Case(P.range(4).map(Pair()).map(FailAt(2))),
        Case(P.from_tensor_slices({"a": np.arange(3), "b": np.arange(3) * 2}).map(AddConst(1))),
        Case(P.from_tensor_slices(np.arange(6).reshape(3, 2)).map(Sum())),
        Case(P.range(6).map(FailAt(1, 2)).map(FailAt(4), num_parallel_calls=2)),
    ]
    return cases


def filter_cases() -> list[Case]:
    return [
        Case(P.range(10).filter(Mod(2))),
        Case(P.range(10).filter(Mod(3, 1))),
        Case(P.range(10).filter(Mod(100, 99))),
        Case(P.range(0).filter(Mod(2))),
        Case(P.range(6).filter(FailAt(0, predicate=True))),
        Case(P.range(6).filter(FailAt(4, predicate=True))),
        Case(P.range(6).filter(FailAt(5, predicate=True))),
        Case(P.range(6).filter(FailAt(2, exc="stop", predicate=True)), differs=STOP_ITERATION_IN_FILTER),
        Case(P.range(6).map(FailAt(3)).filter(Mod(2))),
        Case(P.range(6).map(Pair()).filter(Mod(2))),
        Case(P.range(6).filter(Const(True))),
        Case(P.range(6).filter(Const(np.int64(1)))),  # not a boolean: rejected when built
        Case(P.range(6).filter(Identity())),
    ]


def batch_cases() -> list[Case]:
    cases = [Case(P.range(n).batch(size, drop_remainder=drop))
             for n, size in [(10, 4), (10, 1), (10, 10), (10, 11), (0, 3), (5, 0), (5, -1)] for drop in (False, True)]
    for fail in _errors(10):
        if fail is not None:
            cases += [Case(P.range(10).map(fail).batch(4, drop_remainder=drop)) for drop in (False, True)]
    cases += [
        Case(P.range(10).map(FailAt(4, 5)).batch(4)),
        Case(P.range(10).map(FailAt(1), num_parallel_calls=2).batch(4)),
        Case(P.range(7).map(Pair()).batch(3)),
        Case(P.from_tensor_slices({"a": np.arange(5), "b": np.arange(5.0)}).batch(2)),
        Case(P.range(5).map(ToStr()).batch(2)),
        Case(P.from_tensor_slices(np.arange(12).reshape(6, 2)).batch(4)),
        Case(P.range(5).map(Vec()).batch(2)),  # different shapes in one batch: an error at that batch
        Case(P.range(10).batch(3).batch(2)),
        Case(P.range(10).batch(3, drop_remainder=True).batch(2, drop_remainder=True)),
        Case(P.range(10).batch(4, num_parallel_calls=2)),
    ]
    return cases


def padded_batch_cases() -> list[Case]:
    vec = P.range(7).map(Vec())
    strings = P.range(7).map(Vec()).map(ToStr())
    return [
        Case(vec.padded_batch(3)),
        Case(vec.padded_batch(3, drop_remainder=True)),
        Case(vec.padded_batch(3, padded_shapes=[5])),
        Case(vec.padded_batch(3, padded_shapes=[None])),
        Case(vec.padded_batch(3, padded_shapes=[5], padding_values=np.int64(-1))),
        # an element longer than the padded shape
        Case(vec.padded_batch(3, padded_shapes=[2]), differs=PADDED_SHAPE_TOO_SMALL),
        Case(vec.padded_batch(3, padded_shapes=[2.5])),  # not an integer shape: rejected when built
        Case(vec.padded_batch(3, padding_values=np.int32(-1)),  # another dtype: tf.data rejects it, fastinput casts
             differs=padding_value_cast(vec.padded_batch(3, padding_values=np.int64(-1)))),
        Case(vec.padded_batch(0)),
        Case(P.range(5).padded_batch(2)),
        Case(P.range(5).map(ToStr()).padded_batch(2)),
        Case(strings.padded_batch(2)),
        Case(strings.padded_batch(2, padding_values=b"-")),
        Case(strings.padded_batch(2, padding_values="-")),
        Case(vec.map(Pair()).padded_batch(2)),
        Case(vec.map(Pair()).padded_batch(2, padded_shapes=([4], [None]), padding_values=(np.int64(-1), np.int64(-2)))),
        Case(P.range(6).map(FailAt(2)).map(Vec()).padded_batch(2)),
        Case(P.range(0).map(Vec()).padded_batch(2)),
        Case(P.from_tensor_slices(np.arange(12).reshape(3, 2, 2)).padded_batch(2, padded_shapes=[3, None])),
    ]


def unbatch_cases() -> list[Case]:
    return [
        Case(P.from_tensor_slices(np.arange(12).reshape(4, 3)).unbatch()),
        Case(P.range(10).batch(3).unbatch()),
        Case(P.range(8).map(Vec()).unbatch()),
        Case(P.range(8).map(Vec()).padded_batch(3).unbatch()),
        Case(P.range(7).map(Pair()).batch(3).unbatch()),
        Case(P.range(5).unbatch()),  # scalars cannot be unbatched: rejected when built
        Case(P.range(10).batch(3).map(FailAt(4)).unbatch()),
        Case(P.zip_datasets((P.range(4).batch(2), P.range(6).batch(3))).unbatch()),
        Case(P.range(0).batch(2).unbatch()),
        Case(P.range(5).map(ToStr()).batch(2).unbatch()),
    ]


def shuffle_cases() -> list[Case]:
    return [
        Case(P.range(10).shuffle(1)),
        Case(P.range(10).shuffle(3, seed=1), "shuffle:1"),
        Case(P.range(10).shuffle(100, seed=2), "shuffle:1"),
        Case(P.range(10).shuffle(10, seed=3).repeat(3), "shuffle:3"),
        Case(P.range(10).shuffle(4, seed=0, reshuffle_each_iteration=False).repeat(2), "shuffle:2"),
        Case(P.range(0).shuffle(3)),
        Case(P.range(5).shuffle(0)),
        Case(P.range(10).map(FailAt(3)).shuffle(4, seed=1), "shuffle:1"),
        Case(P.range(5).map(FailAt(2)).shuffle(5, seed=1).repeat(2), "shuffle:2", SHUFFLE_REPEAT_ERRORS),
        Case(P.range(5).map(FailAt(2)).shuffle(2, seed=1).repeat(2), "shuffle:2"),
        Case(P.range(6).repeat(2).shuffle(4, seed=5), "shuffle:1"),
        Case(P.range(6).map(Pair()).shuffle(3, seed=4), "shuffle:1"),
    ]


def repeat_cases() -> list[Case]:
    return [
        Case(P.range(3).repeat(0)),
        Case(P.range(3).repeat(1)),
        Case(P.range(3).repeat(3)),
        Case(P.range(3).repeat(-1).take(8)),
        Case(P.range(3).repeat().take(7)),
        Case(P.range(0).repeat()),
        Case(P.range(0).repeat(3)),
        Case(P.range(3).map(FailAt(1)).repeat(2)),
        Case(P.range(1).map(FailAt(0)).repeat(3)),
        Case(P.range(2).map(FailAt(0, 1)).repeat(3)),
        Case(P.range(1).map(FailAt(0)).repeat().take(3)),
        Case(P.range(4).filter(Mod(100, 99)).repeat(3)),
    ]


def take_skip_shard_cases() -> list[Case]:
    cases = [Case(P.range(6).take(n)) for n in (0, 3, 100, -1)]
    cases += [Case(P.range(6).skip(n)) for n in (0, 3, 100, -1)]
    cases += [Case(P.range(12).shard(n, i))
              for n, i in [(3, 0), (3, 2), (1, 0), (5, 4), (20, 3), (0, 0), (2, 2), (2, -1)]]
    cases += [
        Case(P.range(10).map(FailAt(1)).take(3)),
        Case(P.range(10).map(FailAt(1)).skip(3)),
        Case(P.range(10).map(FailAt(4)).skip(3)),
        Case(P.range(10).map(FailAt(1)).shard(2, 0)),
        Case(P.range(10).map(FailAt(1)).shard(2, 1)),
        Case(P.range(0).take(3)),
        Case(P.range(0).skip(3)),
    ]
    return cases


def interleave_cases() -> list[Case]:
    fn = DatasetFn(element_range(5))
    cases = [Case(P.range(1, 7).interleave(fn, cycle_length=c, block_length=b))
             for c in (1, 2, 3, 8) for b in (1, 2, 3)]
    for npc in (1, 2, AUTOTUNE):
        for deterministic in (None, False):
            mode = "multiset" if deterministic is False else "exact"
            cases.append(Case(P.range(1, 7).interleave(fn, cycle_length=3, block_length=2, num_parallel_calls=npc,
                                                       deterministic=deterministic), mode))
    failing = DatasetFn(element_range(5).map(FailAt(2)))
    cases += [
        Case(P.range(1, 7).interleave(fn, cycle_length=AUTOTUNE)),
        Case(P.range(1, 7).interleave(failing, cycle_length=2)),
        Case(P.range(1, 7).interleave(failing, cycle_length=2, num_parallel_calls=2)),
        Case(P.range(1, 7).map(FailAt(3)).interleave(fn, cycle_length=2)),
        Case(P.range(1, 7).map(FailAt(3)).interleave(fn, cycle_length=2, num_parallel_calls=2)),
        Case(P.range(0).interleave(fn, cycle_length=2)),
        Case(P.range(0, 20, 5).interleave(fn, cycle_length=2)),  # every inner dataset is empty
        Case(P.range(1, 5).interleave(DatasetFn(element_tensors().repeat(3)), cycle_length=2, block_length=2)),
        Case(P.range(1, 5).interleave(Const(5), cycle_length=2)),  # not a dataset: rejected when built
        Case(P.range(1, 5).interleave(fn, cycle_length=0)),
        Case(P.range(1, 5).interleave(fn, cycle_length=2, block_length=0)),
    ]
    return cases


def flat_map_cases() -> list[Case]:
    return [
        Case(P.range(6).flat_map(DatasetFn(element_range(4)))),
        Case(P.range(4).flat_map(DatasetFn(element_tensors().repeat(2)))),
        Case(P.range(6).flat_map(DatasetFn(element_range(4).map(FailAt(1))))),
        Case(P.range(6).map(FailAt(2)).flat_map(DatasetFn(element_range(4)))),
        Case(P.range(0).flat_map(DatasetFn(element_range(4)))),
        Case(P.range(4).map(Pair()).flat_map(DatasetFn(element_tensors()))),
        Case(P.range(4).flat_map(Const(1))),
    ]


def concatenate_cases() -> list[Case]:
    return [
        Case(P.range(3).concatenate(P.range(5, 8))),
        Case(P.range(0).concatenate(P.range(2))),
        Case(P.range(2).concatenate(P.range(0))),
        Case(P.range(3).map(FailAt(2)).concatenate(P.range(10, 12).map(FailAt(10)))),
        Case(P.range(3).map(Pair()).concatenate(P.range(2).map(Pair()))),
        Case(P.range(3).concatenate(P.range(3).map(ToStr()))),  # different dtypes: rejected when built
        Case(P.range(3).concatenate(P.range(3).map(Pair()))),  # different structures: rejected when built
        Case(P.range(3).concatenate(P.from_tensor_slices(np.arange(3, dtype=np.int32)))),
        Case(P.from_tensor_slices(np.arange(6).reshape(3, 2))
             .concatenate(P.from_tensor_slices(np.arange(6).reshape(2, 3)))),
        Case(P.range(3).concatenate(P.range(3)).concatenate(P.range(2))),
        Case(P.choose_from_datasets((P.range(3), P.range(10, 13)), P.from_tensor_slices(np.array([1, 0, 1, 0])))
             .concatenate(P.range(2))),
        Case(P.choose_from_datasets((P.from_tensors(np.array([0, 1, 2])), P.from_tensors(np.array([5, 6, 7]))),
                                    P.from_tensor_slices(np.array([1, 0, 1])))
             .concatenate(P.from_tensors(np.arange(3))),
             differs=concatenated_mix(P.from_tensor_slices(np.array([[5, 6, 7], [0, 1, 2], [0, 1, 2]])))),
    ]


def zip_cases() -> list[Case]:
    return [
        Case(P.zip_datasets((P.range(3), P.range(5)))),
        Case(P.zip_datasets((P.range(5), P.range(3), P.range(10, 20)))),
        Case(P.zip_datasets({"a": P.range(3), "b": P.range(3).map(ToStr())})),
        Case(P.zip_datasets(((P.range(3), P.range(3)), P.range(3)))),
        Case(P.zip_datasets((P.range(0), P.range(3)))),
        Case(P.zip_datasets((P.range(4),))),
        Case(P.zip_datasets((P.range(10), P.range(10).map(FailAt(2), num_parallel_calls=2))).batch(4)),
        Case(P.zip_datasets((P.range(10), P.range(10).map(FailAt(2))))),
        Case(P.zip_datasets((P.range(10).map(FailAt(2)), P.range(10)))),
        Case(P.zip_datasets((P.range(10).map(FailAt(2)), P.range(10).map(FailAt(2))))),
        Case(P.zip_datasets((P.range(10).map(FailAt(2)), P.range(10).map(FailAt(5))))),
        Case(P.zip_datasets((P.range(10).map(FailAt(2)), P.range(10).map(FailAt(2)).skip(1)))),
        Case(P.zip_datasets((P.range(5), P.range(5).skip(1)))),
        Case(P.zip_datasets((P.range(10).map(FailAt(9)), P.range(9)))),
    ]


def enumerate_cases() -> list[Case]:
    return [
        Case(P.range(3, 6).enumerate()),
        Case(P.range(3).enumerate(start=5)),
        Case(P.range(3).map(Pair()).enumerate()),
        Case(P.range(5).map(FailAt(1)).enumerate()),
        Case(P.range(0).enumerate()),
    ]


def cache_cases() -> list[Case]:
    cases = []
    for filename in ("", CacheFile()):
        cases += [
            Case(P.range(5).cache(filename).repeat(2)),
            Case(P.range(5).map(FailAt(2)).cache(filename).repeat(2)),
            Case(P.range(5).cache(filename).take(2).repeat(2)),
            Case(P.range(0).cache(filename).repeat(2)),
            Case(P.range(4).map(Pair()).cache(filename).repeat(2)),
            Case(P.range(4).map(ToStr()).cache(filename).repeat(2)),
        ]
    return cases


def prefetch_cases() -> list[Case]:
    return [Case(P.range(6).prefetch(n)) for n in (0, 1, 2, AUTOTUNE, None)] + [
        Case(P.range(6).map(FailAt(3)).prefetch(2)),
        Case(P.range(6).map(FailAt(0, 5)).prefetch(1)),
        Case(P.range(0).prefetch(2)),
    ]


def map_and_batch_cases() -> list[Case]:
    cases = [Case(P.range(10).map_and_batch(AddConst(1), 4, num_parallel_calls=npc, drop_remainder=drop))
             for npc in (1, 2, AUTOTUNE) for drop in (False, True)]
    cases += [Case(P.range(10).map_and_batch(fail, 4)) for fail in _errors(10) if fail]
    cases += [
        Case(P.range(10).map_and_batch(FailAt(1), 4, drop_remainder=True)),
        Case(P.range(7).map_and_batch(Pair(), 3)),
        Case(P.range(5).map_and_batch(ToStr(), 2)),
        Case(P.range(0).map_and_batch(AddConst(1), 2)),
        Case(P.range(5).map(AddConst(1)).batch(2)),
        Case(P.range(3).map(Pair()).batch(2).map(AddPair())),
    ]
    return cases


def noop_cases() -> list[Case]:
    """Stages tf.data removes before fusing (``noop_elimination``): a map below them still batches as
    ``map_and_batch`` does (an error takes the whole batch), and nothing else changes."""
    mapped = P.range(10).map(FailAt(1))
    return [
        Case(mapped.skip(0).batch(4)),
        Case(mapped.take(-1).batch(4, drop_remainder=True)),
        Case(mapped.repeat(1).batch(4)),
        Case(mapped.shard(1, 0).batch(4)),
        Case(mapped.prefetch(0).batch(4)),
        Case(mapped.skip(0).take(-1).repeat(1).shard(1, 0).batch(3)),
        Case(P.range(6).map(AddConst(1)).skip(0).map(FailAt(3)).batch(2)),
        Case(P.range(5).shuffle(3, seed=2).repeat(1).repeat(2), "shuffle:2"),
    ]


def size_one_cases() -> list[Case]:
    """Every op on a dataset of one element."""
    one = P.range(1)
    return [
        Case(one.map(AddConst(1), num_parallel_calls=2)),
        Case(one.filter(Mod(2))),
        Case(one.batch(2)),
        Case(one.batch(2, drop_remainder=True)),
        Case(one.map(Vec()).padded_batch(2)),
        Case(one.batch(1).unbatch()),
        Case(one.shuffle(2, seed=1).repeat(2), "shuffle:2"),
        Case(one.repeat(3)),
        Case(one.take(1)),
        Case(one.skip(1)),
        Case(one.shard(2, 1)),
        Case(one.interleave(DatasetFn(element_tensors().repeat(2)), cycle_length=2, num_parallel_calls=2)),
        Case(one.concatenate(one)),
        Case(P.zip_datasets((one, one.map(FailAt(0))))),
        Case(one.enumerate()),
        Case(one.cache().repeat(2)),
        Case(one.prefetch(1)),
        Case(one.map_and_batch(AddConst(1), 2)),
    ]


CASES = (range_cases() + from_tensor_slices_cases() + from_tensors_cases() + from_generator_cases() + map_cases()
         + filter_cases() + batch_cases() + padded_batch_cases() + unbatch_cases() + shuffle_cases() + repeat_cases()
         + take_skip_shard_cases() + interleave_cases() + flat_map_cases() + concatenate_cases() + zip_cases()
         + enumerate_cases() + cache_cases() + prefetch_cases() + map_and_batch_cases() + noop_cases()
         + size_one_cases())


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_same_output_as_tf_data(case: Case) -> None:
    mismatch = check(case.pipeline, case.mode, case.differs)
    assert mismatch is None, f"\n{mismatch}"


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_element_spec(case: Case) -> None:
    mismatch = spec_mismatch(case.pipeline)
    assert mismatch is None, mismatch


def test_shuffle_without_reshuffle_repeats_the_order(tf) -> None:
    """``reshuffle_each_iteration=False``: every epoch comes out in the same order, as in tf.data."""
    pipeline = P.range(20).shuffle(20, seed=7, reshuffle_each_iteration=False).repeat(3)
    for lib in ("tf", "fi"):
        events = run(pipeline, lib).events
        assert events[:20] == events[20:40] == events[40:60], lib


def test_shuffle_with_a_seed_is_reproducible(tf) -> None:
    """A fixed seed gives the same sequence of epochs each time the pipeline is built and run."""
    pipeline = P.range(20).shuffle(8, seed=11).repeat(2)
    for lib in ("tf", "fi"):
        first, second = run(pipeline, lib).events, run(pipeline, lib).events
        assert first == second, lib
        assert first[:20] != first[20:40], f"{lib}: the two epochs should differ"


def test_spec_comparison_reads_both_libraries(tf) -> None:
    """The harness reads tf.data's specs and fastinput's (shape tuples with None, numpy dtypes, object for strings)."""
    from dataclasses import dataclass

    @dataclass
    class TensorSpec:  # the shape of fi.TensorSpec
        shape: tuple
        dtype: np.dtype

    expected = (tf.TensorSpec((None, 3), tf.string), {"a": tf.TensorSpec((), tf.int64)})
    actual = (TensorSpec((None, 3), np.dtype(object)), {"a": TensorSpec((), np.dtype(np.int64))})
    assert canonical_spec(expected) == canonical_spec(actual) == (("tensor", (None, 3), "object"),
                                                                  {"a": ("tensor", (), "int64")})
    assert canonical_spec(TensorSpec((None, 3), np.dtype(np.int32))) != canonical_spec(expected[0])


def test_every_documented_difference_is_in_the_readme() -> None:
    """The differences the cases allow are the ones the README lists (its "Where fastinput differs" section)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Where fastinput differs from tf.data"):]
    for difference in differences.ALL:
        assert difference.readme in section, difference
