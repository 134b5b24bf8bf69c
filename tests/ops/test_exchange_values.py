"""``_exchange.exchange``: a shuffle-buffer exchange walked on several numeric columns' values at once (the row
shuffle's fast path) equals drawing one row at a time, for every item size, and checks its arguments; a shuffled
Parquet pipeline gives the same batches with it as with the row plan alone (the extension absent)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastinput as fi
from fastinput.ops import row_shuffle
from tests.checkpoint.test_row_shuffle import one_at_a_time

_exchange = pytest.importorskip("fastinput.ops._exchange")


@pytest.mark.parametrize("capacity, count, pieces", [(1, 5, 1), (4, 6, 3), (10, 10, 2), (7, 50, 5), (100, 30, 1),
                                                     (5_000, 20_000, 4)])
def test_exchange_walks_every_column_as_drawing_one_row_at_a_time(capacity, count, pieces):
    rng = np.random.default_rng(capacity + count)
    dtypes = [np.int64, np.float64, np.int32, np.float32, np.int16, np.bool_, np.dtype("S3")]
    rounds = count // pieces
    count = rounds * pieces
    order = rng.permutation(count)  # any order over the pieces end to end
    slots = rng.integers(0, capacity, count)
    expected_drawn, expected_buffer = one_at_a_time(list(range(-capacity, 0)), order.tolist(), slots)

    def values(rows: np.ndarray, dtype: np.dtype) -> np.ndarray:  # row r's value in a column of dtype
        return (rows.astype(str).astype("S3") if np.dtype(dtype).kind == "S"
                else (rows % 2 == 0) if dtype is np.bool_ else rows.astype(dtype))

    buffers = [values(np.arange(-capacity, 0), dtype) for dtype in dtypes]
    incoming = [[values(np.arange(p * rounds, (p + 1) * rounds), dtype) for p in range(pieces)] for dtype in dtypes]
    outs = [np.empty(count, dtype=dtype) for dtype in dtypes]
    assert _exchange.exchange(buffers, incoming, slots, order, outs) is None
    for dtype, buffer, out in zip(dtypes, buffers, outs):
        assert out.tolist() == values(np.array(expected_drawn), dtype).tolist()
        assert buffer.tolist() == values(np.array(expected_buffer), dtype).tolist()


def test_exchange_checks_its_arguments():
    buffer, pieces, out = np.zeros(4), [np.ones(3)], np.empty(3)
    slots, order = np.array([0, 3, 1]), np.array([2, 0, 1])
    with pytest.raises(IndexError, match="draw 1 has slot 4"):
        _exchange.exchange([buffer], [pieces], np.array([0, 4, 1]), order, [out])
    with pytest.raises(IndexError, match="order 3"):
        _exchange.exchange([buffer], [pieces], slots, np.array([0, 3, 1]), [out])
    assert buffer.tolist() == [0, 0, 0, 0]  # nothing written
    with pytest.raises(TypeError, match="slots must be int64"):
        _exchange.exchange([buffer], [pieces], slots.astype(np.int32), order, [out])
    with pytest.raises(TypeError, match="Python objects"):
        _exchange.exchange([np.zeros(4, dtype=object)], [[np.ones(3, dtype=object)]], slots, order,
                           [np.empty(3, dtype=object)])
    with pytest.raises(TypeError, match="a piece must hold values of 8 bytes"):
        _exchange.exchange([buffer], [[np.ones(3, dtype=np.float32)]], slots, order, [out])
    with pytest.raises(ValueError, match="3 outs for 3 draws|outs"):
        _exchange.exchange([buffer], [pieces], slots, order, [np.empty(2)])
    with pytest.raises(ValueError, match="differ in length"):
        _exchange.exchange([buffer, np.zeros(4)], [pieces, [np.ones(2)]], slots, order, [out, np.empty(3)])
    with pytest.raises(ValueError, match="as many of each"):
        _exchange.exchange([buffer], [pieces, pieces], slots, order, [out])
    with pytest.raises(TypeError):
        _exchange.exchange(buffer, [pieces], slots, order, [out])


def test_shuffled_parquet_batches_are_the_same_without_the_walk(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    for f in range(3):
        n = 700
        table = pa.table({"id": np.arange(f * 1000, f * 1000 + n), "x": rng.random(n).astype(np.float32),
                          "k": pa.array(rng.integers(0, 9, n).astype(np.int8)), "b": rng.random(n) < 0.5,
                          "s": [f"s{i}" if i % 7 else None for i in range(n)]})
        pq.write_table(table, tmp_path / f"part-{f}.parquet", row_group_size=250)

    def batches() -> list:
        ds = fi.make_parquet_dataset(str(tmp_path / "*.parquet"), 64, label_name="id", num_epochs=2,
                                     shuffle_seed=11, shuffle_buffer_size=300, num_parallel_reads=2)
        return [[label.tolist()] + [column.tolist() for column in features.values()] for features, label in ds]

    walked = batches()
    monkeypatch.setattr(row_shuffle, "_exchange", None)
    planned = batches()
    assert walked == planned
    assert sorted(i for batch in walked for i in batch[0]) == sorted(2 * [f * 1000 + i for f in range(3)
                                                                          for i in range(700)])
