"""rejection_resample against tf.data's: its random draws are its own, so the elements are compared where no draw
decides them (target and initial shares equal: the input as it is) and otherwise by what the draws must give
(the target's shares, within bounds a fixed seed keeps), its element spec, determinism for a seed, checkpoints,
and errors in their places."""

import logging

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError
from tests.checkpoint.test_seq import check_every_cut
from tests.helpers import ERROR, assert_same_with_errors, elements_and_errors, fails_at


def labels(lib, n):
    """Element k: class 1 for 4 in 5 elements, else 0 (int32, as tf.data's class_func must give)."""
    if lib == "fi":
        return fi.Dataset.range(n).map(lambda k: np.int32(k % 5 != 0))
    import tensorflow as tf

    return tf.data.Dataset.range(n).map(lambda k: tf.cast(k % 5 != 0, tf.int32))


def class_shares(pairs, count=2):
    return np.bincount([int(label) for label, _ in pairs], minlength=count) / len(pairs)


def test_equal_shares_give_the_input_as_it_is_like_tf(tf):
    fi_ds = labels("fi", 50).rejection_resample(lambda x: x, [0.2, 0.8], initial_dist=[0.2, 0.8], seed=1)
    tf_ds = labels("tf", 50).rejection_resample(lambda x: x, [0.2, 0.8], initial_dist=[0.2, 0.8], seed=1)
    assert_same_with_errors(elements_and_errors(fi_ds), elements_and_errors(tf_ds))


@pytest.mark.parametrize("initial_dist", [None, [0.2, 0.8]])
@pytest.mark.parametrize("target_dist", [[0.5, 0.5], [0.0, 1.0], [0.7, 0.3]])
def test_the_output_takes_the_target_shares_like_tf(tf, initial_dist, target_dist):
    n = 10_000
    fi_pairs = list(labels("fi", n).rejection_resample(lambda x: x, target_dist, initial_dist, seed=7))
    tf_pairs = list(labels("tf", n).rejection_resample(lambda x: x, target_dist, initial_dist, seed=7)
                    .as_numpy_iterator())
    for pairs in (fi_pairs, tf_pairs):
        # thousands of draws: the shares' standard error is under 1%; the estimate starts off at 50/50, so
        # without initial_dist the first few hundred elements lean away from the target
        assert np.allclose(class_shares(pairs), target_dist, atol=0.03), class_shares(pairs)
        assert all(label == element for label, element in pairs[:100])
    # the two libraries keep about as many elements (the same acceptance probabilities and mixing weights)
    assert abs(len(fi_pairs) - len(tf_pairs)) < 0.05 * len(tf_pairs), (len(fi_pairs), len(tf_pairs))


def test_the_element_spec_is_tf_datas(tf):
    fi_spec = labels("fi", 10).map(lambda x: (x, np.float32(x))).rejection_resample(
        lambda x, y: x, [0.5, 0.5]).element_spec
    tf_spec = labels("tf", 10).map(lambda x: (x, tf.cast(x, tf.float32))).rejection_resample(
        lambda x, y: x, [0.5, 0.5]).element_spec
    assert fi_spec == (fi.TensorSpec((), np.int32), (fi.TensorSpec((), np.int32), fi.TensorSpec((), np.float32)))
    assert [(s.shape, s.dtype.as_numpy_dtype) for s in tf.nest.flatten(tf_spec)] == [
        (s.shape, s.dtype) for s in fi.structure.flatten(fi_spec)]


@pytest.mark.parametrize("initial_dist", [None, [0.2, 0.8]])
def test_a_seed_gives_the_same_elements_every_run(initial_dist):
    ds = labels("fi", 3000).map(lambda x: (x, np.arange(2) + x)).rejection_resample(
        lambda x, y: x, [0.5, 0.5], initial_dist, seed=11)
    first, second = elements_and_errors(ds), elements_and_errors(ds)
    assert_same_with_errors(first, second)
    other = elements_and_errors(labels("fi", 3000).map(lambda x: (x, np.arange(2) + x)).rejection_resample(
        lambda x, y: x, [0.5, 0.5], initial_dist, seed=12))
    assert [int(c) for c, _ in other] != [int(c) for c, _ in first]


@pytest.mark.parametrize("initial_dist", [None, [0.2, 0.8], [0.5, 0.5]])
def test_resumes_at_every_position(initial_dist):
    check_every_cut(labels("fi", 60).rejection_resample(lambda x: x, [0.5, 0.5], initial_dist, seed=3))


def test_a_class_out_of_range_fails_in_its_place():
    ds = fi.Dataset.range(200).map(lambda k: np.int32(k % 3)).rejection_resample(lambda x: x, [0.5, 0.5],
                                                                                   [0.6, 0.4], seed=1)
    outcomes = elements_and_errors(ds, error=lambda exc: exc)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert errors and all(isinstance(e, InvalidArgumentError) and "class_func returned 2, outside [0, 2)" in str(e)
                          for e in errors)
    assert any(not isinstance(o, Exception) for o in outcomes[outcomes.index(errors[0]):])  # goes on after it


def test_an_input_error_passes_in_its_place():
    ds = fi.Dataset.range(20).map(fails_at({4})).map(lambda k: np.int32(k % 2))
    outcomes = elements_and_errors(ds.rejection_resample(lambda x: x, [0.5, 0.5], [0.5, 0.5]))
    assert outcomes.count(ERROR) == 1 and len(outcomes) == 20


def test_a_high_rejection_is_logged_once(caplog):
    with caplog.at_level(logging.WARNING, logger="fastinput"):
        list(labels("fi", 500).rejection_resample(lambda x: x, [0.5, 0.5], seed=1))
    warnings = [r for r in caplog.records if "rejection_resample: the sampler rejects" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize("kwargs,match", [
    ({"class_func": 3, "target_dist": [0.5, 0.5]}, "class_func must be callable"),
    ({"class_func": int, "target_dist": [[0.5, 0.5]]}, "target_dist must be a non-empty vector"),
    ({"class_func": int, "target_dist": [0.5, -0.5]}, "target_dist must be a non-empty vector"),
    ({"class_func": int, "target_dist": "ab"}, "target_dist must be a vector of numbers"),
    ({"class_func": int, "target_dist": [0.5, 0.5], "initial_dist": [1.0]}, "initial_dist has 1 classes"),
])
def test_arguments_are_checked(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        fi.Dataset.range(3).rejection_resample(**kwargs)
