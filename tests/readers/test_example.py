"""fi.parse_example and the feature specs, against tf.io.parse_example on Examples built with tf.train.Example.

Every test runs twice: with fastinput's native kernel (TensorFlow's for the
batches it leaves alone) and with TensorFlow's kernel alone (what a build
without the C extension does).
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError
from fastinput.readers import example as example_module
from fastinput.readers.example import ExampleParser, parser_for
from tests.helpers import assert_same_element


@pytest.fixture(autouse=True, params=["native", "tensorflow"])
def kernel(request, monkeypatch):
    """Which kernel parses: the native one (with TensorFlow's behind it) or TensorFlow's alone."""
    if request.param == "native":
        assert example_module.native_kernel is not None, "the C extension fastinput.readers._example is not built"
    else:
        request.getfixturevalue("tf")  # skipped where TensorFlow is not installed
        monkeypatch.setattr(example_module, "native_kernel", None)
    monkeypatch.setattr(example_module, "_cache", type(example_module._cache)())  # parsers made in this mode only
    return request.param


NO_INTS = np.array([], dtype=np.int64)
NO_BYTES = np.array([], dtype=object)
"""A feature that is present with no values (its list type comes from the dtype)."""


def example(tf, **features) -> bytes:
    """A serialized tf.train.Example; a feature's list type follows its values (int, float, bytes/str)."""
    proto = tf.train.Example()
    for key, values in features.items():
        feature = proto.features.feature[key]
        kind = ({"i": int, "f": float}.get(values.dtype.kind, bytes) if isinstance(values, np.ndarray)
                else type(values[0]))
        if kind is int:
            feature.int64_list.SetInParent()
            feature.int64_list.value.extend(values)
        elif kind is float:
            feature.float_list.SetInParent()
            feature.float_list.value.extend(values)
        else:
            feature.bytes_list.SetInParent()
            feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v for v in values)
    return proto.SerializeToString()


def tf_parse(tf, serialized: list[bytes], features: dict) -> dict:
    """tf.io.parse_example's result as numpy values (sparse tensors as SparseArray)."""
    parsed = tf.io.parse_example(tf.constant(serialized, dtype=tf.string), features)
    return {
        key: fi.SparseArray(v.indices.numpy(), v.values.numpy(), v.dense_shape.numpy())
        if isinstance(v, tf.SparseTensor) else v.numpy()
        for key, v in parsed.items()
    }


def tf_spec(tf, spec):
    """The tf.io spec equal to a fastinput spec."""
    dtype = tf.string if spec.dtype == object else tf.as_dtype(spec.dtype)
    if isinstance(spec, fi.VarLenFeature):
        return tf.io.VarLenFeature(dtype)
    if isinstance(spec, fi.FixedLenSequenceFeature):
        return tf.io.FixedLenSequenceFeature(list(spec.shape), dtype, spec.allow_missing, spec.default_value)
    return tf.io.FixedLenFeature(list(spec.shape), dtype, spec.default_value)


def assert_parses_like_tf(tf, serialized: list[bytes], features: dict) -> dict:
    parsed = fi.parse_example(serialized, features)
    expected = tf_parse(tf, serialized, {key: tf_spec(tf, spec) for key, spec in features.items()})
    assert list(parsed) == list(features)
    assert_same_element(parsed, expected)
    return parsed


BATCH = [
    dict(i=[3], f=[0.5], s=[b"a"], v=[1, 2, 3], vs=[b"x"], m=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], seq=[1, 2],
         seqs=["p", "q"]),
    dict(i=[-7], f=[2.25], s=["b\xe9"], v=NO_INTS, vs=[b"y", b"z"], m=[0.0] * 6, seqf=[1.5, 2.5, 3.5, 4.5]),
    dict(f=[1e10], v=[9], seq=[5], seqs=NO_BYTES),
    dict(i=[2**62], s=[b""], seq=[7, 8, 9, 10]),
]
"""Examples with every kind of value, present, empty and missing."""


def specs_with_defaults():
    return {
        "i": fi.FixedLenFeature([], np.int64, default_value=-1),
        "f": fi.FixedLenFeature([], np.float32, default_value=0.25),
        "s": fi.FixedLenFeature([], bytes, default_value=b"missing"),
        "m": fi.FixedLenFeature([2, 3], np.float32, default_value=np.arange(6).reshape(2, 3)),
        "v": fi.VarLenFeature(np.int64),
        "vs": fi.VarLenFeature(bytes),
        "seq": fi.FixedLenSequenceFeature([], np.int64, allow_missing=True),
        "seqs": fi.FixedLenSequenceFeature([], bytes, allow_missing=True, default_value="pad"),
        "seqf": fi.FixedLenSequenceFeature([2], np.float32, allow_missing=True, default_value=-1.0),
    }


