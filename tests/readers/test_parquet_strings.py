"""Parquet strings as ``fi.PackedStrings`` (``string_type="packed"``): the same values as the default object arrays
of ``bytes``, batch by batch, in order and shuffled; the same element spec; tf.string tensors through
``as_tf_dataset`` (crossing packed); resumed from a state saved at every batch; a clear error for a bad
``string_type``. Also the pieces: ``PackedStrings.from_arrow``, saving one, and the shuffle's C exchange plan's
argument checks.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import fastinput as fi
from fastinput._engine.checkpoint import decode_value, encode_value
from fastinput.errors import InvalidArgumentError
from fastinput.tf_values import PackedStrings
from tests.readers.test_parquet import table

ROWS = [700, 0, 300, 513]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> str:
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("parquet_strings")
    for i, rows in enumerate(ROWS):
        data = table(i, rows)
        data = data.append_column("bin", pa.array([None if j % 7 == 2 else b"\x00b%d" % j for j in range(rows)],
                                                  pa.binary()))
        pq.write_table(data, root / f"part-{i}.parquet", row_group_size=128)
    return str(root / "part-*.parquet")


def plain(element: Any) -> Any:
    """An element with every string leaf as a list of bytes, every array as a list (to compare)."""
    if isinstance(element, tuple):
        return tuple(plain(part) for part in element)
    if isinstance(element, dict):
        return {name: plain(value) for name, value in element.items()}
    return np.asarray(element).tolist()


def string_leaves(element: Any) -> list[Any]:
    features = element[0] if isinstance(element, tuple) else element
    return [features["s"], features["bin"]]


@pytest.mark.parametrize("make", [
    lambda path, **kw: fi.ParquetDataset(path, batch_size=100, num_parallel_reads=2, **kw),
    lambda path, **kw: fi.make_parquet_dataset(path, 64, label_name="i64", num_epochs=2, shuffle_seed=5,
                                               shuffle_buffer_size=300, **kw),
], ids=["in_order", "shuffled"])
def test_packed_strings_hold_the_values_of_the_bytes_batches(files, make):
    default = make(files)
    packed = make(files, string_type="packed")
    assert packed.element_spec == default.element_spec  # strings are tf.string either way
    batches = list(packed)
    for batch in batches:
        for leaf in string_leaves(batch):
            assert type(leaf) is PackedStrings and leaf.dtype == object and leaf.shape == (len(leaf),)
    assert [plain(batch) for batch in batches] == [plain(batch) for batch in default]
    assert sum(len(string_leaves(batch)[0]) for batch in batches) == sum(ROWS) * (1 if "Parquet" in str(packed)
                                                                                     else 2)
    first = string_leaves(batches[0])[0]
    assert first[0] == np.asarray(first)[0] and first[-1] == np.asarray(first)[-1]
    assert first[1:3].tolist() == np.asarray(first)[1:3].tolist()


def test_as_tf_dataset_gets_tf_string_tensors_that_cross_packed(files):
    tf = pytest.importorskip("tensorflow", reason="hands batches to TensorFlow (CI's job without TensorFlow skips it)")

    from fastinput.tf_adapter import yields_packed_strings

    make = lambda **kw: fi.make_parquet_dataset(files, 50, label_name="i64", num_epochs=1, shuffle_seed=2,  # noqa
                                                 **kw)
    packed = make(string_type="packed")
    assert yields_packed_strings(packed) and not yields_packed_strings(make())
    expected = [plain(batch) for batch in make()]
    got = []
    for features, label in packed.as_tf_dataset():
        assert features["s"].dtype == tf.string and features["bin"].dtype == tf.string
        got.append(({name: value.numpy().tolist() for name, value in features.items()}, label.numpy().tolist()))
    assert got == expected


def test_resumes_at_every_batch(files):
    def make() -> fi.Dataset:
        return fi.make_parquet_dataset(files, 97, columns=["i64", "s", "bin"], label_name="i64", num_epochs=2,
                                       shuffle_seed=3, shuffle_buffer_size=200, num_parallel_reads=2,
                                       string_type="packed")

    whole = [plain(batch) for batch in make()]
    for cut in range(0, len(whole) + 1, 3):
        with iter(make()) as it:
            for _ in range(cut):
                next(it)
            state = json.loads(json.dumps(it.get_state()))
        with iter(make()) as resumed:
            resumed.set_state(state)
            assert [plain(batch) for batch in resumed] == whole[cut:], f"resumed after {cut} batches"


def test_ops_after_the_batch_see_the_values(files):
    """Ops that look into the elements get the values (unbatch gives bytes; a map may np.asarray them)."""
    ds = fi.ParquetDataset(files, columns=["s"], batch_size=64, string_type="packed")
    reference = fi.ParquetDataset(files, columns=["s"], batch_size=64)
    assert [plain(e) for e in ds.unbatch().take(200)] == [plain(e) for e in reference.unbatch().take(200)]
    upper = ds.map(lambda b: {"s": np.char.upper(np.asarray(b["s"]).astype(bytes))})
    assert next(iter(upper))["s"][0] == np.asarray(next(iter(reference))["s"])[0].upper()


def test_bad_string_type(files):
    for bad in ["str", None, 1]:
        with pytest.raises(InvalidArgumentError, match="string_type must be one of"):
            fi.ParquetDataset(files, string_type=bad)
        with pytest.raises(InvalidArgumentError, match="string_type must be one of"):
            fi.make_parquet_dataset(files, 4, string_type=bad)
    assert "string_type='packed'" in str(fi.ParquetDataset(files, string_type="packed"))


@pytest.mark.parametrize("kind", [pa.binary(), pa.string(), pa.large_binary(), pa.large_string()])
def test_from_arrow_takes_sliced_and_chunked_columns(kind):
    values = ["", "a", "bc", "", "def", "g"]
    array = pa.array(values, kind)
    for column in [array, array.slice(2), array.slice(1, 3), pa.chunked_array([array.slice(0, 2), array.slice(3)]),
                   pa.chunked_array([], kind), array.slice(0, 1)]:
        packed = PackedStrings.from_arrow(column)
        expected = [v if isinstance(v, bytes) else v.encode() for v in column.to_pylist()]
        assert np.asarray(packed).tolist() == expected and len(packed) == len(expected)
        assert int(packed.offsets[0]) == 0 and len(packed.blob) == packed.offsets[-1]  # only its own bytes
        saved = decode_value(json.loads(json.dumps(encode_value(packed))))
        assert type(saved) is PackedStrings and np.asarray(saved).tolist() == expected



def test_exchange_plan_checks_its_arguments():
    _exchange = pytest.importorskip("fastinput.ops._exchange")
    slot_rows = np.arange(4)
    out = [np.empty(3, dtype=np.int64) for _ in range(3)]
    with pytest.raises(IndexError, match="draw 1 has slot 4"):
        _exchange.plan(np.array([0, 4, 1]), np.arange(3) + 4, slot_rows, *out)
    with pytest.raises(IndexError, match="row -1"):
        _exchange.plan(np.array([0, 1, 1]), np.array([4, -1, 5]), slot_rows, *out)
    with pytest.raises(TypeError, match="slots must be int64"):
        _exchange.plan(np.array([0, 1, 1], dtype=np.int32), np.arange(3) + 4, slot_rows, *out)
    with pytest.raises(ValueError, match="sources has 2 elements"):
        _exchange.plan(np.array([0, 1, 1]), np.arange(3) + 4, slot_rows, out[0][:2], *out[1:])
    assert slot_rows.tolist() == [0, 1, 2, 3]
    assert _exchange.plan(np.array([1, 1, 3]), np.arange(3) + 4, slot_rows, *out) == 2
    assert out[0].tolist() == [1, 4, 3] and sorted(zip(out[1][:2].tolist(), out[2][:2].tolist())) == [(1, 5), (3, 6)]
    assert slot_rows.tolist() == [0, 1, 2, 3]

