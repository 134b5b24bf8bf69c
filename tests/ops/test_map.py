"""map and filter: order, values, parallelism, determinism and errors, against tf.data."""

import threading

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import (
    ERROR,
    as_ints,
    assert_same_elements,
    fi_elements,
    fi_outcomes,
    fi_raising_at,
    no_leaked_threads,
    tf_elements,
    tf_outcomes,
    tf_raising_at,
)

PARALLELISM = [None, 1, 2, 7, fi.AUTOTUNE]


@pytest.mark.parametrize("size", [0, 1, 100, 5000])
@pytest.mark.parametrize("num_parallel_calls", PARALLELISM)
def test_map_matches_tf(tf, size, num_parallel_calls):
    fi_ds = fi.Dataset.range(size).map(lambda x: x * 3 + 1, num_parallel_calls=num_parallel_calls)
    tf_ds = tf.data.Dataset.range(size).map(lambda x: x * 3 + 1, num_parallel_calls=num_parallel_calls)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


@pytest.mark.parametrize("num_parallel_calls", PARALLELISM)
def test_map_unpacks_tuples_and_keeps_dicts(tf, num_parallel_calls):
    x = np.arange(20)
    fi_ds = fi.Dataset.from_tensor_slices((x, x * 2)).map(lambda a, b: {"sum": a + b, "a": a}, num_parallel_calls)
    tf_ds = tf.data.Dataset.from_tensor_slices((x, x * 2)).map(lambda a, b: {"sum": a + b, "a": a}, num_parallel_calls)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))
    fi_dict = fi.Dataset.from_tensor_slices({"a": x}).map(lambda d: d["a"] + 1, num_parallel_calls)
    tf_dict = tf.data.Dataset.from_tensor_slices({"a": x}).map(lambda d: d["a"] + 1, num_parallel_calls)
    assert_same_elements(fi_elements(fi_dict), tf_elements(tf_dict))


@pytest.mark.parametrize("num_parallel_calls", [2, 4, fi.AUTOTUNE])
def test_nondeterministic_map_is_a_permutation(num_parallel_calls):
    rng = np.random.default_rng(0)
    delays = rng.integers(0, 3, size=300)

    def slow_identity(x):
        threading.Event().wait(delays[int(x)] / 2000)
        return x

    ds = fi.Dataset.range(300).map(slow_identity, num_parallel_calls=num_parallel_calls, deterministic=False)
    assert sorted(as_ints(fi_elements(ds))) == list(range(300))


def test_options_deterministic_false_applies_to_map():
    ds = fi.Dataset.range(200).map(lambda x: x, num_parallel_calls=4).with_options(fi.Options(deterministic=False))
    assert sorted(as_ints(fi_elements(ds))) == list(range(200))
    assert "deterministic" not in str(ds.inputs[0])


def test_map_converts_python_outputs_like_tf(tf):
    fi_ds = fi.Dataset.range(3).map(lambda x: (int(x), float(x), [1, 2], "s"))
    tf_ds = tf.data.Dataset.range(3).map(lambda x: (1, 2.0, [1, 2], "s"))
    fi_out, tf_out = fi_elements(fi_ds), tf_elements(tf_ds)
    for a, b in zip(fi_out, tf_out):
        assert [np.asarray(v).dtype for v in a[:3]] == [np.asarray(v).dtype for v in b[:3]]
        assert a[3] == b[3] == b"s"


@pytest.mark.parametrize("num_parallel_calls", PARALLELISM)
def test_map_error_keeps_its_place_and_iteration_goes_on(tf, num_parallel_calls):
    """tf.data raises the failing element's error in place and then continues with the next element."""

    def fi_fn(x):
        if x % 7 == 3:
            raise ValueError(f"bad element {int(x)}")
        return x

    def tf_fn(x):
        tf.debugging.assert_none_equal(x % 7, tf.constant(3, tf.int64))
        return x

    def drain(iterator, errors):
        out = []
        while True:
            try:
                out.append(int(next(iterator)))
            except StopIteration:
                return out
            except errors as exc:  # noqa: PERF203
                out.append(("error", type(exc).__name__))

    fi_seq = drain(iter(fi.Dataset.range(30).map(fi_fn, num_parallel_calls)), ValueError)
    tf_seq = drain(iter(tf.data.Dataset.range(30).map(tf_fn, num_parallel_calls).as_numpy_iterator()),
                   tf.errors.InvalidArgumentError)
    assert ([x if isinstance(x, int) else "error" for x in fi_seq]
            == [x if isinstance(x, int) else "error" for x in tf_seq])


@pytest.mark.parametrize("num_parallel_calls", PARALLELISM)
def test_map_calls_the_function_once_per_element_around_an_error(num_parallel_calls):
    """The elements after a failed call in the same chunk are not mapped again (chunks are read by prefetch)."""
    calls = []

    def fn(x):
        calls.append(int(x))
        if x == 3:
            raise ValueError("bad element")
        return x

    ds = fi.Dataset.range(10).map(fn, num_parallel_calls).prefetch(10)
    calls.clear()  # building the pipeline may trace fn on placeholders
    out = []
    with iter(ds) as it:
        while True:
            try:
                out.append(int(next(it)))
            except ValueError:
                out.append("error")
            except StopIteration:
                break
    assert out == [0, 1, 2, "error", 4, 5, 6, 7, 8, 9]
    assert sorted(calls) == list(range(10))


