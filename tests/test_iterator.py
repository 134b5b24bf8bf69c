"""The running pipeline: stopping (close, with, break, del, Ctrl-C), metrics, knobs."""

import _thread
import gc
import threading
import time

import pytest

import fastinput as fi
from tests.helpers import no_leaked_threads


def _busy_pipeline():
    def slow(x):
        threading.Event().wait(0.0005)
        return x

    return (fi.Dataset.range(10**6)
            .interleave(lambda i: fi.Dataset.range(1000), cycle_length=2, num_parallel_calls=2)
            .map(slow, num_parallel_calls=3)
            .batch(8)
            .prefetch(3))


def test_close_joins_every_thread():
    with no_leaked_threads():
        it = iter(_busy_pipeline())
        next(it)
        assert threading.active_count() > 1
        it.close()
        it.close()  # idempotent
        with pytest.raises(StopIteration):
            next(it)


def test_with_block_stops_threads():
    with no_leaked_threads(), iter(_busy_pipeline()) as it:
        next(it)


def test_break_out_of_for_loop_stops_threads():
    with no_leaked_threads():
        for i, _ in enumerate(_busy_pipeline()):
            if i == 3:
                break
        gc.collect()


def test_dropping_the_iterator_stops_threads():
    with no_leaked_threads():
        it = iter(_busy_pipeline())
        next(it)
        del it
        gc.collect()


def test_keyboard_interrupt_while_waiting_then_close():
    def very_slow(x):
        threading.Event().wait(0.2)
        return x

    with no_leaked_threads():
        it = iter(fi.Dataset.range(100).map(very_slow, num_parallel_calls=2).prefetch(2))
        timer = threading.Timer(0.05, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            while True:
                next(it)
        timer.join()
        it.close()


def test_exhausted_pipeline_leaves_no_threads():
    with no_leaked_threads():
        assert len(list(_busy_pipeline().take(5))) == 5


def test_stats_cover_every_stage():
    unfused = fi.Options(optimization=fi.OptimizationOptions(map_and_batch_fusion=False))
    ds = fi.Dataset.range(2000).map(lambda x: x + 1, num_parallel_calls=2).batch(10).prefetch(2).with_options(unfused)
    with iter(ds) as it:
        batches = list(it)
        stats = it.stats()
    assert len(batches) == 200
    names = [s.name for s in stats]
    assert names == ["prefetch(2)", "batch(10)", "map(<lambda>, num_parallel_calls=2)", "range(2000)"]
    by_name = {s.name: s for s in stats}
    assert by_name["batch(10)"].elements == 200
    assert by_name["range(2000)"].elements == 2000
    assert by_name["map(<lambda>, num_parallel_calls=2)"].elements == 2000
    assert (by_name["map(<lambda>, num_parallel_calls=2)"].parallel
            and by_name["map(<lambda>, num_parallel_calls=2)"].parallelism == 2)
    assert all(s.self_seconds >= 0 and s.elapsed_seconds > 0 for s in stats)
    assert [s.depth for s in stats] == [0, 1, 2, 3]


def test_parallel_map_knobs_resize_while_running():
    def slowish(x):
        threading.Event().wait(0.0002)
        return x

    manual = fi.Options(autotune=fi.AutotuneOptions(enabled=False))
    with no_leaked_threads():
        with iter(fi.Dataset.range(3000).map(slowish, num_parallel_calls=fi.AUTOTUNE).with_options(manual)) as it:
            out = [int(next(it)) for _ in range(100)]
            knobs = {k.name: k for k in it.knobs()}
            assert knobs["parallelism"].autotuned
            assert knobs["parallelism"].set(0) == 1  # clamped to its minimum
            before = threading.active_count()
            knobs["parallelism"].set(6)
            assert threading.active_count() >= before
            out += [int(x) for x in it]
        assert out == list(range(3000))


def test_fixed_parallelism_is_not_autotuned():
    with iter(fi.Dataset.range(10).map(lambda x: x, num_parallel_calls=3)) as it:
        next(it)
        assert [k.autotuned for k in it.knobs()] == [False, False]


def test_consumer_wait_is_recorded_for_a_slow_parallel_stage():
    def slow(x):
        time.sleep(0.002)
        return x

    with iter(fi.Dataset.range(100).map(slow, num_parallel_calls=1)) as it:
        list(it)
        stage = it.stats()[0]
    assert stage.wait_seconds > 0
    assert stage.self_seconds > 0.1  # 100 calls of 2 ms of the worker's own time


class _WithIterator(fi.Dataset):
    """A source whose iterator class is given by the test."""

    def __init__(self, iterator_class: type) -> None:
        super().__init__()
        self.iterator_class = iterator_class

    def make_iterator(self, ctx):
        return self.iterator_class(self, ctx)


def test_an_iterator_defining_neither_next_nor_next_chunk_cannot_be_built():
    from fastinput._engine.iterator import DatasetIterator

    class Neither(DatasetIterator):
        pass

    with pytest.raises(TypeError, match="Neither defines neither produce"):
        iter(_WithIterator(Neither))


@pytest.mark.parametrize("define", ["produce", "produce_chunk"])
def test_an_iterator_defining_either_one_gets_the_other(define):
    from fastinput._engine.iterator import DatasetIterator

    def produce(self):
        self.count = getattr(self, "count", 0) + 1
        if self.count > 5:
            raise StopIteration
        return self.count

    def produce_chunk(self, n):
        return [produce(self)]

    one = type("One", (DatasetIterator,), {define: produce if define == "produce" else produce_chunk})
    assert [int(x) for x in _WithIterator(one)] == [1, 2, 3, 4, 5]
    assert [b.tolist() for b in _WithIterator(one).batch(2)] == [[1, 2], [3, 4], [5]]
