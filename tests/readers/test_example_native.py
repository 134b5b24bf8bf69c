"""The native Example kernel (``fastinput.readers._example``) against TensorFlow's parser.

Well-formed batches must be parsed natively (the kernel returns columns, not
None) with exactly ``tf.io.parse_example``'s values, dtypes and shapes:
random Examples made with ``tf.train.Example``, and hand-made wire bytes in
the encodings TensorFlow's writer never uses but any protobuf writer may
(unpacked numbers, map entries with the value first). Batches
the kernel leaves to TensorFlow (it returns None) must still give
TensorFlow's result or its error.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError
from fastinput.readers.example import ExampleParser, native_kernel
from fastinput.readers.features import STRING
from fastinput.structure import SparseArray
from fastinput.tf_values import PackedStrings
from tests.helpers import assert_same_element
from tests.protobuf_wire import (
    bytes_list,
    entry,
    feature,
    field,
    float_list,
    int64_list,
    varint,
    wire_example,
)
from tests.readers.test_example import tf_parse, tf_spec

pytestmark = pytest.mark.skipif(native_kernel is None, reason="the C extension fastinput.readers._example is not built")


def native_columns(serialized, features: dict):
    """What the native kernel returns for this batch (None: it leaves the batch to TensorFlow)."""
    parser = ExampleParser(features)
    return native_kernel.parse(parser._native_spec, serialized)


def assert_native_like_tf(tf, serialized: list[bytes], features: dict) -> dict:
    """The batch is parsed natively, and equals tf.io.parse_example's result; so does the packed-strings parse
    (what ``as_tf_dataset`` asks for), whose string outputs are all PackedStrings."""
    assert native_columns(serialized, features) is not None, "the native kernel left a well-formed batch to TensorFlow"
    parsed = fi.parse_example(serialized, features)
    expected = tf_parse(tf, serialized, {key: tf_spec(tf, spec) for key, spec in features.items()})
    assert_same_element(parsed, expected)
    packed = ExampleParser(features)(serialized, packed_strings=True)
    for key, spec in features.items():
        values = packed[key].values if isinstance(packed[key], SparseArray) else packed[key]
        assert (type(values) is PackedStrings) == (spec.dtype == STRING), key
    assert_same_element(unpacked(packed), expected)
    return parsed


def unpacked(parsed: dict) -> dict:
    """``parsed`` with every PackedStrings leaf (sparse values included) as an object array of bytes."""
    def plain(leaf):
        if isinstance(leaf, SparseArray):
            return SparseArray(leaf.indices, np.asarray(leaf.values), leaf.dense_shape)
        return np.asarray(leaf)
    return {key: plain(leaf) for key, leaf in parsed.items()}


# -- well-formed batches: parsed natively, equal to TensorFlow's ---------------------------------------

def random_specs(rng: np.random.Generator) -> dict:
    """A few features of every kind and dtype, with random shapes and defaults."""
    specs = {}
    for index in range(int(rng.integers(1, 12))):
        dtype = [np.int64, np.float32, bytes][int(rng.integers(3))]
        kind = int(rng.integers(3))
        shape = [[], [1], [3], [2, 2]][int(rng.integers(4))]
        width = int(np.prod(shape))
        if kind == 0:
            default = None
            if rng.random() < 0.5:
                default = [b"d%d" % i for i in range(width)] if dtype is bytes else np.arange(width).astype(dtype)
                default = np.array(default, dtype=object if dtype is bytes else dtype).reshape(shape)
            specs[f"fixed_{index}"] = fi.FixedLenFeature(shape, dtype, default_value=default)
        elif kind == 1:
            specs[f"var_{index}"] = fi.VarLenFeature(dtype)
        else:
            pad = None if rng.random() < 0.5 else (b"pad" if dtype is bytes else 7)
            specs[f"seq_{index}"] = fi.FixedLenSequenceFeature(shape, dtype, allow_missing=True, default_value=pad)
    return specs


def random_values(rng: np.random.Generator, dtype, count: int) -> list:
    if dtype is np.int64:
        return rng.integers(-(2**63), 2**63 - 1, count, dtype=np.int64, endpoint=True).tolist()
    if dtype is np.float32:
        return rng.standard_normal(count).astype(np.float32).tolist()
    return [rng.bytes(int(rng.integers(0, 40))) for _ in range(count)]


def random_example(tf, rng: np.random.Generator, specs: dict) -> bytes:
    """An Example with each feature of ``specs`` present or (where allowed) missing, plus a feature nobody asked for."""
    proto = tf.train.Example()
    for key, spec in specs.items():
        dtype = {np.dtype(np.int64): np.int64, np.dtype(np.float32): np.float32}.get(spec.dtype, bytes)
        optional = not (isinstance(spec, fi.FixedLenFeature) and spec.default_value is None)
        if optional and rng.random() < 0.3:
            continue
        if isinstance(spec, fi.FixedLenFeature):
            count = int(np.prod(spec.shape))
        elif isinstance(spec, fi.VarLenFeature):
            count = int(rng.integers(0, 6))
        else:
            count = int(rng.integers(0, 4)) * int(np.prod(spec.shape))
        values = random_values(rng, dtype, count)
        target = proto.features.feature[key]
        lst = (target.int64_list if dtype is np.int64 else target.float_list if dtype is np.float32
               else target.bytes_list)
        lst.SetInParent()
        lst.value.extend(values)
    proto.features.feature["not_asked_for"].float_list.value.extend([1.0, 2.0])
    return proto.SerializeToString()


@pytest.mark.parametrize("seed", range(40))
def test_random_batches_parse_natively_like_tf(tf, seed):
    rng = np.random.default_rng(seed)
    specs = random_specs(rng)
    serialized = [random_example(tf, rng, specs) for _ in range(int(rng.integers(0, 50)))]
    assert_native_like_tf(tf, serialized, specs)


def test_object_array_and_list_inputs_give_the_same_columns(tf):
    rng = np.random.default_rng(0)
    specs = {"a": fi.FixedLenFeature([], np.int64), "b": fi.VarLenFeature(bytes)}
    serialized = [random_example(tf, rng, specs) for _ in range(10)]
    as_array = np.array(serialized, dtype=object)
    assert native_columns(as_array, specs) is not None
    assert_same_element(fi.parse_example(as_array, specs), fi.parse_example(serialized, specs))
    assert native_columns(as_array[::2], specs) is None  # not contiguous: TensorFlow's kernel takes it


@pytest.mark.parametrize("packed", [True, False])
def test_numbers_packed_or_not_and_fields_in_any_order(tf, packed):
    serialized = [
        wire_example(entry("i", feature("int64", int64_list([1, -2, 3, 2**63 - 1, -(2**63)], packed=packed))),
                     entry("f", feature("float", float_list([0.5, -1.5, 3e38], packed=packed)))),
        wire_example(entry("f", feature("float", float_list([], packed=packed)), value_first=True),
                     entry("i", feature("int64", int64_list([0], packed=packed)), value_first=True)),
    ]
    specs = {"i": fi.VarLenFeature(np.int64), "f": fi.VarLenFeature(np.float32)}
    parsed = assert_native_like_tf(tf, serialized, specs)
    assert parsed["i"].values.tolist() == [1, -2, 3, 2**63 - 1, -(2**63), 0]


def test_empty_examples_and_features_nobody_asked_for(tf):
    junk = entry("other", feature("bytes", bytes_list(b"x" * 1000)))  # skipped without a look inside
    serialized = [b"", wire_example(), wire_example(junk, entry("k", feature("int64", int64_list([5]))))]
    specs = {"k": fi.FixedLenFeature([], np.int64, default_value=-1), "s": fi.FixedLenSequenceFeature(
        [2], np.float32, allow_missing=True)}
    parsed = assert_native_like_tf(tf, serialized, specs)
    assert parsed["k"].tolist() == [-1, -1, 5] and parsed["s"].shape == (3, 0, 2)


def test_string_values_of_every_byte_and_length(tf):
    values = [bytes(range(256)), b"", b"\x00", b"a" * 100_000]
    serialized = [wire_example(entry("s", feature("bytes", bytes_list(*values))))]
    parsed = assert_native_like_tf(tf, serialized, {"s": fi.FixedLenFeature([4], bytes)})
    assert parsed["s"][0].tolist() == values


@pytest.mark.parametrize("count", [5, 20])
def test_long_strings_copied_without_the_gil_are_whole(count):
    # in a batch of 1 MiB or more (20 records here, not 5), values of 4096 bytes or more are allocated in pass 2 and
    # filled in pass 3: every length around that, several per record, beside short ones, fixed and var-length
    rng = np.random.default_rng(count)
    lengths = [0, 1, 4095, 4096, 4097, 95_000]
    records = [[rng.bytes(n) for n in rng.permutation(lengths)] for _ in range(count)]
    serialized = [wire_example(entry("s", feature("bytes", bytes_list(*values))),
                               entry("v", feature("bytes", bytes_list(*values[:i % 7]))))
                  for i, values in enumerate(records)]
    assert (sum(map(len, serialized)) >= 1 << 20) == (count == 20)
    features = {"s": fi.FixedLenFeature([len(lengths)], bytes), "v": fi.VarLenFeature(bytes)}
    assert native_columns(serialized, features) is not None
    parsed = fi.parse_example(serialized, features)
    assert parsed["s"].tolist() == records
    assert parsed["v"].values.tolist() == [value for i, values in enumerate(records) for value in values[:i % 7]]
    assert {value: i for i, value in enumerate(parsed["s"][4])}[records[4][2]] == 2  # hashed after the copy


def test_outputs_are_writable_and_own_their_memory(tf):
    serialized = [wire_example(entry("i", feature("int64", int64_list([1, 2]))))] * 3
    parsed = fi.parse_example(serialized, {"i": fi.FixedLenFeature([2], np.int64)})
    parsed["i"][0, 0] = 9  # numpy arrays like any other: changing one changes nothing else
    assert parsed["i"].tolist() == [[9, 2], [1, 2], [1, 2]]
    assert fi.parse_example(serialized, {"i": fi.FixedLenFeature([2], np.int64)})["i"][0].tolist() == [1, 2]


# -- batches left to TensorFlow: its result, or its error ----------------------------------------------

INT_FEATURE = entry("k", feature("int64", int64_list([1])))

LEFT_TO_TENSORFLOW = {
    "the key twice": wire_example(INT_FEATURE, entry("k", feature("int64", int64_list([2])))),
    "an empty Feature": wire_example(field(1, field(1, b"k") + field(2, b""))),
    "a map entry without its value": wire_example(field(1, field(1, b"k"))),
    "two lists in one Feature": wire_example(
        entry("k", feature("int64", int64_list([1])) + feature("int64", int64_list([2])))),
    "Features twice (concatenated Examples)": wire_example(INT_FEATURE) + wire_example(INT_FEATURE),
    "an unknown field in the Example": wire_example(INT_FEATURE) + varint(2 << 3 | 0) + varint(5),
    "floats packed in two pieces (TensorFlow keeps the first)": wire_example(
        entry("k", feature("float", float_list([1.0], [2.0])))),
    "ints packed in two pieces": wire_example(entry("k", feature("int64", int64_list([1], [2])))),
    "ints unpacked then packed": wire_example(
        entry("k", feature("int64", int64_list([1], packed=False) + int64_list([2])))),
    "floats packed then unpacked": wire_example(
        entry("k", feature("float", float_list([1.0]) + float_list([2.0], packed=False)))),
    "a varint of eleven bytes": wire_example(entry("k", feature("int64", field(1, b"\x80" * 10 + b"\x01")))),
    "a packed float list of 5 bytes": wire_example(entry("k", feature("float", field(1, b"\x00" * 5)))),
    "a length past the end": field(1, b"\x0a\x10abc"),
    # TensorFlow fails an Example for any malformed map entry, whether its feature is asked for or not
    "an entry nobody asked for, without its value": wire_example(INT_FEATURE, field(1, field(1, b"other"))),
    "an entry nobody asked for, without its key": wire_example(INT_FEATURE, field(1, field(2, feature(
        "int64", int64_list([1]))))),
    "an entry nobody asked for, with a third field": wire_example(INT_FEATURE, field(1, field(1, b"other") + field(
        2, feature("int64", int64_list([1]))) + field(3, b""))),
    # TensorFlow compares most tags byte for byte: a tag in more bytes than it needs is another tag there
    "Features under a two-byte tag (TensorFlow skips them)": b"\x8a\x00" + wire_example(INT_FEATURE)[1:],
    "a map entry under a two-byte tag": field(1, b"\x8a\x00" + entry("k", feature("int64", int64_list([1])))[1:]),
    "a list under a two-byte tag": wire_example(entry("k", b"\x9a\x00" + feature("int64", int64_list([1]))[1:])),
    "an unpacked int64 under a two-byte tag": wire_example(entry("k", feature("int64", b"\x88\x00\x01"))),
    "an unpacked float under a two-byte tag": wire_example(entry("k", feature("float", b"\x8d\x00" + bytes(4)))),
    "not a proto at all": b"\xff\xfe not a proto \x01",
}


@pytest.mark.parametrize("case", LEFT_TO_TENSORFLOW)
@pytest.mark.parametrize("spec", [fi.FixedLenFeature([], np.int64, default_value=0), fi.VarLenFeature(np.float32)])
def test_unusual_batches_get_tensorflows_result_or_error(tf, case, spec):
    serialized = [wire_example(), LEFT_TO_TENSORFLOW[case]]
    features = {"k": spec}
    assert native_columns(serialized, features) is None
    try:
        expected = tf_parse(tf, serialized, {"k": tf_spec(tf, spec)})
    except (tf.errors.InvalidArgumentError, UnicodeDecodeError):  # TF fails to quote undecodable bytes
        with pytest.raises(InvalidArgumentError, match="parse_example"):
            fi.parse_example(serialized, features)
    else:
        assert_same_element(fi.parse_example(serialized, features), expected)


@pytest.mark.parametrize("stored, spec", [
    (feature("float", float_list([1.5])), fi.FixedLenFeature([], np.int64)),            # wrong type
    (feature("int64", int64_list([1, 2, 3])), fi.FixedLenFeature([2], np.int64)),       # wrong count
    (feature("int64", int64_list([])), fi.FixedLenFeature([], np.int64, default_value=1)),  # present but empty
    (feature("int64", int64_list([1, 2, 3])), fi.FixedLenSequenceFeature([2], np.int64, allow_missing=True)),
])
def test_wrong_values_are_left_to_tensorflow_and_named(tf, stored, spec):
    serialized = [wire_example(entry("bad_feature", stored))]
    features = {"bad_feature": spec}
    assert native_columns(serialized, features) is None
    with pytest.raises(InvalidArgumentError, match="feature 'bad_feature'"):
        fi.parse_example(serialized, features)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, bytes])
def test_a_fixed_feature_of_no_values_is_required_like_tf(tf, dtype):
    """TensorFlow takes an empty default for none: ``FixedLenFeature([0], default_value=[])`` is required."""
    features = {"k": fi.FixedLenFeature([0], dtype, default_value=[])}
    with pytest.raises(tf.errors.InvalidArgumentError, match="required"):
        tf_parse(tf, [wire_example()], {"k": tf_spec(tf, features["k"])})
    assert native_columns([wire_example()], features) is None
    with pytest.raises(InvalidArgumentError, match="feature 'k'.*required"):
        fi.parse_example([wire_example()], features)
    present = [wire_example(entry("k", feature({np.float32: "float", np.int64: "int64", bytes: "bytes"}[dtype],
                                               b"")))]
    assert fi.parse_example(present, features)["k"].shape == (1, 0)


def test_a_sequence_of_empty_items_is_refused_when_built():
    """TensorFlow's kernel divides by the values per item: zero kills the process with SIGFPE."""
    with pytest.raises(InvalidArgumentError, match="feature 's'.*at least one value"):
        ExampleParser({"s": fi.FixedLenSequenceFeature([2, 0], np.float32, allow_missing=True)})


