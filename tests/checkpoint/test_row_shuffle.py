"""The columnar row shuffle (``fastinput.ops.row_shuffle``): exchanges equal drawing one row at a time, and the
shuffled Parquet and CSV one-liners resume exactly from a state saved at every batch.

``ExchangePlan`` is checked against the plain shuffle buffer it stands for (draw a slot, give its row, put the
next incoming row there), with the incoming rows as plain blocks or as an interleave's unmerged rounds, with
numpy and arrow string columns, and with the C extension's plan and numpy's. The resume tests save (through
JSON) after every batch of two epochs and compare a freshly built pipeline restored from it with the
uninterrupted run.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastinput as fi
from fastinput._engine.rows import Interleaved
from fastinput.ops import row_shuffle
from fastinput.ops.row_shuffle import ExchangePlan, Incoming


def one_at_a_time(buffer: list[Any], incoming: list[Any], slots: np.ndarray) -> tuple[list[Any], list[Any]]:
    """The plain shuffle buffer: for each incoming row, the drawn slot's row comes out and the row takes its place."""
    buffer = list(buffer)
    drawn = []
    for slot, row in zip(slots, incoming, strict=True):
        drawn.append(buffer[slot])
        buffer[slot] = row
    return drawn, buffer


@pytest.mark.parametrize("capacity, count", [(1, 5), (4, 3), (10, 10), (7, 50), (100, 30), (70_000, 2_000)])
@pytest.mark.parametrize("pieces", [1, 3])
@pytest.mark.parametrize("native", [True, False], ids=["c_extension", "numpy"])
def test_exchange_is_drawing_one_row_at_a_time(capacity, count, pieces, native, monkeypatch):
    if native:
        pytest.importorskip("fastinput.ops._exchange")
    else:
        monkeypatch.setattr(row_shuffle, "_exchange", None)
    rng = np.random.default_rng(capacity * 31 + count + pieces)
    rounds = count // pieces
    count = rounds * pieces
    buffer_rows = np.arange(capacity, dtype=np.int64) * -1 - 1  # negative: rows from before
    blocks = [(np.arange(rounds, dtype=np.int64) + j * rounds,
               pa.chunked_array([pa.array([b"r%d" % (j * rounds + r) for r in range(rounds)], type=pa.binary())]))
              for j in range(pieces)]
    incoming = Incoming.of([Interleaved(blocks, rounds)] if pieces > 1 else blocks)
    arriving = [int(row) for row in incoming.rows()[0]]  # the rows in the order they enter the buffer
    if pieces > 1:
        assert arriving == [j * rounds + r for r in range(rounds) for j in range(pieces)]
    slots = rng.integers(0, capacity, count)
    expected_drawn, expected_buffer = one_at_a_time(list(buffer_rows), arriving, slots)

    slot_rows = np.arange(capacity)
    plan = ExchangePlan(slots, capacity, incoming.order, slot_rows)
    assert slot_rows.tolist() == list(range(capacity))  # the scratch array is left as it was
    columns = incoming.columns()
    drawn, after = plan.exchange(buffer_rows.copy(), columns[0])
    assert drawn.tolist() == expected_drawn and after[:capacity].tolist() == expected_buffer
    strings = pa.chunked_array([pa.array([b"b%d" % -row for row in buffer_rows], type=pa.binary())])
    drawn, after = plan.exchange(strings, columns[1])
    as_text = [f"b{-row}" if row < 0 else f"r{row}" for row in expected_drawn]
    assert [value.decode() for value in drawn.to_pylist()] == as_text
    assert [value.decode() for value in after.to_pylist()] == [
        f"b{-row}" if row < 0 else f"r{row}" for row in expected_buffer]


def parquet_files(folder: str) -> str:
    """Three files of 23 rows (an int, a float, a string with nulls), row groups of 7 rows; their glob."""
    for f in range(3):
        ids = [f * 100 + i for i in range(23)]
        table = pa.table({"id": ids, "x": [i / 4 for i in ids],
                          "s": [None if i % 5 == 0 else f"v{i}" for i in ids]})
        pq.write_table(table, os.path.join(folder, f"part-{f}.parquet"), row_group_size=7)
    return os.path.join(folder, "part-*.parquet")


def csv_files(folder: str) -> str:
    for f in range(3):
        with open(os.path.join(folder, f"part-{f}.csv"), "w") as out:
            out.write("id,x,s\n" + "".join(f"{f * 100 + i},{i / 4},v{i}\n" for i in range(23)))
    return os.path.join(folder, "part-*.csv")


def plain(batch: Any) -> Any:
    features, label = batch
    return [label.tolist()] + [[v.decode() if isinstance(v, bytes) else v for v in column.tolist()]
                               for column in features.values()]


def run(it: fi.Iterator, limit: int | None = None) -> list[Any]:
    out = []
    for batch in it:
        out.append(plain(batch))
        if limit is not None and len(out) == limit:
            break
    return out


BUILDERS = {
    "parquet": lambda folder, buffer, reads: fi.make_parquet_dataset(
        parquet_files(folder), 4, label_name="id", num_epochs=2, shuffle_seed=3, shuffle_buffer_size=buffer,
        num_parallel_reads=reads),
    "csv": lambda folder, buffer, reads: fi.make_csv_dataset(
        csv_files(folder), 4, label_name="id", num_epochs=2, shuffle_seed=3, shuffle_buffer_size=buffer,
        num_parallel_reads=reads),
}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("buffer, reads", [(5, 2), (16, 3), (1000, 2)])
def test_shuffled_one_liner_resumes_at_every_batch(tmp_path, kind, buffer, reads):
    make = lambda: BUILDERS[kind](str(tmp_path), buffer, reads)  # noqa: E731
    whole = run(iter(make()))
    assert sorted(row for batch in whole for row in batch[0]) == sorted(
        f * 100 + i for f in range(3) for i in range(23) for _ in range(2))
    assert run(iter(make())) == whole  # deterministic for the seed
    for cut in range(len(whole) + 1):
        with iter(make()) as it:
            if cut:
                assert run(it, cut) == whole[:cut]
            state = json.loads(json.dumps(it.get_state()))
        with iter(make()) as resumed:
            resumed.set_state(state)
            assert run(resumed) == whole[cut:], f"resumed after {cut} batches"
