"""``ds.rebatch(batch_size)``: cut an already batched dataset into batches of other sizes.

The same as ``unbatch().batch(batch_size)``, without making an element per
row: ``batch``'s own iterator runs over *batch rows* (``BatchRows``), units
that are the rows of the input's batches, cut and joined with one numpy call
per component, the way it runs over the row blocks of a CSV file
(``fastinput._engine.rows``). With a list of sizes the batches take them in
turn, as tf.data's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine.arguments import check_bool, check_int
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.rows import split_rows
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.batch import BatchIterator
from fastinput.spec import SparseSpec


class BatchRows:
    """Units for ``batch``'s iterator whose items are batches (nests of arrays sharing a first dimension) and
    whose unit is a row of one: what ``rebatch`` counts, cuts and joins."""

    def __init__(self, stage: str) -> None:
        self._stage = stage

    def rows(self, batch: Any) -> int:
        """The rows of one batch; InvalidArgumentError for a scalar, sparse or unequally long component."""
        sizes = set()
        for i, leaf in enumerate(structure.flatten(batch)):
            if isinstance(leaf, structure.SparseArray):
                raise InvalidArgumentError(f"{self._stage}: component {i} is a SparseArray; rebatch needs dense "
                                           "components")
            if np.ndim(leaf) == 0:
                raise InvalidArgumentError(f"{self._stage}: component {i} is a scalar; every component needs a "
                                           "first (batch) dimension")
            sizes.add(len(leaf))
        if len(sizes) > 1:
            raise InvalidArgumentError(f"{self._stage}: the components of a batch have different first dimensions "
                                       f"{sorted(sizes)}")
        return sizes.pop()

    def count(self, items: list[Any]) -> int:
        return sum(self.rows(item) for item in items)

    def request(self, need: int) -> int:
        """One input batch at a time: a request to the input counts its batches, not rows."""
        return 1

    def split(self, items: list[Any], n: int) -> tuple[list[Any], list[Any]]:
        return split_rows(items, n, self.rows, _cut)

    @staticmethod
    def combine(batches: list[Any]) -> Any:
        """One batch of the rows of ``batches``, one after another."""
        if len(batches) == 1:
            return batches[0]
        columns = zip(*(structure.flatten(batch) for batch in batches))
        return structure.pack_as(batches[0], [np.concatenate(column) for column in columns])


def _cut(batch: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a batch (views)."""
    return structure.map_structure(lambda leaf: leaf[start:stop], batch)


def _batch_sizes(batch_size: Any) -> tuple[int, ...]:
    """``batch_size`` (an int, or a non-empty list of them) checked: each at least 1."""
    if isinstance(batch_size, np.ndarray):
        batch_size = batch_size.tolist()
    if isinstance(batch_size, (list, tuple)):
        if not batch_size:
            raise InvalidArgumentError("rebatch: batch_size must be an integer or a non-empty list of integers, "
                                       "got []")
        return tuple(check_int("rebatch", f"batch_size[{i}]", size, minimum=1) for i, size in enumerate(batch_size))
    return (check_int("rebatch", "batch_size", batch_size, minimum=1),)


class RebatchDataset(Dataset):
    traits = StageTraits("rebatch", StageKind.BATCH)

    def __init__(self, input_dataset: Dataset, batch_size: int | Sequence[int], drop_remainder: bool) -> None:
        super().__init__([input_dataset])
        self.batch_sizes = _batch_sizes(batch_size)
        self.batch_size = self.batch_sizes[0]
        self.drop_remainder = check_bool("rebatch", "drop_remainder", drop_remainder)
        self._list = not isinstance(batch_size, (int, np.integer))

    def __str__(self) -> str:
        sizes = list(self.batch_sizes) if self._list else self.batch_size
        return f"rebatch({sizes}{', drop_remainder=True' if self.drop_remainder else ''})"

    def compute_element_spec(self) -> Any:
        """tf.data's: the batch dimension is the size where every batch has it (one size, and either
        ``drop_remainder`` or input batches of a known size it divides); else unknown."""
        input_spec = self.inputs[0].element_spec
        leaves = structure.flatten(input_spec)
        for i, leaf in enumerate(leaves):
            if leaf.shape is not None and not leaf.shape:
                raise InvalidArgumentError(f"{self}: component {i} is a scalar ({leaf}); rebatch needs batched "
                                           "elements (add a batch first)")
            if isinstance(leaf, SparseSpec):
                raise InvalidArgumentError(f"{self}: component {i} is a SparseArray; rebatch needs dense components")
        size: int | None = self.batch_size if len(set(self.batch_sizes)) == 1 else None
        if size is not None and not self.drop_remainder:
            known = {leaf.shape[0] if leaf.shape else None for leaf in leaves}
            given = known.pop() if len(known) == 1 else None
            size = size if given is not None and given % size == 0 else None
        return structure.map_structure(lambda leaf: type(leaf)((size, *leaf.shape[1:]), leaf.dtype)
                                       if leaf.shape is not None else leaf, input_spec)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        units = BatchRows(str(self))
        return BatchIterator(self, ctx, self.inputs[0].make_iterator(ctx), units.combine, units=units,
                             sizes=self.batch_sizes)
