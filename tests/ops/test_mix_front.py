"""The C kernel's upkeep of the mixing ops' buffers: ``take`` leaves None (counted) in the slots it empties, and
``drop_front`` deletes those, as ``del`` would, keeping the list's room."""

import sys

import numpy as np
import pytest

from fastinput.ops import mix_layout

_mixing = pytest.importorskip("fastinput.ops._mixing")


def test_take_counts_a_reference_to_none_per_slot_it_empties():
    """None's count goes up by one per element taken, and back down as the fronts are dropped (the interpreter's
    own references to None may move it by one or two on the way)."""
    buffers, cursors = [[object() for _ in range(5000)] for _ in range(3)], np.zeros(3, dtype=np.int64)
    choices = np.array([0, 2, 2, 1] * 1000)
    before = sys.getrefcount(None)
    taken = _mixing.take(choices, buffers, cursors)
    after_take = sys.getrefcount(None)
    for buffer in buffers:
        _mixing.drop_front(buffer, buffer.count(None))
    after_drop = sys.getrefcount(None)
    assert len(taken) == len(choices) and [len(buffer) for buffer in buffers] == [4000, 4000, 3000]
    assert abs(after_take - before - len(choices)) <= 2 and abs(after_drop - before) <= 2


@pytest.mark.parametrize("drop", [_mixing.drop_front, lambda buffer, count: buffer.__delitem__(slice(0, count))])
@pytest.mark.parametrize("front, count", [([None] * 5, 5), ([None] * 5, 3), ([None, 1, None], 3), ([], 0),
                                          ([None, None], 0)])
def test_drop_front_is_del(drop, front, count):
    buffer = front + ["a", "b"]
    expected = list(buffer)
    del expected[:count]
    drop(buffer, count)
    assert buffer == expected


def test_the_fallback_drops_with_del(monkeypatch):
    monkeypatch.setattr(mix_layout, "_mixing", None)
    buffer = [None, None, 3]
    mix_layout.drop_front(buffer, 2)
    assert buffer == [3]


@pytest.mark.parametrize("count", [-1, 4])
def test_drop_front_wants_a_count_within_the_list(count):
    with pytest.raises(IndexError):
        _mixing.drop_front([None, None, 1], count)
