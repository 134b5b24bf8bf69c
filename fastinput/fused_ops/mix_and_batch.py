"""``sample_from_datasets(...) -> batch(n)`` (and ``choose_from_datasets``) fused: the mix lays out whole batches.

The static rewrite (``fastinput.fused_ops.rewrites``) puts one stage in place of a ``batch`` over a mixing op. It
runs the mix's iterator (``fastinput.ops.directed_interleave``) and makes each batch from the runs of choices the
inputs' buffers can serve, without the batch stage's calls into the mix: a batch of ``bytes`` elements (the
serialized records of TFRecord files) is written by the layout step straight into the batch's object array, run
after run (``mix_layout.take``); any other is gathered and stacked as ``batch`` stacks it (after a batch that was
not of bytes, no array is made up front: the inputs' elements share one spec). Over inputs of runs of rows
(``fastinput._engine.row_slices``) each batch is gathered leaf by leaf from them (``mix_layout.take_rows``).

The elements are the unfused pipeline's, by ``batch``'s rules: an error from an input (or a choice out of range) is
raised in its place, the elements gathered for that batch dropped, and the next batch starts after it; the last,
partial batch comes unless ``drop_remainder``. Saved, the stage holds nothing between batches but what the mix
holds, so its state is the unfused pipeline's (a ``batch`` holding the mix's state): a state saved with the
rewrite on restores with it off, and the other way round.

Where every input is a TFRecord reader over local files (``TFRecordDataset(files)``, uncompressed, optionally
repeated), the rewrite reads them as spans of read buffers (``fastinput.readers.record_spans``), and each batch's
records are made as it is laid out, in the order of the choices (``MixSpansAndBatchIterator``): the same elements,
errors and states. Any other input keeps the path above.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from fastinput._engine import cardinality
from fastinput._engine.buffer import Failure
from fastinput._engine.checkpoint import check_stage, stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.row_slices import batch_of_rows
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops.batch import BatchDataset, stack_elements
from fastinput.ops.directed_interleave import DirectedInterleaveDataset, DirectedInterleaveIterator
from fastinput.readers.record_spans import RecordSpansDataset, RecordSpansIterator, take_spans
from fastinput.spec import batched


class MixAndBatchDataset(Dataset):
    """``batch`` over a mixing op, as one stage (made by the static rewrite; see the module's docstring)."""

    traits = StageTraits("sample_from_datasets", StageKind.COMBINE)
    """An instance takes its mix's traits (``choose_from_datasets``'s op, where that is the mix)."""

    def __init__(self, mix: DirectedInterleaveDataset, batch: BatchDataset) -> None:
        super().__init__(mix.inputs)
        self.mix = mix
        self.batch_size = batch.batch_size
        self.drop_remainder = batch.drop_remainder
        self.rewritten_from = f"{mix} -> {batch}"
        # the mix's op (its state nests under a batch's, see get_state); reports name the user's mix
        self.traits = dataclasses.replace(mix.traits, stands_for=str(mix))

    def compute_element_spec(self) -> Any:
        return batched(self.mix.element_spec, self.batch_size if self.drop_remainder else None)

    def cardinality(self) -> int:
        return cardinality.batched(self.mix.cardinality(), self.batch_size, self.drop_remainder)

    def __str__(self) -> str:
        extra = ", drop_remainder=True" if self.drop_remainder else ""
        return f"{self.mix.op_name}_and_batch({self.batch_size}{extra}) [fused: {self.rewritten_from}]"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        if all(type(d) is RecordSpansDataset for d in self.mix.datasets):
            return MixSpansAndBatchIterator(self, ctx)
        return MixAndBatchIterator(self, ctx)


class MixAndBatchIterator(DirectedInterleaveIterator):
    """The mix's iterator handing out batches: one per call."""

    def __init__(self, dataset: MixAndBatchDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx, dataset.mix)
        self._batch_size = dataset.batch_size
        self._drop_remainder = dataset.drop_remainder
        self._bytes = True  # whether whole batches may be of bytes: then laid out straight into their array

    def produce_chunk(self, n: int) -> list[Any]:
        return [self.produce()]

    def produce(self) -> Any:
        size = self._batch_size
        if self._layout is not None:  # inputs of rows: each batch gathered leaf by leaf (``mix_layout.take_rows``)
            return batch_of_rows(self.take_next, size, self._drop_remainder, self._layout)
        out = np.empty(size, dtype=object) if self._bytes else None
        filled, gathered = 0, []  # elements written into ``out`` (while they are bytes), else gathered in a list
        while filled + len(gathered) < size:
            try:  # an error passes through, the elements gathered dropped, as batch's would
                taken = self.take_next(size - filled - len(gathered), None if out is None else out[filled:])
            except StopIteration:
                if not filled + len(gathered):
                    raise
                break
            if type(taken) is int:
                filled += taken
                continue
            if out is not None:  # not bytes (the inputs' spec is one): gathered and stacked from now on
                gathered, filled, out, self._bytes = out[:filled].tolist(), 0, None, False
            if gathered:
                gathered.extend(taken)
            else:
                gathered = taken
        if self._drop_remainder and filled + len(gathered) < size:
            raise StopIteration
        if out is not None:
            return out if filled == size else out[:filled].copy()
        return stack_elements(gathered)

    def get_state(self) -> dict[str, Any]:
        return stage_state("batch", {"skip": 0}, [super().get_state()])

    def set_state(self, state: dict[str, Any]) -> None:
        check_stage(state, "batch", self.name, 1)
        super().set_state(state["inputs"][0])


class MixSpansAndBatchIterator(MixAndBatchIterator):
    """``MixAndBatchIterator`` over inputs read as spans (``RecordSpansIterator``): a run of choices is laid out into
    the batch's array by ``take_spans`` up to the first choice whose input holds no span; that input walks on
    (``refill``), or what stops it (an error, its end, a choice out of range) is handled as the mix handles it. The
    mix's own buffers stay empty, so its state is each input's where its first record not taken starts."""

    def __init__(self, dataset: MixAndBatchDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        count = len(dataset.mix.datasets)
        self._span_sources: list[RecordSpansIterator] = self._sources[:count]
        self._span_cursors = np.zeros(count, dtype=np.int64)
        self._span_ends = np.zeros(count, dtype=np.int64)
        for index, source in enumerate(self._span_sources):
            source.bind(self._span_cursors, self._span_ends, index)
        self._bases = [source.buffer for source in self._span_sources]
        self._span_arrays = [source.spans for source in self._span_sources]

    def produce(self) -> Any:
        self._read_ahead.catch_up()  # after a restore from a state the mix saved with records held
        size = self._batch_size
        out = np.empty(size, dtype=object)
        filled = 0
        while filled < size and not self._finished:
            if self._next == len(self._choices):
                self._next_block()
                continue
            run = self._choices[self._next:self._next + size - filled]
            taken = take_spans(run, self._bases, self._span_arrays, self._span_ends, self._span_cursors, out[filled:])
            self._next += taken
            filled += taken
            if taken < len(run):
                self._walk_on(int(run[taken]))
        if not filled or (self._drop_remainder and filled < size):
            raise StopIteration
        return out if filled == size else out[:filled].copy()

    def _walk_on(self, index: int) -> None:
        """The next choice names input ``index``, which holds no span: it walks on, or the event there is handled
        (raised: the batch's records are dropped, as ``batch`` drops them)."""
        if not 0 <= index < len(self._span_sources):
            self._choice_out_of_range()
        source = self._span_sources[index]
        if source.refill():
            self._bases[index] = source.buffer  # (grown for a long record)
            source.metrics.elements += int(self._span_ends[index])  # (its stats count the records it notes)
            return
        failure = source.take_failure()
        if failure is not None:
            self._failures[index] = Failure(failure)
        self._input_cannot_serve(index)