def test_every_spec_kind_matches_tf(tf):
    serialized = [example(tf, **e) for e in BATCH]
    parsed = assert_parses_like_tf(tf, serialized, specs_with_defaults())
    assert parsed["i"].tolist() == [3, -7, -1, 2**62]
    assert parsed["s"].dtype == object and parsed["s"].tolist() == [b"a", "b\xe9".encode(), b"missing", b""]
    assert parsed["m"].shape == (4, 2, 3) and parsed["m"].dtype == np.float32
    assert isinstance(parsed["v"], fi.SparseArray) and parsed["v"].shape == (4, 3)
    assert parsed["seq"].tolist() == [[1, 2, 0, 0], [0, 0, 0, 0], [5, 0, 0, 0], [7, 8, 9, 10]]
    assert parsed["seqf"].shape == (4, 2, 2)


@pytest.mark.parametrize("size", [0, 1, 2, 4])
def test_batch_sizes_including_empty(tf, size):
    serialized = [example(tf, **e) for e in BATCH][:size]
    parsed = assert_parses_like_tf(tf, serialized, specs_with_defaults())
    assert parsed["m"].shape == (size, 2, 3)
    assert parsed["v"].dense_shape.tolist()[0] == size


@pytest.mark.parametrize("dtype, values", [
    (np.int64, [[1], [2**40], [-3]]),
    (np.float32, [[1.5], [-0.0], [3e-5]]),
    (bytes, [[b"\x00\xff"], [b""], [b"long" * 100]]),
])
@pytest.mark.parametrize("shape", [[], [1], [1, 1]])
def test_required_fixed_len_of_each_dtype_and_rank(tf, dtype, values, shape):
    serialized = [example(tf, x=v) for v in values]
    parsed = assert_parses_like_tf(tf, serialized, {"x": fi.FixedLenFeature(shape, dtype)})
    assert parsed["x"].shape == (3, *shape)


def test_multi_value_fixed_len_and_string_default_shapes(tf):
    serialized = [example(tf, a=[1, 2, 3, 4, 5, 6], b=[b"p", b"q"]), example(tf)]
    features = {
        "a": fi.FixedLenFeature([3, 2], np.int64, default_value=[[0, 1], [2, 3], [4, 5]]),
        "b": fi.FixedLenFeature([2], bytes, default_value=[b"d0", "d1"]),
    }
    parsed = assert_parses_like_tf(tf, serialized, features)
    assert parsed["a"][1].tolist() == [[0, 1], [2, 3], [4, 5]]
    assert parsed["b"].tolist() == [[b"p", b"q"], [b"d0", b"d1"]]


def test_accepts_tf_specs_lists_tuples_and_object_arrays(tf):
    serialized = [example(tf, **e) for e in BATCH]
    fi_specs = specs_with_defaults()
    tf_specs = {key: tf_spec(tf, spec) for key, spec in fi_specs.items()}
    expected = fi.parse_example(serialized, fi_specs)
    as_array = np.empty(len(serialized), dtype=object)
    as_array[:] = serialized
    for batch in (serialized, tuple(serialized), as_array):
        assert_same_element(fi.parse_example(batch, tf_specs), expected)


def test_varlen_of_every_dtype_matches_tf(tf):
    serialized = [example(tf, a=[1.5, 2.5], b=["x"], c=[4, 5, 6]), example(tf),
                  example(tf, a=np.array([], np.float32), c=[7])]
    features = {"a": fi.VarLenFeature(np.float32), "b": fi.VarLenFeature(bytes), "c": fi.VarLenFeature(np.int64)}
    parsed = assert_parses_like_tf(tf, serialized, features)
    assert parsed["c"].indices.tolist() == [[0, 0], [0, 1], [0, 2], [2, 0]]
    assert parsed["b"].values.dtype == object


# -- errors ------------------------------------------------------------------


def test_missing_required_feature_names_it(tf):
    serialized = [example(tf, present=[1]), example(tf, other=[2])]
    features = {"present": fi.FixedLenFeature([], np.int64, default_value=0),
                "needed.key, with commas": fi.FixedLenFeature([], np.int64)}
    with pytest.raises(InvalidArgumentError, match=r"feature 'needed.key, with commas'.*required") as info:
        fi.parse_example(serialized, features)
    assert isinstance(info.value, ValueError)
    cause = info.value.__cause__ or (None if info.value.__suppress_context__ else info.value.__context__)
    assert cause is None  # fastinput's error alone: no chained TensorFlow traceback


@pytest.mark.parametrize("stored, spec", [
    ([1.5], fi.FixedLenFeature([], np.int64)),
    ([b"text"], fi.FixedLenFeature([], np.float32)),
    ([3], fi.VarLenFeature(bytes)),
    ([1, 2, 3], fi.FixedLenFeature([2], np.int64)),
    ([1, 2, 3], fi.FixedLenSequenceFeature([2], np.int64, allow_missing=True)),
])
def test_values_of_wrong_type_or_count_name_the_feature(tf, stored, spec):
    serialized = [example(tf, ok=[1]), example(tf, ok=[2], bad_feature=stored)]
    features = {"ok": fi.FixedLenFeature([], np.int64), "bad_feature": spec}
    with pytest.raises(InvalidArgumentError, match="feature 'bad_feature'"):
        fi.parse_example(serialized, features)


