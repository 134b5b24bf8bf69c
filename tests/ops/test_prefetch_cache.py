"""prefetch and cache: order, buffer knobs, errors in place, recording and replay."""

import os
import pickle
import threading

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import (
    as_ints,
    fi_elements,
    fi_outcomes,
    fi_raising_at,
    no_leaked_threads,
    tf_outcomes,
    tf_raising_at,
)


@pytest.mark.parametrize("buffer_size", [0, 1, 3, 100, fi.AUTOTUNE])
@pytest.mark.parametrize("size", [0, 1, 1000])
def test_prefetch_keeps_order(buffer_size, size):
    assert as_ints(fi_elements(fi.Dataset.range(size).prefetch(buffer_size))) == list(range(size))


def test_prefetch_buffer_knob_changes_while_running():
    produced = []

    def record(x):
        produced.append(int(x))
        return x

    with iter(fi.Dataset.range(10_000).map(record).prefetch(2)) as it:
        assert int(next(it)) == 0
        knob = it.knobs()[0]
        assert knob.name == "buffer_size" and knob.value == 2
        assert knob.set(500) == 500
        out = [int(next(it)) for _ in range(600)]
    assert out == list(range(1, 601))


PREFETCH_WITH_ERRORS = {
    "prefetch": lambda D, fail: D.range(10).map(fail(2, 3, 9)).prefetch(3),
    "parallel map, prefetch(1)": lambda D, fail: D.range(10).map(fail(0, 2, 3, 9), num_parallel_calls=3).prefetch(1),
    "two prefetches": lambda D, fail: D.range(10).map(fail(2, 5)).prefetch(2).prefetch(5),
    "prefetch, take": lambda D, fail: D.range(10).map(fail(1, 6), num_parallel_calls=2).prefetch(4).take(7),
    "cache, repeat": lambda D, fail: D.range(6).map(fail(2)).cache().repeat(2),
}


@pytest.mark.parametrize("case", PREFETCH_WITH_ERRORS)
def test_errors_keep_their_place_through_prefetch_and_cache_like_tf(tf, case):
    build = PREFETCH_WITH_ERRORS[case]
    assert fi_outcomes(build(fi.Dataset, fi_raising_at)) == tf_outcomes(build(tf.data.Dataset, tf_raising_at))


def test_prefetch_error_is_raised_in_place():
    def fn(x):
        if x == 3:
            raise ValueError("three")
        return x

    it = iter(fi.Dataset.range(6).map(fn).prefetch(10))
    assert [int(next(it)) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="three"):
        next(it)
    assert as_ints(list(it)) == [4, 5]


@pytest.mark.parametrize("buffer_size", [None, -1, 0, 2])
def test_prefetch_accepts_what_tf_data_accepts(tf, buffer_size):
    # None and -1 are AUTOTUNE, 0 prefetches nothing
    tf.data.Dataset.range(3).prefetch(buffer_size)
    ds = fi.Dataset.range(3).prefetch(buffer_size)
    assert ds.buffer_size == (fi.AUTOTUNE if buffer_size is None else buffer_size)
    assert as_ints(fi_elements(ds)) == [0, 1, 2]


@pytest.mark.parametrize("buffer_size", [-7, -2, 2.0, 2.5, "2"])
def test_prefetch_rejects_what_tf_data_rejects(tf, buffer_size):
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        tf.data.Dataset.range(3).prefetch(buffer_size)
    with pytest.raises(fi.errors.InvalidArgumentError, match="buffer_size"):
        fi.Dataset.range(3).prefetch(buffer_size)


def test_memory_cache_runs_the_input_once():
    calls = []
    ds = fi.Dataset.range(10).map(lambda x: calls.append(1) or x * 2).cache()
    calls.clear()  # the two calls that traced the function for its output spec
    assert as_ints(fi_elements(ds)) == list(range(0, 20, 2))
    assert as_ints(fi_elements(ds)) == list(range(0, 20, 2))
    assert len(calls) == 10


def test_memory_cache_discards_a_partial_iteration():
    calls = []
    ds = fi.Dataset.range(10).map(lambda x: calls.append(1) or x).cache()
    calls.clear()  # the two calls that traced the function for its output spec
    it = iter(ds)
    next(it)
    it.close()
    assert as_ints(fi_elements(ds)) == list(range(10))
    assert as_ints(fi_elements(ds)) == list(range(10))
    assert len(calls) == 11


def test_file_cache_is_reused_across_datasets(tmp_path):
    calls = []
    value = {"a": np.arange(50), "s": [f"r{i}".encode() for i in range(50)]}

    def make():
        return fi.Dataset.from_tensor_slices(value).map(lambda d: calls.append(1) or d).cache(str(tmp_path / "c"))

    first = fi_elements(make())
    second = fi_elements(make())
    assert len(calls) == 50 + 2 * 2  # each map traced twice for its output spec while building
    assert [int(e["a"]) for e in second] == list(range(50)) and second[7]["s"] == b"r7"
    assert [int(e["a"]) for e in first] == [int(e["a"]) for e in second]
    assert os.listdir(tmp_path) == ["c.fastinput-cache"]


def test_file_cache_partial_iteration_leaves_nothing(tmp_path):
    it = iter(fi.Dataset.range(100).cache(str(tmp_path / "c")))
    next(it)
    it.close()
    assert os.listdir(tmp_path) == []


def test_corrupt_cache_file_is_data_loss(tmp_path):
    path = tmp_path / "c"
    fi_elements(fi.Dataset.range(5000).cache(str(path)))  # 5 chunks, so some cuts fall between chunks
    data = (tmp_path / "c.fastinput-cache").read_bytes()
    end_marker = len(pickle.dumps(("fastinput-cache-end", 5000), protocol=5))
    for cut in (len(data) // 2, len(data) - 1, len(data) - end_marker):  # the last cut falls exactly between chunks
        (tmp_path / "c.fastinput-cache").write_bytes(data[:cut])
        with pytest.raises(fi.errors.DataLossError, match="c.fastinput-cache"):
            fi_elements(fi.Dataset.range(5000).cache(str(path)))


def test_cache_folder_must_exist(tmp_path):
    with pytest.raises(fi.errors.NotFoundError, match="does not exist"):
        fi.Dataset.range(3).cache(str(tmp_path / "missing" / "c"))


def test_prefetch_close_while_producer_blocked():
    gate = threading.Event()

    def slow(x):
        gate.wait(0.05)
        return x

    with no_leaked_threads():
        it = iter(fi.Dataset.range(1000).map(slow, num_parallel_calls=2).prefetch(4))
        next(it)
        it.close()
