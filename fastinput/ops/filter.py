"""``ds.filter(predicate)``: keep the elements for which the predicate is true."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput._engine.arguments import check_callable, fn_name
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.map import call_on_element, mapped_spec
from fastinput.spec import TensorSpec, UnknownSpecError


def as_predicate_result(value: Any, stage: str) -> bool:
    """The predicate's value as a bool; anything but a scalar boolean is an error, as in tf.data."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype == np.bool_:
        return bool(value)
    if hasattr(value, "numpy"):  # a TensorFlow / PyTorch boolean scalar
        return as_predicate_result(value.numpy(), stage)
    raise InvalidArgumentError(
        f"{stage}: the predicate must return a scalar boolean, got {value!r} ({type(value).__name__})")


class FilterDataset(Dataset):
    # (its compute_element_spec also checks the predicate)
    traits = StageTraits("filter", StageKind.FILTER, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, predicate: Callable) -> None:
        super().__init__([input_dataset])
        self.predicate = check_callable("filter", "predicate", predicate)

    def __str__(self) -> str:
        return f"filter({fn_name(self.predicate)})"

    def compute_element_spec(self) -> Any:
        """The input's spec, once the predicate is known to give a scalar boolean (tf.data checks this while
        building); a predicate that cannot be traced on placeholders is checked per element only."""
        input_spec = self.inputs[0].element_spec
        try:
            result = mapped_spec(self, self.predicate, None)
        except UnknownSpecError:
            return input_spec
        if not (isinstance(result, TensorSpec) and result.shape == () and result.dtype == np.bool_):
            raise InvalidArgumentError(f"{self}: the predicate must return a scalar boolean, but it returns {result}")
        return input_spec

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _FilterIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _FilterIterator(DatasetIterator):
    def __init__(self, dataset: FilterDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._predicate = dataset.predicate
        self._source = source

    def produce(self) -> Any:
        while True:
            element = self._source.get_next()
            if as_predicate_result(call_on_element(self._predicate, element), self.name):
                return element