def test_corrupt_serialized_example_raises_invalid_argument():
    with pytest.raises(InvalidArgumentError, match="parse_example"):
        fi.parse_example([b"\xff\xfe not a proto \x01"], {"x": fi.FixedLenFeature([], np.int64, default_value=0)})


def test_sequence_feature_needs_allow_missing():
    with pytest.raises(InvalidArgumentError, match="feature 'seq'.*allow_missing=True"):
        fi.parse_example([b""], {"seq": fi.FixedLenSequenceFeature([], np.int64)})


@pytest.mark.parametrize("serialized", [b"one example", [[b"a"], [b"b"]], [1, 2], np.array([b"", None])])
def test_serialized_must_be_a_batch_of_bytes(serialized):
    with pytest.raises(InvalidArgumentError, match="serialized"):
        fi.parse_example(serialized, {"x": fi.FixedLenFeature([], np.int64, default_value=0)})


@pytest.mark.parametrize("make, message", [
    (lambda: fi.FixedLenFeature([], np.float64), "dtype must be int64, float32 or a string"),
    (lambda: fi.VarLenFeature(np.int32), "dtype must be"),
    (lambda: fi.FixedLenFeature([None], np.int64), "non-negative integer"),
    (lambda: fi.FixedLenFeature([-1], np.int64), "non-negative integer"),
    (lambda: fi.FixedLenFeature("ab", np.int64), "non-negative integer"),
    (lambda: fi.FixedLenFeature([2], np.int64, default_value=[1, 2, 3]), "has 3 values but shape"),
    (lambda: fi.FixedLenFeature([], np.int64, default_value=1.5), "cannot be stored as int64"),
    (lambda: fi.FixedLenFeature([], bytes, default_value=7), "must be bytes or str"),
    (lambda: fi.FixedLenSequenceFeature([], np.int64, allow_missing=True, default_value=[1, 2]), "must be a scalar"),
    (lambda: fi.FixedLenSequenceFeature([], np.int64, allow_missing="yes"), "allow_missing"),
])
def test_bad_specs_are_refused_when_made(make, message):
    with pytest.raises(InvalidArgumentError, match=message):
        make()


def test_bad_feature_dicts_are_refused_naming_the_key(tf):
    with pytest.raises(InvalidArgumentError, match="non-empty dict"):
        fi.parse_example([b""], {})
    with pytest.raises(InvalidArgumentError, match="feature keys must be str"):
        fi.parse_example([b""], {1: fi.VarLenFeature(np.int64)})
    with pytest.raises(InvalidArgumentError, match="feature 'r': unsupported spec"):
        fi.parse_example([b""], {"r": tf.io.RaggedFeature(tf.int64)})
    with pytest.raises(InvalidArgumentError, match="feature 'x': FixedLenFeature: dtype must be"):
        fi.parse_example([b""], {"x": tf.io.FixedLenFeature([], tf.float64)})
    with pytest.raises(InvalidArgumentError, match="feature 'x': unsupported spec"):
        fi.parse_example([b""], {"x": "int64"})


# -- specs ---------------------------------------------------------------------


def test_specs_are_frozen_hashable_and_normalised(tf):
    spec = fi.FixedLenFeature([2], tf.string, default_value=["a", b"b"])
    assert spec == fi.FixedLenFeature((2,), "string", default_value=(b"a", b"b"))
    assert spec.dtype == np.dtype(object) and spec.shape == (2,) and spec.default_value == (b"a", b"b")
    assert len({spec, fi.FixedLenFeature([2], bytes, default_value=[b"a", b"b"])}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.shape = (3,)
    assert fi.VarLenFeature(tf.int64).dtype == np.int64
    assert fi.FixedLenFeature(3, tf.float32, default_value=np.zeros(3)).default_value == (0.0, 0.0, 0.0)
    assert fi.FixedLenFeature([], np.int64, default_value=np.int64(4)).default_value == 4
    assert fi.FixedLenSequenceFeature([], str, True, "p").default_value == b"p"


def test_parser_is_compiled_once_per_features_dict():
    features = {"x": fi.FixedLenFeature([], np.int64, default_value=0)}
    first = parser_for(features)
    assert parser_for(features) is first
    assert parser_for(dict(features)) is not first
    features["y"] = fi.VarLenFeature(np.int64)  # changed in place: compiled anew
    assert parser_for(features) is not first
    assert list(parser_for(features).features) == ["x", "y"]


def test_parse_from_many_threads_at_once(tf):
    serialized = [example(tf, **e) for e in BATCH] * 50
    parser = ExampleParser(specs_with_defaults())
    expected = parser(serialized)
    results: list[dict] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                results.append(parser(serialized))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 20
    for result in results:
        assert_same_element(result, expected)
