"""Batches of in-memory sources made from runs of rows (``fastinput._engine.row_slices``) against tf.data.

``from_tensor_slices`` (and ``repeat`` over it) hands ``batch`` and the mixing ops runs of rows as array slices; the
batches must be tf.data's, element by element, dtype and shape included, and a state saved on either path must
restore on the other. The element path, the fallback, is kept where a leaf is not numeric (strings), where the
source is not a slicing one (``from_tensors``, ``range``), and where any other stage stands between (``take``,
``map``, ...): those cases are checked to take it. The mixes are compared with tf.data through
``choose_from_datasets``, and ``sample_from_datasets`` with the element path (the same seed draws the same choices).
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

import fastinput as fi
from fastinput._engine.row_slices import RowBuffer, Rows
from fastinput.ops.batch import RowsBatchIterator
from fastinput.ops.sources import TensorSlicesDataset
from tests.helpers import NO_REWRITES, assert_same_elements, fi_elements, fi_outcomes, tf_elements, tf_outcomes

Pair = collections.namedtuple("Pair", ["x", "y"])

VALUES = {  # (tf.data's value, fastinput's): the same arrays; a namedtuple only for fastinput (tf.data: a tuple)
    "int64": lambda: np.arange(23, dtype=np.int64),
    "int32": lambda: np.arange(23, dtype=np.int32) * 3,
    "uint8": lambda: (np.arange(23) % 256).astype(np.uint8),
    "float32": lambda: np.linspace(0, 1, 23, dtype=np.float32),
    "float16": lambda: np.linspace(0, 1, 23).astype(np.float16),
    "float64 rows of 2x3": lambda: np.arange(23 * 6, dtype=np.float64).reshape(23, 2, 3),
    "bool": lambda: np.arange(23) % 3 == 0,
    "complex64": lambda: (np.arange(23) + 1j * np.arange(23)).astype(np.complex64),
    "fortran order": lambda: np.asfortranarray(np.arange(23 * 4, dtype=np.int32).reshape(23, 4)),
    "strided": lambda: np.arange(46, dtype=np.int64)[::2],
    "reversed": lambda: np.arange(23 * 2, dtype=np.float32).reshape(23, 2)[::-1],
    "byte-swapped": lambda: np.arange(23 * 2, dtype=">i4").reshape(23, 2),  # tf.data's elements: native int32
    "dict": lambda: {"b": np.arange(23, dtype=np.int32), "a": np.arange(46, dtype=np.float32).reshape(23, 2)},
    "tuple": lambda: (np.arange(23, dtype=np.int64), (np.arange(23, dtype=np.uint16), np.ones((23, 1), np.int8))),
}

PIPELINES = {  # (batch size, how the source is read before the batch, drop_remainder)
    "one epoch": (5, lambda ds: ds, False),
    "one epoch, drop remainder": (5, lambda ds: ds, True),
    "repeat(3), batches across epoch ends": (7, lambda ds: ds.repeat(3), False),
    "repeat(3), drop remainder": (7, lambda ds: ds.repeat(3), True),
    "batch larger than an epoch": (50, lambda ds: ds.repeat(4), False),
    "batch of one": (1, lambda ds: ds.repeat(2), False),
    "repeat(0)": (4, lambda ds: ds.repeat(0), False),
    "batch the whole epoch": (23, lambda ds: ds.repeat(2), True),
}


def _root(it: fi.Iterator):
    return it._root


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
@pytest.mark.parametrize("values", sorted(VALUES))
def test_batch_of_rows_matches_tf(tf, values, pipeline):
    size, read, drop = PIPELINES[pipeline]
    ds = read(fi.Dataset.from_tensor_slices(VALUES[values]())).batch(size, drop_remainder=drop)
    expected = tf_elements(read(tf.data.Dataset.from_tensor_slices(VALUES[values]())).batch(size, drop))
    with iter(ds) as it:
        assert type(_root(it)) is RowsBatchIterator
        actual = list(it)
    assert_same_elements(actual, expected)
    assert ds.cardinality() == int(read(tf.data.Dataset.from_tensor_slices(VALUES[values]())).batch(
        size, drop).cardinality())


def test_element_spec_and_cardinality_are_the_element_paths(monkeypatch):
    pipelines = [lambda: fi.Dataset.from_tensor_slices(VALUES["dict"]()).repeat(3).batch(4),
                 lambda: fi.Dataset.from_tensor_slices(VALUES["float64 rows of 2x3"]()).repeat().batch(4, True)]
    rows = [(p().element_spec, p().cardinality()) for p in pipelines]
    monkeypatch.setattr(TensorSlicesDataset, "row_layout", lambda self: None)
    assert rows == [(p().element_spec, p().cardinality()) for p in pipelines]


def test_namedtuples_keep_their_type():
    values = Pair(np.arange(10, dtype=np.int64), np.arange(20, dtype=np.float32).reshape(10, 2))
    batches = fi_elements(fi.Dataset.from_tensor_slices(values).repeat(2).batch(4))
    assert all(type(b) is Pair for b in batches)
    assert np.array_equal(np.concatenate([b.x for b in batches]), np.tile(values.x, 2))
    assert np.array_equal(np.concatenate([b.y for b in batches]), np.concatenate([values.y, values.y]))


def test_batches_are_their_own_arrays():
    """A batch is a fresh, writable, aligned array: changing it changes neither the source nor a later epoch."""
    values = np.arange(10, dtype=np.int64)
    with iter(fi.Dataset.from_tensor_slices(values).repeat(2).batch(10)) as it:
        first = next(it)
        first[:] = -1
        second = next(it)
    assert np.array_equal(values, np.arange(10)) and np.array_equal(second, np.arange(10))
    assert first.flags.writeable and first.flags.c_contiguous and first.ctypes.data % 64 == 0


FALLBACKS = {  # pipelines whose batch must stay on the element path, with tf.data's counterparts
    "strings": lambda D: D.from_tensor_slices(np.array([b"a", b"bc", b"d"] * 3, dtype=object)).repeat(2).batch(4),
    "strings beside numbers": lambda D: D.from_tensor_slices(
        {"s": np.array([b"a", b"bc", b"d"] * 3, dtype=object), "n": np.arange(9)}).batch(4),
    "from_tensors": lambda D: D.from_tensors(np.arange(3)).repeat(5).batch(2),
    "range": lambda D: D.range(10).batch(3),
    "take between": lambda D: D.from_tensor_slices(np.arange(10)).take(7).batch(3),
    "skip between": lambda D: D.from_tensor_slices(np.arange(10)).repeat(2).skip(3).batch(4),
    "shard between": lambda D: D.from_tensor_slices(np.arange(10)).shard(3, 1).batch(2),
    "map between": lambda D: D.from_tensor_slices(np.arange(10)).map(lambda x: x * 2).batch(3),
    "repeat over take": lambda D: D.from_tensor_slices(np.arange(10)).take(4).repeat(2).batch(3),
}


@pytest.mark.parametrize("case", sorted(FALLBACKS))
def test_the_element_path_is_kept_where_it_must_be(tf, case):
    ds = FALLBACKS[case](fi.Dataset)
    with iter(ds) as it:
        assert type(_root(it)) is not RowsBatchIterator  # a BatchIterator (map_and_batch for a map)
        actual = list(it)
    assert_same_elements(actual, tf_elements(FALLBACKS[case](tf.data.Dataset)))


AROUND = {  # stages after the batch of rows
    "take": lambda ds: ds.take(4),
    "skip": lambda ds: ds.skip(3),
    "shard": lambda ds: ds.shard(3, 2),
    "unbatch": lambda ds: ds.unbatch(),
    "prefetch": lambda ds: ds.prefetch(2),
    "map": lambda ds: ds.map(lambda x: x + 1),
    "repeat": lambda ds: ds.repeat(2),
}


@pytest.mark.parametrize("case", sorted(AROUND))
def test_stages_after_a_batch_of_rows_match_tf(tf, case):
    def build(D):
        return AROUND[case](D.from_tensor_slices(np.arange(17, dtype=np.int64)).repeat(2).batch(5))

    assert_same_elements(fi_elements(build(fi.Dataset)), tf_elements(build(tf.data.Dataset)))


def _states_then_rest(ds: fi.Dataset, at: int) -> tuple[list, dict, list]:
    with iter(ds) as it:
        head = [next(it) for _ in range(at)]
        state = it.get_state()
        rest = list(it)
    return head, state, rest


def _restored(ds: fi.Dataset, state: dict) -> list:
    with iter(ds) as it:
        it.set_state(state)
        return list(it)


CHECKPOINTED = {
    "batch of rows": lambda: fi.Dataset.from_tensor_slices(VALUES["dict"]()).repeat(3).batch(4),
    "sample": lambda: fi.Dataset.sample_from_datasets(
        [fi.Dataset.from_tensor_slices(np.arange(i * 100, i * 100 + 37)).repeat() for i in range(3)],
        weights=[0.5, 0.3, 0.2], seed=7).batch(16).take(40),
    "sample, unfused": lambda: fi.Dataset.sample_from_datasets(
        [fi.Dataset.from_tensor_slices(np.arange(i * 100, i * 100 + 37)).repeat(2) for i in range(3)],
        seed=7).batch(16).with_options(NO_REWRITES),
    "sample, inputs ending": lambda: fi.Dataset.sample_from_datasets(
        [fi.Dataset.from_tensor_slices(np.arange(i * 100, i * 100 + 20 + 9 * i)) for i in range(3)],
        seed=1, stop_on_empty_dataset=False).batch(8),
}


@pytest.mark.parametrize("at", [0, 1, 3, 7])
@pytest.mark.parametrize("case", sorted(CHECKPOINTED))
def test_a_state_restores_on_either_path(monkeypatch, case, at):
    """A state saved in the middle restores on the rows path and on the element path, and the other way round."""
    head, state, rest = _states_then_rest(CHECKPOINTED[case](), at)
    assert_same_elements(_restored(CHECKPOINTED[case](), state), rest)
    with monkeypatch.context() as patch:
        patch.setattr(TensorSlicesDataset, "row_layout", lambda self: None)
        element_head, element_state, element_rest = _states_then_rest(CHECKPOINTED[case](), at)
        assert_same_elements(element_head + element_rest, head + rest)
        assert_same_elements(_restored(CHECKPOINTED[case](), state), rest)
    assert_same_elements(_restored(CHECKPOINTED[case](), element_state), rest)


def _mixes(D, stop: bool):
    inputs = [D.from_tensor_slices(np.arange(i * 100, i * 100 + 9 + 4 * i, dtype=np.int64)) for i in range(3)]
    choices = D.from_tensor_slices(np.array([0, 1, 2, 2, 1, 0, 0, 0, 1, 2] * 6, dtype=np.int64))
    return D.choose_from_datasets(inputs, choices, stop_on_empty_dataset=stop)


MIXES = {
    "inputs end, stop": lambda D: _mixes(D, True).batch(4),
    "inputs end, go on": lambda D: _mixes(D, False).batch(4),
    "inputs end, drop remainder": lambda D: _mixes(D, False).batch(5, drop_remainder=True),
    "repeated inputs": lambda D: D.choose_from_datasets(
        [D.from_tensor_slices(np.arange(i * 100, i * 100 + 5)).repeat() for i in range(3)],
        D.from_tensor_slices(np.array([2, 1, 0, 0, 2] * 20, dtype=np.int64))).batch(6),
    "repeat(k) inputs": lambda D: D.choose_from_datasets(
        [D.from_tensor_slices(np.arange(i * 100, i * 100 + 5)).repeat(i + 1) for i in range(3)],
        D.from_tensor_slices(np.array([2, 1, 0, 0, 2] * 20, dtype=np.int64)), stop_on_empty_dataset=False).batch(6),
    "choice out of range": lambda D: D.choose_from_datasets(
        [D.from_tensor_slices(np.arange(i * 100, i * 100 + 30)) for i in range(2)],
        D.from_tensor_slices(np.array([0, 1, 1, 2, 0, 1, -1, 0, 0, 1, 1], dtype=np.int64))).batch(3),
    "nested rows": lambda D: D.choose_from_datasets(
        [D.from_tensor_slices({"a": np.arange(i, i + 12, dtype=np.float32).reshape(6, 2),
                               "b": np.arange(6, dtype=np.int32) + i}).repeat() for i in range(2)],
        D.from_tensor_slices(np.array([1, 1, 0, 1, 0, 0, 0] * 5, dtype=np.int64))).batch(4),
    "then unbatch": lambda D: _mixes(D, False).batch(4).unbatch(),
    # inputs whose arrays are not C-contiguous (the gather copies rows' bytes: their runs are made contiguous), or of
    # the other byte order (tf.data's elements, and spec, are native: the native ones mix with them)
    "inputs laid out otherwise": lambda D: D.choose_from_datasets(
        [D.from_tensor_slices({"d": np.asfortranarray(np.arange(i, i + 24, dtype=np.int32).reshape(8, 3))}).repeat()
         for i in range(2)] + [D.from_tensor_slices({"d": np.arange(60, dtype=np.int32).reshape(10, 6)[::-1, ::2]})],
        D.from_tensor_slices(np.array([1, 1, 0, 2, 0, 0, 2, 1, 0, 1, 2, 1] + [0, 1] * 40, dtype=np.int64))).batch(5),
    # a mix of rows is itself an input of rows: its error (a choice out of range) comes in its place, after the
    # rows before it, though the outer mix reads it ahead (it came at the outer's first pull: seed 3304)
    "a mix of mixes, a choice out of range inside": lambda D: D.choose_from_datasets(
        [D.choose_from_datasets([D.from_tensor_slices(np.arange(i * 100, i * 100 + 12).reshape(6, 2))
                                 for i in range(2)],
                                D.from_tensor_slices(np.array([1, 1, 0, 0, 1, 2, 1, 0, 0, 0, -1, 1], dtype=np.int64)),
                                stop_on_empty_dataset=False),
         D.from_tensor_slices(np.arange(500, 530).reshape(15, 2))],
        D.from_tensor_slices(np.array([1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1], dtype=np.int64))),
    "inputs of either byte order": lambda D: D.choose_from_datasets(
        [D.from_tensor_slices(np.arange(12, dtype=np.float32)), D.from_tensor_slices(np.arange(12, dtype=">f4"))],
        D.from_tensor_slices(np.array([0, 1, 1, 0, 1, 0, 0], dtype=np.int64))).batch(3),
}


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("case", sorted(MIXES))
def test_mixes_of_rows_match_tf(tf, case, fused):
    ds = MIXES[case](fi.Dataset)
    if not fused:
        ds = ds.with_options(NO_REWRITES)
    assert fi_outcomes(ds) == tf_outcomes(MIXES[case](tf.data.Dataset))


def test_a_mix_holds_its_inputs_rows_c_contiguous():
    """The C gather copies a row's bytes at a time: a RowBuffer's arrays are C-ordered whatever the runs' layout,
    a run added to one row held (which is C- and Fortran-contiguous at once) included."""
    source = np.asfortranarray(np.arange(24, dtype=np.int8).reshape(12, 2, 1))
    layout = fi.Dataset.from_tensor_slices(source).row_layout()
    buffer = RowBuffer(layout)
    buffer.extend(Rows([source[:5]], 5))
    buffer.drop_front(4)
    buffer.extend(Rows([source[5:9]], 4))
    assert buffer.leaves[0].flags.c_contiguous and buffer.leaves[0].tolist() == source[4:9].tolist()


def test_a_mix_of_rows_is_gathered_from_rows():
    ds = MIXES["nested rows"](fi.Dataset)
    with iter(ds) as it:
        assert _root(it)._layout is not None
    with iter(ds.with_options(NO_REWRITES)) as it:
        assert type(_root(it)) is RowsBatchIterator


MIXED_FALLBACKS = {
    "strings": lambda: [fi.Dataset.from_tensor_slices(np.array([b"a", b"b"] * 3, dtype=object)),
                        fi.Dataset.from_tensor_slices(np.array([b"c", b"d"] * 3, dtype=object))],
    "an input mapped": lambda: [fi.Dataset.from_tensor_slices(np.arange(5)).map(lambda x: x),
                                fi.Dataset.from_tensor_slices(np.arange(5))],
    "dict keys in another order": lambda: [fi.Dataset.from_tensor_slices({"a": np.arange(5), "b": np.arange(5)}),
                                           fi.Dataset.from_tensor_slices({"b": np.arange(5), "a": np.arange(5)})],
    "an input of range": lambda: [fi.Dataset.range(5), fi.Dataset.from_tensor_slices(np.arange(5))],
}


@pytest.mark.parametrize("case", sorted(MIXED_FALLBACKS))
def test_mixes_whose_inputs_differ_keep_the_element_path(case):
    ds = fi.Dataset.choose_from_datasets(MIXED_FALLBACKS[case](), fi.Dataset.range(2).repeat(5))
    with iter(ds.batch(3)) as it:
        assert _root(it)._layout is None
        assert len(list(it)) == 4


def test_row_shapes_that_differ_raise_as_before(tf):
    """Inputs whose rows differ in shape are not gathered: batching them raises, as in tf.data."""
    def build(D):
        return D.choose_from_datasets([D.from_tensor_slices(np.zeros((5, 2))), D.from_tensor_slices(np.ones((5, 3)))],
                                      D.from_tensor_slices(np.array([0, 1, 0], dtype=np.int64))).batch(2)

    with iter(build(fi.Dataset)) as it:
        assert _root(it)._layout is None
    assert fi_outcomes(build(fi.Dataset)) == tf_outcomes(build(tf.data.Dataset))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("weights", [None, [0.7, 0.2, 0.1]])
def test_sample_of_rows_is_the_element_paths(monkeypatch, weights, fused):
    """The same seed draws the same choices: the batches are the element path's, one by one."""
    def build():
        inputs = [fi.Dataset.from_tensor_slices(np.arange(i * 1000, i * 1000 + 50 + 40 * i)).repeat()
                  for i in range(3)]
        ds = fi.Dataset.sample_from_datasets(inputs, weights=weights, seed=11).batch(100).take(60)
        return ds if fused else ds.with_options(NO_REWRITES)

    rows = fi_elements(build())
    monkeypatch.setattr(TensorSlicesDataset, "row_layout", lambda self: None)
    assert_same_elements(rows, fi_elements(build()))


def test_an_unbatched_mix_of_rows_hands_on_elements(monkeypatch):
    def build():
        return fi.Dataset.sample_from_datasets(
            [fi.Dataset.from_tensor_slices({"v": np.arange(i * 10, i * 10 + 7).reshape(7, 1)}).repeat(2)
             for i in range(3)], seed=5)

    rows = fi_elements(build())
    monkeypatch.setattr(TensorSlicesDataset, "row_layout", lambda self: None)
    assert_same_elements(rows, fi_elements(build()))


@pytest.mark.parametrize("repeat", [None, 3])
def test_an_empty_source_of_rows_matches_tf(tf, repeat):
    def build(D):
        return D.from_tensor_slices(np.zeros((0, 3), np.float32)).repeat(repeat).batch(2)

    assert fi_outcomes(build(fi.Dataset)) == tf_outcomes(build(tf.data.Dataset)) == ["end"]
