"""Value conversion against tf.data: what map functions return, and what from_tensors / from_tensor_slices take."""

import numpy as np
import pytest

import fastinput as fi
from fastinput._engine.conversion import normalize_output
from tests.helpers import assert_same_with_errors, elements_and_errors

# The same function runs in both libraries: tf.data hands it tensors, fastinput numpy values.
MAP_OUTPUTS = {
    "a list at the top is a tuple": lambda x: [x, x],
    "a list in a tuple is one array": lambda x: ([x, x], x),
    "a list in a dict is one array": lambda x: {"a": [x, x]},
    "a list of lists at the top": lambda x: [[x], [x, x]],
    "a list of tuples at the top": lambda x: [(x, x), (x, x)],
    "a nested list in a tuple": lambda x: ([[x, x], [x, x]],),
    "tuples in a list in a tuple": lambda x: ([(1, 2), (3, 4)],),
    "a dict in a list": lambda x: [{"a": x}],
    "an element and a Python int": lambda x: ([x, 1],),
    "a list of Python ints": lambda x: [1, 2],
    "Python ints, one large": lambda x: ([1, 2 ** 40],),
    "Python floats and ints": lambda x: ([1.0, 2],),
    "bools and ints": lambda x: ([True, 1],),
    "an empty list": lambda x: ([], x),
    "a list of str": lambda x: (["a", "b"],),
    "bytes and str mixed": lambda x: ([b"a", "b"],),
    "a Python int": lambda x: 7,
    "a large Python int": lambda x: 2 ** 40,
    "a negative int below int32": lambda x: -2 ** 31 - 1,
    "a Python float": lambda x: 7.5,
    "a Python bool": lambda x: True,
    "a Python complex": lambda x: 1j,
    "a str": lambda x: "ab",
    "np.int8": lambda x: np.int8(3),
    "np.uint16": lambda x: np.uint16(3),
    "np.float16": lambda x: np.float16(3),
    "np.float64": lambda x: np.float64(3),
    "np.bool_": lambda x: np.bool_(True),
    "np.str_": lambda x: np.str_("ab"),
    "np.bytes_": lambda x: np.bytes_(b"ab"),
    "a numpy str array": lambda x: np.array(["ab", "c"]),
    "a numpy bytes array": lambda x: np.array([b"ab", b"c"]),
    "arrays of the other byte order": lambda x: (np.arange(2, dtype=">i4"), {"a": np.ones(2, ">f8")}),
    "a tuple with an array of the other byte order": lambda x: (np.arange(2, dtype=">i4"), x),
}


@pytest.mark.parametrize("name", list(MAP_OUTPUTS))
@pytest.mark.parametrize("batched", [False, True])
def test_map_outputs_convert_like_tf_data(tf, name, batched):
    fn = MAP_OUTPUTS[name]
    tf_ds, fi_ds = tf.data.Dataset.range(3).map(fn), fi.Dataset.range(3).map(fn)
    if batched:  # fastinput fuses this into map_and_batch
        tf_ds, fi_ds = tf_ds.batch(2), fi_ds.batch(2)
    assert_same_with_errors(elements_and_errors(fi_ds), elements_and_errors(tf_ds))


def test_map_then_map_divides_an_int32_into_float64_like_tf_data(tf):
    tf_ds = tf.data.Dataset.range(3).map(lambda x: 7).map(lambda y: y / 2)
    fi_ds = fi.Dataset.range(3).map(lambda x: 7).map(lambda y: y / 2)
    assert_same_with_errors(elements_and_errors(fi_ds), elements_and_errors(tf_ds))


TENSORS = [
    [np.int64(1)], [np.int64(2 ** 40)], [np.int8(1)], [np.uint32(2 ** 32 - 1)], [np.int32(1), np.int64(1)],
    [np.int8(1), 300],
    [np.float64(1)], [np.float16(1), 2.5], [np.float16(1), np.float64(1)], [1, np.float64(1)], [np.float64(1), 1],
    [np.float32(1), 2.5], [np.complex64(1)], [1j, 1], [True, np.bool_(False)], 1, 2 ** 40, 1.5, True, "ab",
    np.str_("ab"),
    np.int64(1), [1, 2 ** 40], [1.5, 2], [], [[]], ([], 1), ["a", b"b"], [(1, 2), (3, 4)],
    {"a": [1, 2], "b": ("x", 2.5)},
    [np.zeros(2), np.ones(2)], [np.zeros(2, np.float16)], [np.array([1], np.int64)], [np.array(1.0), 1],
    np.array(["a", "bc"]), np.array([b"a", b"bc"]),
    np.arange(3, dtype=">i4"), {"a": np.ones((2, 2), ">c8"), "b": (np.arange(2, dtype=">u2"),)},  # to native ones
]
BAD_TENSORS = [[True, 2], ["a", 1], [[1, 2], [3]], [np.uint64(2 ** 64 - 1)], [2 ** 64], [1, 1j]]


@pytest.mark.parametrize("value", TENSORS, ids=repr)
def test_from_tensors_converts_like_tf_data(tf, value):
    expected = elements_and_errors(tf.data.Dataset.from_tensors(value))
    assert_same_with_errors(elements_and_errors(fi.Dataset.from_tensors(value)), expected)


@pytest.mark.parametrize("value", [v for v in TENSORS if isinstance(v, list) and v and not isinstance(v[0], complex)],
                         ids=repr)
def test_from_tensor_slices_converts_like_tf_data(tf, value):
    expected = elements_and_errors(tf.data.Dataset.from_tensor_slices(value))
    assert_same_with_errors(elements_and_errors(fi.Dataset.from_tensor_slices(value)), expected)


@pytest.mark.parametrize("value", BAD_TENSORS, ids=repr)
def test_values_tf_data_cannot_convert_are_rejected_when_the_pipeline_is_built(tf, value):
    with pytest.raises((ValueError, TypeError)):
        tf.data.Dataset.from_tensors(value)
    with pytest.raises(fi.errors.InvalidArgumentError, match="cannot convert|does not fit"):
        fi.Dataset.from_tensors(value)


def test_numpy_outputs_pass_through_untouched():
    array, scalar = np.arange(3), np.float32(2)
    out = normalize_output((array, {"s": scalar, "b": b"x"}))
    assert out[0] is array and out[1]["s"] is scalar and out[1]["b"] == b"x"
    assert normalize_output(array) is array
