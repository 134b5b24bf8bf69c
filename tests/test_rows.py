"""Units: interleave, shuffle and batch over row blocks give what they give over the rows one by one."""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from fastinput._engine.buffer import Failure
from fastinput._engine.metrics import StageMetrics
from fastinput._engine.rows import ELEMENTS, RowBlocks, RowQueue, alternate_order
from fastinput.ops.batch import BatchDataset
from fastinput.ops.interleave import InterleaveDataset
from fastinput.ops.shuffle import ShuffleDataset
from tests.helpers import fi_elements

SIZES = [7, 0, 30, 12, 1, 25]
"""Rows in each source; a source reads them as blocks of up to ``BLOCK`` rows."""
BLOCK = 4


def starts() -> list[int]:
    return [1000 * i for i in range(len(SIZES))]


def row_source(i: np.int64) -> fi.Dataset:
    """Source ``i`` as blocks of one column."""
    start, size = 1000 * int(i), SIZES[int(i)]
    cuts = list(range(0, size, BLOCK))
    return fi.Dataset.from_tensor_slices(np.array(cuts, dtype=np.int64)).map(
        lambda c: (np.arange(start + c, start + min(c + BLOCK, size)),))


def element_source(i: np.int64) -> fi.Dataset:
    start = 1000 * int(i)
    return fi.Dataset.from_tensor_slices(np.arange(start, start + SIZES[int(i)]))


def rows_of(blocks: list) -> list[int]:
    return [int(v) for block in blocks for v in block[0]]


def test_row_queue_cuts_blocks_and_keeps_failures_in_place():
    metrics = StageMetrics("stage")
    queue = RowQueue(metrics)
    boom = Failure(ValueError("boom"))
    queue.put([(np.arange(5),), (np.arange(0),), (np.arange(5, 8),), boom, (np.arange(8, 10),)])
    assert (queue.units, len(queue), metrics.buffer_occupancy) == (10, 4, 4)  # the empty block is dropped
    assert rows_of(queue.take(3)) == [0, 1, 2]
    assert rows_of(queue.take(10)) == [3, 4, 5, 6, 7]  # stops before the failure
    assert queue.head_is_failure and queue.take(5) == [boom]
    assert rows_of(queue.take(5)) == [8, 9]
    assert not queue and queue.units == 0 and metrics.buffer_occupancy == 0


@pytest.mark.parametrize("rounds", [1, 3])
def test_merged_rounds_are_the_rows_in_turn(rounds):
    pieces = [[(np.arange(rounds) + 100 * j,)] for j in range(3)]
    merged = RowBlocks().merge_rounds(pieces, rounds)
    by_element = ELEMENTS.merge_rounds([rows_of(piece) for piece in pieces], rounds)
    assert rows_of(merged) == by_element


@pytest.mark.parametrize("width, rounds", [(1, 4), (2, 5), (3, 1), (4, 0)])
def test_alternate_order_is_kept_read_only(width, rounds):
    order = alternate_order(width, rounds)
    pieces = np.arange(width * rounds).reshape(width, rounds)  # piece j holds rows j * rounds ... end to end
    assert order.tolist() == pieces.T.reshape(-1).tolist()  # one row of each piece in turn
    assert alternate_order(width, rounds) is order  # made once for a shape
    with pytest.raises(ValueError, match="read-only"):
        order[:1] = 0  # a caller cannot change what the next one gets


@pytest.mark.parametrize("cycle_length", [1, 2, 4])
@pytest.mark.parametrize("block_length", [1, 3])
@pytest.mark.parametrize("deterministic", [True, False])
def test_interleave_over_row_blocks_is_interleave_over_rows(cycle_length, block_length, deterministic):
    sources = fi.Dataset.range(len(SIZES))
    by_row = InterleaveDataset(sources, row_source, cycle_length, block_length, cycle_length, deterministic,
                               rows=RowBlocks())
    by_element = sources.interleave(element_source, cycle_length, block_length, num_parallel_calls=cycle_length)
    rows = rows_of(fi_elements(by_row))
    if deterministic:
        assert rows == [int(v) for v in fi_elements(by_element)]
    else:
        assert sorted(rows) == sorted(int(v) for v in fi_elements(by_element))


def test_interleave_over_row_blocks_needs_parallel_reads():
    with pytest.raises(fi.errors.InvalidArgumentError, match="num_parallel_calls"):
        InterleaveDataset(fi.Dataset.range(2), row_source, 2, 1, None, None, rows=RowBlocks())


@pytest.mark.parametrize("batch_size", [1, 5, 64])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_batch_over_row_blocks_is_batch_over_rows(batch_size, drop_remainder):
    sources = fi.Dataset.range(len(SIZES))
    blocks = InterleaveDataset(sources, row_source, 3, 1, 3, True, rows=RowBlocks())
    batches = fi_elements(BatchDataset(blocks, batch_size, drop_remainder, rows=RowBlocks(pack=lambda c: c[0])))
    rows = sources.interleave(element_source, 3, 1)
    expected = fi_elements(rows.batch(batch_size, drop_remainder))
    assert [b.tolist() for b in batches] == [b.tolist() for b in expected]


@pytest.mark.parametrize("buffer_size", [1, 10, 1000])
def test_shuffle_over_row_blocks_is_a_reproducible_permutation(buffer_size):
    sources = fi.Dataset.range(len(SIZES))

    def shuffled(seed: int) -> list[int]:
        blocks = InterleaveDataset(sources, row_source, 2, 1, 2, True, rows=RowBlocks())
        return rows_of(fi_elements(ShuffleDataset(blocks, buffer_size, seed, True, rows=RowBlocks())))

    in_order = rows_of(fi_elements(InterleaveDataset(sources, row_source, 2, 1, 2, True, rows=RowBlocks())))
    once = shuffled(7)
    assert sorted(once) == sorted(in_order) and once == shuffled(7)
    assert all(in_order.index(row) < k + buffer_size for k, row in enumerate(once))
    assert (once == in_order) == (buffer_size == 1)
