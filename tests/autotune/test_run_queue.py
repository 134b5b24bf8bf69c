"""The run-queue delays the tuner reads for a stage's worker threads (``fastinput.autotune.run_queue``)."""

import os
import threading

import pytest

import fastinput as fi
from fastinput._engine.workers import WorkerPool
from fastinput.autotune import run_queue

linux_only = pytest.mark.skipif(not run_queue.AVAILABLE, reason="the kernel keeps no per-thread schedstat here")


@linux_only
def test_a_live_threads_delay_is_read_and_one_not_in_this_process_left_out():
    me = threading.get_native_id()
    gone = max(int(tid) for tid in os.listdir("/proc/self/task")) + 1_000_000  # a thread that ended, as far as reads go
    times = run_queue.thread_times([me, gone])
    assert set(times) == {me} and times[me][0] > 0 and times[me][1] >= 0


def test_without_the_kernels_figures_the_delay_is_unknown(monkeypatch):
    monkeypatch.setattr(run_queue, "AVAILABLE", False)
    assert run_queue.thread_times([threading.get_native_id()]) is None


def test_a_pool_names_its_live_threads():
    release = threading.Event()
    pool = WorkerPool("test", release.wait, 3)
    try:
        assert len(set(pool.native_ids())) == 3
    finally:
        release.set()
        pool.join()
    assert pool.native_ids() == ()


def _same(x):
    return x


def _map_stage(it):
    next(it)
    return next(stage for _, stage in it._root.walk() if stage.name.startswith("map"))


def test_a_parallel_map_names_its_worker_threads_a_process_map_none():
    threaded = iter(fi.Dataset.range(8).map(_same, num_parallel_calls=2))
    processes = iter(fi.Dataset.range(8).map(_same, num_parallel_calls=2, workers="process"))
    try:
        assert len(_map_stage(threaded).worker_threads()) == 2
        assert _map_stage(processes).worker_threads() is None  # their CPU work is in other processes
    finally:
        threaded.close()
        processes.close()
