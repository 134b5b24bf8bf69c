"""Dataset.fingerprint (and so snapshot's folder): the same pipeline rebuilt gives the same fingerprint; a change in
a stage, an argument, a function's code or a number, string or array its code reads gives another."""

import os

import numpy as np

import fastinput as fi

SCALE = 3


def scaled(x):
    return x * SCALE


def pipeline_with(value):
    return fi.Dataset.range(5).map(lambda x: x + value)


def test_the_same_pipeline_rebuilt_has_the_same_fingerprint():
    first = fi.Dataset.range(10).map(lambda x: x * 2).batch(3).fingerprint()
    assert isinstance(first, np.uint64)
    assert fi.Dataset.range(10).map(lambda x: x * 2).batch(3).fingerprint() == first
    assert pipeline_with(2).fingerprint() == pipeline_with(2).fingerprint()


def test_stages_arguments_and_code_change_it():
    base = fi.Dataset.range(10).map(lambda x: x * 2).batch(3)
    others = [fi.Dataset.range(11).map(lambda x: x * 2).batch(3), fi.Dataset.range(10).map(lambda x: x * 3).batch(3),
              fi.Dataset.range(10).map(lambda x: x * 2).batch(4), fi.Dataset.range(10).map(lambda x: x * 2)]
    assert len({base.fingerprint(), *(o.fingerprint() for o in others)}) == 5


def test_captured_values_change_it():
    # closure cells: numbers, numpy scalars, strings, arrays
    assert pipeline_with(2).fingerprint() != pipeline_with(3).fingerprint()
    assert pipeline_with(np.int64(2)).fingerprint() != pipeline_with(np.int64(3)).fingerprint()
    assert pipeline_with(np.arange(3)).fingerprint() != pipeline_with(np.arange(3) + 1).fingerprint()
    assert fi.Dataset.from_tensors(b"a").map(lambda s, t="x": s + t.encode()).fingerprint() != \
        fi.Dataset.from_tensors(b"a").map(lambda s, t="y": s + t.encode()).fingerprint()  # defaults
    # a global the function names
    global SCALE
    before = fi.Dataset.range(5).map(scaled).fingerprint()
    SCALE = 4
    try:
        assert fi.Dataset.range(5).map(scaled).fingerprint() != before
    finally:
        SCALE = 3
    assert fi.Dataset.range(5).map(scaled).fingerprint() == before


def test_a_captured_object_is_digested_by_its_type():
    class Table:
        def __init__(self, offset):
            self.offset = offset

    def with_table(table):
        return fi.Dataset.range(3).map(lambda x: x + table.offset)

    assert with_table(Table(1)).fingerprint() == with_table(Table(2)).fingerprint()


def test_a_function_that_captures_itself_is_digested():
    def countdown(x, depth=3):
        return x if depth == 0 else countdown(x, depth - 1)

    assert fi.Dataset.range(3).map(countdown).fingerprint() == fi.Dataset.range(3).map(countdown).fingerprint()


def test_a_changed_captured_value_gets_its_own_snapshot(tmp_path):
    assert [int(x) for x in pipeline_with(1).snapshot(str(tmp_path))] == [1, 2, 3, 4, 5]
    assert [int(x) for x in pipeline_with(10).snapshot(str(tmp_path))] == [10, 11, 12, 13, 14]
    assert len(os.listdir(tmp_path)) == 2
    assert [int(x) for x in pipeline_with(1).snapshot(str(tmp_path))] == [1, 2, 3, 4, 5]  # read back
    assert len(os.listdir(tmp_path)) == 2


def test_a_captured_dataset_is_digested_as_a_pipeline():
    def flat(other):
        return fi.Dataset.range(2).flat_map(lambda x: other)

    assert flat(fi.Dataset.range(3)).fingerprint() == flat(fi.Dataset.range(3)).fingerprint()
    assert flat(fi.Dataset.range(3)).fingerprint() != flat(fi.Dataset.range(4)).fingerprint()
