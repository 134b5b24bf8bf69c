"""Checkpointing shuffle: save after N elements, restore into a fresh iterator, the same next elements.

Shuffle's inputs here are restorable test sources written on the extension API (the library's own sources
are other stages, tested with their own checkpoint tests), so these tests pin shuffle alone: its buffer, its
random generator, its seed sequence across epochs, the fused shuffle -> repeat and the row shuffle of CSV.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import fastinput as fi
from fastinput._engine.checkpoint import encode_value, resolve_state
from fastinput._engine.positions import Positioned, decode_positions, encode_positions
from fastinput._engine.rows import RowBlocks
from fastinput.extension import Dataset, DatasetIterator, IteratorContext, StageKind, StageTraits
from fastinput.ops.shuffle import ShuffleDataset
from tests.checkpoint.stages import Ints, IntsIterator

ERROR = "error"


class Counter(Ints):
    """0, 1, ... n-1 (as int64, or as nests of arrays and bytes with ``nested``), failing at ``fail_at``."""

    traits = StageTraits("test_counter", StageKind.IN_MEMORY)

    def __init__(self, n: int, fail_at: tuple[int, ...] = (), nested: bool = False, saves: bool = True,
                 positioned: bool = False) -> None:
        super().__init__(0, n, fail_at, saves)
        self.n, self.nested, self.positioned = n, nested, positioned

    def __str__(self) -> str:
        return f"counter({self.n})"

    def compute_element_spec(self) -> Any:
        if self.nested:
            return {"id": fi.TensorSpec((), np.int64), "vec": fi.TensorSpec((3,), np.float32),
                    "blob": fi.TensorSpec((), fi.string)}
        return fi.TensorSpec((), np.int64)

    def make_iterator(self, ctx: Any) -> DatasetIterator:
        return _PositionedCounterIterator(self, ctx) if self.positioned else _CounterIterator(self, ctx)


class _CounterIterator(IntsIterator):
    def element(self, i: int) -> Any:
        if self.dataset.nested:
            return {"id": np.int64(i), "vec": np.arange(3, dtype=np.float32) * i, "blob": b"x" * (i % 5)}
        return np.int64(i)


class _PositionedCounterIterator(_CounterIterator, Positioned):
    """Says where its elements came from (their index; not known for multiples of 3) and reads them again."""

    def __init__(self, dataset: Counter, ctx: Any) -> None:
        super().__init__(dataset, ctx)
        self.positions: list[Any] = []

    def produce_chunk(self, n: int) -> list[Any]:
        start = self.position
        chunk = super().produce_chunk(n)
        self.positions = [None if i % 3 == 0 else (i,) for i in range(self.position - len(chunk), self.position)]
        assert self.position - len(chunk) == start
        return chunk

    def track_positions(self) -> bool:
        return True

    def take_positions(self) -> list[Any]:
        return self.positions

    def reread(self, positions: list[Any]) -> list[Any]:
        return [self.element(i) for (i,) in positions]


def plain(element: Any) -> Any:
    """An element as comparable plain data (exact: arrays by dtype and bytes)."""
    if isinstance(element, tuple):  # a row block: columns
        return [plain(column) if isinstance(column, np.ndarray) else column.to_pylist() for column in element]
    return json.dumps(encode_value(element))


def take(it: fi.Iterator, k: int | None) -> list[Any]:
    """The next ``k`` outcomes (all, with None): elements, or ERROR where one was raised (iteration goes on)."""
    out: list[Any] = []
    while k is None or len(out) < k:
        try:
            out.append(plain(next(it)))
        except StopIteration:
            break
        except ValueError:
            out.append(ERROR)
    return out


def check_restore(make: Any, steps: int, more: int | None = None, rebuild: bool = True) -> dict[str, Any]:
    """Run ``steps`` outcomes, save, run on; a fresh iterator (of a rebuilt pipeline) restored from the saved
    state (through JSON) must give the same outcomes to the end, and the same next epoch (with ``more``: only
    ``more`` outcomes, and no next epoch). Returns the state."""
    ds = make()
    with iter(ds) as it:
        take(it, steps)
        state = json.loads(json.dumps(it.get_state()))
        expected = take(it, more)
    next_epoch = take(iter(ds), None if more is None else 0)
    restored_ds = make() if rebuild else ds
    with iter(restored_ds) as resumed:
        resumed.set_state(state)
        assert take(resumed, more) == expected
    assert take(iter(restored_ds), None if more is None else 0) == next_epoch
    return state


@pytest.mark.parametrize("buffer_size", [1, 7, 64, 1000])
@pytest.mark.parametrize("steps", [0, 1, 13, 99, 100, 101])
@pytest.mark.parametrize("seed", [5, None])
def test_shuffle_restores_exactly(buffer_size, steps, seed):
    check_restore(lambda: Counter(100).shuffle(buffer_size, seed=seed), steps)


@pytest.mark.parametrize("reshuffle", [True, False])
@pytest.mark.parametrize("rebuild", [True, False])
def test_seed_sequence_continues_after_a_restore(reshuffle, rebuild):
    """The epochs (new iterators) after a restore take the seeds the uninterrupted run's would."""
    check_restore(lambda: Counter(50).shuffle(50, reshuffle_each_iteration=reshuffle), 20, rebuild=rebuild)


