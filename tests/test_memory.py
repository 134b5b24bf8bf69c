"""Aligned batch buffers (what lets TensorFlow take a batch without a copy)."""

import numpy as np
import pytest

from fastinput._engine.memory import aligned_copy, aligned_empty, is_aligned


@pytest.mark.parametrize("shape", [(64, 224, 224, 3), (3,), (0,), (5, 7), ()])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.int64])
def test_aligned_empty(shape, dtype):
    a = aligned_empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype and is_aligned(a)
    a[...] = 1
    assert (a == 1).all()


def test_aligned_copy_only_copies_when_needed():
    a = aligned_empty((10,), np.float64)
    assert aligned_copy(a) is a
    unaligned = np.zeros(33, np.uint8)[1:]
    copy = aligned_copy(unaligned)
    assert copy is not unaligned and is_aligned(copy) and np.array_equal(copy, unaligned)
    strided = np.arange(20)[::2]
    assert is_aligned(aligned_copy(strided)) and aligned_copy(strided).tolist() == strided.tolist()
