"""Arrays that keep a cheaper form of their strings (so as_tf_dataset hands them to TensorFlow without converting)."""

import numpy as np
import pytest

import fastinput as fi
from fastinput.tf_values import (
    PackedStringArray,
    TensorBackedArray,
    array_from_tensor,
    packed_string_array,
    packed_strings,
    tensor_of,
)


def test_string_tensors_become_read_only_arrays_that_remember_them(tf):
    tensor = tf.constant([b"a", b"bc"])
    array = array_from_tensor(tensor)
    assert isinstance(array, TensorBackedArray) and array.tolist() == [b"a", b"bc"]
    assert tensor_of(array) is tensor
    with pytest.raises(ValueError):
        array[0] = b"z"
    assert tensor_of(array[:1]) is None and tensor_of(array.copy()) is None
    assert tensor_of(np.stack([array, array])) is None


def test_numeric_tensors_stay_plain_arrays(tf):
    array = array_from_tensor(tf.constant([1, 2]))
    assert type(array) is np.ndarray and tensor_of(array) is None


@pytest.mark.parametrize("kernel", ["native", "tensorflow"])
def test_parsed_strings_cross_to_tensorflow_unchanged(tf, kernel, monkeypatch):
    from fastinput.readers import example as example_module

    if kernel == "tensorflow":  # TensorFlow's kernel: string outputs remember their tensor
        monkeypatch.setattr(example_module, "native_kernel", None)
    examples = [tf.train.Example(features=tf.train.Features(feature={
        "s": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x%d" % i]))})).SerializeToString() for i in range(6)]
    features = {"s": fi.FixedLenFeature([], bytes)}
    ds = fi.Dataset.from_tensor_slices(np.array(examples, dtype=object)).batch(3).map(lambda b: fi.parse_example(b, features))
    parsed = list(ds)
    assert isinstance(parsed[0]["s"], TensorBackedArray) == (kernel == "tensorflow")
    assert [b["s"].numpy().tolist() for b in ds.as_tf_dataset()] == [[b"x0", b"x1", b"x2"], [b"x3", b"x4", b"x5"]]


@pytest.mark.parametrize("given_values", [False, True])
def test_packed_string_arrays_hold_their_values_and_blob(given_values):
    blob, offsets = b"..abcdef", np.array([2, 3, 3, 5, 8])
    values = np.array([b"a", b"", b"bc", b"def"], dtype=object).reshape(2, 2) if given_values else None
    array = packed_string_array(blob, offsets, values)
    assert isinstance(array, PackedStringArray) and array.dtype == object
    assert array.shape == ((2, 2) if given_values else (4,))
    assert array.ravel().tolist() == [b"a", b"", b"bc", b"def"]
    packed_blob, packed_offsets = packed_strings(array)
    assert packed_blob is blob and packed_offsets.dtype == np.int64 and packed_offsets.tolist() == [2, 3, 3, 5, 8]
    with pytest.raises(ValueError):
        array.flat[0] = b"z"


def test_views_copies_and_plain_arrays_are_not_packed():
    array = packed_string_array(b"abcd", np.array([0, 1, 2, 3, 4]))
    for other in (array[:2], array[::-1], array.reshape(2, 2), array.copy(), np.stack([array]),
                  np.array([b"a"], dtype=object), b"a", None):
        assert packed_strings(other) is None


@pytest.mark.parametrize("blob, offsets, values, error", [
    ("abc", [0, 3], None, TypeError),
    (b"abc", [], None, ValueError),
    (b"abc", [[0, 3]], None, ValueError),
    (b"abc", [0, 4], None, ValueError),
    (b"abc", [-1, 2], None, ValueError),
    (b"abc", [0, 2, 1], None, ValueError),
    (b"abc", [0, 1, 3], np.array([b"a"], dtype=object), ValueError),
    (b"abc", [0, 1, 3], np.array([1, 2]), ValueError),
])
def test_packed_string_arrays_check_their_arguments(blob, offsets, values, error):
    with pytest.raises(error):
        packed_string_array(blob, np.array(offsets, dtype=np.int64), values)
