"""map_and_batch's shared batches, claim by claim: a worker claims rows of the oldest batch that has rows left,
choosing again after a claim once another batch has opened (an older one may have); and a worker that comes to a
batch late (after the worker that finished its last row let go of its rows) finds nothing to do, and neither it nor
the stage fails.

The finishing worker dropped the batch's rows as it handed the batch over, before the batch left its slot; a worker
looking for an open batch in that moment read the dropped rows' count (a TypeError on None) and its thread died:
the stage ran with fewer workers than its knob said, and with none left it would have waited forever.
"""

import sys
import threading
import time

import numpy as np

import fastinput as fi

TIMEOUT = 30.0


def _row(x):
    return np.full(1000, x, np.float64)  # 8 KB: written into preallocated rows


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


def test_a_worker_goes_back_to_the_older_batch_after_each_row():
    """Two workers, batches [0..3] and [4..7], the rows held so that: worker A starts batch 0 and stays in row 0
    while worker B starts batch 1 and claims its row 5; A then opens batch 0 and takes row 1. B's next row must be
    batch 0's (row 2), not batch 1's own row 6: two workers each filling a batch of their own finished them
    together (batches in pairs)."""
    started = {x: threading.Event() for x in range(8)}
    next_of_b: list[int] = []

    def held_row(x):
        x = int(x)
        started[x].set()
        time.sleep(0.001)  # a costly row: claimed alone
        if x == 0:  # A: batch 0 opens only once B is on a second row of batch 1
            assert started[5].wait(TIMEOUT)
        elif x == 5:  # B: done with row 5 only once A took row 1, so batch 0 is open with rows 2 and 3 left
            assert started[1].wait(TIMEOUT)
        elif x == 1:  # A: stays in row 1 until B chose its next row
            assert started[2].wait(TIMEOUT) or started[6].is_set()
            next_of_b.append(2 if started[2].is_set() and not started[6].is_set() else 6)
        return _row(x)

    row_spec = fi.TensorSpec((1000,), np.float64)  # declared: the function is not traced on a placeholder first
    dataset = fi.Dataset.range(8).map_and_batch(held_row, 4, num_parallel_calls=2, output_signature=row_spec)
    batches = list(dataset.as_numpy_iterator())
    assert [b[:, 0].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert next_of_b == [2]
