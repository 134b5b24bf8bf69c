"""Where ``sample_from_datasets`` / ``choose_from_datasets`` take each element from: blocks of input indices.

A chooser hands the directed interleave (``fastinput.ops.directed_interleave``) its choices a block at a time, as
a numpy array of input indices, so that picking costs one numpy call per block, not Python per element:

- ``WeightedChoices``: fixed weights, ``_BLOCK`` draws at a time from a seeded generator (Walker's alias
  method). An input that ends is given weight 0 (tf.data draws again when it picks an ended input:
  the same distribution).
- ``WeightsDatasetChoices``: one draw per element of a dataset of weight vectors (tf.data's weights as a Dataset).
- ``DatasetChoices``: the indices a dataset of int64 scalars gives (``choose_from_datasets``).

The draws depend on the seed only, never on how many elements a consumer asks for at a time, so a seed gives the
same sequence however the pipeline is consumed. Saved (``own_state``), a chooser keeps its generator's state; the
stage keeps the undelivered part of the block.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastinput import errors
from fastinput._engine.checkpoint import decode_rng, encode_rng
from fastinput._engine.iterator import DatasetIterator
from fastinput.ops import mix_layout
from fastinput.ops.shuffle import EpochSeed, SeedSequence

_BLOCK = 1024
"""Draws made at once (and weight vectors or indices pulled at once from a dataset that gives them)."""


class Choices:
    """A source of input indices, a block at a time."""

    source: DatasetIterator | None = None
    """The iterator the choices come from (a dataset of weights or of indices), if any: one of the stage's inputs."""

    in_range = False
    """Whether every index drawn names an input (so the stage need not check)."""

    def draw(self) -> np.ndarray:
        """The next block of indices (int64, at least one); ``StopIteration`` when there are no more."""
        raise NotImplementedError

    def forget(self, index: int) -> bool:
        """Input ``index`` has ended (and the stage goes on without it): whether any input can still be chosen."""
        return True

    def own_state(self) -> dict[str, Any]:
        return {}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        """Take up the state ``own_state`` saved."""


class _Seeded(Choices):
    """A chooser drawing from a generator seeded from its node's seed sequence (one seed per iterator, as a
    shuffle's); restored, it moves the sequence on to where the saved run stood."""

    def __init__(self, seeds: SeedSequence) -> None:
        self._seeds = seeds
        self.seed = seeds.next()
        self._rng = self.seed.generator()

    def own_state(self) -> dict[str, Any]:
        return {**self.seed.to_state(), "rng": encode_rng(self._rng)}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self.seed = EpochSeed.from_state(state)
        self._seeds.continue_after(self.seed)
        self._rng = decode_rng(state["rng"])


class WeightedChoices(_Seeded):
    """Draws from fixed weights (non-negative, summing to more than 0) by Walker's alias method: one uniform index
    and one uniform number per draw, compared with the index's share (half the cost of a binary search of the
    cumulative weights, which mispredicts its branches)."""

    in_range = True

    def __init__(self, weights: np.ndarray, seeds: SeedSequence) -> None:
        super().__init__(seeds)
        self._set_weights(weights.astype(np.float64))
        self._shift = _raw_bits_shift(len(weights), self._rng)

    def _set_weights(self, weights: np.ndarray) -> None:
        self._weights = weights
        self._share, self._alias = _alias_table(weights)
        self._uniform = bool((self._share == 1.0).all())  # every index is kept: the alias step can be left out

    def draw(self) -> np.ndarray:
        if self._shift is None:
            index = self._rng.integers(0, len(self._weights), _BLOCK)
        else:  # the same numbers, from the generator's raw bits (see _raw_bits_shift)
            index = mix_layout.draw_bits(self._rng.bit_generator, self._shift, _BLOCK)
        if self._uniform and self._shift is not None:
            # the unused uniform numbers are skipped, not drawn: one output each; ``advance`` also drops a half-output
            # kept back, of which the raw-bits draws keep none
            self._rng.bit_generator.advance(_BLOCK)
            return index
        uniform = self._rng.random(_BLOCK)  # drawn even where unused, so the generator moves on the same way
        if self._uniform:
            return index
        return np.where(uniform < self._share[index], index, self._alias[index])

    def forget(self, index: int) -> bool:
        weights = self._weights.copy()
        weights[index] = 0.0
        if not weights.sum() > 0:
            return False
        self._set_weights(weights)
        return True

    def own_state(self) -> dict[str, Any]:
        return {**super().own_state(), "weights": self._weights.tolist()}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        super().restore_own_state(state)
        self._set_weights(np.asarray(state["weights"], dtype=np.float64))
        self._shift = _raw_bits_shift(len(self._weights), self._rng)


