"""``ds.repeat(count)``: iterate the input again and again."""

from __future__ import annotations

from typing import Any

from fastinput.arguments import check_int
from fastinput.dataset import Dataset
from fastinput.iterator import DatasetIterator, IteratorContext


class RepeatDataset(Dataset):
    passes_shapes_through = True
    leaves_untouched = True

    def __init__(self, input_dataset: Dataset, count: int | None) -> None:
        super().__init__([input_dataset])
        self.count = -1 if count is None else check_int("repeat", "count", count, minimum=0, allow=(-1,))

    def __str__(self) -> str:
        return "repeat()" if self.count == -1 else f"repeat({self.count})"

    def _make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _RepeatIterator(self, ctx)


class _RepeatIterator(DatasetIterator):
    """Re-creates its input iterator at each end; stops if an epoch yields nothing (else ``repeat()`` of empty would spin).

    What the last epoch's stages learned carries over to the next one's: knob
    values (the autotuner's settings, RAM budget cuts included) and sampled
    element sizes. Otherwise every epoch would start from the defaults, and
    short epochs would run with buffers the tuner never gets to fit.
    """

    def __init__(self, dataset: RepeatDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx, [])
        self._ds = dataset
        self._epoch = 0
        self._epoch_elements = 0
        self._source: DatasetIterator | None = None
        self._learned: list[tuple[str, dict[str, int], float]] = []
        if dataset.count != 0:  # the first epoch's tree now (no thread starts yet): the autotuner sees its knobs
            self._open()

    def _open(self) -> DatasetIterator:
        self._source = self._ds._inputs[0]._make_iterator(self.ctx)
        for (_, stage), (name, knobs, element_bytes) in zip(self._source.walk(), self._learned):
            if stage.name != name:  # not the same tree (cannot happen for one description): keep the defaults
                break
            for knob in stage.knobs():
                if knob.name in knobs:
                    knob.set(knobs[knob.name])
            stage.metrics.bytes_per_element = element_bytes
        self.inputs = [self._source]
        self._epoch_elements = 0
        return self._source

    def _next_chunk(self, n: int) -> list[Any]:
        count = self._ds.count
        while count == -1 or self._epoch < count:
            source = self._source or self._open()
            try:
                chunk = source.get_next_chunk(n)
            except StopIteration:
                self._learned = [(stage.name, {k.name: k.value for k in stage.knobs()}, stage.metrics.bytes_per_element)
                                 for _, stage in source.walk()]
                source.close()
                self._source = None
                self.inputs = []
                self._epoch += 1
                if self._epoch_elements == 0:
                    break
                continue
            self._epoch_elements += len(chunk)
            return chunk
        raise StopIteration
