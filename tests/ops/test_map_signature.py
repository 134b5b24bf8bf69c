"""``map(output_signature=...)``: an output that breaks the declaration is an InvalidArgumentError in its place.

tf.data's ``map`` takes no ``output_signature``; its nearest cases are the oracle here: a ``tf.numpy_function``
whose declared ``Tout``/shape the output breaks (dtype, rank, a dimension), and ``from_generator`` whose
``output_signature`` an element's structure breaks (tuple, 1-tuple, dict keys). Both raise InvalidArgumentError
at that element and go on.
"""

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import ERROR, fi_outcomes, tf_outcomes

BAD = (2, 4)
"""The elements (of ``range(6)``) whose output breaks the declaration."""

# name: (declared spec, the output for a good element x, the output for a bad one)
MISMATCHES = {
    "a tuple for a scalar": (fi.TensorSpec((), np.int64), lambda x: x, lambda x: (x, x)),
    "a 1-tuple for a scalar": (fi.TensorSpec((), np.int64), lambda x: x, lambda x: (x,)),
    "a scalar for a 1-tuple": ((fi.TensorSpec((), np.int64),), lambda x: (x,), lambda x: x),
    "a dict with other keys": ({"a": fi.TensorSpec((), np.int64)}, lambda x: {"a": x}, lambda x: {"b": x}),
    "another dtype": (fi.TensorSpec((), np.int64), lambda x: x, lambda x: np.float64(x)),
    "another rank": (fi.TensorSpec((), np.int64), lambda x: x, lambda x: np.array([x, x])),
    "another dimension": (fi.TensorSpec((2,), np.int64), lambda x: np.array([x, x]), lambda x: np.array([x] * 3)),
    "a string for a number": (fi.TensorSpec((), np.int64), lambda x: x, lambda x: b"x"),
}

STAGES = {
    "map": lambda ds, fn, spec: ds.map(fn, output_signature=spec),
    "parallel map": lambda ds, fn, spec: ds.map(fn, num_parallel_calls=3, output_signature=spec),
    "after a fused map": lambda ds, fn, spec: ds.map(lambda x: x + 0).map(fn, output_signature=spec),
    "map then batch (fused)": lambda ds, fn, spec: ds.map(fn, output_signature=spec).batch(1).unbatch(),
    "map_and_batch": lambda ds, fn, spec: ds.map_and_batch(fn, 1, output_signature=spec).unbatch(),
}


def _function(good, bad):
    return lambda x: bad(x) if int(x) in BAD else good(x)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("case", MISMATCHES)
def test_an_output_that_breaks_the_declaration_is_an_error_in_its_place(case, stage):
    spec, good, bad = MISMATCHES[case]
    expected = [ERROR if x in BAD else fi_outcomes(fi.Dataset.from_tensors(good(np.int64(x))))[0] for x in range(6)]
    actual = fi_outcomes(STAGES[stage](fi.Dataset.range(6), _function(good, bad), spec))
    assert actual == [*expected, "end"]


def test_the_first_of_two_fused_maps_keeps_its_check():
    spec, good, bad = MISMATCHES["a tuple for a scalar"]
    ds = fi.Dataset.range(6).map(_function(good, bad), output_signature=spec).map(lambda *x: x[0] + 1)
    assert fi_outcomes(ds) == [1, 2, ERROR, 4, ERROR, 6, "end"]


def test_worker_processes_check_the_declaration_too():
    spec, good, bad = MISMATCHES["a dict with other keys"]
    ds = fi.Dataset.range(6).map(_function(good, bad), num_parallel_calls=2, output_signature=spec, workers="process")
    assert fi_outcomes(ds) == [{"a": 0}, {"a": 1}, ERROR, {"a": 3}, ERROR, {"a": 5}, "end"]


def test_the_error_names_the_stage_the_declared_and_the_returned_spec():
    def pair(x):
        return (x, x) if x == 1 else x

    with iter(fi.Dataset.range(3).map(pair, output_signature=fi.TensorSpec((), np.int64))) as it:
        next(it)
        with pytest.raises(fi.errors.InvalidArgumentError) as info:
            next(it)
        assert int(next(it)) == 2
    message = str(info.value)
    assert message.startswith("map(pair): the function returned (TensorSpec(shape=(), dtype=int64), "
                              "TensorSpec(shape=(), dtype=int64)), which is not its declared output_signature "
                              "TensorSpec(shape=(), dtype=int64)"), message
    with iter(fi.Dataset.range(1).map(lambda x: "s", output_signature=fi.TensorSpec((), np.int64))) as it:
        with pytest.raises(fi.errors.InvalidArgumentError, match="returned TensorSpec.shape=.., dtype=string."):
            next(it)
    with iter(fi.Dataset.range(1).map(lambda x: (x, None), output_signature=fi.TensorSpec((), np.int64))) as it:
        with pytest.raises(fi.errors.InvalidArgumentError, match=r"returned \(TensorSpec.*, 'a NoneType'\)"):
            next(it)


