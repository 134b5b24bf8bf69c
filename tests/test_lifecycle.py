"""Dropped pipelines stop without the GC's help and without deadlocking it (issue 14, defects 5 and 6)."""

import gc
import threading
import weakref

import pytest

import fastinput as fi
from fastinput._engine import lifecycle
from tests.helpers import fastinput_threads, run_child, wait_for_fastinput_threads


def _fails_at_50(x):
    if x == 50:
        raise ValueError("bad element")
    return x


def _keep(x):
    return x


PIPELINES = {  # an error in a map function, in each place a worker thread can meet it
    "parallel map": lambda: fi.Dataset.range(10**5).map(_fails_at_50, num_parallel_calls=4),
    "parallel map, prefetch": lambda: fi.Dataset.range(10**5).map(_fails_at_50, num_parallel_calls=4).prefetch(2),
    "autotuned": lambda: (fi.Dataset.range(10**5).map(_fails_at_50, num_parallel_calls=fi.AUTOTUNE)
                          .prefetch(fi.AUTOTUNE)),
    "error upstream of a parallel map": lambda: (fi.Dataset.range(10**5).map(_fails_at_50)
                                                 .map(_keep, num_parallel_calls=4)),
    "error upstream of prefetch": lambda: fi.Dataset.range(10**5).map(_fails_at_50).prefetch(1),
    "interleave": lambda: fi.Dataset.range(8).interleave(
        lambda i: fi.Dataset.range(1000).map(_fails_at_50), cycle_length=2, num_parallel_calls=2),
    "map_and_batch": lambda: fi.Dataset.range(10**5).map_and_batch(_fails_at_50, 8, num_parallel_calls=4),
    "shuffle, repeat, map, batch": lambda: (fi.Dataset.range(1000).shuffle(100).repeat()
                                            .map(_fails_at_50, num_parallel_calls=3).batch(4).prefetch(3)),
}


@pytest.fixture
def no_cyclic_gc():
    """The cyclic GC off: what is freed must be freed by reference counting alone."""
    gc.disable()
    yield
    gc.enable()


def _train(ds: fi.Dataset, iterators: list) -> None:
    it = iter(ds)  # a local the traceback keeps (the frame leaves with the error)
    iterators.append(weakref.ref(it))
    for _ in it:
        pass


@pytest.mark.parametrize("name", PIPELINES)
def test_an_error_that_ends_the_loop_leaves_no_thread(name, no_cyclic_gc):
    iterators: list = []
    with pytest.raises(ValueError, match="bad element"):
        _train(PIPELINES[name](), iterators)
    assert iterators[0]() is None, "the traceback kept the iterator alive"
    assert wait_for_fastinput_threads() == []


@pytest.mark.parametrize("name", ["parallel map", "error upstream of a parallel map", "interleave"])
def test_an_error_in_a_plain_for_loop_leaves_no_thread(name, no_cyclic_gc):
    caught = None
    try:
        for _ in PIPELINES[name]():
            pass
    except ValueError as exc:
        caught = exc  # kept: the error, with its traceback, outlives the loop
    assert wait_for_fastinput_threads() == []
    assert "bad element" in str(caught)


def test_the_map_functions_frame_keeps_its_locals():
    """Only fastinput's own frames are cleared: a debugger still sees the user's."""
    def check(x):
        local_value = x * 10
        if x == 3:
            raise ValueError("bad")
        return local_value

    with pytest.raises(ValueError) as info:
        list(fi.Dataset.range(10).map(check, num_parallel_calls=2))
    frames = [entry.frame.f_locals for entry in info.traceback if entry.name == "check"]
    assert frames and frames[-1]["local_value"] == 30


def test_the_iterator_goes_on_after_an_error():
    """Nothing is closed by an error: the iterator delivers the elements after it, as tf.data's does."""
    it = iter(fi.Dataset.range(6).map(lambda x: 1 // (int(x) - 2), num_parallel_calls=2))
    got = [int(next(it)), int(next(it))]
    with pytest.raises(ZeroDivisionError):
        next(it)
    got += [int(x) for x in it]
    assert got == [-1, -1, 1, 0, 0]
    assert fastinput_threads() == []  # the end closes the pipeline at once


def test_a_dropped_iterator_is_closed_by_the_reaper():
    it = iter(fi.Dataset.range(10**6).map(_keep, num_parallel_calls=3).prefetch(2))
    next(it)
    threads = fastinput_threads()
    assert threads
    del it
    assert wait_for_fastinput_threads() == []
    assert lifecycle.REAPER_THREAD_NAME in [t.name for t in threading.enumerate()]


def test_the_garbage_collector_finalising_an_iterator_in_its_own_locked_worker_does_not_deadlock():
    """The GC frees a cyclic-garbage iterator from inside one of its workers while that worker holds the
    stage's lock: before the reaper, ``__del__ -> close -> cancel`` waited on that lock forever and CPython's
    GC stayed "already collecting" for the rest of the process."""
    result = run_child("""
        import gc, threading, time
        import fastinput as fi
        from tests.helpers import wait_for_fastinput_threads

        gc.disable()
        dropped, stage = threading.Event(), []

        def collect_inside_the_lock(x):
            if x == 5:
                dropped.wait()
                with stage[0]._cond:  # as a worker holds it when an allocation happens to start a collection
                    gc.collect()  # frees the iterator below, in this very thread
            return x

        it = iter(fi.Dataset.range(10**6).map(collect_inside_the_lock, num_parallel_calls=2))
        stage.append(it._root)  # the parallel map stage
        next(it)
        cycle = [it]
        cycle.append(cycle)
        del it, cycle  # cyclic garbage: only the GC frees it
        dropped.set()
        assert wait_for_fastinput_threads(20) == [], "the pipeline was not closed"

        freed = []
        class Witness:
            def __del__(self):
                freed.append(True)
        witness = Witness()
        witness.self = witness
        del witness
        gc.collect()
        assert freed, "the GC no longer frees cycles"
        print("ok")
    """, timeout=60)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr

