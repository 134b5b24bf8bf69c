"""Test sources that save their position, written on the public extension classes: ``Ints`` (int64s with errors
where asked), which the stage tests read from, and ``Batches``, which the integration tests (Keras, PyTorch) and the
README recipes run on."""

from __future__ import annotations

from collections.abc import Iterable
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


class Ints(Dataset):
    """The int64s ``start .. stop - 1``, raising ``ValueError`` in place of each value in ``bad`` and going on after
    it. A bad value's error comes on a call of its own, after the values before it, so a state saved before that
    call points at it. Its iterator saves its position, or (``saves=False``) says nothing about saving, so that
    the base class refuses for it."""

    traits = StageTraits("ints", StageKind.IN_MEMORY)

    def __init__(self, start: int, stop: int, bad: Iterable[int] = (), saves: bool = True) -> None:
        super().__init__()
        self.start, self.stop, self.bad, self.saves = start, stop, frozenset(bad), saves

    def __str__(self) -> str:
        return f"ints({self.start}, {self.stop})"

    def compute_element_spec(self) -> Any:
        return fi.TensorSpec((), np.int64)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return IntsIterator(self, ctx)


class IntsIterator(DatasetIterator):
    """``Ints``'s running state; subclasses may make other elements of the same positions (``element``)."""

    def __init__(self, dataset: Ints, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self.position = dataset.start

    def element(self, i: int) -> Any:
        return np.int64(i)

    def produce_chunk(self, n: int) -> list[Any]:
        dataset, out = self.dataset, []
        while len(out) < n and self.position < dataset.stop:
            if self.position in dataset.bad:
                if out:
                    break
                self.position += 1
                raise ValueError(f"bad element {self.position - 1}")
            out.append(self.element(self.position))
            self.position += 1
        if not out:
            raise StopIteration
        return out

    def own_state(self) -> dict[str, Any]:
        if not self.dataset.saves:
            return super().own_state()
        return {"position": self.position}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self.position = state["position"]
