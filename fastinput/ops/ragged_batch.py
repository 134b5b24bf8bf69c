"""``ds.ragged_batch(batch_size)``: batch elements whose first dimension varies into ``fi.RaggedArray``\\ s.

As tf.data decides from the element spec, not from the values: a component
whose shape is fully known is stacked as ``batch`` stacks it; one whose
first dimension is unknown becomes a RaggedArray (its rows' values end to
end, and their offsets). A component with another unknown dimension would
need more than one ragged dimension, which ``fi.RaggedArray`` does not have:
it is refused when the pipeline is built. The batches are cut by
``batch``'s iterator (checkpoints as ``batch``'s; errors as tf.data's
``map -> batch``: a batch that meets one is dropped, and that error raised).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine import cardinality, conversion
from fastinput._engine.arguments import check_bool, check_int
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError, UnimplementedError
from fastinput.ops.batch import BatchIterator, stack_leaf
from fastinput.spec import RaggedSpec, TensorSpec, _as_dtype
from fastinput.structure import RaggedArray


def ragged_leaf(values: Sequence[Any], row_splits_dtype: np.dtype, component: int) -> RaggedArray:
    """The rows ``values`` (arrays of one rank, of any first dimension) as one RaggedArray."""
    arrays = [conversion.as_array(v) for v in values]
    inner = {a.shape[1:] for a in arrays}
    if len(inner) > 1 or any(a.ndim == 0 for a in arrays):
        raise InvalidArgumentError(f"ragged_batch: the elements of component {component} differ in a dimension "
                                   f"after the first: shapes {sorted({a.shape for a in arrays})}")
    lengths = np.fromiter(map(len, arrays), dtype=np.int64, count=len(arrays))
    return RaggedArray.from_row_lengths(np.concatenate(arrays), lengths, row_splits_dtype)


class RaggedBatchDataset(Dataset):
    traits = StageTraits("ragged_batch", StageKind.BATCH)

    def __init__(self, input_dataset: Dataset, batch_size: int, drop_remainder: bool, row_splits_dtype: Any) -> None:
        super().__init__([input_dataset])
        self.batch_size = check_int("ragged_batch", "batch_size", batch_size, minimum=1)
        self.drop_remainder = check_bool("ragged_batch", "drop_remainder", drop_remainder)
        try:
            self.row_splits_dtype = _as_dtype(row_splits_dtype)
        except TypeError:
            self.row_splits_dtype = None
        if self.row_splits_dtype not in (np.int64, np.int32):
            raise InvalidArgumentError(f"ragged_batch: row_splits_dtype must be int64 or int32, got "
                                       f"{row_splits_dtype!r}")

    def cardinality(self) -> int:
        return cardinality.batched(self.inputs[0].cardinality(), self.batch_size, self.drop_remainder)

    def __str__(self) -> str:
        extra = ", drop_remainder=True" if self.drop_remainder else ""
        splits = ", row_splits_dtype=int32" if self.row_splits_dtype == np.int32 else ""
        return f"ragged_batch({self.batch_size}{extra}{splits})"

    def _ragged(self) -> list[bool]:
        """Which components become RaggedArrays (those whose spec leaves only the first dimension unknown)."""
        out = []
        for i, leaf in enumerate(structure.flatten(self.inputs[0].element_spec)):
            if not isinstance(leaf, TensorSpec):
                if isinstance(leaf, RaggedSpec):
                    raise UnimplementedError(f"{self}: component {i} is a RaggedArray already; fastinput's "
                                             "RaggedArray has one ragged dimension")
                out.append(False)  # sparse: batched as batch does, as tf.data does
            elif leaf.shape is None or None not in leaf.shape:
                out.append(False)
            elif None in leaf.shape[1:]:
                raise UnimplementedError(
                    f"{self}: component {i} has shape {list(leaf.shape)}: batching it would need more than one "
                    "ragged dimension, and fastinput's RaggedArray has one (the first of each element); "
                    "pad it (padded_batch) or flatten it first")
            else:
                out.append(True)
        return out

    def compute_element_spec(self) -> Any:
        size = self.batch_size if self.drop_remainder else None
        leaves = structure.flatten(self.inputs[0].element_spec)
        out = [RaggedSpec((size, *leaf.shape), leaf.dtype, self.row_splits_dtype) if ragged else leaf.batched(size)
               for leaf, ragged in zip(leaves, self._ragged())]
        return structure.pack_as(self.inputs[0].element_spec, out)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        ragged, splits_dtype = self._ragged(), self.row_splits_dtype

        def combine(elements: list[Any]) -> Any:
            columns = zip(*(structure.flatten(e) for e in elements))
            leaves = [ragged_leaf(column, splits_dtype, i) if is_ragged else stack_leaf(column, i)
                      for i, (column, is_ragged) in enumerate(zip(columns, ragged))]
            return structure.pack_as(elements[0], leaves)

        # tf.data's ragged_batch is a map (to ragged) and a batch, which it fuses into map_and_batch: batches are
        # whole groups of batch_size input positions, an error dropping its group (batch's whole_groups rule)
        return BatchIterator(self, ctx, self.inputs[0].make_iterator(ctx), combine, whole_groups=True)
