"""``take``, ``skip`` and ``shard``: keep a part of the input by position."""

from __future__ import annotations

from typing import Any

from fastinput._engine import cardinality
from fastinput._engine.arguments import check_int
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError


class TakeDataset(Dataset):
    traits = StageTraits("take", StageKind.SLICE, passes_through=True, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, count: int) -> None:
        super().__init__([input_dataset])
        self.count = check_int("take", "count", count, minimum=0, allow=(-1,))

    def cardinality(self) -> int:
        n = self.inputs[0].cardinality()
        if n == cardinality.UNKNOWN:
            return n
        if n == cardinality.INFINITE:
            return self.count
        return n if self.count == -1 else min(n, self.count)

    def __str__(self) -> str:
        return f"take({self.count})"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _TakeIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _TakeIterator(DatasetIterator):
    def __init__(self, dataset: TakeDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._left = dataset.count  # -1: unlimited

    def produce_chunk(self, n: int) -> list[Any]:
        if self._left == 0:
            raise StopIteration
        if self._left > 0:
            n = min(n, self._left)
        chunk = self._source.get_next_chunk(n)
        if self._left > 0:
            self._left -= len(chunk)
        return chunk

    def own_state(self) -> dict[str, Any]:
        return {"left": self._left}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._left = state["left"]


class SkipDataset(Dataset):
    traits = StageTraits("skip", StageKind.SLICE, passes_through=True, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, count: int) -> None:
        super().__init__([input_dataset])
        self.count = check_int("skip", "count", count, minimum=0, allow=(-1,))

    def cardinality(self) -> int:
        n = self.inputs[0].cardinality()
        if n < 0:
            return n
        return 0 if self.count == -1 else max(0, n - self.count)

    def __str__(self) -> str:
        return f"skip({self.count})"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _SkipIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _SkipIterator(DatasetIterator):
    def __init__(self, dataset: SkipDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._count = dataset.count
        self._to_skip = dataset.count

    def produce_chunk(self, n: int) -> list[Any]:
        if self._to_skip == -1:
            raise StopIteration
        while self._to_skip > 0:
            try:
                self._to_skip -= len(self._source.get_next_chunk(min(self._to_skip, 4096)))
            except StopIteration:
                raise
            except Exception:
                # tf.data's skip forgets what it skipped before an error and counts again from the start
                # (range(10) failing at 2 and 5, skip(3): error, error, 9): errors keep their tf.data places.
                self._to_skip = self._count
                raise
        return self._source.get_next_chunk(n)

    def own_state(self) -> dict[str, Any]:
        return {"to_skip": self._to_skip}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._to_skip = state["to_skip"]


class ShardDataset(Dataset):
    traits = StageTraits("shard", StageKind.SLICE, passes_through=True, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, num_shards: int, index: int) -> None:
        super().__init__([input_dataset])
        self.num_shards = check_int("shard", "num_shards", num_shards, minimum=1)
        self.index = check_int("shard", "index", index, minimum=0)
        if self.index >= self.num_shards:
            raise InvalidArgumentError(
                f"shard: index must be smaller than num_shards ({self.num_shards}), got {self.index}")

    def cardinality(self) -> int:
        n = self.inputs[0].cardinality()
        if n < 0:
            return n
        return n // self.num_shards + (self.index < n % self.num_shards)

    def __str__(self) -> str:
        return f"shard({self.num_shards}, {self.index})"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _ShardIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _ShardIterator(DatasetIterator):
    def __init__(self, dataset: ShardDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._shards = dataset.num_shards
        self._position = -dataset.index  # input position relative to this shard's first element
        self._committed = self._position  # the position after the last element kept (or error raised)

    def produce_chunk(self, n: int) -> list[Any]:
        while True:
            try:
                chunk = self._source.get_next_chunk(n * self._shards)
            except StopIteration:
                raise
            except Exception:
                # As tf.data's shard: an error takes no position, and one met while skipping to the next kept
                # element also takes back the elements skipped since the last one kept (they are not counted).
                if self._position % self._shards:
                    self._position = self._committed
                self._committed = self._position
                raise
            first = (-self._position) % self._shards
            kept = chunk[first::self._shards]
            if kept:
                self._committed = self._position + first + self._shards * (len(kept) - 1) + 1
            self._position += len(chunk)
            if kept:
                return kept

    def own_state(self) -> dict[str, Any]:
        return {"position": self._position, "committed": self._committed}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._position, self._committed = state["position"], state["committed"]
