"""A per-record ``fi.parse_example([record], features)`` inside ``map_and_batch`` is answered from one batch parse.

The README's ``preprocess`` parses its one record; ``map_and_batch`` learns
the parser from each batch's first row and parses the other rows' records in
one native call (``fastinput/readers/parse_ahead.py``). The elements and the
errors are what tf.data gives (and what fastinput gives without the
parse-ahead): a corrupt record's error is its own row's, at its own batch,
with the batches before it delivered; the fallback (a batch the native kernel
declines, features whose rows depend on the batch, other calls) parses each
record alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import fastinput as fi
from fastinput.readers import parse_ahead
from fastinput.readers.example import ExampleParser, parser_for
from tests.helpers import assert_same_run, assert_same_with_errors, elements_and_errors
from tests.protobuf_wire import bytes_list, entry, feature, int64_list, wire_example

PIXELS = 4100  # bytes per record's "image": outputs larger than map_and_batch's small-output limit (rows in place)
FEATURES = {"image/encoded": fi.FixedLenFeature([], bytes), "image/class/label": fi.FixedLenFeature([], "int64")}


def record(i: int) -> bytes:
    pixels = bytes((i * 7 + k) % 256 for k in range(PIXELS))
    return wire_example(entry("image/encoded", feature("bytes", bytes_list(pixels))),
                        entry("image/class/label", feature("int64", int64_list([i]))))


CORRUPT = {
    "malformed": b"\x0a\x7fabc",  # a field longer than the record: no Example (ASCII: TF quotes it in its error)
    "missing label": wire_example(entry("image/encoded", feature("bytes", bytes_list(b"\x00" * PIXELS)))),
    "label as bytes": wire_example(entry("image/encoded", feature("bytes", bytes_list(b"\x00" * PIXELS))),
                                   entry("image/class/label", feature("bytes", bytes_list(b"1")))),
    # parsed by TensorFlow's kernel (the native one declines it), which keeps the last value: a record, not an error
    "the label twice": wire_example(entry("image/encoded", feature("bytes", bytes_list(b"\x01" * PIXELS))),
                                    entry("image/class/label", feature("int64", int64_list([3]))),
                                    entry("image/class/label", feature("int64", int64_list([4])))),
}


def records(corrupt: dict[int, str]) -> list[bytes]:
    return [CORRUPT[corrupt[i]] if i in corrupt else record(i) for i in range(10)]


def preprocess(serialized, out=None):
    """The README's shape of function: a one-record parse, a large array written into ``out`` when given."""
    example = fi.parse_example([serialized], FEATURES)
    image = np.frombuffer(example["image/encoded"][0], np.uint8)
    if out is not None:
        out[0][...] = image
        image = out[0]
    return image, example["image/class/label"][0]


def tf_preprocess(tf):
    features = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
                "image/class/label": tf.io.FixedLenFeature([], tf.int64)}

    def fn(serialized):
        example = tf.io.parse_example(tf.reshape(serialized, [1]), features)
        return tf.io.decode_raw(example["image/encoded"][0], tf.uint8), example["image/class/label"][0]

    return fn


@pytest.fixture
def served(monkeypatch) -> list[int]:
    """Rows served from a batch parse, as they are served."""
    rows: list[int] = []
    take = parse_ahead.BatchParse._take

    def counting(self, parser, row):
        parsed = take(self, parser, row)
        if parsed is not None:
            rows.append(row)
        return parsed

    monkeypatch.setattr(parse_ahead.BatchParse, "_take", counting)
    return rows


@pytest.mark.parametrize("corrupt", [{}, {5: "malformed"}, {0: "missing label"}, {1: "label as bytes", 9: "malformed"},
                                     {6: "the label twice"}, {4: "malformed", 7: "missing label"}])
@pytest.mark.parametrize("num_parallel_calls", [None, 2])
@pytest.mark.parametrize("fused_from_map", [False, True])
def test_the_readme_function_gives_tf_datas_elements_and_errors(tf, served, corrupt, num_parallel_calls,
                                                                fused_from_map):
    data = records(corrupt)
    expected = elements_and_errors(tf.data.Dataset.from_tensor_slices(data).map(tf_preprocess(tf)).batch(4))
    ds = fi.Dataset.from_tensor_slices(data)
    ds = (ds.map(preprocess, num_parallel_calls=num_parallel_calls).batch(4) if fused_from_map else
          ds.map_and_batch(preprocess, 4, num_parallel_calls=num_parallel_calls))
    assert_same_with_errors(elements_and_errors(ds), expected)
    # the full batches the native kernel takes whole are parsed ahead (the first row parses alone, to learn the
    # parser); the last batch's one other record is parsed alone (parse_ahead.MIN_RECORDS)
    clean = [b for b in range(2) if not any(b * 4 <= i < b * 4 + 4 for i in corrupt)]
    assert sorted(served) == sorted(row for b in clean for row in range(1, 4))


