"""map_and_batch's shared batches, claim by claim: a worker makes one claim of a shared batch at a time (then the
engine sends it to the oldest batch with rows left), and a worker that comes to a batch late (after the worker that
finished its last row let go of its rows) finds nothing to do, and neither it nor the stage fails.

The finishing worker drops the batch's rows as it hands the batch over, before the batch leaves its slot; a worker
looking for an open batch in that moment read the dropped rows' count (a TypeError on None) and its thread died:
the stage ran with fewer workers than its knob said, and with none left it would have waited forever.
"""

import sys
import threading
import time

import numpy as np

import fastinput as fi
from fastinput.fused_ops.map_and_batch import _BatchFiller, _BatchJob


def _row(x):
    return np.full(1000, x, np.float64)  # 8 KB: written into preallocated rows


def test_a_finished_job_is_closed_and_has_no_work_left():
    job = _BatchJob(_BatchFiller(_row, 4, drop_remainder=False, use_out=True), [np.int64(i) for i in range(4)])
    (batch,) = job.work()
    assert batch[:, 0].tolist() == [0, 1, 2, 3]
    assert not job.open
    assert job.work() is None  # a worker that claimed nothing: not the last, and no error


def test_many_workers_on_short_batches_lose_no_thread(monkeypatch):
    died = []
    monkeypatch.setattr(threading, "excepthook", died.append)

    def row(x):
        time.sleep(0.0002)
        return _row(x)

    dataset = fi.Dataset.range(4000).map_and_batch(row, 4, num_parallel_calls=12)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch far more often: the moment is met in every run (8 deaths before)
    try:
        batches = list(dataset.as_numpy_iterator())
    finally:
        sys.setswitchinterval(interval)
    assert not died, [f"{d.thread.name}: {d.exc_type.__name__}: {d.exc_value}" for d in died]
    assert np.concatenate([b[:, 0] for b in batches]).tolist() == list(range(4000))


def test_a_shared_job_makes_one_claim_a_call():
    """Once its first row opened it to every worker, each ``work()`` claims once, so the engine can send the worker
    to an older batch with rows left before it takes another row of this one."""
    calls = []

    def slow_row(x):
        calls.append(int(x))
        time.sleep(0.002)  # ~10x CLAIM_SECONDS: a row per claim
        return _row(x)

    opened = []
    job = _BatchJob(_BatchFiller(slow_row, 4, drop_remainder=False, use_out=True), [np.int64(i) for i in range(4)],
                    lambda: opened.append(True))
    assert job.work() is None and calls == [0] and opened == [True]
    assert job.work() is None and calls == [0, 1]
    assert job.work() is None and calls == [0, 1, 2]
    (batch,) = job.work()
    assert calls == [0, 1, 2, 3] and batch[:, 0].tolist() == [0, 1, 2, 3]
