"""Aligned buffers: batches allocated so frameworks can take them without copying.

TensorFlow's kernels need 64-byte aligned tensor data, and DLPack hands over
the buffer as it is; numpy only guarantees 16 bytes. Batches that
``map_and_batch`` fills are therefore allocated 64-byte aligned.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

ALIGNMENT = 64

LARGE_ALLOCATION_BYTES = 32 << 10
"""Arrays from this size come from the large-array allocator when one is installed (``allocate_large_with``)."""

_large_allocator: Callable[[tuple[int, ...], np.dtype], np.ndarray] | None = None


def allocate_large_with(allocator: Callable[[tuple[int, ...], np.dtype], np.ndarray] | None) -> None:
    """Make ``aligned_empty`` take arrays of ``LARGE_ALLOCATION_BYTES`` or more from ``allocator(shape, dtype)``
    (aligned, C-contiguous); None: numpy again. A worker process installs shared memory here, so the batches it
    fills reach the consumer without a copy (``_engine/wire.py``)."""
    global _large_allocator
    _large_allocator = allocator


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary.

    Taking batch-sized arrays (1 MiB and up) from pyarrow's pool, which keeps freed pages, was tried for the README
    image pipeline (issue 20): minor faults fell from 6.0-7.5 to 3.8-4.7 per image, but its CPU per image stayed
    within the noise, so numpy's allocation was kept (a pool that keeps pages holds memory a long run may want back).

    Arrays of Python objects (strings) hold references numpy must own from the start: those are plain
    ``np.empty`` arrays of ``None``, aligned or not.
    """
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        return np.empty(shape, dtype)
    nbytes = math.prod(shape) * dtype.itemsize  # not np.prod: 3 us a call, a tenth of a batch gathered by rows
    if _large_allocator is not None and nbytes >= LARGE_ALLOCATION_BYTES:
        return _large_allocator(tuple(shape), dtype)
    raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    offset = -raw.ctypes.data % ALIGNMENT
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)


def pooled_empty(count: int, dtype: np.dtype) -> np.ndarray:
    """An uninitialised, 64-byte aligned 1-D array in pyarrow's memory pool, which keeps freed pages for reuse.

    For arrays of a few hundred KB made and dropped over and over (a shuffle over rows draws its rows into
    them): a fresh numpy array of that size is fresh pages from the kernel, a page fault per 4 KB that costs
    about as much as filling it. Arrays of Python objects (numpy must own their references) are plain
    ``np.empty`` arrays of ``None``.
    """
    import pyarrow as pa

    dtype = np.dtype(dtype)
    if dtype.hasobject:
        return np.empty(count, dtype)
    return np.frombuffer(pa.allocate_buffer(count * dtype.itemsize), dtype=dtype)


def is_aligned(array: np.ndarray) -> bool:
    return array.flags.c_contiguous and (array.size == 0 or array.ctypes.data % ALIGNMENT == 0)


def aligned_copy(array: np.ndarray) -> np.ndarray:
    """``array`` itself if already C-contiguous and aligned, else an aligned copy."""
    if is_aligned(array):
        return array
    out = aligned_empty(array.shape, array.dtype)
    np.copyto(out, array)
    return out