@pytest.fixture(params=["native", "TensorFlow only"])
def kernels(request, monkeypatch) -> str:
    """Each way a batch is parsed: the native kernel first (skipped if not built), or TensorFlow's kernel alone."""
    if request.param != "native":
        request.getfixturevalue("tf")  # skipped where TensorFlow is not installed
        monkeypatch.setattr("fastinput.readers.example.native_kernel", None)
    return request.param


OVERLONG_FLOATS = {
    "unpacked": float_list(list(range(500)), packed=False),
    "unpacked, then packed": float_list(list(range(500)), packed=False) + float_list([1.0]),
    "unpacked, then cut": float_list(list(range(500)), packed=False) + b"\x0d\x00",
}


@pytest.mark.parametrize("default", [None, [0.0, 0.0, 0.0]])
@pytest.mark.parametrize("stored", OVERLONG_FLOATS)
def test_more_unpacked_floats_than_a_fixed_feature_holds_are_refused(kernels, stored, default):
    """TensorFlow's kernel writes unpacked floats past its output (a crash, or a corrupt heap): such a batch is
    refused before it gets there, naming the feature and the Example."""
    features = {"k": fi.FixedLenFeature([3], np.float32, default_value=default), "i": fi.VarLenFeature(np.int64)}
    fine = wire_example(entry("k", feature("float", float_list([1, 2, 3], packed=False))))
    serialized = [fine, wire_example(), fine, wire_example(entry("k", feature("float", OVERLONG_FLOATS[stored])))]
    if default is None:
        serialized[1] = fine
    with pytest.raises(InvalidArgumentError, match="feature 'k': example 3 has 500 float values, expected 3"):
        fi.parse_example(serialized, features)
    assert fi.parse_example(serialized[:3], features)["k"][2].tolist() == [1, 2, 3]


