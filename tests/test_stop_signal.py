"""``StopSignal`` beyond what ``test_cancellation`` pins: waiting (an Event made only then), signals below a child."""

from __future__ import annotations

import threading

import pytest

from fastinput._engine.cancellation import StopSignal


def _wait_in_thread(signal: StopSignal, timeout: float) -> tuple[threading.Thread, list[bool]]:
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(signal.wait(timeout)))
    waiter.start()
    return waiter, woke


def test_setting_the_root_sets_and_wakes_a_grandchild():
    root = StopSignal()
    grandchild = root.child().child()
    waiter, woke = _wait_in_thread(grandchild, 30)
    root.set()
    waiter.join()
    assert woke == [True] and grandchild.is_set()


def test_setting_a_signal_wakes_every_waiter_below_it_and_none_beside_it():
    root = StopSignal()
    left, right = root.child(), root.child()
    below_left = left.child()
    waiters = [_wait_in_thread(signal, 30) for signal in (left, below_left)]
    beside, beside_woke = _wait_in_thread(right, 0.2)
    left.set()
    for waiter, woke in waiters:
        waiter.join()
        assert woke == [True]
    beside.join()
    assert beside_woke == [False] and not right.is_set() and not root.is_set()


@pytest.mark.parametrize("set_first", ["itself", "parent"])
def test_waiting_on_a_set_signal_returns_at_once(set_first):
    parent = StopSignal()
    child = parent.child()
    (child if set_first == "itself" else parent).set()
    assert child.wait(30) is True


def test_waiting_times_out_while_unset_and_can_wait_again():
    parent = StopSignal()
    child = parent.child()
    assert child.wait(0.01) is False
    waiter, woke = _wait_in_thread(child, 30)  # the same Event, already registered with the parent
    parent.set()
    waiter.join()
    assert woke == [True]


def test_a_waiting_child_does_not_keep_itself_alive_through_its_parent():
    import gc
    import weakref

    parent = StopSignal()
    child = parent.child()
    child.wait(0)
    ref = weakref.ref(child)
    del child
    gc.collect()
    assert ref() is None
    parent.set()  # nothing left to wake
