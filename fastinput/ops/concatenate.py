"""``ds.concatenate(other)``: the elements of one dataset, then another's."""

from __future__ import annotations

from typing import Any

from fastinput._engine import cardinality
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.spec import most_specific_common


class ConcatenateDataset(Dataset):
    traits = StageTraits("concatenate", StageKind.COMBINE)

    def __init__(self, first: Dataset, second: Dataset) -> None:
        if not isinstance(second, Dataset):
            raise InvalidArgumentError(f"concatenate: dataset must be a Dataset, got {type(second).__name__}")
        super().__init__([first, second])

    def cardinality(self) -> int:
        counts = [source.cardinality() for source in self.inputs]
        if cardinality.INFINITE in counts:
            return cardinality.INFINITE
        return cardinality.UNKNOWN if cardinality.UNKNOWN in counts else sum(counts)

    def __str__(self) -> str:
        return "concatenate()"

    def compute_element_spec(self) -> Any:
        """The most specific spec that both inputs' elements fit; their structures and dtypes must agree."""
        first, second = (dataset.element_spec for dataset in self.inputs)
        return most_specific_common(first, second, str(self))

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _ConcatenateIterator(self, ctx)


class _ConcatenateIterator(DatasetIterator):
    """Opens the second input only when the first has ended; ``inputs`` holds the one it reads."""

    def __init__(self, dataset: ConcatenateDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx, [dataset.inputs[0].make_iterator(ctx)])
        self._ds = dataset
        self._on_second = False

    def produce_chunk(self, n: int) -> list[Any]:
        try:
            return self.inputs[-1].get_next_chunk(n)
        except StopIteration:
            if self._on_second:
                raise
        self._open_second()
        return self.inputs[0].get_next_chunk(n)

    def _open_second(self) -> None:
        self._on_second = True
        self.inputs[0].close()
        self.inputs = [self._ds.inputs[1].make_iterator(self.ctx)]

    def own_state(self) -> dict[str, Any]:
        """Which input it reads (its state is that input's)."""
        return {"second": self._on_second}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        if state["second"]:
            self._open_second()
