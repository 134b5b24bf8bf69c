"""shuffle and repeat: tf.data's buffered-shuffle invariants, seeds, epochs; repeat against tf.data."""

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
    tf_elements,
    tf_outcomes,
    tf_raising_at,
)

UNFUSED = fi.Options(optimization=fi.OptimizationOptions(shuffle_and_repeat_fusion=False))


@pytest.mark.parametrize("size", [0, 1, 10, 1000])
@pytest.mark.parametrize("buffer_size", [1, 2, 7, 100, 5000])
def test_shuffle_is_a_permutation(size, buffer_size):
    assert sorted(as_ints(fi_elements(fi.Dataset.range(size).shuffle(buffer_size)))) == list(range(size))


@pytest.mark.parametrize("buffer_size", [1, 3, 10, 50])
def test_each_output_comes_from_the_buffer_window(buffer_size):
    """Output k is one of the first k + buffer_size inputs, as in tf.data's shuffle."""
    out = as_ints(fi_elements(fi.Dataset.range(500).shuffle(buffer_size, seed=3)))
    assert all(value < k + buffer_size for k, value in enumerate(out))


def test_buffer_size_one_is_identity():
    assert as_ints(fi_elements(fi.Dataset.range(50).shuffle(1, seed=1))) == list(range(50))


def test_seed_makes_order_reproducible_across_datasets():
    first = as_ints(fi_elements(fi.Dataset.range(300).shuffle(64, seed=42)))
    second = as_ints(fi_elements(fi.Dataset.range(300).shuffle(64, seed=42)))
    other = as_ints(fi_elements(fi.Dataset.range(300).shuffle(64, seed=43)))
    assert first == second
    assert first != other
    assert first != list(range(300))


def test_reshuffle_each_iteration():
    ds = fi.Dataset.range(200).shuffle(200, seed=7)
    epochs = [as_ints(fi_elements(ds)) for _ in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]
    assert all(sorted(e) == list(range(200)) for e in epochs)
    # the sequence of epochs is itself reproducible
    again = fi.Dataset.range(200).shuffle(200, seed=7)
    assert [as_ints(fi_elements(again)) for _ in range(3)] == epochs


def test_no_reshuffle_gives_the_same_order_every_epoch():
    ds = fi.Dataset.range(100).shuffle(100, reshuffle_each_iteration=False)
    assert as_ints(fi_elements(ds)) == as_ints(fi_elements(ds))
    repeated = as_ints(fi_elements(ds.repeat(2)))
    assert repeated[:100] == repeated[100:]


