"""Aligned buffers: batches allocated so frameworks can take them without copying.

TensorFlow's kernels need 64-byte aligned tensor data, and DLPack hands over
the buffer as it is; numpy only guarantees 16 bytes. Batches that
``map_and_batch`` fills are therefore allocated 64-byte aligned.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ALIGNMENT = 64

LARGE_ALLOCATION_BYTES = 32 << 10
"""Arrays from this size come from the large-array allocator when one is installed (``allocate_large_with``)."""

POOLED_BYTES = 1 << 20
"""Arrays from this size (a batch of images: 9.6 MB at 64 x 224 x 224 x 3) come from pyarrow's memory pool
(``pooled_empty``), which keeps freed pages for the next batch. From numpy (glibc's malloc, which hands a freed
block this large back to the kernel, and numpy's huge-page advice) every batch was fresh pages the kernel zeroed
on first touch in the worker writing its first row: ``clear_page_erms`` took 1.9-5% of the README image pipeline's
CPU samples (perf record, 2 workers, 80 batches), 0.4-1.2% from the pool (the rest: the records' own copies), and
minor faults fell from 5.9-7.5 to 3.8-5.6 per image (alternated runs, load 6-7.6)."""

_large_allocator: Callable[[tuple[int, ...], np.dtype], np.ndarray] | None = None


def allocate_large_with(allocator: Callable[[tuple[int, ...], np.dtype], np.ndarray] | None) -> None:
    """Make ``aligned_empty`` take arrays of ``LARGE_ALLOCATION_BYTES`` or more from ``allocator(shape, dtype)``
    (aligned, C-contiguous); None: numpy again. A worker process installs shared memory here, so the batches it
    fills reach the consumer without a copy (``_engine/wire.py``)."""
    global _large_allocator
    _large_allocator = allocator


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary; from ``POOLED_BYTES`` on, in
    pyarrow's memory pool (unless a large-array allocator is installed).

    Arrays of Python objects (strings) hold references numpy must own from the start: those are plain
    ``np.empty`` arrays of ``None``, aligned or not.
    """
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        return np.empty(shape, dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if _large_allocator is not None and nbytes >= LARGE_ALLOCATION_BYTES:
        return _large_allocator(tuple(shape), dtype)
    if nbytes >= POOLED_BYTES:
        return pooled_empty(nbytes // dtype.itemsize, dtype).reshape(shape)
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
