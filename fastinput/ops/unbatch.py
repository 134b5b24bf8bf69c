"""``ds.unbatch()``: split every element along its first dimension."""

from __future__ import annotations

from collections import deque
from typing import Any

from fastinput import structure
from fastinput._engine import cardinality
from fastinput._engine.checkpoint import Deferred, decode_value, encode_value, stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.resume import InputMarks, marked
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.spec import unbatched


def split_element(element: Any, stage: str) -> list[Any]:
    """The rows of a batched element: every leaf must have the same first dimension."""
    leaves = structure.flatten(element)
    sizes = set()
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, structure.SparseArray):
            raise InvalidArgumentError(f"{stage}: component {i} is a SparseArray; unbatch needs dense components")
        if getattr(leaf, "ndim", 0) == 0:
            raise InvalidArgumentError(f"{stage}: component {i} is a scalar; every component needs a first dimension")
        sizes.add(len(leaf))
    if len(sizes) > 1:
        raise InvalidArgumentError(f"{stage}: components have different first dimensions {sorted(sizes)}")
    if not structure.is_nested(element):
        return list(element)
    columns = [list(leaf) for leaf in leaves]
    return [structure.pack_as(element, row) for row in zip(*columns)]


def _known_rows(batches: Dataset) -> int | None:
    """The rows in every element of ``batches`` where its spec fixes them (tf.data reads the first component
    whose first dimension is known), else None."""
    try:
        spec = batches.element_spec
    except InvalidArgumentError:  # a spec that cannot be learnt fixes nothing
        return None
    for leaf in structure.flatten(spec):
        if leaf.shape is not None and len(leaf.shape) > 0 and leaf.shape[0] is not None:
            return leaf.shape[0]
    return None


class UnbatchDataset(Dataset):
    traits = StageTraits("unbatch", StageKind.UNBATCH)

    def __init__(self, input_dataset: Dataset) -> None:
        super().__init__([input_dataset])

    def cardinality(self) -> int:
        n = self.inputs[0].cardinality()
        if n < 0:
            return n
        rows = _known_rows(self.inputs[0])
        return cardinality.UNKNOWN if rows is None else n * rows

    def __str__(self) -> str:
        return "unbatch()"

    def compute_element_spec(self) -> Any:
        return unbatched(self.inputs[0].element_spec, str(self))

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _UnbatchIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _UnbatchIterator(DatasetIterator):
    """Hands out the rows of one input batch after another.

    Saved, it keeps no row: it saves the input's state before the batch whose rows it is handing out and how
    many of them it handed out; a restore pulls that batch again and drops those rows. Below a stage that does not
    restore in order (``deterministic=False``) that batch could come back with other rows: then the rows not yet
    handed out are saved as values, with the input's state after their batch.
    """

    def __init__(self, dataset: UnbatchDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._rows: deque[Any] = deque()
        self._marks = InputMarks(source)
        self._mark: dict[str, Any] | None = None  # the input's state before the batch in ``_rows``
        self._batch_rows = 0  # that batch's rows
        self._skip = 0  # after a restore: rows of the next batch already handed out

    def produce_chunk(self, n: int) -> list[Any]:
        while not self._rows:
            self._mark = self._marks.take()
            self._rows.extend(split_element(self._source.get_next(), self.name))
            self._batch_rows = len(self._rows)
            for _ in range(min(self._skip, self._batch_rows)):
                self._rows.popleft()
            self._skip = 0
        rows = self._rows
        if len(rows) <= n:
            out = list(rows)
            rows.clear()
            return out
        return [rows.popleft() for _ in range(n)]

    def get_state(self) -> dict[str, Any]:
        if self._rows and not self._source.restores_in_order():
            # below a deterministic=False stage the batch pulled again may hold other rows: keep these as values
            rows = list(self._rows)
            return stage_state(self.op, {"skip": 0, "rows": Deferred(lambda: [encode_value(row) for row in rows])},
                               [self._source.get_state()])
        if self._rows:
            handed_out = self._batch_rows - len(self._rows)
            return stage_state(self.op, {"skip": handed_out}, [marked(self._source, self._mark)])
        return stage_state(self.op, {"skip": self._skip}, [self._source.get_state()])

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._skip = state["skip"]
        self._rows.extend(decode_value(row) for row in state.get("rows") or ())
        self._batch_rows = len(self._rows)
