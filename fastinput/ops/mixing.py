"""The two mixing ops' descriptions: ``sample_from_datasets`` (random, weighted) and ``choose_from_datasets``.

Both run on ``fastinput.ops.directed_interleave``; they differ in where the choices come from
(``fastinput.ops.choices``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import numpy as np

from fastinput import errors
from fastinput._engine.arguments import check_bool, check_seed
from fastinput._engine.iterator import IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops.choices import Choices, DatasetChoices, WeightedChoices, WeightsDatasetChoices
from fastinput.ops.directed_interleave import DirectedInterleaveDataset
from fastinput.ops.shuffle import SeedSequence


class SampleFromDatasetsDataset(DirectedInterleaveDataset):
    """Each element from an input drawn at random with ``weights`` (a list, or a Dataset of weight vectors)."""

    traits = StageTraits("sample_from_datasets", StageKind.COMBINE)
    op_name = "sample_from_datasets"

    def __init__(self, datasets: Sequence[Dataset], weights: Any, seed: int | None, stop_on_empty_dataset: bool,
                 rerandomize_each_iteration: bool | None) -> None:
        weights_dataset = weights if isinstance(weights, Dataset) else None
        super().__init__(datasets, weights_dataset, stop_on_empty_dataset)
        self.weights = None if weights_dataset is not None else _check_weights(weights, len(self.datasets))
        self.seed = check_seed(self.op_name, seed)
        rerandomize = check_bool(self.op_name, "rerandomize_each_iteration", rerandomize_each_iteration,
                                 allow_none=True)
        self.rerandomize_each_iteration = bool(rerandomize)
        self.seeds = SeedSequence(self.seed if self.seed is not None else secrets.randbits(63),
                                  self.rerandomize_each_iteration)

    def __str__(self) -> str:
        weights = "<dataset>" if self.weights is None else [round(float(w), 6) for w in self.weights]
        extra = f", seed={self.seed}" if self.seed is not None else ""
        if self.stop_on_empty_dataset:
            extra += ", stop_on_empty_dataset=True"
        return f"sample_from_datasets(<{len(self.datasets)} datasets>, weights={weights}{extra})"

    def make_choices(self, ctx: IteratorContext) -> Choices:
        if self.weights is None:
            return WeightsDatasetChoices(self.inputs[-1].make_iterator(ctx), len(self.datasets), self.seeds)
        return WeightedChoices(self.weights, self.seeds)


def _check_weights(weights: Any, count: int) -> np.ndarray:
    """``weights`` (None: equal) as ``count`` non-negative finite floats, not all 0."""
    if weights is None:
        return np.full(count, 1.0 / count)
    try:
        array = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise errors.InvalidArgumentError(f"sample_from_datasets: weights must be a list of numbers or a Dataset, "
                                          f"got {weights!r}") from exc
    if array.shape != (count,):
        raise errors.InvalidArgumentError(f"sample_from_datasets: weights must hold one number per dataset "
                                          f"({count}), got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any() or array.sum() <= 0:
        raise errors.InvalidArgumentError(f"sample_from_datasets: weights must be non-negative and finite, and not "
                                          f"all 0, got {array.tolist()}")
    return array


class ChooseFromDatasetsDataset(DirectedInterleaveDataset):
    """Each element from the input that the next element of ``choice_dataset`` (int64 scalars) names."""

    traits = StageTraits("choose_from_datasets", StageKind.COMBINE)
    op_name = "choose_from_datasets"

    def __init__(self, datasets: Sequence[Dataset], choice_dataset: Dataset, stop_on_empty_dataset: bool) -> None:
        if not isinstance(choice_dataset, Dataset):
            raise errors.InvalidArgumentError(f"choose_from_datasets: choice_dataset must be a Dataset, got "
                                              f"{type(choice_dataset).__name__}")
        _check_choice_spec(choice_dataset)
        super().__init__(datasets, choice_dataset, stop_on_empty_dataset)

    def __str__(self) -> str:
        extra = "" if self.stop_on_empty_dataset else ", stop_on_empty_dataset=False"
        return f"choose_from_datasets(<{len(self.datasets)} datasets>{extra})"

    def make_choices(self, ctx: IteratorContext) -> Choices:
        return DatasetChoices(self.inputs[-1].make_iterator(ctx))


def _check_choice_spec(choice_dataset: Dataset) -> None:
    """tf.data's check: the choices must be int64 scalars (a spec that cannot be learnt is not checked)."""
    from fastinput.spec import TensorSpec, UnknownSpecError

    try:
        spec = choice_dataset.element_spec
    except UnknownSpecError:
        return
    if not (isinstance(spec, TensorSpec) and spec.dtype == np.int64 and spec.shape == ()):
        raise errors.InvalidArgumentError(f"choose_from_datasets: choice_dataset must be a dataset of scalar int64 "
                                          f"elements, got {spec}")
