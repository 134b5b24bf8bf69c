"""``memory.pooled_empty``: writable, 64-byte aligned arrays in pyarrow's pool, alive as long as a view of them is;
object arrays are numpy's own."""

from __future__ import annotations

import gc

import numpy as np

from fastinput._engine import memory


def test_pooled_arrays_are_aligned_writable_and_outlive_their_views():
    for dtype in [np.int64, np.float32, np.bool_, np.int8]:
        array = memory.pooled_empty(1000, dtype)
        assert array.dtype == dtype and array.shape == (1000,) and memory.is_aligned(array)
        array[:] = 1
        view = array[10:20]
        del array
        gc.collect()
        assert view.tolist() == [1] * 10
    assert memory.pooled_empty(0, np.int64).shape == (0,)


def test_object_arrays_hold_none():
    array = memory.pooled_empty(3, np.dtype(object))
    assert array.tolist() == [None, None, None]
    array[:] = [b"a", b"b", b"c"]
    assert np.take(array, np.array([2, 0]), out=memory.pooled_empty(2, array.dtype), mode="clip").tolist() == [
        b"c", b"a"]
