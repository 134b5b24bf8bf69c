"""``ds.filter(predicate)``: keep the elements for which the predicate is true."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput._engine.arguments import check_callable, fn_name
from fastinput._engine.checkpoint import stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.resume import InputMarks, drop_units, marked
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


def checked_predicate_spec(stage: Dataset, predicate: Callable) -> Any:
    """``stage``'s input spec, once ``predicate`` is known to give a scalar boolean (tf.data checks this while
    building); a predicate that cannot be traced on placeholders is checked per element only."""
    input_spec = stage.inputs[0].element_spec
    try:
        result = mapped_spec(stage, predicate, None)
    except UnknownSpecError:
        return input_spec
    if not (isinstance(result, TensorSpec) and result.shape == () and result.dtype == np.bool_):
        raise InvalidArgumentError(f"{stage}: the predicate must return a scalar boolean, but it returns {result}")
    return input_spec


class FilterDataset(Dataset):
    # (its compute_element_spec also checks the predicate)
    traits = StageTraits("filter", StageKind.FILTER, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, predicate: Callable) -> None:
        super().__init__([input_dataset])
        self.predicate = check_callable("filter", "predicate", predicate)

    def __str__(self) -> str:
        return f"filter({fn_name(self.predicate)})"

    def compute_element_spec(self) -> Any:
        return checked_predicate_spec(self, self.predicate)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _FilterIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _FilterIterator(DatasetIterator):
    """Keeps the input elements the predicate accepts: one at a time for ``produce``, a pulled chunk at a time for
    ``produce_chunk``.

    A predicate that raises within a chunk: the elements kept before it go out, the error next, then the rest
    of the chunk (each element's predicate is called once). Saved while it holds such a rest, it saves the
    input's state before the chunk and how many of its elements it has passed (the failed one not yet, while
    its error waits): a restore pulls them again and drops them, then meets the error.
    """

    def __init__(self, dataset: FilterDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._predicate = dataset.predicate
        self._source = source
        self._marks = InputMarks(source)
        self._held: list[Any] = []  # the rest of a chunk that met an error, from ``_next`` on
        self._next = 0
        self._mark: dict[str, Any] | None = None  # the input's state before that chunk
        self._skip = 0  # after a restore: input elements already passed

    def produce(self) -> Any:
        if self._held or self._skip:
            return self.produce_chunk(1)[0]
        while True:
            element = self._source.get_next()
            if as_predicate_result(call_on_element(self._predicate, element), self.name):
                return element

    def produce_chunk(self, n: int) -> list[Any]:
        if self._skip:
            drop_units(self._source, self._skip)
            self._skip = 0
        out: list[Any] = []
        while not out:
            if not self._held:
                self._mark = self._marks.take()
                self._held, self._next = self._source.get_next_chunk(n), 0
            held, predicate = self._held, self._predicate
            for i in range(self._next, len(held)):
                try:
                    keep = as_predicate_result(call_on_element(predicate, held[i]), self.name)
                except Exception as exc:
                    self._next = i + 1
                    if not out:
                        raise
                    self._pending = exc  # after the elements kept before it
                    return out
                if keep:
                    out.append(held[i])
            self._held = []
        return out

    def get_state(self) -> dict[str, Any]:
        if self._held:
            passed = self._next - (self._pending is not None)
            return stage_state(self.op, {"skip": passed}, [marked(self._source, self._mark)])
        return stage_state(self.op, {"skip": self._skip}, [self._source.get_state()])

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._skip = state["skip"]