@pytest.mark.parametrize("num_parallel_calls", PARALLELISM)
def test_map_error_names_the_stage(num_parallel_calls):
    def explode(x):
        raise KeyError("nope")

    with no_leaked_threads():
        it = iter(fi.Dataset.range(5).map(explode, num_parallel_calls=num_parallel_calls).batch(2))
        with pytest.raises(KeyError) as info:
            next(it)
        it.close()
    assert any("map(explode" in note for note in info.value.__notes__), info.value.__notes__


# Stages that call a user function ``stop`` that raises StopIteration for element 2 (and 7). ``D`` is tf.data.Dataset or
# fi.Dataset; each pair gives (pipeline, stage string the error's note names).
STAGES_CALLING_A_FUNCTION = {
    "map": lambda D, stop: D.range(10).map(stop),
    "parallel map": lambda D, stop: D.range(10).map(stop, num_parallel_calls=3),
    "map, deterministic=False": lambda D, stop: D.range(10).map(stop, num_parallel_calls=1, deterministic=False),
    "fused maps": lambda D, stop: D.range(10).map(lambda x: x + 0).map(stop),
    "map then batch (fused)": lambda D, stop: D.range(10).map(stop, num_parallel_calls=2).batch(1),
    "filter": lambda D, stop: D.range(10).filter(lambda x: stop(x) >= 0),
    "interleave": lambda D, stop: D.range(10).interleave(lambda x: D.range(stop(x) % 3), cycle_length=2),
    "parallel interleave": lambda D, stop: D.range(10).interleave(lambda x: D.range(stop(x) % 3), cycle_length=2,
                                                                   num_parallel_calls=2),
}


@pytest.mark.parametrize("stage", STAGES_CALLING_A_FUNCTION)
def test_function_raising_stop_iteration_is_an_error_in_place_like_tf(tf, stage):
    """tf.data gives 0 1 error 3 ...: a function's StopIteration must not end the data silently."""
    build = STAGES_CALLING_A_FUNCTION[stage]
    expected = tf_outcomes(build(tf.data.Dataset, tf_raising_at(2, 7, error=StopIteration)))
    actual = fi_outcomes(build(fi.Dataset, fi_raising_at(2, 7, error=StopIteration)))
    if "deterministic=False" in stage:
        actual, expected = sorted(map(str, actual)), sorted(map(str, expected))
    assert actual == expected


def test_function_stop_iteration_error_names_the_stage_and_keeps_the_cause():
    stop = fi_raising_at(2, error=StopIteration)
    for ds in (fi.Dataset.range(5).map(stop), fi.Dataset.range(5).map(stop, num_parallel_calls=2),
               fi.Dataset.range(5).map_and_batch(stop, 1), fi.Dataset.range(5).filter(lambda x: stop(x) >= 0)):
        with iter(ds) as it:
            next(it), next(it)
            with pytest.raises(fi.errors.FunctionStopIterationError, match="StopIteration") as info:
                next(it)
            assert len(list(it)) == 2
        assert isinstance(info.value, ValueError) and isinstance(info.value.__cause__, StopIteration)
        assert any(str(ds).split("(")[0] + "(" in note for note in info.value.__notes__), info.value.__notes__


@pytest.mark.parametrize("new_input", ["repeat", "concatenate"])
def test_stop_iteration_where_a_new_input_starts_goes_on_where_tf_data_ends_a_zip(tf, new_input):
    """README, "A `StopIteration` where a new input starts": tf.data's parallel map raising StopIteration at the
    first element of a repeat's next epoch (a concatenate's second part) ends the enumerate after it; with a
    prefetch before the enumerate tf.data goes on, as fastinput does with or without it."""
    def build(D, stop, prefetch, npc=2):
        mapped = D.range(6).map(stop, num_parallel_calls=npc)
        ds = mapped.repeat(2) if new_input == "repeat" else mapped.concatenate(mapped)
        return (ds.prefetch(1) if prefetch else ds).enumerate()

    tf_stop, fi_stop = tf_raising_at(0, error=StopIteration), fi_raising_at(0, error=StopIteration)
    epochs = [ERROR, *[(i, i) for i in range(1, 6)], ERROR, *[(i + 6, i) for i in range(1, 6)], "end"]
    assert tf_outcomes(build(tf.data.Dataset, tf_stop, prefetch=False)) == [*epochs[:7], "end"]
    assert tf_outcomes(build(tf.data.Dataset, tf_stop, prefetch=True)) == epochs
    for prefetch, npc in ((False, 2), (True, 2), (False, None)):
        assert fi_outcomes(build(fi.Dataset, fi_stop, prefetch, npc)) == epochs