@pytest.mark.parametrize("spec, fn", [
    (fi.TensorSpec((None,), np.int64), lambda x: np.arange(x)),
    (fi.TensorSpec((None, 2), np.float32), lambda x: np.zeros((int(x), 2), np.float32)),
    (fi.TensorSpec((), np.int32), int),  # a Python int is an int32 element, as tf.data's map makes it
    (fi.TensorSpec((), np.float32), float),  # and a Python float a float32 one
    (fi.TensorSpec((), bytes), lambda x: b"%d" % x),
    (fi.TensorSpec((2,), bytes), lambda x: np.array([b"a", b"b"], dtype=object)),
    ({"b": fi.TensorSpec((), np.int64), "a": (fi.TensorSpec((1,), np.bool_),)},
     lambda x: {"a": (np.array([True]),), "b": x}),
    (fi.SparseSpec((None,), np.int64), lambda x: fi.SparseArray(np.zeros((1, 1), np.int64), np.array([x]), (3,))),
], ids=["unknown dimension", "unknown and known", "python int", "python float", "string", "string vector", "nest",
        "sparse"])
def test_outputs_that_fit_the_declaration_pass_unchanged(spec, fn):
    undeclared = fi_outcomes(fi.Dataset.range(4).map(fn))
    for npc in (None, 2):
        assert fi_outcomes(fi.Dataset.range(4).map(fn, num_parallel_calls=npc, output_signature=spec)) == undeclared
    assert ERROR not in undeclared


def test_nothing_is_cast_like_tf_numpy_function(tf):
    """A float64 where float32 is declared fails in fastinput and in ``tf.numpy_function``: neither casts."""
    fi_ds = fi.Dataset.range(2).map(np.float64, output_signature=fi.TensorSpec((), np.float32))
    tf_ds = tf.data.Dataset.range(2).map(lambda x: tf.numpy_function(np.float64, [x], tf.float32))
    assert fi_outcomes(fi_ds) == tf_outcomes(tf_ds) == [ERROR, ERROR, "end"]


@pytest.mark.parametrize("case", ["another dtype", "another rank", "another dimension"])
def test_dtype_and_shape_like_tf_numpy_function(tf, case):
    spec, good, bad = MISMATCHES[case]
    fn = _function(good, bad)

    def tf_fn(x):
        y = tf.numpy_function(fn, [x], tf.as_dtype(spec.dtype), stateful=False)
        y.set_shape(spec.shape)
        return y

    for npc in (None, 2):
        expected = tf_outcomes(tf.data.Dataset.range(6).map(tf_fn, num_parallel_calls=npc))
        assert fi_outcomes(fi.Dataset.range(6).map(fn, num_parallel_calls=npc, output_signature=spec)) == expected
        assert expected.count(ERROR) == len(BAD)


@pytest.mark.parametrize("case", ["a tuple for a scalar", "a 1-tuple for a scalar", "a scalar for a 1-tuple",
                                  "a dict with other keys"])
def test_structure_like_tf_from_generator(tf, case):
    spec, good, bad = MISMATCHES[case]
    fn = _function(good, bad)
    tf_spec = tf.nest.map_structure(lambda s: tf.TensorSpec(s.shape, tf.as_dtype(s.dtype)), spec)
    expected = tf_outcomes(tf.data.Dataset.from_generator(lambda: map(fn, np.arange(6)), output_signature=tf_spec))
    assert fi_outcomes(fi.Dataset.range(6).map(fn, output_signature=spec)) == expected
    assert expected.count(ERROR) == len(BAD)


def test_a_batch_after_the_map_follows_the_error_rule_of_a_map_like_tf(tf):
    """README, "An error inside a batch": after a map, a batch that meets an error is dropped, its error raised."""
    spec, good, bad = MISMATCHES["another dtype"]
    fn = _function(good, bad)

    def tf_fn(x):
        y = tf.numpy_function(fn, [x], tf.int64, stateful=False)
        y.set_shape(())
        return y

    expected = tf_outcomes(tf.data.Dataset.range(10).map(tf_fn).batch(4))
    assert expected == [ERROR, ERROR, [8, 9], "end"]
    for npc in (None, 2):  # batches of small outputs gather their rows in one map_chunk call
        assert fi_outcomes(fi.Dataset.range(10).map(fn, npc, output_signature=spec).batch(4)) == expected
        assert fi_outcomes(fi.Dataset.range(10).map_and_batch(fn, 4, npc, output_signature=spec)) == expected