@pytest.mark.parametrize("steps", [0, 3, 40, 59, 60])
def test_values_restore_bit_for_bit(steps):
    check_restore(lambda: Counter(60, nested=True).shuffle(16, seed=1), steps)


@pytest.mark.parametrize("buffer_size", [1, 4, 30])
@pytest.mark.parametrize("steps", [0, 2, 9, 10, 11, 25, 39])
def test_errors_are_met_again_or_not_at_all(buffer_size, steps):
    """Saved while an input error waits to be raised: a restored shuffle raises it; saved after: it does not."""
    state = check_restore(lambda: Counter(40, fail_at=(3, 10, 11, 30)).shuffle(buffer_size, seed=2), steps)
    assert state["root"]["stage"] == "shuffle"


@pytest.mark.parametrize("outer,inner", [(5, 20), (50, 3), (100, 100)])
@pytest.mark.parametrize("steps", [0, 7, 60, 120])
def test_shuffle_of_a_shuffle(outer, inner, steps):
    """The outer shuffle pulls chunks from a running shuffle: elements waiting between them are input state."""
    check_restore(lambda: Counter(120, fail_at=(50,)).shuffle(inner, seed=3).shuffle(outer, seed=4), steps)


@pytest.mark.parametrize("count", [2, 3, None])  # repeat(1) is a no-op, removed before the fusion
@pytest.mark.parametrize("buffer_size", [1, 8, 40])
@pytest.mark.parametrize("steps", [0, 5, 30, 39, 40, 41, 100])
def test_fused_shuffle_and_repeat(count, buffer_size, steps):
    """shuffle -> repeat (fused): the epoch, the current buffer; the next epoch's read-ahead is read again."""
    make = lambda: Counter(40, fail_at=(17,)).shuffle(buffer_size, seed=9).repeat(count)  # noqa: E731
    state = check_restore(make, steps, more=None if count else 150)
    assert state["root"]["stage"] == "shuffle_and_repeat"


def chunks(stage: DatasetIterator, sizes: list[int]) -> list[Any]:
    """Outcomes of ``get_next_chunk`` calls of these sizes (ERROR for a raised error; stops at the end)."""
    out: list[Any] = []
    for size in sizes:
        try:
            out.extend(plain(element) for element in stage.get_next_chunk(size))
        except StopIteration:
            break
        except ValueError:
            out.append(ERROR)
    return out


@pytest.mark.parametrize("buffer_size", [1, 5, 50])
@pytest.mark.parametrize("calls", [0, 1, 4, 20])
def test_chunked_requests(buffer_size, calls):
    """A consumer asking for chunks (batch, map_and_batch): elements pulled but not yet in the buffer are saved
    as the input's state before that pull and how many of it the buffer holds."""
    sizes = [int(k) for k in np.random.default_rng(calls).integers(1, 600, 30)]  # over 256: a pull is left over
    make = lambda: Counter(4000, fail_at=(20, 1500)).shuffle(buffer_size, seed=6).make_iterator(  # noqa: E731
        IteratorContext(fi.Options()))
    stage = make()
    chunks(stage, sizes[:calls])
    state = json.loads(json.dumps(resolve_state(stage.get_state())))
    expected = chunks(stage, sizes[calls:])
    resumed = make()
    resumed.set_state(state)
    assert chunks(resumed, sizes[calls:]) == expected


def test_state_is_json_and_names_the_stage():
    with iter(Counter(10).shuffle(4, seed=1)) as it:
        next(it)
        state = it.get_state()["root"]
    assert state["stage"] == "shuffle" and state["buffer_size"] == 4 and state["inputs"][0]["stage"] == "test_counter"
    json.dumps(state)