HUGE_BYTES = b"\x0a" + varint(2**32 - 1) + b"abc"  # a bytes value that claims 4 GiB
HUGE_PACKED_FLOATS = b"\x0a" + varint(2**31) + bytes(8)  # a packed float list that claims 2 GiB


@pytest.mark.parametrize("spec, stored", [
    (fi.VarLenFeature(bytes), feature("bytes", HUGE_BYTES)),
    (fi.FixedLenFeature([2], bytes), feature("bytes", bytes_list(b"fine") + HUGE_BYTES)),
    (fi.FixedLenSequenceFeature([], bytes, allow_missing=True), feature("bytes", HUGE_BYTES)),
    (fi.VarLenFeature(np.float32), feature("float", HUGE_PACKED_FLOATS)),
    (fi.FixedLenSequenceFeature([2], np.float32, allow_missing=True), feature("float", HUGE_PACKED_FLOATS)),
], ids=["var bytes", "fixed bytes", "sequence bytes", "var floats", "sequence floats"])
def test_lengths_past_the_data_are_refused_before_tensorflow_sizes_by_them(kernels, spec, stored):
    """TensorFlow's kernel sizes a string or a growable float buffer by the length in the data before it reads
    the data: up to 4 GiB asked for, and a length of 2**31 or more copied with a negative size (SIGSEGV)."""
    pattern = r"feature 'k': example 1 has a (bytes value|packed float list) of \d+ bytes where \d+ remain"
    with pytest.raises(InvalidArgumentError, match=pattern):
        fi.parse_example([wire_example(), wire_example(entry("k", stored))], {"k": spec})


