"""Reused batch buffers: a batch's memory is handed out again only once nothing refers to it, within bounds."""

import os
import select
import signal
import threading
import time

import numpy as np
import pytest

import fastinput as fi
from fastinput._engine import memory
from fastinput._engine.memory import REUSED_BYTES, ReusedBuffers, aligned_empty

BATCH = (16, 224, 224, 3)  # 2.4 MB


@pytest.fixture
def pool(monkeypatch):
    """A fresh pool of its own in place of the process's, so that other tests' buffers do not count."""
    fresh = ReusedBuffers()
    monkeypatch.setattr(memory, "REUSED", fresh)
    return fresh


def test_a_dropped_batch_is_reused_and_one_still_referred_to_is_not(pool):
    first = aligned_empty(BATCH, np.uint8)
    address = first.ctypes.data
    del first
    second = aligned_empty(BATCH, np.uint8)
    assert second.ctypes.data == address  # the same memory, the first batch being gone
    rows = second[2:4]  # a view keeps the buffer in use, as a framework's tensor sharing it does
    capsule = np.asarray(second).__dlpack__()
    del second
    third = aligned_empty(BATCH, np.uint8)
    assert third.ctypes.data != address
    del rows
    fourth = aligned_empty(BATCH, np.uint8)
    assert fourth.ctypes.data != address  # the DLPack capsule still holds it
    del capsule
    assert aligned_empty(BATCH, np.uint8).ctypes.data == address


def test_small_arrays_and_other_sizes_get_their_own_memory(pool):
    small = aligned_empty((REUSED_BYTES // 2,), np.uint8)
    del small
    assert pool._bytes == 0
    a = aligned_empty(BATCH, np.uint8)
    address = a.ctypes.data
    del a
    b = aligned_empty((17, 224, 224, 3), np.uint8)
    assert b.ctypes.data != address and b.shape == (17, 224, 224, 3)


def test_kept_and_max_bytes_bound_what_the_pool_holds(pool, monkeypatch):
    monkeypatch.setattr(pool, "KEPT", 2)
    held = [aligned_empty(BATCH, np.uint8) for _ in range(4)]  # 2 kept, 2 plain
    size = held[0].nbytes + memory.ALIGNMENT
    assert pool._bytes == 2 * size
    monkeypatch.setattr(pool, "MAX_BYTES", 3 * size)
    del held
    other = aligned_empty((20, 224, 224, 3), np.uint8)  # needs room: the free buffers of the other size go
    assert pool._bytes == other.nbytes + memory.ALIGNMENT
    in_use = [aligned_empty(BATCH, np.uint8) for _ in range(2)]  # kept again, as far as MAX_BYTES allows
    assert pool._bytes == other.nbytes + memory.ALIGNMENT + size <= pool.MAX_BYTES
    assert len({a.ctypes.data for a in in_use}) == 2


def test_release_free_keeps_the_buffers_in_use(pool):
    in_use = aligned_empty(BATCH, np.uint8)
    dropped = aligned_empty(BATCH, np.uint8)
    del dropped
    pool.release_free()
    assert pool._bytes == in_use.nbytes + memory.ALIGNMENT
    assert aligned_empty(BATCH, np.uint8).ctypes.data != in_use.ctypes.data


def test_closing_a_pipeline_gives_the_free_buffers_back(pool, monkeypatch):
    released = []
    monkeypatch.setattr(pool, "release_free", lambda: released.append(True))
    dataset = fi.Dataset.range(32).map_and_batch(lambda x: np.full((224, 224, 3), x % 256, np.uint8), 8)
    with iter(dataset) as it:
        next(it)
        assert not released
    assert released == [True]


def test_threads_never_share_a_buffer(pool):
    """Each thread writes its own number into each batch it takes and checks it is still there a moment later."""
    failures = []

    def take(number):
        for _ in range(50):
            batch = aligned_empty(BATCH, np.uint8)
            batch[::7, ::50] = number
            time.sleep(0.0005)
            if not (batch[::7, ::50] == number).all():
                failures.append(number)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork: POSIX only")
def test_a_forked_child_starts_afresh_even_if_a_thread_held_the_lock():
    """A thread of the parent holds the pool's lock while the parent forks: the child's copy of it would stay held
    for ever, and the child's first batch would hang."""
    held, release = threading.Event(), threading.Event()

    def hold():
        with memory.REUSED._lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: one batch, then its verdict on the pipe
            try:
                ok = aligned_empty(BATCH, np.uint8).shape == BATCH and memory.REUSED._bytes <= 2 * np.prod(BATCH)
                os.write(write, b"ok" if ok else b"no")
            finally:
                os._exit(0)
        os.close(write)
        ready, _, _ = select.select([read], [], [], 20)
        if not ready:  # the child hangs on the lock
            os.kill(pid, signal.SIGKILL)
        with os.fdopen(read, "rb") as pipe:
            verdict = pipe.read() if ready else b"hung"
        os.waitpid(pid, 0)
    finally:
        release.set()
        holder.join()
    assert verdict == b"ok"