def test_shuffle_then_repeat_reshuffles_each_epoch():
    out = as_ints(fi_elements(fi.Dataset.range(100).shuffle(100, seed=1).repeat(3)))
    epochs = [out[i * 100:(i + 1) * 100] for i in range(3)]
    assert all(sorted(e) == list(range(100)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]


def test_unseeded_shuffles_differ():
    assert (as_ints(fi_elements(fi.Dataset.range(500).shuffle(500)))
            != as_ints(fi_elements(fi.Dataset.range(500).shuffle(500))))


def test_shuffle_keeps_input_errors_and_loses_nothing():
    def fn(x):
        if x == 20:
            raise ValueError("twenty")
        return x

    it = iter(fi.Dataset.range(40).map(fn).shuffle(8, seed=0))
    seen, errors = [], 0
    while True:
        try:
            seen.append(int(next(it)))
        except ValueError:
            errors += 1
        except StopIteration:
            break
    assert errors == 1
    assert sorted(seen) == [x for x in range(40) if x != 20]


@pytest.mark.parametrize("buffer_size", [0, -2, None])
def test_shuffle_bad_buffer(buffer_size):
    with pytest.raises(fi.errors.InvalidArgumentError, match="buffer_size"):
        fi.Dataset.range(3).shuffle(buffer_size)


@pytest.mark.parametrize("count", [0, 1, 3, -1, None])
@pytest.mark.parametrize("size", [0, 1, 5])
def test_repeat_matches_tf(tf, count, size):
    fi_ds = fi.Dataset.range(size).repeat(count)
    tf_ds = tf.data.Dataset.range(size).repeat(count)
    if count in (-1, None):
        fi_ds, tf_ds = fi_ds.take(23), tf_ds.take(23)
    assert_same_elements(fi_elements(fi_ds), tf_elements(tf_ds))


def test_repeat_forever_of_empty_ends():
    assert fi_elements(fi.Dataset.range(0).repeat()) == []


def _error_places(outcomes):
    return [i for i, x in enumerate(outcomes) if x == ERROR]


@pytest.mark.parametrize(("size", "bad", "buffer_size", "count"), [
    (5, (2,), 5, 2), (10, (2, 7), 3, 3), (10, (0, 9), 4, 2), (12, (5,), 64, 3), (3, (0, 1, 2), 3, 3), (6, (1,), 1, 2),
    (8, (6,), 3, 3),
])
def test_shuffle_then_repeat_keeps_every_element_around_errors(tf, size, bad, buffer_size, count):
    """Fused or not, each epoch is a permutation of the good elements and every error comes, as in tf.data.

    The errors come where tf.data puts them without its own shuffle_and_repeat fusion (which raises the next
    epoch's errors while the last epoch drains): at the start of their epoch's buffer fill.
    """
    def fi_ds():  # a new node each time: a shuffle node's seed sequence advances with each iterator
        return fi.Dataset.range(size).map(fi_raising_at(*bad)).shuffle(buffer_size, seed=1).repeat(count)

    fused, unfused = fi_outcomes(fi_ds()), fi_outcomes(fi_ds().with_options(UNFUSED))
    assert fused == unfused  # the rewrite gives the same sequence
    tf_unfused = tf.data.Options()
    tf_unfused.experimental_optimization.shuffle_and_repeat_fusion = False
    expected = tf_outcomes(tf.data.Dataset.range(size).map(tf_raising_at(*bad)).shuffle(buffer_size, seed=1)
                           .repeat(count).with_options(tf_unfused))
    assert _error_places(fused) == _error_places(expected)
    per_epoch = size - len(bad)
    for outcomes in (fused, expected):
        good = [x for x in outcomes[:-1] if x != ERROR]
        assert outcomes.count(ERROR) == len(bad) * count and outcomes[-1] == "end"
        assert [sorted(good[i * per_epoch:(i + 1) * per_epoch]) for i in range(count)] == \
            [[x for x in range(size) if x not in bad]] * count


def _empty_on_first_call():
    calls = []

    def generate():
        calls.append(None)
        yield from range(len(calls) - 1)  # nothing the first time, then 0..k-1

    return generate


REPEATS_OF_SPARSE_EPOCHS = {  # epochs without elements: tf.data runs every epoch of a finite repeat
    "errors only, count": (lambda D, fail: D.range(2).map(fail(0, 1)).repeat(3)),
    "errors only, forever": (lambda D, fail: D.range(2).map(fail(0, 1)).repeat()),
    "errors only, shuffled, count": (lambda D, fail: D.range(2).map(fail(0, 1)).shuffle(2, seed=3).repeat(3)),
    "errors only, shuffled, forever": (lambda D, fail: D.range(2).map(fail(0, 1)).shuffle(2, seed=3).repeat()),
    "all filtered, errors, forever": (lambda D, fail: D.range(4).map(fail(0)).filter(lambda x: x > 10).repeat()),
    "some errors, count": (lambda D, fail: D.range(4).map(fail(1, 3)).repeat(2)),
    "empty, count": (lambda D, fail: D.range(0).repeat(4)),
}


@pytest.mark.parametrize("case", REPEATS_OF_SPARSE_EPOCHS)
def test_repeat_of_epochs_without_elements_matches_tf(tf, case):
    build = REPEATS_OF_SPARSE_EPOCHS[case]
    expected = tf_outcomes(build(tf.data.Dataset, tf_raising_at), limit=50)
    assert fi_outcomes(build(fi.Dataset, fi_raising_at), limit=50) == expected
    assert fi_outcomes(build(fi.Dataset, fi_raising_at).with_options(UNFUSED), limit=50) == expected


@pytest.mark.parametrize("count", [3, -1])
@pytest.mark.parametrize("shuffled", [False, True])
def test_repeat_of_generator_empty_on_its_first_call_matches_tf(tf, count, shuffled):
    """repeat(3) goes on after the empty first epoch; repeat() forever ends there (tf.data's rule)."""
    def build(ds):
        return (ds.shuffle(1) if shuffled else ds).repeat(count)

    signature = tf.TensorSpec([], tf.int64)
    expected = tf_outcomes(build(tf.data.Dataset.from_generator(_empty_on_first_call(), output_signature=signature)))
    assert fi_outcomes(build(fi.Dataset.from_generator(_empty_on_first_call()))) == expected
    assert fi_outcomes(build(fi.Dataset.from_generator(_empty_on_first_call())).with_options(UNFUSED)) == expected


def test_repeat_forever_ends_at_an_epoch_without_elements_or_errors():
    """Where tf.data would spin forever (a later epoch empty), fastinput ends: a documented difference."""
    def generate_once():
        calls.append(None)
        yield from range(3 if len(calls) == 1 else 0)

    for shuffle in (lambda ds: ds, lambda ds: ds.shuffle(2, seed=0)):
        calls: list[None] = []
        assert sorted(as_ints(fi_elements(shuffle(fi.Dataset.from_generator(generate_once)).repeat()))) == [0, 1, 2]


def test_repeat_bad_count():
    with pytest.raises(fi.errors.InvalidArgumentError, match="count"):
        fi.Dataset.range(3).repeat(-2)


def test_shuffle_of_structures_keeps_rows_together():
    x = np.arange(100)
    out = fi_elements(fi.Dataset.from_tensor_slices({"a": x, "b": x * 10}).shuffle(30, seed=5))
    assert all(int(e["b"]) == 10 * int(e["a"]) for e in out)
    assert sorted(int(e["a"]) for e in out) == list(range(100))