def test_the_guard_looks_where_tensorflow_does(tf, kernels):
    """Only the list TensorFlow parses counts: the last entry of a key (an earlier one is ignored), in Features
    it reads; and where TensorFlow survives a batch the guard passes, both give the same result."""
    features = {"k": fi.FixedLenFeature([1], np.float32)}
    overlong = entry("k", feature("float", float_list([1, 2], packed=False)))
    last_wins = wire_example(overlong, entry("k", feature("float", float_list([7.0]))))
    skipped = b"\x8a\x00" + wire_example(overlong)[1:] + wire_example(entry("k", feature("float", float_list([8.0]))))
    serialized = [last_wins, skipped]
    expected = tf_parse(tf, serialized, {"k": tf_spec(tf, features["k"])})
    assert_same_element(fi.parse_example(serialized, features), expected)
    assert expected["k"].tolist() == [[7.0], [8.0]]


def test_missing_required_feature_is_left_to_tensorflow(tf):
    features = {"needed": fi.FixedLenFeature([], np.int64)}
    assert native_columns([wire_example(INT_FEATURE)], features) is None
    with pytest.raises(InvalidArgumentError, match="feature 'needed'.*required"):
        fi.parse_example([wire_example(INT_FEATURE)], features)


@pytest.mark.parametrize("serialized", [[b"", "a str"], [b"", None], (b"",), [bytearray(b"")]])
def test_inputs_other_than_bytes_are_left_to_tensorflow(serialized):
    assert native_columns(serialized, {"k": fi.VarLenFeature(np.int64)}) is None


