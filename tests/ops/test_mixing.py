"""sample_from_datasets and choose_from_datasets against tf.data.

choose_from_datasets is compared element by element and error by error. sample_from_datasets draws its own random
choices (not TensorFlow's bits), so it is compared through choose_from_datasets given the choices it made, with
weights that leave no choice (0 and 1) exactly, and with other weights statistically.
"""

import collections

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import fi_outcomes, fi_raising_at, tf_outcomes, tf_raising_at

READERS = {  # how the stage after the mix reads it: one element at a time, or in chunks of several sizes
    "one by one": lambda ds: ds,
    "prefetch": lambda ds: ds.prefetch(3),
    "batch then unbatch": lambda ds: ds.batch(5).unbatch(),
    "parallel map": lambda ds: ds.map(lambda x: x, num_parallel_calls=2),
}


def _choices(D, values):
    return D.from_tensor_slices(np.array(values, dtype=np.int64))


# ``D`` is tf.data.Dataset or fi.Dataset, ``fail`` fi_raising_at or tf_raising_at.
CHOOSE_CASES = {
    "round robin": lambda D, fail: D.choose_from_datasets([D.range(5), D.range(10, 15)], _choices(D, [0, 1] * 5)),
    "uneven": lambda D, fail: D.choose_from_datasets([D.range(8), D.range(10, 18), D.range(20, 28)],
                                                     _choices(D, [2, 2, 0, 1, 1, 1, 0, 2, 0, 0, 1])),
    "choices end first": lambda D, fail: D.choose_from_datasets([D.range(10), D.range(10, 20)],
                                                                _choices(D, [1, 0, 1])),
    "an input ends: stop": lambda D, fail: D.choose_from_datasets([D.range(2), D.range(10, 20)],
                                                                  _choices(D, [0, 1, 0, 0, 1, 1])),
    "an input ends: go on": lambda D, fail: D.choose_from_datasets([D.range(2), D.range(10, 20)],
                                                                   _choices(D, [0, 1, 0, 0, 1, 0, 1]),
                                                                   stop_on_empty_dataset=False),
    "all inputs end": lambda D, fail: D.choose_from_datasets([D.range(2), D.range(10, 11)],
                                                             _choices(D, [0, 1, 1, 0, 0, 1, 0, 1, 1]),
                                                             stop_on_empty_dataset=False),
    "empty input": lambda D, fail: D.choose_from_datasets([D.range(0), D.range(10, 13)],
                                                          _choices(D, [1, 0, 1, 1]), stop_on_empty_dataset=False),
    "errors in inputs": lambda D, fail: D.choose_from_datasets(
        [D.range(6).map(fail(1, 2)), D.range(10, 16).map(fail(13))], _choices(D, [0, 0, 1, 1, 1, 1, 0, 0, 1, 0])),
    "error where an input ends": lambda D, fail: D.choose_from_datasets(
        [D.range(2).map(fail(1)), D.range(10, 16)], _choices(D, [0, 1, 0, 1, 0, 1]), stop_on_empty_dataset=False),
    "errors in the choices": lambda D, fail: D.choose_from_datasets(
        [D.range(6), D.range(10, 16)], _choices(D, [0, 1, 1, 0, 1, 0]).map(fail(1))),
    "choice out of range": lambda D, fail: D.choose_from_datasets([D.range(6), D.range(10, 16)],
                                                                  _choices(D, [0, 1, 2, 1, -1, 0])),
    "repeated": lambda D, fail: D.choose_from_datasets([D.range(3), D.range(10, 13)],
                                                       _choices(D, [1, 0, 0, 1])).repeat(3),
    "nested elements": lambda D, fail: D.choose_from_datasets(
        [D.range(4).map(lambda x: {"a": x, "b": (x, x)}), D.range(10, 14).map(lambda x: {"a": x, "b": (x, x)})],
        _choices(D, [1, 1, 0, 1, 0])),
    "sample, weights without choice": lambda D, fail: D.sample_from_datasets(
        [D.range(5), D.range(10, 15), D.range(20, 25)], weights=[0.0, 1.0, 0.0], seed=3),
    "sample, weights dataset without choice": lambda D, fail: D.sample_from_datasets(
        [D.range(5), D.range(10, 15)], weights=D.from_tensor_slices(np.array([[1, 0], [0, 1], [0, 1]] * 4,
                                                                              dtype=np.float32)), seed=3),
    "sample, weight 0 input left": lambda D, fail: D.sample_from_datasets(
        [D.range(5), D.range(10, 15)], weights=[1.0, 0.0], seed=3, stop_on_empty_dataset=True),
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("case", CHOOSE_CASES)
def test_choose_from_datasets_matches_tf(tf, case, reader):
    build, read = CHOOSE_CASES[case], READERS[reader]
    expected = tf_outcomes(read(build(tf.data.Dataset, tf_raising_at)))
    assert fi_outcomes(read(build(fi.Dataset, fi_raising_at))) == expected


def _tagged(count: int, size: int, infinite: bool = False) -> list[fi.Dataset]:
    """``count`` inputs, input i giving ``i * 1000 + j``: an element says which input it came from."""
    inputs = [fi.Dataset.range(i * 1000, i * 1000 + size) for i in range(count)]
    return [ds.repeat() for ds in inputs] if infinite else inputs


def _values(ds: fi.Dataset, limit: int | None = None) -> list[int]:
    with iter(ds if limit is None else ds.take(limit)) as it:
        return [int(x) for x in it]


@pytest.mark.parametrize("stop", [False, True])
@pytest.mark.parametrize("weights", [None, [0.5, 0.2, 0.3], [0.9, 0.05, 0.05]])
def test_sample_is_choose_given_its_choices(tf, stop, weights):
    """The elements sampled are those tf.data's choose_from_datasets gives for the choices they show."""
    values = _values(fi.Dataset.sample_from_datasets(_tagged(3, 40), weights, seed=7, stop_on_empty_dataset=stop))
    choices = [v // 1000 for v in values]
    expected = tf.data.Dataset.choose_from_datasets(
        [tf.data.Dataset.range(i * 1000, i * 1000 + 40) for i in range(3)],
        tf.data.Dataset.from_tensor_slices(np.array(choices, dtype=np.int64)))
    assert values == [int(x) for x in expected]
    counts = collections.Counter(choices)
    if stop:  # it ended where a chosen input had ended: one input is used up
        assert max(counts.values()) == 40 and len(values) < 120
    else:
        assert sorted(values) == [v for i in range(3) for v in range(i * 1000, i * 1000 + 40)]


@pytest.mark.parametrize("weights", [[0.5, 0.3, 0.2], [0.05, 0.9, 0.05], None])
def test_sample_weights_are_kept_like_tf(tf, weights):
    """Frequencies of each input within 5 standard deviations of the weights, as tf.data's are."""
    n = 40_000
    fi_counts = collections.Counter(v // 1000 for v in _values(
        fi.Dataset.sample_from_datasets(_tagged(3, 10, infinite=True), weights, seed=11), n))
    tf_inputs = [tf.data.Dataset.range(i * 1000, i * 1000 + 10).repeat() for i in range(3)]
    tf_counts = collections.Counter(int(v) // 1000 for v in tf.data.Dataset.sample_from_datasets(
        tf_inputs, weights, seed=11).take(n).as_numpy_iterator())
    p = np.full(3, 1 / 3) if weights is None else np.asarray(weights)
    for counts in (fi_counts, tf_counts):
        observed = np.array([counts[i] for i in range(3)]) / n
        assert np.all(np.abs(observed - p) < 5 * np.sqrt(p * (1 - p) / n)), (observed, p)


