"""map_and_batch's workers share each batch's rows (tf.data's hand-out): several fill the oldest batch at once.

The batch a user sees does not change: same elements, order (when deterministic), errors and fallback to
stacking as ``map -> batch``, whichever worker made which row; a state saved anywhere resumes exactly.
"""

import random
import threading
import time

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import NO_REWRITES, assert_same_elements, elements_and_errors, fi_elements


def _jittered(fn):
    """``fn`` after a short random sleep: rows finish out of order, on whichever worker claimed them."""
    def slow(x):
        time.sleep(random.random() * 0.002)
        return fn(x)
    return slow


def _image(x):
    return np.full((32, 32, 3), int(x) % 256, np.uint8), x  # 3 KB + a label: written into preallocated rows


def test_several_workers_fill_one_batch():
    threads_per_batch: dict[int, set[int]] = {}
    lock = threading.Lock()

    def record(x):
        time.sleep(0.005)
        with lock:
            threads_per_batch.setdefault(int(x) // 8, set()).add(threading.get_ident())
        return _image(x)

    batches = fi_elements(fi.Dataset.range(32).map_and_batch(record, 8, num_parallel_calls=4))
    assert [b[1].tolist() for b in batches] == [list(range(i, i + 8)) for i in range(0, 32, 8)]
    assert max(len(threads) for threads in threads_per_batch.values()) > 1


@pytest.mark.parametrize("fn", [_image, lambda x: x * 2, lambda x: {"v": np.full(3000, x), "name": b"n%d" % x}])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_jittered_rows_give_map_then_batch(fn, drop_remainder):
    fused = fi.Dataset.range(45).map_and_batch(_jittered(fn), 8, num_parallel_calls=4, drop_remainder=drop_remainder)
    reference = fi.Dataset.range(45).map(fn).batch(8, drop_remainder).with_options(NO_REWRITES)
    assert_same_elements(fi_elements(fused), fi_elements(reference))


def _fails_or_reshapes(x):
    """Errors at some positions, another output shape at others: batches fail, or fall back to stacking."""
    x = int(x)
    if x in (5, 6, 21):
        raise ValueError(f"bad {x}")
    if x in (13, 30, 31):
        return np.zeros(2000 + x)  # another shape than its batch's first row: stacking's error
    if 32 <= x < 40:
        return np.zeros(3000)  # a batch whose rows all have one shape, another than the others'
    return np.full(2000, x, np.float64)


def test_errors_and_misfit_rows_give_map_then_batch_outcomes():
    def as_text(outcomes):
        return [o if isinstance(o, str) else o.tolist() for o in outcomes]

    def describe(exc):
        return f"{type(exc).__name__}: {exc}"

    for _ in range(3):  # the rows finish in another order each time
        fused = fi.Dataset.range(48).map_and_batch(_jittered(_fails_or_reshapes), 8, num_parallel_calls=4)
        reference = fi.Dataset.range(48).map(_fails_or_reshapes).batch(8).with_options(NO_REWRITES)
        assert as_text(elements_and_errors(fused, describe)) == as_text(elements_and_errors(reference, describe))


@pytest.mark.parametrize("deterministic", [True, False])
def test_a_state_saved_between_shared_batches_resumes_exactly(deterministic):
    def dataset():
        return fi.Dataset.range(40).map_and_batch(_jittered(_image), 4, num_parallel_calls=3,
                                                  deterministic=deterministic)

    expected = sorted(int(v) for b in fi_elements(dataset()) for v in b[1])
    for cut in (0, 1, 4, 9):
        with iter(dataset()) as it:
            before = [next(it) for _ in range(cut)]
            state = it.get_state()
        with iter(dataset()) as it:
            it.set_state(state)
            after = list(it)
        labels = [int(v) for b in before + after for v in b[1]]
        assert sorted(labels) == expected
        if deterministic:
            assert labels == expected


def _cheap_or_failing(x):
    if int(x) in (70, 300, 301):
        raise ValueError(f"bad {int(x)}")
    return x * 2


def _input_failing(x):
    if int(x) == 520:
        raise KeyError("input 520")
    return x


@pytest.mark.parametrize("input_error", [False, True])
def test_cheap_rows_claimed_many_at_a_time_give_map_then_batch_outcomes(input_error):
    # rows of a few microseconds are claimed by the hundred (CLAIM_SECONDS) and mapped in one call: the errors
    # (the function's, the input's) still fail the batches they are in, and only those
    source = fi.Dataset.range(1000)
    if input_error:
        source = source.map(_input_failing).prefetch(1)  # not fused into the map_and_batch: an input error
    fused = source.map_and_batch(_cheap_or_failing, 128, num_parallel_calls=3)
    reference = source.map(_cheap_or_failing).batch(128).with_options(NO_REWRITES)

    def describe(exc):
        return f"{type(exc).__name__}: {exc}"

    def as_text(outcomes):
        return [o if isinstance(o, str) else o.tolist() for o in outcomes]

    outcomes = as_text(elements_and_errors(fused, describe))
    assert outcomes == as_text(elements_and_errors(reference, describe))
    assert "ValueError: bad 70" in outcomes and ("KeyError: 'input 520'" in outcomes) == input_error
