"""A batch's arrow string columns packed together (``PackedStrings.from_arrow_columns``): what ``from_arrow``
gives column by column (values, offsets from 0, a blob of the column's own bytes), for sliced, chunked and
empty columns of every string type, with the C extension (``_binary.offsets``) and without it; and
``offsets`` checks its arguments before writing anything."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fastinput import tf_values
from fastinput.tf_values import PackedStrings

KINDS = [pa.binary(), pa.string(), pa.large_binary(), pa.large_string()]


def columns(kind: pa.DataType, length: int, offset: int, seed: int) -> list[pa.ChunkedArray]:
    """Three columns of ``length`` values cut at ``offset`` from longer arrays (one of them in two chunks)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(3):
        values = ["" if rng.random() < 0.2 else f"v{c}.{rng.integers(0, 10 ** rng.integers(1, 6))}"
                  for _ in range(offset + length + 4)]
        array = pa.array(values, kind).slice(offset, length)
        out.append(pa.chunked_array([array.slice(0, length // 2), array.slice(length // 2)], kind) if c == 1
                   else pa.chunked_array([array], kind))
    return out


@pytest.fixture(params=["c_extension", "numpy"])
def packer(request, monkeypatch) -> str:
    """Which way columns are packed: the C extension, or ``from_arrow`` column by column (extension not built)."""
    if request.param == "c_extension":
        pytest.importorskip("fastinput.readers._binary")
    else:
        monkeypatch.setattr(tf_values, "_binary", None)
    return request.param


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_columns_pack_to_the_values_from_arrow_gives(kind, packer):
    for seed, (length, offset) in enumerate([(0, 0), (1, 0), (5, 3), (1024, 17), (300, 0)]):
        batch = columns(kind, length, offset, seed)
        packed = PackedStrings.from_arrow_columns(batch)
        assert len(packed) == len(batch)
        for leaf, column in zip(packed, batch):
            alone = PackedStrings.from_arrow(column)
            assert type(leaf) is PackedStrings and leaf.shape == alone.shape == (length,)
            assert np.asarray(leaf).tolist() == np.asarray(alone).tolist() == [
                v if isinstance(v, bytes) else v.encode() for v in column.to_pylist()]
            assert leaf.offsets.dtype == np.int64


def test_each_packed_column_is_what_from_arrow_makes(packer):
    for kind in KINDS:
        batch = columns(kind, 50, 9, 1)
        for leaf, column in zip(PackedStrings.from_arrow_columns(batch), batch):
            alone = PackedStrings.from_arrow(column)
            assert leaf.offsets.tolist() == alone.offsets.tolist() and bytes(leaf.blob) == bytes(alone.blob)
            assert type(leaf.blob) is type(alone.blob) and leaf.nbytes == alone.nbytes
    assert PackedStrings.from_arrow_columns([]) == []


def test_columns_of_different_lengths_are_packed_one_by_one():
    batch = [pa.chunked_array([pa.array([b"a", b"bc"])]), pa.chunked_array([pa.array([b"d"])])]
    assert [np.asarray(leaf).tolist() for leaf in PackedStrings.from_arrow_columns(batch)] == [[b"a", b"bc"], [b"d"]]


def test_offsets_checks_its_arguments_before_writing():
    _binary = pytest.importorskip("fastinput.readers._binary")
    offsets = np.array([2, 3, 5, 5, 8], dtype=np.int32)
    out = np.full(2 * 4, -1, dtype=np.int64)
    with pytest.raises(ValueError, match="as many of each"):
        _binary.offsets([offsets], [0, 0], 3, out)
    with pytest.raises(ValueError, match="not negative"):
        _binary.offsets([offsets, offsets], [0, 0], -1, out)
    with pytest.raises(ValueError, match="out has"):
        _binary.offsets([offsets, offsets], [0, 0], 2, out)
    for start in (-1, 2):  # 3 values from value 2 need offsets up to index 5: past the end
        with pytest.raises(ValueError, match="pass the end"):
            _binary.offsets([offsets, offsets], [0, start], 3, out)
    with pytest.raises(TypeError):
        _binary.offsets([offsets, [0, 1, 2, 3]], [0, 0], 3, out)
    with pytest.raises(TypeError):
        _binary.offsets([offsets, offsets], [0, "1"], 3, out)
    read_only = out.copy()
    read_only.flags.writeable = False
    with pytest.raises((TypeError, BufferError, ValueError)):
        _binary.offsets([offsets, offsets], [0, 0], 3, read_only)
    assert out.tolist() == [-1] * 8  # nothing written by any refused call
    assert _binary.offsets([offsets, offsets], [0, 1], 3, out) == [2, 3]
    assert out.tolist() == [0, 1, 3, 3, 0, 2, 2, 5]
    assert _binary.offsets([], [], 5, np.zeros(0, np.int64)) == []