@dataclasses.dataclass(frozen=True)
class Raised:
    kind: str
    message: str


def _raised(exc: Exception) -> Raised:
    return Raised(type(exc).__name__, str(exc))


@pytest.mark.parametrize("corrupt", [{5: "malformed"}, {2: "missing label", 3: "label as bytes"}])
def test_errors_are_the_records_own_with_or_without_the_batch_parse(monkeypatch, served, corrupt):
    ds = fi.Dataset.from_tensor_slices(records(corrupt)).map_and_batch(preprocess, 4, num_parallel_calls=2)
    with_batch_parse = elements_and_errors(ds, _raised)
    assert served
    monkeypatch.setattr(ExampleParser, "parse_rows", lambda self, records: None)
    assert_same_run(with_batch_parse, elements_and_errors(ds, _raised), Raised)
    assert any(type(item) is Raised and "parse_example" in item.message for item in with_batch_parse)


def test_each_row_is_served_once_as_fresh_arrays_of_a_one_record_parse():
    data = [record(i) for i in range(4)]
    parser = parser_for(FEATURES)
    batch = parse_ahead.BatchParse()
    assert batch.run(lambda r, out: fi.parse_example([r], FEATURES), data[0], None, 0) is not None
    assert batch.parser is parser  # learnt from the first row's call
    batch.parse(data, 1)
    for row in range(1, 4):
        got = batch.run(lambda r, out: (fi.parse_example([r], FEATURES), fi.parse_example([r], FEATURES)),
                        data[row], None, row)
        alone = parser([data[row]])
        for parsed in got:  # the first call served from the batch parse, the second parsed alone: the same
            assert list(parsed) == list(alone)
            for key in alone:
                assert parsed[key].dtype == alone[key].dtype and parsed[key].shape == alone[key].shape
                assert parsed[key].tolist() == alone[key].tolist()
                assert parsed[key].flags.writeable
        assert not np.shares_memory(got[0]["image/class/label"], got[1]["image/class/label"])
    assert batch._positions == {}


def test_only_the_rows_own_record_and_the_same_parser_are_served(served):
    data = [record(i) for i in range(3)]
    batch = parse_ahead.BatchParse()
    batch.parser = parser_for(FEATURES)
    batch.parse(data, 1)
    other = {"image/class/label": fi.FixedLenFeature([], "int64")}
    calls = [(lambda r, out: fi.parse_example([bytes(bytearray(r))], FEATURES), 1),  # equal bytes, another object
             (lambda r, out: fi.parse_example([data[2]], FEATURES), 2),  # another row's record
             (lambda r, out: fi.parse_example([r], other), 1),  # another parser
             (lambda r, out: fi.parse_example(np.array([r], dtype=object), FEATURES), 1)]  # not a list or tuple
    for call, label in calls:
        assert batch.run(call, data[1], None, 1)["image/class/label"].tolist() == [label]
    assert served == []
    assert fi.parse_example((data[2],), FEATURES)["image/class/label"].tolist() == [2]  # outside a row
    assert served == []
    assert batch.run(lambda r, out: fi.parse_example((r,), FEATURES), data[2], None, 2)["image/class/label"] == [2]
    assert served == [2]


@pytest.mark.parametrize("features", [
    {"x": fi.VarLenFeature("int64")},
    {"x": fi.FixedLenSequenceFeature([], "int64", allow_missing=True)},
    {"x": fi.FixedLenFeature([], "int64"), "y": fi.VarLenFeature("int64")},
])
def test_features_whose_rows_depend_on_the_batch_are_not_parsed_ahead(features):
    data = [wire_example(entry("x", feature("int64", int64_list(list(range(i)))))) for i in range(1, 4)]
    assert parser_for(features).parse_rows(data) is None
    assert parser_for({"x": fi.FixedLenFeature([1], "int64")}).parse_rows(data[:1]) is not None


def test_a_declined_batch_parses_every_record_alone():
    data = [record(0), CORRUPT["malformed"], record(2)]
    batch = parse_ahead.BatchParse()
    batch.parser = parser_for(FEATURES)
    batch.parse(data, 0)
    assert batch._parsed is None
    with pytest.raises(fi.errors.InvalidArgumentError):
        batch.run(lambda r, out: fi.parse_example([r], FEATURES), data[1], None, 1)
    assert batch.run(lambda r, out: fi.parse_example([r], FEATURES), data[2], None, 2)["image/class/label"] == [2]
