"""The mixing ops' C ``take`` writing a batch of bytes into an object array (the fused ``sample_from_datasets ->
batch``): the Nones numpy filled the array with are let go at once, in one count, and anything else in a slot is let
go as an overwritten slot's object is; and a mix's iterator takes the fallbacks where the extension is not built."""

import sys
import weakref

import numpy as np
import pytest

from fastinput.ops import mix_layout


@pytest.fixture
def kernel():
    return pytest.importorskip("fastinput.ops._mixing")


def test_take_into_a_new_array_leaves_nones_count_where_it_was(kernel):
    """Each slot emptied in a list gains None a reference, each None replaced in ``out`` gives one back (the
    interpreter's own references to None may move the count by one or two on the way)."""
    buffers, cursors = [[bytes([i, j % 256]) for j in range(3000)] for i in range(3)], np.zeros(3, dtype=np.int64)
    choices = np.array([0, 2, 1, 1] * 1000)
    out = np.empty(len(choices), dtype=object)
    before = sys.getrefcount(None)
    taken = kernel.take(choices, buffers, cursors, out)
    after = sys.getrefcount(None)
    assert taken == len(choices) and abs(after - before) <= 2
    assert out[:4].tolist() == [b"\x00\x00", b"\x02\x00", b"\x01\x00", b"\x01\x01"]
    assert cursors.tolist() == [1000, 2000, 1000]


def test_take_lets_go_of_what_else_the_slots_held(kernel):
    class Held:
        pass

    held = Held()
    gone = weakref.ref(held)
    out = np.empty(3, dtype=object)
    out[1] = held
    del held
    buffers, cursors = [[b"a", b"b", b"c"]], np.zeros(1, dtype=np.int64)
    assert kernel.take(np.zeros(3, dtype=np.int64), buffers, cursors, out) == 3
    assert gone() is None and out.tolist() == [b"a", b"b", b"c"] and buffers == [[None] * 3]


def test_kernels_are_the_fallbacks_without_the_extension(monkeypatch):
    monkeypatch.setattr(mix_layout, "_mixing", None)
    assert mix_layout.kernels() == (mix_layout.take_numpy, mix_layout.drop_front_numpy)
