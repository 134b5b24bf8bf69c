"""Parquet row groups are read by pyarrow's file reader when there is no filter and a file's columns are the first
file's, and by pyarrow's dataset scanner otherwise (a filter; a column missing or of another type: the scanner
reconciles them with the first file's schema). Both give the same rows, with nulls as 0 / b"" / False."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import fastinput as fi


def test_files_whose_columns_differ_read_as_the_first_file_says(tmp_path):
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"], "f": [0.5, None]}), tmp_path / "p0.parquet")
    pq.write_table(pa.table({"a": [3], "f": [1.5]}), tmp_path / "p1.parquet")  # no "b"
    pq.write_table(pa.table({"f": [None], "b": ["z"], "a": pa.array([4], pa.int32())}), tmp_path / "p2.parquet")
    batch, = list(fi.ParquetDataset(str(tmp_path / "*.parquet"), batch_size=8))
    assert list(batch) == ["a", "b", "f"]
    assert batch["a"].tolist() == [1, 2, 3, 4] and batch["a"].dtype == np.int64
    assert batch["b"].tolist() == [b"x", b"y", b"", b"z"]
    assert batch["f"].tolist() == [0.5, 0.0, 1.5, 0.0]


def test_nulls_read_as_zero_by_both_readers(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.standard_normal(1000)
    nulls = rng.random(1000) < 0.3
    table = pa.table({"i": pa.array(np.arange(1000), mask=nulls), "f": pa.array(values, mask=nulls),
                      "h": pa.array(np.arange(1000, dtype=np.int16), mask=nulls),
                      "b": pa.array(values > 0, mask=nulls), "k": np.arange(1000)})
    pq.write_table(table, tmp_path / "p.parquet", row_group_size=300)
    path = str(tmp_path / "p.parquet")
    plain = np.concatenate([b["f"] for b in fi.ParquetDataset(path, batch_size=128)])
    filtered = np.concatenate([b["f"] for b in fi.ParquetDataset(path, batch_size=128, filters=[("k", ">=", 0)])])
    expected = np.where(nulls, 0.0, values)
    assert plain.tolist() == expected.tolist() and filtered.tolist() == expected.tolist()
    batch = next(iter(fi.ParquetDataset(path, batch_size=1000)))
    assert batch["i"].tolist() == np.where(nulls, 0, np.arange(1000)).tolist()
    assert batch["h"].dtype == np.int32 and batch["h"].tolist() == np.where(nulls, 0, np.arange(1000)).tolist()
    assert batch["b"].tolist() == np.where(nulls, False, values > 0).tolist()