def test_a_different_buffer_size_is_refused():
    with iter(Counter(10).shuffle(4, seed=1)) as it:
        state = it.get_state()
    with iter(Counter(10).shuffle(5, seed=1)) as other, pytest.raises(fi.errors.InvalidArgumentError, match="buffer"):
        other.set_state(state)


def test_an_input_that_cannot_save_says_so_and_runs_on():
    with iter(Counter(30, saves=False).shuffle(4, seed=1)) as it:
        first = take(it, 10)
        with pytest.raises(fi.errors.UnimplementedError):
            it.get_state()
        assert len(first + take(it, None)) == 30


# -- rows (the CSV shuffle) ----------------------------------------------------------------------------------


class RowSource(Dataset):
    """``n`` rows in blocks of ``block``: an int64 column and an arrow binary column."""

    traits = StageTraits("test_rows", StageKind.IN_MEMORY)

    def __init__(self, n: int, block: int) -> None:
        super().__init__()
        self.n, self.block = n, block

    def __str__(self) -> str:
        return f"rows({self.n})"

    def compute_element_spec(self) -> Any:
        return (fi.TensorSpec((None,), np.int64), fi.TensorSpec((None,), fi.string))

    def make_iterator(self, ctx: Any) -> DatasetIterator:
        return _RowSourceIterator(self, ctx)


class _RowSourceIterator(DatasetIterator):
    def __init__(self, dataset: RowSource, ctx: Any) -> None:
        super().__init__(dataset, ctx)
        self.ds = dataset
        self.position = 0

    def produce_chunk(self, n: int) -> list[Any]:
        start, stop = self.position, min(self.position + self.ds.block, self.ds.n)
        if start >= stop:
            raise StopIteration
        self.position = stop
        ids = np.arange(start, stop, dtype=np.int64)
        return [(ids, pa.chunked_array([pa.array([b"r%d" % i for i in ids], type=pa.binary())]))]

    def own_state(self) -> dict[str, Any]:
        return {"position": self.position}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self.position = state["position"]


@pytest.mark.parametrize("buffer_size", [1, 10, 100, 1000])
@pytest.mark.parametrize("block", [1, 7, 64])
@pytest.mark.parametrize("steps", [0, 1, 3, 30])
def test_row_shuffle_restores_exactly(buffer_size, block, steps):
    """Each output of the row shuffle is a block of drawn rows; restored, the same blocks follow."""
    check_restore(lambda: ShuffleDataset(RowSource(300, block), buffer_size, None, True, rows=RowBlocks()), steps)


@pytest.mark.parametrize("value", [np.int64(3), np.float32(0.5), np.array(7, dtype=np.uint8), np.arange(4)[::2]])
def test_values_keep_their_shape(value):
    """A numpy scalar or 0-d array comes back as one, not as a 1-d array (a foundation fix shuffle needs)."""
    from fastinput._engine.checkpoint import decode_value

    back = decode_value(json.loads(json.dumps(encode_value(value))))
    assert type(back) is type(value) and back.shape == value.shape and back.dtype == value.dtype
    assert np.array_equal(back, value)


@pytest.mark.parametrize("buffer_size", [1, 16, 200])
@pytest.mark.parametrize("steps", [0, 5, 60, 199, 200, 250])
@pytest.mark.parametrize("repeat", [None, 2])
def test_positions_instead_of_values(buffer_size, steps, repeat):
    """Over a Positioned input the buffer is saved as positions (values only where one is not known) and read
    again on restore: the same elements follow, plain or fused with repeat."""
    def make() -> Any:
        ds = Counter(200, fail_at=(40,), nested=True, positioned=True).shuffle(buffer_size, seed=8)
        return ds if repeat is None else ds.repeat(repeat)

    state = check_restore(make, steps)
    shuffle = state["root"] if repeat is None else (state["root"]["inputs"] or [None])[0]
    if shuffle is not None:
        positions = decode_positions(shuffle["positions"])
        assert len(positions) == len(shuffle["buffer"])
        for position, value in zip(positions, shuffle["buffer"]):
            assert (position is None) != (value is None)  # a position, or else the value
            assert position is None or position[0] % 3


def test_positions_encode_compactly():
    positions = [("a", "f1", 10), None, ("a", "f2", 0), ("a", "f1", 99), (7,)]
    encoded = json.loads(json.dumps(encode_positions(positions)))
    assert decode_positions(encoded) == positions
    assert len(encoded["prefixes"]) == 3
