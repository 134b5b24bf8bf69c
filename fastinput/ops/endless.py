"""Endless sources: ``Dataset.counter`` (numbers counting up) and ``Dataset.random`` (random int64s)."""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np

from fastinput._engine import cardinality
from fastinput._engine.arguments import check_bool, check_int, check_seed
from fastinput._engine.checkpoint import decode_rng, encode_rng
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops.shuffle import EpochSeed, SeedSequence
from fastinput.ops.sources import PositionIterator, as_numpy_dtype
from fastinput.spec import TensorSpec

RANDOM_BOUND = 1 << 32
"""``Dataset.random`` draws from ``[0, RANDOM_BOUND)``, the range tf.data's values fall in (32 random bits)."""


class CounterDataset(Dataset):
    """``start, start + step, ...`` forever, as scalars of ``dtype`` (wrapping around as that dtype does)."""

    traits = StageTraits("counter", StageKind.IN_MEMORY)

    def __init__(self, start: int, step: int, dtype: Any) -> None:
        super().__init__()
        self.start = check_int("counter", "start", start)
        self.step = check_int("counter", "step", step)
        self.dtype = as_numpy_dtype(dtype)

    def __str__(self) -> str:
        return f"counter(start={self.start}, step={self.step}, dtype={self.dtype.name})"

    def cardinality(self) -> int:
        return cardinality.INFINITE

    def compute_element_spec(self) -> Any:
        return TensorSpec((), self.dtype)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _CounterIterator(self, ctx)


class _CounterIterator(PositionIterator):
    def __init__(self, dataset: CounterDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset

    def produce_chunk(self, n: int) -> list[Any]:
        ds = self._ds
        positions = np.arange(self._position, self._position + n, dtype=np.int64)
        self._position += n
        return list((positions * ds.step + ds.start).astype(ds.dtype, copy=False))


class RandomDataset(Dataset):
    """Random int64 scalars in ``[0, 2**32)``, forever; reproducible for a ``seed``.

    Each new iterator (each epoch under ``repeat``) draws the same sequence, unless ``rerandomize_each_iteration``:
    then each draws the next of the seed's sequences (as ``shuffle``'s ``reshuffle_each_iteration``). The values are
    not TensorFlow's for the same seed (numpy's PCG64, not Philox).
    """

    traits = StageTraits("random", StageKind.IN_MEMORY)

    def __init__(self, seed: int | None, rerandomize_each_iteration: bool | None) -> None:
        super().__init__()
        self.seed = check_seed("random", seed)
        self.rerandomize = bool(check_bool("random", "rerandomize_each_iteration", rerandomize_each_iteration,
                                           allow_none=True))
        self.seeds = SeedSequence(self.seed if self.seed is not None else secrets.randbits(63), self.rerandomize)

    def __str__(self) -> str:
        args = [f"seed={self.seed}"] if self.seed is not None else []
        if self.rerandomize:
            args.append("rerandomize_each_iteration=True")
        return f"random({', '.join(args)})"

    def cardinality(self) -> int:
        return cardinality.INFINITE

    def compute_element_spec(self) -> Any:
        return TensorSpec((), np.dtype(np.int64))

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _RandomIterator(self, ctx)


class _RandomIterator(DatasetIterator):
    def __init__(self, dataset: RandomDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset
        self._seed = dataset.seeds.next()
        self._rng = self._seed.generator()

    def produce_chunk(self, n: int) -> list[Any]:
        return list(self._rng.integers(0, RANDOM_BOUND, size=n, dtype=np.int64))

    def own_state(self) -> dict[str, Any]:
        return {**self._seed.to_state(), "rng": encode_rng(self._rng)}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._seed = EpochSeed.from_state(state)
        self._ds.seeds.continue_after(self._seed)
        self._rng = decode_rng(state["rng"])
