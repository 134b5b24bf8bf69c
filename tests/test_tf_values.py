"""Arrays that keep a cheaper form of their strings (so as_tf_dataset hands them to TensorFlow without converting)."""

import numpy as np
import pytest

import fastinput as fi
from fastinput._engine.conversion import normalize_output
from fastinput._engine.metrics import element_nbytes
from fastinput.structure import SparseArray
from fastinput.tf_values import PackedStrings, TensorBackedArray, array_from_tensor, tensor_of


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
        "s": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"x%d" % i]))})).SerializeToString()
        for i in range(6)]
    features = {"s": fi.FixedLenFeature([], bytes)}
    ds = (fi.Dataset.from_tensor_slices(np.array(examples, dtype=object)).batch(3)
          .map(lambda b: fi.parse_example(b, features)))
    parsed = list(ds)
    assert isinstance(parsed[0]["s"], TensorBackedArray) == (kernel == "tensorflow")
    assert [b["s"].numpy().tolist() for b in ds.as_tf_dataset()] == [[b"x0", b"x1", b"x2"], [b"x3", b"x4", b"x5"]]


def test_packed_strings_hold_their_values_without_objects():
    strings = PackedStrings(b"..abcdef", np.array([2, 3, 3, 5, 8]))
    assert strings.shape == (4,) and strings.size == 4 and len(strings) == 4 and strings.dtype == object
    assert strings.nbytes == 6 + 5 * 8  # its part of the blob and its offsets
    grid = strings.reshape(2, -1)
    assert grid.shape == (2, 2) and grid.blob is strings.blob and strings.shape == (4,)
    assert np.asarray(grid).tolist() == [[b"a", b""], [b"bc", b"def"]]
    assert np.asarray(grid, dtype=object).dtype == object
    repacked = PackedStrings.of(np.asarray(grid))
    assert repacked.shape == (4,) and repacked.offsets.tolist() == [0, 1, 1, 3, 6]
    assert np.asarray(repacked).tolist() == [b"a", b"", b"bc", b"def"]
    with pytest.raises(ValueError):
        strings.reshape(3, 2)
    assert "b'def'" in repr(strings)


def test_packed_strings_are_leaves_everywhere_the_engine_looks():
    strings = PackedStrings(b"abc", np.array([0, 1, 3]))
    assert normalize_output({"s": strings})["s"] is strings
    sparse = SparseArray(np.array([[0, 0], [1, 0]]), strings, np.array([2, 1]))
    assert sparse.values is strings and sparse.dtype == object
    assert element_nbytes({"s": strings, "v": sparse}) == strings.nbytes * 2 + sparse.indices.nbytes
