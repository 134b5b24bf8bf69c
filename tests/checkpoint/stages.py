"""A source that saves its position, written on the public extension classes: the integration tests (Keras,
PyTorch) and the README recipes run on it whichever of fastinput's own stages can save yet."""

from __future__ import annotations

from typing import Any

import numpy as np

import fastinput as fi
from fastinput.extension import Dataset, DatasetIterator, IteratorContext, StageKind, StageTraits


class Batches(Dataset):
    """``n`` batches of ``size`` rows: batch ``i`` is ``(x, y)``, ``x`` float32 ``[size, 2]`` holding ``i`` and the
    row, ``y`` float32 ``[size, 1]`` holding ``i``; its iterator saves the index of the next batch (and the last
    few handed out: a state whose shape changes as the run goes)."""

    traits = StageTraits("batches", StageKind.IN_MEMORY)

    def __init__(self, n: int, size: int = 4) -> None:
        super().__init__()
        self.n = n
        self.size = size

    def __str__(self) -> str:
        return f"batches({self.n}, {self.size})"

    def compute_element_spec(self) -> Any:
        return fi.TensorSpec((self.size, 2), np.float32), fi.TensorSpec((self.size, 1), np.float32)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _BatchesIterator(self, ctx)


class _BatchesIterator(DatasetIterator):
    def __init__(self, dataset: Batches, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self.next_index = 0

    def produce(self) -> Any:
        if self.next_index == self.dataset.n:
            raise StopIteration
        i, rows = self.next_index, self.dataset.size
        self.next_index += 1
        x = np.stack([np.full(rows, i, np.float32), np.arange(rows, dtype=np.float32)], axis=1)
        return x, np.full((rows, 1), i, np.float32)

    def own_state(self) -> dict[str, Any]:
        # "recent" changes length as the run goes, as a shuffle buffer's state does (a fresh iterator's is empty)
        return {"next": self.next_index, "recent": list(range(max(0, self.next_index - 3), self.next_index))}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self.next_index = state["next"]
