"""``distributed_epoch``'s unit of work: a split, a range of positions of the pipeline's source.

The coordinator hands split numbers out one at a time (fast workers ask more often, so they take more); each
worker runs the pipeline with its source replaced by a ``SplitSourceDataset`` that reads the positions of each
split it is given. For file readers the source is the list of file names (``list_files``,
``TFRecordDataset(files)``, the input of an ``interleave``): one file per split, as tf.data service hands out
files; for ``range`` / ``from_tensor_slices`` feeding no reader, ranges of positions, about 16 per worker.

A worker's splits are numbered in the order it was given them (its log, kept by the coordinator), and the
source's saved state names a split by that number: a restarted worker restored from a saved state asks for the
same splits again, in the same order, so the elements it had not delivered are produced once more and no others.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from typing import Any

from fastinput._engine.checkpoint import stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.repeat import RepeatDataset
from fastinput.ops.sources import RangeDataset, TensorSlicesDataset

SPLITS_PER_WORKER = 16
"""Splits of an in-memory source per worker: enough for fast workers to take more, few enough that asking the
coordinator (one actor call per split) costs nothing next to the work."""

SplitProvider = Callable[[int], "int | None"]
"""``provider(k)``: the split number of this worker's ``k``-th split (the same on every call), None when no split is
left."""


@dataclasses.dataclass(frozen=True)
class SplitPlan:
    """How a source of ``length`` positions is cut: split ``i`` is positions ``[i * size, (i + 1) * size)``."""

    source: str
    length: int
    size: int

    @property
    def count(self) -> int:
        return math.ceil(self.length / self.size) if self.length else 0

    def bounds(self, split: int) -> tuple[int, int]:
        start = split * self.size
        return start, min(start + self.size, self.length)


def plan_splits(dataset: Dataset, num_workers: int) -> SplitPlan:
    """The splits of ``dataset``'s source, or an ``InvalidArgumentError`` naming what cannot be split."""
    path = _path_to_source(dataset)
    source = path[-1]
    if not isinstance(source, (RangeDataset, TensorSlicesDataset)) or getattr(source, "single", False):
        raise InvalidArgumentError(
            f"distribute(processing_mode='distributed_epoch'): the pipeline's source {source} cannot be split "
            "between workers (range, from_tensor_slices, list_files and file readers over a list of files can); "
            "use processing_mode='parallel_epochs', where each worker runs the whole pipeline")
    repeats = [str(node) for node in path if isinstance(node, RepeatDataset)]
    if repeats:
        raise InvalidArgumentError(
            f"distribute(processing_mode='distributed_epoch'): the pipeline repeats its source ({repeats[0]}): "
            "an epoch is the source's splits, each handed out once; call .repeat() after distribute() instead")
    length = len(source)
    reads = any(node.traits.kind in (StageKind.READ, StageKind.INTERLEAVE) for node in path[:-1])
    size = 1 if reads else max(1, math.ceil(length / (num_workers * SPLITS_PER_WORKER)))
    return SplitPlan(str(source), length, size)


def _path_to_source(dataset: Dataset) -> list[Dataset]:
    """The nodes from ``dataset`` down to its one source (first input at every step); an error where a node reads
    several inputs (zip, concatenate): which of them to split is not for fastinput to guess."""
    path = [dataset]
    while path[-1].inputs:
        node = path[-1]
        if len(node.inputs) > 1:
            raise InvalidArgumentError(
                f"distribute(processing_mode='distributed_epoch'): {node} reads {len(node.inputs)} inputs, so the "
                "pipeline has no one source to split; use processing_mode='parallel_epochs'")
        path.append(node.inputs[0])
    return path


def with_split_source(dataset: Dataset, plan: SplitPlan, provider: SplitProvider) -> Dataset:
    """``dataset`` with its source replaced by one that reads the splits ``provider`` gives (nodes on the way
    copied shallowly, as the static rewrites copy them; the given description is not changed)."""
    if not dataset.inputs:
        return SplitSourceDataset(dataset, plan, provider)
    node = copy.copy(dataset)
    node.inputs = (with_split_source(dataset.inputs[0], plan, provider),)
    return node


class SplitSourceDataset(Dataset):
    """A ``range`` / ``from_tensor_slices`` source that reads only the splits its provider hands it, in turn."""

    traits = StageTraits("split source", StageKind.IN_MEMORY)

    def __init__(self, source: Dataset, plan: SplitPlan, provider: SplitProvider) -> None:
        super().__init__()
        self.source = source
        self.plan = plan
        self.provider = provider

    def __str__(self) -> str:
        return f"{self.source} in splits of {self.plan.size}"

    def compute_element_spec(self) -> Any:
        return self.source.element_spec

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _SplitSourceIterator(self, ctx)


class _SplitSourceIterator(DatasetIterator):
    """Reads split after split; its state: which of this worker's splits it stands in (``split``, counting from 0)
    and how far into it (``offset``)."""

    def __init__(self, dataset: SplitSourceDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset
        self._split = 0
        self._offset = 0
        self._reader: DatasetIterator | None = None  # the source, positioned in the current split once opened
        self._left = 0  # positions of the current split still to read
        self._done = False

    def produce_chunk(self, n: int) -> list[Any]:
        while self._left == 0:
            if self._done:
                raise StopIteration
            if self._reader is not None:  # the current split is read: on to this worker's next one
                self._split += 1
                self._offset = 0
            self._done = not self._open()
        chunk = self._reader.get_next_chunk(min(n, self._left))
        self._left -= len(chunk)
        self._offset += len(chunk)
        return chunk

    def _open(self) -> bool:
        """Position the source at ``offset`` in this worker's split number ``split``; False if there is none."""
        split = self._ds.provider(self._split)
        if split is None:
            return False
        start, stop = self._ds.plan.bounds(split)
        source = self._ds.source
        self._reader = source.make_iterator(self.ctx)
        self._reader.set_state(stage_state(source.traits.op, {"position": start + self._offset}, []))
        self._left = stop - start - self._offset
        return True

    def own_state(self) -> dict[str, Any]:
        return {"split": self._split, "offset": self._offset}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._split, self._offset = int(state["split"]), int(state["offset"])
