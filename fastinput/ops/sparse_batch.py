"""``ds.sparse_batch(batch_size, row_shape)``: batch elements of varying shape into ``fi.SparseArray``\\ s.

tf.data's ``sparse_batch`` (``experimental.dense_to_sparse_batch``): each batch is one sparse tensor of dense
shape ``[n, *row_shape]`` holding *every* value of its ``n`` elements (zeros too), element ``i`` in row ``i``,
its values in row-major order. A ``None`` dimension of ``row_shape`` takes the batch's largest. The input's
elements are single dense tensors.

Errors are tf.data's, element by element: an element of another rank than ``row_shape`` raises an
``InvalidArgumentError``, one larger than ``row_shape`` in a known dimension a ``DataLossError`` (tf.data's
class for it), as soon as it is read. As with an input's error, the elements gathered for that batch are
dropped and the next batch starts after the failing element. Between batches the iterator holds nothing, so
its state is its input's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine import cardinality, conversion
from fastinput._engine.arguments import check_int, check_shape
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import DataLossError, InvalidArgumentError
from fastinput.spec import SparseSpec, TensorSpec
from fastinput.structure import SparseArray


class SparseBatchDataset(Dataset):
    traits = StageTraits("sparse_batch", StageKind.BATCH)

    def __init__(self, input_dataset: Dataset, batch_size: int, row_shape: Any) -> None:
        super().__init__([input_dataset])
        self.batch_size = check_int("sparse_batch", "batch_size", batch_size, minimum=1)
        self.drop_remainder = False  # tf.data's sparse_batch has no drop_remainder
        if hasattr(row_shape, "as_list"):  # a tf.TensorShape
            if row_shape.rank is None:
                raise InvalidArgumentError("sparse_batch: row_shape must have a known rank")
            row_shape = row_shape.as_list()
        elif isinstance(row_shape, np.ndarray):
            row_shape = row_shape.tolist() if row_shape.ndim else [row_shape.item()]
        self.row_shape = check_shape("sparse_batch", "row_shape", row_shape, allow_unknown=True)

    def cardinality(self) -> int:
        return cardinality.batched(self.inputs[0].cardinality(), self.batch_size, False)

    def __str__(self) -> str:
        return f"sparse_batch({self.batch_size}, row_shape={list(self.row_shape)})"

    def compute_element_spec(self) -> Any:
        spec = self.inputs[0].element_spec
        if not isinstance(spec, TensorSpec):
            raise InvalidArgumentError(f"{self}: the input's elements must be single dense tensors (as in tf.data), "
                                       f"got {spec!r}")
        return SparseSpec((None, *self.row_shape), spec.dtype)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _SparseBatchIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _SparseBatchIterator(DatasetIterator):
    """Reads one element at a time and checks it as it comes (an element after a failing one belongs to the
    next batch, so it must not be read first)."""

    def __init__(self, dataset: SparseBatchDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._size = dataset.batch_size
        self._row_shape = dataset.row_shape

    def produce(self) -> Any:
        rows: list[np.ndarray] = []
        while len(rows) < self._size:
            try:
                element = self._source.get_next()
            except StopIteration:
                break
            rows.append(self._checked(element))
        if not rows:
            raise StopIteration
        return sparse_rows(rows, self._row_shape)

    def own_state(self) -> dict[str, Any]:
        return {}  # nothing is held between batches

    def _checked(self, element: Any) -> np.ndarray:
        """``element`` as an array, if it fits ``row_shape`` (tf.data's two errors otherwise)."""
        array = conversion.as_array(element)
        if array.ndim != len(self._row_shape):
            raise InvalidArgumentError(f"{self.name}: input element had shape {list(array.shape)} that is "
                                       f"incompatible with the row shape {_shown(self._row_shape)}")
        if any(limit is not None and dim > limit for dim, limit in zip(array.shape, self._row_shape)):
            raise DataLossError(f"{self.name}: input element had shape {list(array.shape)} that is larger than "
                                f"the row shape {_shown(self._row_shape)}")
        return array


def sparse_rows(rows: list[np.ndarray], row_shape: tuple[int | None, ...]) -> SparseArray:
    """The SparseArray of ``rows`` (arrays of ``row_shape``'s rank, none larger than it): row ``i`` is
    ``rows[i]``, every value of it stored; a None dimension is the rows' largest (0 if there are none)."""
    dense_shape = [len(rows)] + [limit if limit is not None else max(row.shape[j] for row in rows)
                                 for j, limit in enumerate(row_shape)]
    indices = np.empty((sum(row.size for row in rows), len(row_shape) + 1), dtype=np.int64)
    coordinates: dict[tuple[int, ...], np.ndarray] = {}  # per shape (rows of a batch often share one)
    start = 0
    for i, row in enumerate(rows):
        end = start + row.size
        if row.shape not in coordinates:
            coordinates[row.shape] = np.indices(row.shape).reshape(row.ndim, row.size).T
        indices[start:end, 0] = i
        indices[start:end, 1:] = coordinates[row.shape]
        start = end
    values = np.concatenate([row.reshape(-1) for row in rows])
    return structure.SparseArray(indices, values, np.array(dense_shape, dtype=np.int64))


def _shown(row_shape: tuple[int | None, ...]) -> str:
    """A row shape as tf.data's messages show it (-1 for a None dimension)."""
    return str([-1 if d is None else d for d in row_shape])