def test_compile_refuses_bad_descriptions():
    with pytest.raises(ValueError, match="duplicate"):
        native_kernel.compile([(b"k", 1, 3, 0, None), (b"k", 1, 3, 0, None)])
    with pytest.raises(ValueError, match="bad feature"):
        native_kernel.compile([(b"k", 5, 3, 0, None)])
    with pytest.raises(ValueError, match="raw values"):
        native_kernel.compile([(b"k", 0, 3, 2, b"\x00" * 8)])  # a default of one int64 for two values
    with pytest.raises(ValueError, match="padding"):
        native_kernel.compile([(b"k", 2, 3, 1, None)])


# -- the per-call Python around the kernel --------------------------------------------------------------

@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("batch", [0, 1, 3])
def test_fixed_features_are_assembled_as_the_general_path_assembles_them(batch, packed):
    """A parser of FixedLenFeatures only shapes its columns without per-feature dispatch (a column of scalars is
    returned as it is): the same outputs as the general path, packed strings included."""
    features = {"s": fi.FixedLenFeature([], bytes), "i": fi.FixedLenFeature([2], np.int64),
                "f": fi.FixedLenFeature([2, 1], np.float32), "t": fi.FixedLenFeature([2], bytes)}
    serialized = [wire_example(entry("s", feature("bytes", bytes_list(b"s%d" % n))),
                               entry("i", feature("int64", int64_list([n, -n]))),
                               entry("f", feature("float", float_list([n / 2, 1.5]))),
                               entry("t", feature("bytes", bytes_list(b"a" * n, b"")))) for n in range(batch)]
    parser = ExampleParser(features)
    assert parser._fixed_shapes is not None
    fast = parser(serialized, packed_strings=packed)
    parser._fixed_shapes = None  # the general path
    general = parser(serialized, packed_strings=packed)
    assert list(fast) == list(general) == list(features)
    for key in features:
        assert type(fast[key]) is type(general[key]) and fast[key].shape == general[key].shape, key
        assert_same_element(np.asarray(fast[key]), np.asarray(general[key]))
    assert ExampleParser({**features, "v": fi.VarLenFeature(np.int64)})._fixed_shapes is None


