"""``ds.rejection_resample(class_func, target_dist, initial_dist=None, seed=None)``: resample to a class mix.

tf.data builds ``rejection_resample`` out of public ops, and so does this module, step for step, so that the
elements follow the same rules (TensorFlow 2.21's ``Dataset.rejection_resample``):

- ``initial_dist`` (the classes' share in the input) is given, or estimated as the input streams: class counts
  that start at 10 per class, updated every 32 elements (``batch(32).scan(...).unbatch()``).
- From it and ``target_dist`` come, per class, an acceptance probability ``a_i = (r_i - m) / (max r - m)``, with
  ``r_i = target_i / initial_i`` and ``m = min r``.
- The output mixes two streams, each element a ``(class, element)`` pair: the input as it is, with probability
  ``m``, and the input with each element kept with probability ``a_class`` (a ``filter`` drawing one uniform
  number per element), with ``1 - m``: ``sample_from_datasets(..., stop_on_empty_dataset=True)``. When
  ``initial_dist`` is given and ``m`` is 1 (or 0) only the first (second) stream is used.

So an element can come twice (once from each stream), and the input is read two or three times at once, as in
tf.data. The random numbers are fastinput's own (``Dataset.random`` and ``sample_from_datasets``' draws): a
``seed`` gives the same elements every run, not tf.data's. A class outside ``[0, len(target_dist))`` raises an
``InvalidArgumentError`` naming it in its place (tf.data's gather fails there too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput._engine.arguments import check_callable
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError

logger = logging.getLogger("fastinput")

ESTIMATION_BATCH = 32
"""tf.data's ``dist_estimation_batch_size``: the estimated class shares are updated once per this many elements."""

SMOOTHING_COUNT = 10
"""tf.data's ``smoothing_constant``: every class's count starts at this many."""

_TINY = np.finfo(np.float32).tiny


def rejection_resample(dataset: Dataset, class_func: Callable, target_dist: Any, initial_dist: Any = None,
                       seed: int | None = None) -> Dataset:
    """``(class_func(element), element)`` pairs resampled towards ``target_dist`` (see the module's docstring)."""
    check_callable("rejection_resample", "class_func", class_func)
    target = _distribution("target_dist", target_dist)
    if initial_dist is None:
        initial_ds = _estimated_shares(dataset.map(class_func), len(target))
        mixing_ds = initial_ds.map(lambda initial: _acceptance_and_mixing(initial, target))
        acceptance_ds = mixing_ds.map(lambda acceptance, _: acceptance)
        original_ds = mixing_ds.map(lambda _, original: original)
        original_static = None
    else:
        initial = _distribution("initial_dist", initial_dist)
        if len(initial) != len(target):
            raise InvalidArgumentError(f"rejection_resample: initial_dist has {len(initial)} classes, target_dist "
                                       f"{len(target)}")
        acceptance, original = _acceptance_and_mixing(initial, target)
        initial_ds = Dataset.from_tensors(initial).repeat()
        acceptance_ds = Dataset.from_tensors(acceptance).repeat()
        original_ds = Dataset.from_tensors(original).repeat()
        with np.errstate(divide="ignore", invalid="ignore"):
            original_static = np.min(target / initial)
    filtered = _filtered(dataset, acceptance_ds, initial_ds, class_func, seed).prefetch(3)

    def with_class(*element: Any) -> tuple[Any, Any]:
        return class_func(*element), element[0] if len(element) == 1 else element

    if original_static == 1:
        return dataset.map(with_class)
    if original_static == 0:
        return filtered
    weights = original_ds.map(lambda original: np.array([original, 1 - original], dtype=np.float32))
    return Dataset.sample_from_datasets([dataset.map(with_class), filtered], weights=weights, seed=seed,
                                        stop_on_empty_dataset=True)


def _distribution(name: str, value: Any) -> np.ndarray:
    """A class distribution argument as tf.data takes it: a float32 vector of finite, non-negative shares."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"rejection_resample: {name} must be a vector of numbers, got {value!r}") from exc
    if array.ndim != 1 or not len(array) or not np.all(np.isfinite(array)) or np.any(array < 0):
        raise InvalidArgumentError(f"rejection_resample: {name} must be a non-empty vector of finite, non-negative "
                                   f"numbers, got {value!r}")
    return array


def _acceptance_and_mixing(initial: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """Per class the probability of keeping an element in the filtered stream, and the probability of drawing
    from the unfiltered input (tf.data's ``_calculate_acceptance_probs_with_mixing``, in float32)."""
    ratio = target / (initial + _TINY)
    low, high = ratio.min(), ratio.max()
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((ratio - low) / (high - low)).astype(np.float32), np.float32(low)


def _estimated_shares(classes: Dataset, count: int) -> Dataset:
    """Per element, the class shares seen so far: counts from ``SMOOTHING_COUNT`` each, updated every
    ``ESTIMATION_BATCH`` classes (each batch's estimate repeated for its elements)."""

    def update(seen: np.ndarray, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = np.asarray(batch).astype(np.int64)
        in_range = batch[(batch >= 0) & (batch < count)]  # as tf.one_hot: a class out of range counts nowhere
        seen = seen + np.bincount(in_range, minlength=count).astype(np.int64)
        shares = (seen / seen.sum()).astype(np.float32)
        return seen, np.tile(shares, (ESTIMATION_BATCH, 1))

    start = np.full(count, SMOOTHING_COUNT, dtype=np.int64)
    return classes.batch(ESTIMATION_BATCH).scan(start, update).unbatch()


def _filtered(dataset: Dataset, acceptance_ds: Dataset, initial_ds: Dataset, class_func: Callable,
              seed: int | None) -> Dataset:
    """``(class, element)`` for the elements a uniform draw keeps, each with its class's acceptance probability."""
    warned = [False]  # the high-rejection warning is logged once per pipeline (tf.data prints it ten times)

    def warn_if_mostly_rejected(acceptance: np.ndarray, initial: np.ndarray) -> np.ndarray:
        rejected = float(np.sum((1 - acceptance) * initial))
        if rejected >= 0.5 and not warned[0]:
            warned[0] = True
            logger.warning("rejection_resample: the sampler rejects %.0f%% of the elements (class shares %s, "
                           "acceptance %s)", 100 * rejected, initial.tolist(), acceptance.tolist())
        return acceptance

    def with_probability(acceptance: np.ndarray, element: Any, draw: Any) -> tuple[Any, np.float32, Any, Any]:
        label = class_func(*element) if isinstance(element, tuple) else class_func(element)
        index = int(label)
        if not 0 <= index < len(acceptance):
            raise InvalidArgumentError(f"rejection_resample: class_func returned {index}, outside [0, "
                                       f"{len(acceptance)})")
        return label, acceptance[index], element, draw

    def kept(label: Any, probability: np.float32, element: Any, draw: Any) -> bool:
        return bool(np.float32((int(draw) >> 8 & 0xFFFFFF) * 2.0 ** -24) < probability)

    acceptance_ds = Dataset.zip((acceptance_ds, initial_ds)).map(warn_if_mostly_rejected)
    draws = Dataset.random(seed=None if seed is None else _stream_seed(seed))
    return (Dataset.zip((acceptance_ds, dataset, draws)).map(with_probability).filter(kept)
            .map(lambda label, probability, element, draw: (label, element)))


def _stream_seed(seed: int) -> int:
    """The filter's random stream's seed: derived from ``seed`` so that it is not the mix's own stream."""
    return int(np.random.SeedSequence([int(seed), 0x5EED]).generate_state(1, np.uint32)[0])
