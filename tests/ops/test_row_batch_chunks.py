"""A batch over row blocks asked for several batches cuts them all in one call from the rows it carries over (one
hand-off for several), gives the same batches as one call per batch, and resumes exactly from a state saved between
any two calls."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastinput as fi
from fastinput._engine.checkpoint import resolve_state
from fastinput._engine.iterator import IteratorContext


def parquet_dataset(folder) -> fi.ParquetDataset:
    for f in range(2):
        ids = np.arange(f * 1000, f * 1000 + 230)
        pq.write_table(pa.table({"id": ids, "s": [f"v{i}" for i in ids]}), folder / f"part-{f}.parquet",
                       row_group_size=100)
    return fi.ParquetDataset(str(folder / "*.parquet"), batch_size=7, num_parallel_reads=2)


def plain(batches: list) -> list:
    return [[batch["id"].tolist(), batch["s"].tolist()] for batch in batches]


def take(stage, sizes: list[int]) -> list:
    out = []
    for n in sizes:
        try:
            chunk = stage.get_next_chunk(n)
        except StopIteration:
            break
        assert 1 <= len(chunk) <= n
        out.extend(chunk)
    return out


@pytest.mark.parametrize("calls", [0, 1, 3, 9])
def test_several_batches_per_call_resume_exactly(tmp_path, calls):
    ds = parquet_dataset(tmp_path)
    make = lambda: ds.make_iterator(IteratorContext(fi.Options()))  # noqa: E731
    one_by_one = plain(list(ds))
    stage = make()
    sizes = [int(n) for n in np.random.default_rng(calls).integers(1, 12, 200)]
    first = take(stage, sizes[:calls])
    state = json.loads(json.dumps(resolve_state(stage.get_state())))
    rest = take(stage, sizes[calls:])
    stage.close()
    assert plain(first + rest) == one_by_one
    assert len(first) > calls or calls == 0  # several batches came in one call
    resumed = make()
    resumed.set_state(state)
    assert plain(take(resumed, sizes[calls:])) == plain(rest)
    resumed.close()