def test_a_plain_dict_is_answered_lock_free_until_it_changes(monkeypatch):
    """``parser_for``'s shortcut: the same dict with the same (or equal) specs gets the same parser without the
    lock; a spec changed, a key added or removed compiles anew; other mappings take the locked path."""
    import collections

    from fastinput.readers import example as example_module

    class NoLock:
        """The cache's lock, failing the test if the shortcut takes it."""

        taken = 0

        def __enter__(self):
            type(self).taken += 1

        def __exit__(self, *exc):
            return False

    spec = fi.FixedLenFeature([], np.int64, default_value=0)
    features = {"x": spec}
    first = example_module.parser_for(features)
    monkeypatch.setattr(example_module, "_cache_lock", NoLock())
    assert example_module.parser_for(features) is first and NoLock.taken == 0
    features["x"] = fi.FixedLenFeature([], np.int64, default_value=0)  # another object, equal: the same parser
    assert example_module.parser_for(features) is first and NoLock.taken == 0
    features["x"] = fi.FixedLenFeature([], np.int64, default_value=1)
    second = example_module.parser_for(features)
    assert second is not first and NoLock.taken == 2  # looked up, then stored
    features["y"] = spec
    third = example_module.parser_for(features)
    del features["y"]
    assert third is not second and list(third.features) == ["x", "y"]
    assert list(example_module.parser_for(features).features) == ["x"]
    ordered = collections.OrderedDict(x=spec)
    taken = NoLock.taken
    assert example_module.parser_for(ordered) is example_module.parser_for(ordered)
    assert NoLock.taken == taken + 3  # lookup + store, then a locked hit
