"""The one cancellation concept: a pipeline's stop signal and its stages' (``fastinput._engine.cancellation``)."""

from __future__ import annotations

import threading

import pytest

import fastinput as fi
from fastinput import errors
from fastinput._engine.cancellation import StopSignal
from fastinput._engine.iterator import IteratorContext


def test_setting_a_signal_sets_its_children_not_its_parent():
    parent = StopSignal()
    first, second = parent.child(), parent.child()
    first.set()
    assert first.is_set() and not second.is_set() and not parent.is_set()
    parent.set()
    assert second.is_set()


def test_a_child_of_a_set_signal_starts_set():
    parent = StopSignal()
    parent.set()
    assert parent.child().is_set()


def test_a_waiting_thread_wakes_when_the_parent_is_set():
    parent = StopSignal()
    child = parent.child()
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(child.wait(30)))
    waiter.start()
    parent.set()
    waiter.join()
    assert woke == [True]


@pytest.mark.parametrize("parallel", [None, 2])
def test_cancel_stops_one_stage_and_its_inputs_only(parallel):
    ds = fi.Dataset.range(100).map(lambda x: x + 1, num_parallel_calls=parallel)
    ctx = IteratorContext(ds.options())
    root = ds.make_iterator(ctx)
    try:
        assert root.get_next() == 1
        root.inputs[0].cancel()
        assert root.inputs[0].cancelled.is_set() and not root.cancelled.is_set() and not ctx.cancelled.is_set()
        with pytest.raises(errors.CancelledError):
            root.inputs[0].raise_if_cancelled()
        root.cancel()
        assert root.cancelled.is_set()
        if parallel:  # a threaded stage checks its signal before handing out what it holds
            with pytest.raises(errors.CancelledError):
                root.get_next_chunk(100)
    finally:
        root.close()


def test_closing_the_pipeline_stops_a_stage_made_afterwards():
    ds = fi.Dataset.range(3)
    ctx = IteratorContext(ds.options())
    ctx.cancelled.set()  # what closing the pipeline does first
    late = ds.make_iterator(ctx)
    with pytest.raises(errors.CancelledError):
        late.raise_if_cancelled()