class _ConsumerProgress:
    """Makes element ``x`` of a map wait until the consumer has received ``x`` elements.

    Only one element can then be finished at a time, so any hand-off that holds a finished element back (for the
    rest of its chunk) would hang; after ``timeout`` seconds a wait raises TimeoutError, and so does every later one,
    so a regression fails quickly instead of hanging.
    """

    def __init__(self, timeout: float = 30.0) -> None:  # 10 s ran out once for tf.data's side under load 20
        self._cond = threading.Condition()
        self._count = 0
        self._timeout = timeout
        self._timed_out = False

    def wait_for_turn(self, x):
        with self._cond:
            if not self._cond.wait_for(lambda: self._count >= int(x) or self._timed_out, self._timeout):
                self._timed_out = True
            if self._timed_out:
                raise TimeoutError(f"element {int(x)} waited for the consumer to receive {int(x)} elements")
        return x

    def consume(self, iterator) -> list[int]:
        out = []
        for element in iterator:
            out.append(int(element))
            with self._cond:
                self._count += 1
                self._cond.notify_all()
        return out


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("num_parallel_calls", [2, 4, fi.AUTOTUNE])
def test_parallel_map_hands_out_each_element_when_ready_like_tf(tf, deterministic, num_parallel_calls):
    """A map function that waits for the consumer's progress gets it: no element waits for the rest of its chunk."""
    size = 300
    tf_progress, fi_progress = _ConsumerProgress(), _ConsumerProgress()
    tf_ds = tf.data.Dataset.range(size).map(lambda x: tf.py_function(tf_progress.wait_for_turn, [x], tf.int64),
                                            num_parallel_calls=num_parallel_calls, deterministic=deterministic)
    fi_ds = fi.Dataset.range(size).map(fi_progress.wait_for_turn, num_parallel_calls=num_parallel_calls,
                                       deterministic=deterministic,  # declared, as tf.py_function's is:
                                       output_signature=fi.TensorSpec([], "int64"))  # building calls nothing
    expected = tf_progress.consume(tf_ds)
    with no_leaked_threads(), iter(fi_ds) as it:
        assert fi_progress.consume(it) == expected == list(range(size))


def test_worker_base_exception_does_not_hang():
    def exit_now(x):
        raise SystemExit(3)

    declared = fi.TensorSpec([], "int64")  # so that building does not trace it
    with (no_leaked_threads(),
          iter(fi.Dataset.range(5).map(exit_now, num_parallel_calls=2, output_signature=declared)) as it):
        with pytest.raises(SystemExit):
            next(it)


@pytest.mark.parametrize(
    "make",
    [
        lambda ds: ds.map(3),
        lambda ds: ds.map(lambda x: x, num_parallel_calls=0),
        lambda ds: ds.map(lambda x: x, num_parallel_calls=-5),
        lambda ds: ds.map(lambda x: x, num_parallel_calls=2.5),
        lambda ds: ds.map(lambda x: x, deterministic="yes"),
        lambda ds: ds.filter(None),
    ],
    ids=["not-callable", "zero-parallelism", "negative-parallelism", "float-parallelism", "bad-deterministic",
         "filter-none"],
)
def test_bad_arguments_fail_at_build_time(make):
    with pytest.raises(fi.errors.InvalidArgumentError) as info:
        make(fi.Dataset.range(3))
    assert isinstance(info.value, ValueError)


def test_stage_strings_read_like_the_call():
    def parse(x):
        return x

    ds = fi.Dataset.range(10).map(parse, num_parallel_calls=8).map(parse, num_parallel_calls=fi.AUTOTUNE)
    assert str(ds) == "map(parse, num_parallel_calls=AUTOTUNE)"
    assert str(ds.inputs[0]) == "map(parse, num_parallel_calls=8)"
    assert repr(ds).startswith("<fastinput.Dataset range(10) -> map(parse")


@pytest.mark.parametrize("size", [0, 10, 1000])
def test_filter_matches_tf(tf, size):
    fi_ds = fi.Dataset.range(size).filter(lambda x: x % 3 == 0)
    tf_ds = tf.data.Dataset.range(size).filter(lambda x: x % 3 == 0)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


@pytest.mark.parametrize("where", ["input", "predicate"])
def test_filter_errors_keep_their_place_like_tf(tf, where):
    def build(D, fail):
        if where == "input":
            return D.range(10).map(fail(2, 5)).filter(lambda x: x % 2 == 0)
        return D.range(10).filter(lambda x: fail(3, 4)(x) % 2 == 0)

    assert fi_outcomes(build(fi.Dataset, fi_raising_at)) == tf_outcomes(build(tf.data.Dataset, tf_raising_at))


def test_filter_on_tuples_and_non_boolean_predicate():
    ds = fi.Dataset.from_tensor_slices((np.arange(6), np.arange(6) * 10)).filter(lambda a, b: b > 20)
    assert [(int(a), int(b)) for a, b in ds] == [(3, 30), (4, 40), (5, 50)]
    with pytest.raises(fi.errors.InvalidArgumentError, match="scalar boolean"):
        list(fi.Dataset.range(3).filter(lambda x: x))
