"""Aligned buffers: batches allocated so frameworks can take them without copying.

TensorFlow's kernels need 64-byte aligned tensor data, and DLPack hands over
the buffer as it is; numpy only guarantees 16 bytes. Batches that
``map_and_batch`` fills are therefore allocated 64-byte aligned.
"""

from __future__ import annotations

import math
import os
import sys
import threading
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

    Arrays of ``REUSED_BYTES`` or more (batches) come from ``REUSED``: the memory of a batch nothing refers to any
    more, if there is one of the size. Arrays of Python objects (strings) hold references numpy must own from the
    start: those are plain ``np.empty`` arrays of ``None``, aligned or not.
    """
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        return np.empty(shape, dtype)
    nbytes = math.prod(shape) * dtype.itemsize  # not np.prod: 3 us a call, a tenth of a batch gathered by rows
    if _large_allocator is not None and nbytes >= LARGE_ALLOCATION_BYTES:
        return _large_allocator(tuple(shape), dtype)
    raw = REUSED.take(nbytes + ALIGNMENT) if nbytes >= REUSED_BYTES else np.empty(nbytes + ALIGNMENT, np.uint8)
    offset = -raw.ctypes.data % ALIGNMENT
    return raw[offset:offset + nbytes].view(dtype).reshape(shape)


REUSED_BYTES = 1 << 20
"""Arrays from this size (a batch of images: 9.6 MB at 64 x 224 x 224 x 3) reuse memory (``ReusedBuffers``)."""


class ReusedBuffers:
    """Batch-sized buffers handed out again once nothing refers to them: a new batch is written into memory that is
    mapped and likely still in the cache, not into fresh pages.

    A batch of images freed and allocated again by numpy came back as fresh pages more often than not (glibc gives
    large freed blocks back to the kernel): the README image pipeline took 3.6 page faults an image, each page zeroed
    by the kernel before the decoder wrote it; reused, 1.7. Its images/s: +1.5% (median of 12 alternated pairs,
    0.95-1.10; CPU an image -0.9%; 2 workers, 2 cores, a quiet but noisy VM). pyarrow's pool, tried before, kept
    freed pages but took the faults down only by a third.

    A buffer is free when the pool's own list holds its only reference: every array made from it (views of views
    included) refers to it through ``base``, and so does whatever holds one of those, a DLPack capsule or a
    framework's tensor sharing the memory among them. ``KEPT`` buffers per size at most, and ``MAX_BYTES`` in all
    (free buffers of other sizes make room, oldest size first; a buffer that would not fit is not kept): what a
    process may hold that it does not use, as glibc's and pyarrow's allocators hold freed memory.
    ``release_free()`` gives the free ones back; a pipeline closing calls it (its own buffered batches are given
    back once the iterator is gone)."""

    KEPT = 8
    MAX_BYTES = 128 << 20

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers: dict[int, list[np.ndarray]] = {}  # size -> buffers, in use or free; oldest size first
        self._bytes = 0

    def take(self, nbytes: int) -> np.ndarray:
        """A free uint8 buffer of ``nbytes`` (contents undefined), or a new one, kept if there is room."""
        with self._lock:
            buffers = self._buffers.get(nbytes, [])
            for i in range(len(buffers)):
                if sys.getrefcount(buffers[i]) == 2:  # the list's reference and the argument's
                    return buffers[i]
            raw = np.empty(nbytes, np.uint8)
            if len(buffers) < self.KEPT and self._make_room(nbytes):
                self._buffers.setdefault(nbytes, buffers).append(raw)
                self._bytes += nbytes
            return raw

    def release_free(self) -> None:
        """Drop every buffer nothing else refers to."""
        with self._lock:
            self._drop_free(lambda size: True, math.inf)

    def _make_room(self, nbytes: int) -> bool:
        """With the lock held: whether ``nbytes`` more fit in ``MAX_BYTES``, after dropping free buffers of other
        sizes if needed."""
        if self._bytes + nbytes > self.MAX_BYTES:
            self._drop_free(lambda size: size != nbytes, self._bytes + nbytes - self.MAX_BYTES)
        return self._bytes + nbytes <= self.MAX_BYTES

    def _drop_free(self, which: Callable[[int], bool], wanted: float) -> None:
        """With the lock held: drop free buffers of the sizes ``which`` accepts, oldest size first, until ``wanted``
        bytes are dropped."""
        for size in list(self._buffers):
            if wanted <= 0:
                return
            if not which(size):
                continue
            buffers = self._buffers[size]
            kept = [b for b in buffers if sys.getrefcount(b) > 3]  # the list's, the loop's and the argument's
            dropped = size * (len(buffers) - len(kept))
            self._bytes -= dropped
            wanted -= dropped
            if kept:
                self._buffers[size] = kept
            else:
                del self._buffers[size]


REUSED = ReusedBuffers()
"""The process's reused batch buffers (``aligned_empty``)."""


def _fresh_pool_in_child() -> None:
    """A forked child starts with a pool of its own: its copy of the parent's lock may be held by a parent thread
    the child does not have."""
    global REUSED
    REUSED = ReusedBuffers()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_pool_in_child)


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
