"""The engine's buffer primitive: failures keep their place, occupancy is counted, channels wait and stop."""

from __future__ import annotations

import threading
from collections import deque

import pytest

from fastinput import errors
from fastinput._engine.buffer import Channel, Failure, ItemQueue, record_occupancy, take_until_failure
from fastinput._engine.metrics import StageMetrics


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_take_until_failure_delivers_everything_before_an_error_first(n):
    boom = Failure(ValueError("boom"))
    items = deque([1, 2, boom, 3])
    taken = []
    while items:
        chunk = take_until_failure(items, n)
        assert 1 <= len(chunk) <= n
        assert all(type(x) is not Failure for x in chunk) or chunk == [boom]
        taken.extend(chunk)
    assert taken == [1, 2, boom, 3]


def test_item_queue_counts_occupancy_and_failures():
    metrics = StageMetrics("stage")
    queue = ItemQueue(metrics)
    queue.put([1, 2, Failure(KeyError("k")), 3])
    assert (len(queue), metrics.buffer_occupancy, queue.has_failure) == (4, 4, True)
    assert queue.take(10) == [1, 2]
    assert queue.head_is_failure
    assert type(queue.take(10)[0]) is Failure
    assert (queue.has_failure, metrics.buffer_occupancy) == (False, 1)
    assert queue.take_exactly(1) == [3]
    queue.put([4, 5])
    queue.clear()
    assert (len(queue), metrics.buffer_occupancy) == (0, 0)


def test_channel_hands_items_over_in_order_until_finished():
    channel = Channel("stage", capacity=2)
    produced = list(range(50))

    def produce():
        for i in range(0, 50, 5):
            room = channel.wait_for_room()
            assert room is not None and room >= 1
            channel.put(produced[i:i + 5])
        channel.finish()

    thread = threading.Thread(target=produce)
    thread.start()
    received = []
    while chunk := channel.take(3):
        received.extend(chunk)
    thread.join()
    assert received == produced


def test_cancel_wakes_a_waiting_consumer_and_a_blocked_producer():
    channel = Channel("stage", capacity=1)
    channel.put([0])
    outcome = {}

    def produce():
        outcome["room"] = channel.wait_for_room()  # full: blocks until cancelled

    producer = threading.Thread(target=produce)
    producer.start()
    channel.cancel()
    producer.join(5)
    assert not producer.is_alive() and outcome["room"] is None
    with pytest.raises(errors.CancelledError, match="stage"):
        channel.take(1)


def test_channel_reports_its_consumer_wait():
    channel = Channel("stage", capacity=4)
    waits = []
    timer = threading.Timer(0.05, lambda: (channel.put([1]), channel.finish()))
    timer.start()
    assert channel.take(4, on_wait=waits.append) == [1]
    timer.join()
    assert len(waits) == 1 and waits[0] > 0
    assert channel.take(4) == []


def test_record_occupancy_is_the_one_counter_a_queue_and_a_stage_share():
    metrics = StageMetrics("stage")
    queue = ItemQueue(metrics)
    queue.put(iter([1, 2, 3]))  # any iterable
    record_occupancy(metrics, 5)  # a stage's own buffer (parallel map's slots) beside the queue
    assert metrics.buffer_occupancy == 8
    assert queue.take(2) == [1, 2]
    record_occupancy(metrics, -5)
    assert metrics.buffer_occupancy == 1


def test_pop_hands_out_the_head_failures_included():
    metrics = StageMetrics("stage")
    queue = ItemQueue(metrics)
    boom = Failure(ValueError("boom"))
    queue.put([1, boom, 2])
    assert [queue.pop(), queue.pop()] == [1, boom]
    assert (queue.has_failure, metrics.buffer_occupancy) == (False, 1)
    assert queue.take(5) == [2]