def _raw_bits_shift(count: int, rng: np.random.Generator) -> np.uint32 | None:
    """Where ``count`` is a power of 2 (from 2), the shift that makes ``rng.integers(0, count, n)`` (n even) from the
    generator's raw 64-bit outputs; None elsewhere. For such a range numpy's ``integers`` (Lemire's method, which
    never rejects there) takes the top bits of one 32-bit half of an output per number, the low half first: the
    raw outputs seen as uint32s, shifted, are the same numbers at a third of the cost (numpy's per-number calls).
    It holds from a state with no half-output kept back (``has_uint32``), which whole blocks of draws keep so."""
    state = rng.bit_generator.state
    if count < 2 or count & (count - 1) or state["bit_generator"] != "PCG64" or state["has_uint32"]:
        return None
    return np.uint32(32 - (count.bit_length() - 1))


def _alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table (Vose's construction): index ``i`` drawn uniformly is kept with probability
    ``share[i]``, else ``alias[i]`` is taken; each index then comes with probability proportional to its weight."""
    count = len(weights)
    scaled = weights * (count / weights.sum())
    share, alias = np.ones(count), np.arange(count, dtype=np.int64)
    small = [i for i in range(count) if scaled[i] < 1.0]
    large = [i for i in range(count) if scaled[i] >= 1.0]
    while small and large:
        low, high = small.pop(), large.pop()
        share[low], alias[low] = scaled[low], high
        scaled[high] -= 1.0 - scaled[low]
        (small if scaled[high] < 1.0 else large).append(high)
    return share, alias  # what is left in either list keeps share 1 (rounding)


class WeightsDatasetChoices(_Seeded):
    """One draw per weight vector that ``source`` gives (each of length ``count``, non-negative, not all 0)."""

    def __init__(self, source: DatasetIterator, count: int, seeds: SeedSequence) -> None:
        super().__init__(seeds)
        self.source = source
        self._count = count
        self._rows = np.empty((0, count))  # weight vectors pulled and not drawn from yet (after a bad one)

    def draw(self) -> np.ndarray:
        if not len(self._rows):
            self._rows = _weight_rows(self.source.get_next_chunk(_BLOCK), self._count)
        weights = self._rows
        cumulative = np.cumsum(weights, axis=1)
        bad = ~(np.isfinite(cumulative[:, -1]) & (cumulative[:, -1] > 0) & (weights >= 0).all(axis=1))
        good = int(np.argmax(bad)) if bad.any() else len(weights)
        if good == 0:  # the error takes that vector's place
            self._rows = weights[1:]
            raise errors.InvalidArgumentError(f"sample_from_datasets: weights {weights[0].tolist()} must be "
                                              "non-negative and finite, and not all 0")
        self._rows, cumulative = weights[good:], cumulative[:good]
        uniform = self._rng.random(good) * cumulative[:, -1]
        return (cumulative <= uniform[:, None]).sum(axis=1).astype(np.int64)

    def own_state(self) -> dict[str, Any]:
        return {**super().own_state(), "rows": self._rows.tolist()}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        super().restore_own_state(state)
        self._rows = np.asarray(state["rows"], dtype=np.float64).reshape(-1, self._count)


def _weight_rows(rows: list[Any], count: int) -> np.ndarray:
    """The weight vectors of a chunk as one float64 matrix (``count`` columns); ``InvalidArgumentError`` otherwise."""
    try:
        weights = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise errors.InvalidArgumentError(f"sample_from_datasets: the weights dataset must give vectors of "
                                          f"{count} numbers: {exc}") from exc
    if weights.ndim != 2 or weights.shape[1] != count:
        raise errors.InvalidArgumentError(f"sample_from_datasets: the weights dataset must give vectors of {count} "
                                          f"numbers (one per dataset), got shape {weights.shape[1:]}")
    return weights


class DatasetChoices(Choices):
    """The indices ``source`` gives (int64 scalars); the stage checks their range where each is used."""

    def __init__(self, source: DatasetIterator) -> None:
        self.source = source

    def draw(self) -> np.ndarray:
        chunk = self.source.get_next_chunk(_BLOCK)
        return np.fromiter(chunk, dtype=np.int64, count=len(chunk))
