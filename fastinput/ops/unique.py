"""``ds.unique()``: each distinct element once, in the order of its first appearance."""

from __future__ import annotations

from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine.checkpoint import decode_value, encode_value
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.spec import STRING

SUPPORTED = (np.dtype(np.int32), np.dtype(np.int64), STRING)
"""The element dtypes tf.data's unique accepts."""


def check_unique_spec(spec: Any, where: str) -> None:
    """tf.data's restriction: one component, of dtype int32, int64 or string."""
    if structure.is_nested(spec):
        raise InvalidArgumentError(f"{where}: unique only supports inputs with a single component, got {spec}")
    if spec.dtype not in SUPPORTED:
        raise InvalidArgumentError(f"{where}: unique does not support type {spec.dtype}: only int32, int64 and "
                                   "string elements are supported")


def element_key(element: Any, where: str) -> Any:
    """A hashable key equal for equal elements (same dtype, shape and values); checks what the spec could not."""
    if isinstance(element, bytes):
        return element
    if structure.is_nested(element) or not isinstance(element, (np.ndarray, np.generic)):
        raise InvalidArgumentError(f"{where}: unique only supports single int32, int64 or string components, got "
                                   f"{type(element).__name__}")
    array = np.asarray(element)
    dtype = STRING if array.dtype == object else array.dtype
    if dtype not in SUPPORTED:
        raise InvalidArgumentError(f"{where}: unique does not support type {array.dtype}: only int32, int64 and "
                                   "string elements are supported")
    values = tuple(array.ravel().tolist()) if array.dtype == object else array.tobytes()
    return (array.dtype.str, array.shape, values)


class UniqueDataset(Dataset):
    traits = StageTraits("unique", StageKind.FILTER, keeps_spec=True)  # (its compute_element_spec checks the dtype)

    def __init__(self, input_dataset: Dataset) -> None:
        super().__init__([input_dataset])

    def __str__(self) -> str:
        return "unique()"

    def compute_element_spec(self) -> Any:
        spec = self.inputs[0].element_spec
        check_unique_spec(spec, str(self))
        return spec

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _UniqueIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _UniqueIterator(DatasetIterator):
    """Passes on the elements not seen before, pulling one at a time (an element that cannot be compared is an
    error in its place); its state holds every distinct element seen, as tf.data's does."""

    def __init__(self, dataset: UniqueDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._seen: set[Any] = set()
        self._kept: list[Any] = []  # the distinct elements in order, for the state

    def produce(self) -> Any:
        while True:
            element = self._source.get_next()
            key = element_key(element, self.name)
            if key not in self._seen:
                self._seen.add(key)
                self._kept.append(element)
                return element

    def own_state(self) -> dict[str, Any]:
        return {"seen": [encode_value(element) for element in self._kept]}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._kept = [decode_value(element) for element in state["seen"]]
        self._seen = {element_key(element, self.name) for element in self._kept}
