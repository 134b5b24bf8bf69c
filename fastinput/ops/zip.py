"""``Dataset.zip``: combine several datasets element by element (ends with the shortest)."""

from __future__ import annotations

from typing import Any

from fastinput import structure
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.iterator import DatasetIterator, IteratorContext


def zip_datasets(*datasets: Any) -> Dataset:
    """``zip(a, b)`` gives tuples; ``zip((a, b))`` or ``zip({"x": a, "y": b})`` gives that structure."""
    if len(datasets) == 1 and structure.is_nested(datasets[0]):
        nest = datasets[0]
    elif datasets:
        nest = tuple(datasets)
    else:
        raise InvalidArgumentError("zip: needs at least one dataset")
    for leaf in structure.flatten(nest):
        if not isinstance(leaf, Dataset):
            raise InvalidArgumentError(f"zip: every argument must be a Dataset, got {type(leaf).__name__}")
    return ZipDataset(nest)


class ZipDataset(Dataset):
    def __init__(self, nest: Any) -> None:
        super().__init__(structure.flatten(nest))
        self.nest = nest

    def __str__(self) -> str:
        return f"zip(<{len(self._inputs)} datasets>)"

    def _element_spec(self) -> Any:
        return structure.pack_as(self.nest, [dataset.element_spec for dataset in self._inputs])

    def _make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _ZipIterator(self, ctx, [d._make_iterator(ctx) for d in self._inputs])


class _ZipIterator(DatasetIterator):
    def __init__(self, dataset: ZipDataset, ctx: IteratorContext, sources: list[DatasetIterator]) -> None:
        super().__init__(dataset, ctx, sources)
        self._nest = dataset.nest

    def _next_chunk(self, n: int) -> list[Any]:
        first = self.inputs[0].get_next_chunk(n)
        columns = [first]
        for source in self.inputs[1:]:
            column: list[Any] = []
            try:
                while len(column) < len(first):
                    column.extend(source.get_next_chunk(len(first) - len(column)))
            except StopIteration:
                if not column:
                    raise
            columns.append(column)
        count = min(len(c) for c in columns)
        return [structure.pack_as(self._nest, row) for row in zip(*(c[:count] for c in columns))]