def test_sample_with_a_weights_dataset_follows_each_vector(tf):
    """Each element's input is drawn from its own weight vector: the first half mostly input 0, then input 1."""
    weights = np.array([[0.95, 0.05]] * 2000 + [[0.05, 0.95]] * 2000, dtype=np.float32)
    ds = fi.Dataset.sample_from_datasets(_tagged(2, 10, infinite=True), fi.Dataset.from_tensor_slices(weights),
                                         seed=5)
    values = _values(ds)
    assert len(values) == 4000  # it ends with the weights
    first, second = (np.mean([v // 1000 for v in part]) for part in (values[:2000], values[2000:]))
    assert first < 0.1 and second > 0.9


def test_sample_is_deterministic_for_a_seed_however_it_is_read():
    make = lambda seed: fi.Dataset.sample_from_datasets(_tagged(4, 300), [0.1, 0.2, 0.3, 0.4], seed=seed)  # noqa: E731
    one_by_one = _values(make(1))
    assert _values(make(1).batch(7).unbatch()) == one_by_one
    assert _values(make(1).prefetch(5)) == one_by_one
    assert _values(make(2)) != one_by_one
    assert sorted(one_by_one) == sorted(v for i in range(4) for v in range(i * 1000, i * 1000 + 300))


@pytest.mark.parametrize("rerandomize", [None, False, True])
def test_rerandomize_each_iteration(rerandomize):
    ds = fi.Dataset.sample_from_datasets(_tagged(3, 20), seed=4, rerandomize_each_iteration=rerandomize)
    epochs = _values(ds.repeat(3))
    first, second, third = epochs[:60], epochs[60:120], epochs[120:]
    if rerandomize:  # each new iterator takes the next seed of the node's sequence, as shuffle's do
        assert first != second != third
        assert _values(ds) not in (first, second, third)
    else:
        assert first == second == third
        assert _values(ds) == first


def test_unseeded_samples_differ():
    assert _values(fi.Dataset.sample_from_datasets(_tagged(3, 50))) != _values(
        fi.Dataset.sample_from_datasets(_tagged(3, 50)))


def test_element_spec_matches_tf(tf):
    fi_inputs = [fi.Dataset.from_tensors(np.zeros(2, np.float32)), fi.Dataset.from_tensors(np.zeros(3, np.float32))]
    tf_inputs = [tf.data.Dataset.from_tensors(np.zeros(2, np.float32)),
                 tf.data.Dataset.from_tensors(np.zeros(3, np.float32))]
    for fi_ds, tf_ds in [(fi.Dataset.sample_from_datasets(fi_inputs), tf.data.Dataset.sample_from_datasets(tf_inputs)),
                         (fi.Dataset.choose_from_datasets(fi_inputs, fi.Dataset.range(2)),
                          tf.data.Dataset.choose_from_datasets(tf_inputs, tf.data.Dataset.range(2)))]:
        assert fi_ds.element_spec.shape == tuple(tf_ds.element_spec.shape.as_list())
        assert fi_ds.element_spec.dtype == np.float32


@pytest.mark.parametrize("call, match", [
    (lambda: fi.Dataset.sample_from_datasets([]), "empty"),
    (lambda: fi.Dataset.sample_from_datasets(fi.Dataset.range(3)), "list"),
    (lambda: fi.Dataset.sample_from_datasets([fi.Dataset.range(3), 4]), "Dataset"),
    (lambda: fi.Dataset.sample_from_datasets([fi.Dataset.range(3)], [0.5, 0.5]), "one number per dataset"),
    (lambda: fi.Dataset.sample_from_datasets([fi.Dataset.range(3)] * 2, [-1, 2]), "non-negative"),
    (lambda: fi.Dataset.sample_from_datasets([fi.Dataset.range(3)] * 2, [0, 0]), "not all 0"),
    (lambda: fi.Dataset.sample_from_datasets([fi.Dataset.range(3)] * 2, ["a", 1]), "weights"),
    (lambda: fi.Dataset.sample_from_datasets([fi.Dataset.range(3)] * 2, seed=-1), "seed"),
    (lambda: fi.Dataset.sample_from_datasets([fi.Dataset.range(3)] * 2, stop_on_empty_dataset=1), "stop_on_empty"),
    (lambda: fi.Dataset.sample_from_datasets([fi.Dataset.range(3), fi.Dataset.range(3).map(lambda x: (x, x))]),
     "structures"),
    (lambda: fi.Dataset.choose_from_datasets([fi.Dataset.range(3)], fi.Dataset.range(3).map(lambda x: x * 1.0)),
     "int64"),
    (lambda: fi.Dataset.choose_from_datasets([fi.Dataset.range(3)], [0, 1]), "choice_dataset"),
])
def test_bad_arguments(call, match):
    with pytest.raises(fi.errors.InvalidArgumentError, match=match):
        call()


def test_bad_weight_vectors_raise_in_place():
    weights = fi.Dataset.from_tensor_slices(np.array([[1, 0], [0, 1], [0, 0], [1, 0]], dtype=np.float32))
    ds = fi.Dataset.sample_from_datasets(_tagged(2, 5), weights)
    assert fi_outcomes(ds) == [0, 1000, "error", 1, "end"]
    wrong_length = fi.Dataset.sample_from_datasets(_tagged(2, 5), fi.Dataset.from_tensor_slices(np.ones((3, 3))))
    with pytest.raises(fi.errors.InvalidArgumentError, match="vectors of 2"):
        _values(wrong_length)


def test_str_reads_like_the_call():
    assert str(fi.Dataset.sample_from_datasets(_tagged(2, 3), [0.25, 0.75], seed=1)) == \
        "sample_from_datasets(<2 datasets>, weights=[0.25, 0.75], seed=1)"
    assert str(fi.Dataset.choose_from_datasets(_tagged(2, 3), fi.Dataset.range(2), stop_on_empty_dataset=False)) == \
        "choose_from_datasets(<2 datasets>, stop_on_empty_dataset=False)"
