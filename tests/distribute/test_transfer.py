"""Chunks between a worker and a consumer on the same node go through shared memory (``distribute/transfer.py``):
the arrays arrive as views of the worker's segments, a segment is written again only once no array on either side
views it, and no segment outlives the job however it ends (a run, a close, a killed worker, interpreter exit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastinput as fi
from fastinput._engine import memory, shared_memory
from fastinput.distribute import transfer
from tests.distribute.test_faults import run_with_a_kill, slow

ROOT = Path(__file__).parents[2]
ROWS, COLUMNS = 64, 1024  # an element of 256 KB: large arrays travel outside the pickle


def full(i):
    return np.full((ROWS, COLUMNS), i, np.int32)


def segments(prefix: str = "fastinput-ray-") -> list[str]:
    return [name for name in os.listdir(shared_memory.SHM_FOLDER) if name.startswith(prefix)]


def data_segments(prefix: str = "fastinput-ray-") -> list[str]:
    """Segments holding arrays (not the ``-live`` name a worker makes before its first one)."""
    return [name for name in segments(prefix) if not name.endswith("-live")]


def no_segments_left() -> list[str]:
    deadline = time.monotonic() + 10  # a closing consumer's last sweep may lag the test by a moment
    while segments() and time.monotonic() < deadline:
        time.sleep(0.05)
    return segments()


def from_a_segment(array: np.ndarray) -> bool:
    """Whether ``array`` views a transfer segment (its base is the consumer's exporter of one)."""
    while isinstance(array, np.ndarray):
        array = array.base
    return type(array.obj if isinstance(array, memoryview) else array).__name__.startswith("SegmentBytes")


# -- through Ray ---------------------------------------------------------------------------------------------------


def test_batches_are_views_of_shared_memory_and_stay_intact_while_held(ray_cluster, tf) -> None:
    ds = fi.Dataset.range(96).map(full).batch(4).distribute(1, "parallel_epochs")
    oracle = tf.data.Dataset.range(96).map(lambda i: tf.fill([ROWS, COLUMNS], tf.cast(i, tf.int32))).batch(4)
    with iter(ds) as it:
        held = list(it)  # every batch held: none of their segments may be written again
    expected = [batch.numpy() for batch in oracle]
    assert len(held) == len(expected) == 24
    for got, want in zip(held, expected):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert all(from_a_segment(batch) and batch.flags.writeable for batch in held)
    assert no_segments_left() == []  # names gone; the memory lives with the arrays


def test_segments_are_used_again_once_let_go_and_hold_each_batch_intact(ray_cluster) -> None:
    ds = fi.Dataset.range(2000).map(full).batch(4).distribute(1, "parallel_epochs")
    kept = {}
    with iter(ds) as it:
        for k, batch in enumerate(it):
            np.testing.assert_array_equal(batch[:, 0, 0], np.arange(4 * k, 4 * k + 4))
            if k % 50 == 0:
                kept[k] = batch
            if k == 400:  # 1 MB batches: segments made (the last part of a name counts them) are far fewer
                assert max(int(name.rsplit("-", 1)[1]) for name in data_segments()) < 300
    for k, batch in kept.items():
        np.testing.assert_array_equal(batch, np.stack([full(i) for i in range(4 * k, 4 * k + 4)]))
    assert no_segments_left() == []


def test_views_of_one_batch_across_chunks_stay_intact(ray_cluster) -> None:
    # unbatched rows view the worker's batch: its segment is in several chunks and is free after the last one
    ds = fi.Dataset.range(300).map(full).batch(10).unbatch().distribute(1, "parallel_epochs")
    with iter(ds) as it:
        got = list(it)
    assert [int(row[0, 0]) for row in got] == list(range(300))
    assert all((row == i).all() for i, row in enumerate(got))
    assert no_segments_left() == []


def test_a_closed_run_leaves_no_segment(ray_cluster) -> None:
    for mode in ("parallel_epochs", "distributed_epoch"):
        it = iter(fi.Dataset.range(10_000).map(full).batch(2).distribute(2, mode))
        for _ in range(5):
            next(it)
        it.close()
        assert no_segments_left() == []


@pytest.mark.slow
def test_a_killed_worker_leaves_no_segment_and_nothing_is_lost(ray_cluster) -> None:
    ds = fi.Dataset.range(300).map(slow).map(full).distribute(2, "distributed_epoch", job_name="transfer-kill")
    got = run_with_a_kill(ray_cluster, ds.map(lambda a: a[0, 0]), "transfer-kill", 60)
    assert sorted(got) == list(range(300))
    assert no_segments_left() == []


EXITS_MID_RUN = """
import sys, ray
import fastinput as fi
from tests.distribute.test_transfer import full
ray.init(address=sys.argv[1])
it = iter(fi.Dataset.range(10_000).map(full).batch(2).distribute(2, "parallel_epochs"))
for _ in range(5):
    next(it)
print("running", flush=True)
"""


@pytest.mark.slow
def test_interpreter_exit_leaves_no_segment(ray_cluster) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", EXITS_MID_RUN, ray_cluster.get_runtime_context().gcs_address],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "running"
    assert no_segments_left() == []


# -- the two sides without Ray -------------------------------------------------------------------------------------


@pytest.fixture()
def sender():
    """A worker's side on node "here" (it installs fastinput's large-array allocator: put back afterwards)."""
    prefix = transfer.job_prefix()
    try:
        yield transfer.SegmentSender(prefix, 0, "here")
    finally:
        memory.allocate_large_with(None)
        transfer.sweep(prefix)


def allocated(value: int) -> np.ndarray:
    """A 1 MB array from fastinput's allocator (a segment once a sender is installed), filled with ``value``."""
    array = memory.aligned_empty((1024, 1024), np.dtype(np.uint8))
    array[:] = value
    return array


def test_a_consumer_on_another_node_gets_its_chunks_through_ray(sender) -> None:
    assert sender.pack([np.zeros(1 << 20, np.uint8)], "elsewhere") is None
    assert sender.pack([np.zeros(1 << 20, np.uint8)], None) is None


def test_a_segment_is_written_again_only_after_both_sides_let_go(sender) -> None:
    receiver = transfer.SegmentReceiver()
    [first] = receiver.unpack(sender.pack([np.full((1024, 1024), 9, np.uint8)], "here"))  # numpy's: copied in
    assert (first == 9).all() and from_a_segment(first)
    packed = sender.pack([allocated(1)], "here")  # written in place
    [got] = receiver.unpack(packed)
    made = len(data_segments(sender.prefix))
    other = allocated(2)  # the consumer holds ``got``: a segment of its own
    assert (got == 1).all() and len(data_segments(sender.prefix)) == made + 1
    del other, got, first
    sender.released(receiver.take_released())
    again = allocated(3)  # both let go: a segment used again
    assert len(data_segments(sender.prefix)) == made + 1
    assert (again == 3).all()


def test_a_segment_in_two_chunks_is_free_after_both(sender) -> None:
    receiver = transfer.SegmentReceiver()
    rows = memory.aligned_empty((4, 256, 1024), np.dtype(np.uint8))
    for i in range(4):
        rows[i] = i
    one, two = sender.pack([rows[0], rows[1]], "here"), sender.pack([rows[2], rows[3]], "here")
    del rows
    got = receiver.unpack(one)
    del got
    sender.released(receiver.take_released())
    overwrite = [allocated(7) for _ in range(3)]  # must not land on the segment ``two`` still brings
    assert [int(row[0, 0]) for row in receiver.unpack(two)] == [2, 3]
    assert all((array == 7).all() for array in overwrite)


def test_free_segments_past_the_limit_are_unlinked_and_the_consumer_told(sender, monkeypatch) -> None:
    monkeypatch.setattr(transfer, "FREE_BYTES", 0)
    receiver = transfer.SegmentReceiver()
    [got] = receiver.unpack(sender.pack([allocated(1)], "here"))
    assert len(data_segments(sender.prefix)) == 1
    del got
    sender.released(receiver.take_released())
    assert data_segments(sender.prefix) == []  # the pool keeps none free
    receiver.unpack(sender.pack([allocated(2)], "here"))  # and tells the consumer to drop its mapping
    assert len(receiver._mapped) == 1


def test_a_closed_receiver_drops_its_mappings_but_arrays_handed_out_keep_theirs(sender) -> None:
    receiver = transfer.SegmentReceiver()
    [got] = receiver.unpack(sender.pack([allocated(5)], "here"))
    receiver.close()
    assert receiver._mapped == {} and (got == 5).all()


MAIN_THREAD_ENDS_FIRST = """
import ctypes, sys, threading, time
def go_on():
    print("started", flush=True)
    time.sleep(60)
threading.Thread(target=go_on).start()
time.sleep(0.2)
ctypes.CDLL(None).pthread_exit(None)  # the main thread ends; the process shows as a zombie while go_on runs
"""


def thread_states(pid: int) -> list[str]:
    states = []
    for thread in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{thread}/stat") as f:
            states.append(f.read().rsplit(")", 1)[1].split()[0])
    return states


def test_a_process_whose_main_thread_ended_still_runs_while_another_thread_does() -> None:
    child = subprocess.Popen([sys.executable, "-c", MAIN_THREAD_ENDS_FIRST], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 10
        while "Z" not in thread_states(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "Z" in thread_states(child.pid)  # the main thread (whose state /proc/<pid>/stat shows) has ended
        assert transfer.process_runs(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not transfer.process_runs(child.pid)


MAKES_A_SEGMENT_LATE = """
import sys, time
from fastinput._engine import shared_memory
time.sleep(0.5)
shared_memory.create(sys.argv[1], 64).close()
"""


def test_a_job_s_sweep_waits_for_a_worker_that_has_made_no_segment_yet() -> None:
    prefix = transfer.job_prefix()
    late = subprocess.Popen([sys.executable, "-c", MAKES_A_SEGMENT_LATE, f"{prefix}0-1-0"], cwd=ROOT)
    try:
        assert segments(prefix) == []
        transfer.sweep_after_exit(prefix, [late.pid], wait_seconds=60)
        assert late.wait(timeout=60) == 0
        assert segments(prefix) == []
    finally:
        late.kill()
        transfer.sweep(prefix)


def test_the_coordinator_knows_every_worker_and_admits_none_once_the_job_stops() -> None:
    from fastinput.distribute.coordinator import Coordinator

    coordinator = Coordinator({"num_workers": 2}, 0, transfer.job_prefix())
    assert coordinator.register(101) and coordinator.register(102) and coordinator.register(103)  # 103: a restart
    assert coordinator.stop() == [101, 102, 103]
    assert not coordinator.register(104)  # started as the job stops: it makes no segment
    assert coordinator.stop() == [101, 102, 103]


def test_a_sender_without_a_node_never_uses_shared_memory() -> None:
    prefix = transfer.job_prefix()
    sender = transfer.SegmentSender(prefix, 0, None)
    assert sender.pack([np.zeros(1 << 20, np.uint8)], "here") is None
    assert segments(prefix) == []


def test_a_new_job_removes_what_jobs_of_a_killed_consumer_left(ray_cluster) -> None:
    """A consumer killed with SIGKILL cannot sweep: its workers' segments stay until the next job on the node."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = f"{transfer.PREFIX}{'0' * 16}-0-{int(dead.stdout)}-7"  # made by a worker that has exited
    alive = f"{transfer.PREFIX}{'1' * 16}-0-{os.getpid()}-7"  # made by a process still running
    for name in (left, alive):
        shared_memory.create(name, 64).close()
    try:
        assert list(fi.Dataset.range(4).distribute(1)) == [0, 1, 2, 3]
        assert left not in segments() and alive in segments()
    finally:
        for name in (left, alive):
            shared_memory.unlink(name)
