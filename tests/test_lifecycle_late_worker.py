"""A parallel map's worker still running when its error reaches the user keeps no pipeline alive afterwards.

The consumer clears fastinput's frames in the error's traceback (``lifecycle.release_frames``), but cannot clear
a frame still running: the worker's loop, whose frame the traceback reaches as the caller of the frame that
caught the error. If that loop, once it ends, still held the failed work item's results (which hold the error),
error -> traceback -> the loop's frame -> results -> error would be a cycle only the cyclic GC frees, and with it
the user's frame and iterator. Found as a rare failure of ``test_lifecycle.py`` under load; here the worker is
held inside its loop (pulling its next input, slow on purpose) while the error is raised, and then meets the input's
end, so it leaves the loop without another work item.
"""

import gc
import time
import weakref

import pytest

import fastinput as fi
from tests.helpers import wait_for_fastinput_threads


def _slow(x):
    time.sleep(0.3)  # the worker is still pulling (inside its loop) when element 50's error is raised
    return x


def _fails_at_50(x):
    if x == 50:
        raise ValueError("bad element")
    return x


def _train(ds: fi.Dataset, iterators: list) -> None:
    it = iter(ds)  # a local the traceback keeps
    iterators.append(weakref.ref(it))
    for _ in it:
        pass


@pytest.fixture
def no_cyclic_gc():
    gc.disable()
    yield
    gc.enable()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_still_in_its_loop_when_the_error_is_raised_keeps_nothing_alive(workers, no_cyclic_gc):
    iterators: list = []
    with pytest.raises(ValueError, match="bad element"):
        slow_end = fi.Dataset.range(1).map(_slow).filter(lambda x: x < 0)  # 0.3 s, then the input's end
        ds = fi.Dataset.range(51).concatenate(slow_end).map(_fails_at_50, num_parallel_calls=workers)
        _train(ds, iterators)
    assert wait_for_fastinput_threads() == []
    assert iterators[0]() is None, "a finished worker's frame kept the error, its traceback and the iterator alive"
