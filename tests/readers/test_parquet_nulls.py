"""A Parquet column's null slots read as 0: ``_nulls.zero_nulls`` (the C extension, in place) and numpy's fallback
give the same values for every item size, slice offset and null pattern, ``zero_nulls`` checks its arguments
before writing anything, and a Parquet file with nulls reads the same with and without the extension."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastinput as fi
from fastinput.readers import parquet_files

TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.float32(), pa.float64()]


def column(arrow_type: pa.DataType, length: int, offset: int, seed: int) -> tuple[pa.Array, np.ndarray]:
    """An arrow array of ``length`` values sliced at ``offset`` (in fresh, writable buffers), and its values with
    the nulls as 0."""
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 100, offset + length + 5).astype(arrow_type.to_pandas_dtype())
    nulls = rng.random(offset + length + 5) < [0.0, 0.3, 0.97][seed % 3]
    array = pa.concat_arrays([pa.array(values, type=arrow_type, mask=nulls)]).slice(offset, length)
    expected = np.where(nulls, 0, values)[offset:offset + length]
    return array, expected


@pytest.mark.parametrize("arrow_type", TYPES, ids=str)
@pytest.mark.parametrize("native", [True, False], ids=["c_extension", "numpy"])
def test_nulls_are_zeroed_at_any_offset(arrow_type, native, monkeypatch):
    if native:
        pytest.importorskip("fastinput.readers._nulls")
    else:
        monkeypatch.setattr(parquet_files, "_nulls", None)
    for seed, (length, offset) in enumerate([(0, 0), (1, 0), (63, 1), (64, 0), (65, 63), (200, 64), (1000, 70),
                                             (130, 5)]):
        array, expected = column(arrow_type, length, offset, seed)
        got = parquet_files._zero_nulls(array)
        assert got.dtype == expected.dtype and got.tolist() == expected.tolist(), (length, offset)


def test_a_float_null_slot_becomes_positive_zero():
    _nulls = pytest.importorskip("fastinput.readers._nulls")
    values = np.array([np.nan, -1.5, np.inf, 2.0])
    assert _nulls.zero_nulls(values, np.array([0b1010], dtype=np.uint8), 0, 4) == 2
    assert values.tolist() == [0.0, -1.5, 0.0, 2.0] and not np.signbit(values[0])


def test_zero_nulls_checks_its_arguments_before_writing():
    _nulls = pytest.importorskip("fastinput.readers._nulls")
    values = np.arange(1, 17, dtype=np.int64)
    bitmap = np.zeros(2, dtype=np.uint8)  # 16 bits, all null
    for offset, length in [(-1, 2), (0, -1), (10, 7), (0, 17)]:
        with pytest.raises(ValueError, match="zero_nulls: offset"):
            _nulls.zero_nulls(values, bitmap, offset, length)
    with pytest.raises(ValueError, match="bitmap"):
        _nulls.zero_nulls(values, bitmap[:1], 0, 9)
    with pytest.raises(TypeError, match="1, 2, 4 or 8 bytes"):
        _nulls.zero_nulls(np.zeros(4, dtype=object), bitmap, 0, 4)
    with pytest.raises(TypeError, match="1, 2, 4 or 8 bytes"):
        _nulls.zero_nulls(np.zeros(4, dtype="S3"), bitmap, 0, 4)
    read_only = values.copy()
    read_only.flags.writeable = False
    with pytest.raises((TypeError, BufferError, ValueError)):
        _nulls.zero_nulls(read_only, bitmap, 0, 4)
    assert values.tolist() == list(range(1, 17))  # nothing written by any refused call
    assert _nulls.zero_nulls(values, bitmap, 3, 5) == 5
    assert values.tolist() == [1, 2, 3, 0, 0, 0, 0, 0, 9, 10, 11, 12, 13, 14, 15, 16]


def test_a_file_with_nulls_reads_the_same_without_the_extension(tmp_path, monkeypatch):
    pytest.importorskip("fastinput.readers._nulls")
    rng = np.random.default_rng(3)
    n = 3000
    nulls = rng.random(n) < 0.25
    pq.write_table(pa.table({"i": pa.array(np.arange(n), mask=nulls),
                             "f": pa.array(rng.standard_normal(n).astype(np.float32), mask=nulls[::-1]),
                             "k": pa.array(rng.integers(0, 9, n).astype(np.int8), mask=nulls),
                             "s": [None if null else f"s{i}" for i, null in enumerate(nulls)]}),
                   tmp_path / "p.parquet", row_group_size=700)

    def batches() -> list:
        ds = fi.make_parquet_dataset(str(tmp_path / "p.parquet"), 128, label_name="i", num_epochs=1,
                                     shuffle_seed=5, shuffle_buffer_size=500)
        return [[label.tolist()] + [col.tolist() for col in features.values()] for features, label in ds]

    native = batches()
    monkeypatch.setattr(parquet_files, "_nulls", None)
    assert native == batches()
    labels = sorted(i for batch in native for i in batch[0])
    assert labels == sorted(np.where(nulls, 0, np.arange(n)).tolist())


@pytest.mark.parametrize("native", [True, False], ids=["c_extension", "numpy"])
def test_values_in_a_read_only_buffer_are_copied_not_written(native, monkeypatch):
    if not native:
        monkeypatch.setattr(parquet_files, "_nulls", None)
    data = pa.py_buffer(np.arange(1, 11, dtype=np.int32).tobytes())  # bytes: read-only
    array = pa.Array.from_buffers(pa.int32(), 9, [pa.py_buffer(np.array([0b10101010, 0b1], np.uint8).tobytes()),
                                                 data], offset=1)
    assert parquet_files._zero_nulls(array).tolist() == [2, 0, 4, 0, 6, 0, 8, 9, 0]
    assert np.frombuffer(data, dtype=np.int32).tolist() == list(range(1, 11))
