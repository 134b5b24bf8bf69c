"""``ds.take_while(predicate)``: the input's elements up to the first one the predicate rejects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastinput._engine.arguments import check_callable, fn_name
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops.filter import as_predicate_result, checked_predicate_spec
from fastinput.ops.map import call_on_element


class TakeWhileDataset(Dataset):
    # (its compute_element_spec also checks the predicate)
    traits = StageTraits("take_while", StageKind.SLICE, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, predicate: Callable) -> None:
        super().__init__([input_dataset])
        self.predicate = check_callable("take_while", "predicate", predicate)

    def __str__(self) -> str:
        return f"take_while({fn_name(self.predicate)})"

    def compute_element_spec(self) -> Any:
        return checked_predicate_spec(self, self.predicate)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _TakeWhileIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _TakeWhileIterator(DatasetIterator):
    """Pulls one element at a time (an element past the first rejected one must not be taken from the input).

    As in tf.data, an error (of the input or of the predicate) is raised in its place and the elements after it
    follow; the first element the predicate rejects ends the sequence for good.
    """

    def __init__(self, dataset: TakeWhileDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._predicate = dataset.predicate
        self._source = source
        self._done = False

    def produce(self) -> Any:
        if self._done:
            raise StopIteration
        element = self._source.get_next()
        if not as_predicate_result(call_on_element(self._predicate, element), self.name):
            self._done = True
            raise StopIteration
        return element

    def own_state(self) -> dict[str, Any]:
        return {"done": self._done}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._done = bool(state["done"])
