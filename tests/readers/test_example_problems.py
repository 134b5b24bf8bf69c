"""parse_example's errors in fastinput's words (``example_problems``), found without TensorFlow's kernel: each batch
here fails with the message shown, and TensorFlow's own kernel fails the same batch (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError
from tests.protobuf_wire import bytes_list, entry, feature, float_list, int64_list, wire_example

LABEL = entry("label", feature("int64", int64_list([1])))
IMAGE = entry("image/encoded", feature("bytes", bytes_list(b"jpeg")))

CASES = {
    "missing, closest keys first": (
        [wire_example(LABEL), wire_example(IMAGE, entry("image/height", feature("int64", int64_list([3]))))],
        {"label": fi.FixedLenFeature([], np.int64), "image/label": fi.FixedLenFeature([], np.int64)},
        r"^parse_example: feature 'image/label' is required \(a FixedLenFeature without default_value\) but example"
        r" 0 does not have it; the features it has, closest first: 'label'\. Give the spec a default_value"),
    "missing from the second example": (
        [wire_example(LABEL, IMAGE), wire_example(IMAGE)],
        {"label": fi.FixedLenFeature([], np.int64)},
        r"feature 'label' is required .* example 1 does not have it; the features it has, closest first: "
        r"'image/encoded'"),
    "int64 stored, float32 asked": (
        [wire_example(LABEL)], {"label": fi.FixedLenFeature([], np.float32)},
        r"^parse_example: feature 'label': example 0 holds int64 values, but the spec asks for float32$"),
    "bytes stored, int64 asked (VarLen)": (
        [wire_example(IMAGE)], {"image/encoded": fi.VarLenFeature(np.int64)},
        r"feature 'image/encoded': example 0 holds bytes values, but the spec asks for int64"),
    "three values for two": (
        [wire_example(entry("x", feature("float", float_list([1, 2, 3]))))], {"x": fi.FixedLenFeature([2], np.float32)},
        r"feature 'x': example 0 has 3 values, but the spec's shape \[2\] holds 2"),
    "three bytes values for one": (
        [wire_example(entry("x", feature("bytes", bytes_list(b"a", b"b", b"c"))))],
        {"x": fi.FixedLenFeature([], bytes)},
        r"feature 'x': example 0 has 3 values, but the spec's shape \[\] holds 1"),
    "sequence items cut": (
        [wire_example(entry("x", feature("int64", int64_list([1, 2, 300]))))],
        {"x": fi.FixedLenSequenceFeature([2], np.int64, allow_missing=True)},
        r"feature 'x': example 0 has 3 values, not a whole number of items of shape \[2\] \(2 values each\)"),
    "not an Example": (
        [b"\xff\xfe not a proto \x01"], {"x": fi.FixedLenFeature([], np.int64, default_value=0)},
        r"example 0 is not a serialized tf.train.Example"),
}


@pytest.mark.parametrize("case", CASES)
def test_errors_in_fastinputs_words(case):
    serialized, features, message = CASES[case]
    with pytest.raises(InvalidArgumentError, match=message) as info:
        fi.parse_example(serialized, features)
    assert info.value.__cause__ is None and info.value.__context__ is None  # no TensorFlow error behind it


@pytest.mark.parametrize("case", CASES)
def test_tensorflow_fails_the_same_batches(tf, case):
    serialized, features, _ = CASES[case]
    specs = {key: _tf_spec(tf, spec) for key, spec in features.items()}
    with pytest.raises((tf.errors.InvalidArgumentError, UnicodeDecodeError)):  # TF fails to quote bad bytes
        tf.io.parse_example(serialized, specs)


def _tf_spec(tf, spec):
    dtype = {np.dtype(np.int64): tf.int64, np.dtype(np.float32): tf.float32}.get(spec.dtype, tf.string)
    if isinstance(spec, fi.VarLenFeature):
        return tf.io.VarLenFeature(dtype)
    if isinstance(spec, fi.FixedLenSequenceFeature):
        return tf.io.FixedLenSequenceFeature(spec.shape, dtype, allow_missing=True)
    return tf.io.FixedLenFeature(spec.shape, dtype, default_value=spec.default_value)


def test_a_dense_feature_whose_last_entry_is_empty_takes_the_one_before(tf):
    """As in TensorFlow's parser, an empty Feature does not hide an earlier entry of the key: no error (the native
    kernel leaves this batch to TensorFlow's, which parses it)."""
    serialized = [wire_example(LABEL, entry("label", b""))]
    assert fi.parse_example(serialized, {"label": fi.FixedLenFeature([], np.int64)})["label"].tolist() == [1]
