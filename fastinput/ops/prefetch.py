"""``ds.prefetch(buffer_size)``: a background thread keeps up to ``buffer_size`` elements ready."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastinput import errors
from fastinput._engine.arguments import AUTOTUNE, check_buffer_size, format_arg
from fastinput._engine.buffer import Channel, Failure
from fastinput._engine.iterator import DatasetIterator, IteratorContext, Knob, note_stage
from fastinput._engine.ledger import Pulled, WorkAheadIterator
from fastinput._engine.traits import KnobKind, StageKind, StageTraits, TuningKind, TuningProfile
from fastinput.dataset import Dataset
from fastinput.options import available_cpus


def default_prefetch_buffer() -> int:
    """What ``AUTOTUNE`` means for a buffer until the tuner adjusts it: enough to ride out a slow step."""
    return max(2, available_cpus() // 2)


class PrefetchDataset(Dataset):
    traits = StageTraits("prefetch", StageKind.PREFETCH, passes_through=True, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, buffer_size: int) -> None:
        super().__init__([input_dataset])
        self.buffer_size = check_buffer_size("prefetch", buffer_size, minimum=0)

    def cardinality(self) -> int:
        return self.inputs[0].cardinality()

    def __str__(self) -> str:
        return f"prefetch({format_arg(self.buffer_size)})"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        source = self.inputs[0].make_iterator(ctx)
        if self.buffer_size == 0:  # tf.data: prefetch(0) prefetches nothing
            return source
        autotuned = self.buffer_size == AUTOTUNE
        size = default_prefetch_buffer() if autotuned else self.buffer_size
        return PrefetchIterator(self, ctx, source, size, autotuned)


_PREFETCH_PROFILE = TuningProfile(TuningKind.PREFETCH)


class PrefetchIterator(WorkAheadIterator):
    """One producer thread filling a bounded ``Channel``; the ``buffer_size`` knob can change while it runs.

    Its state is its input's before the oldest chunk not fully handed out, and how many of that chunk's elements
    were (``WorkAheadIterator``): never the elements buffered (nor their device copies).

    ``transfer`` (optional) runs on the producer thread for each element before
    it is buffered (device prefetch copies there); ``finish`` runs in the
    consumer's thread as an element is handed out (e.g. to order a CUDA copy
    before the consumer's stream).
    """

    def __init__(self, dataset: Any, ctx: IteratorContext, source: DatasetIterator, buffer_size: int, autotuned: bool,
                 transfer: Callable[[Any], Any] | None = None, finish: Callable[[Any], Any] | None = None) -> None:
        super().__init__(dataset, ctx, source)
        self._source = source
        self._transfer = transfer
        self._finish = finish
        self._channel = Channel(self.name, buffer_size, self.metrics)
        self._knob = Knob(self.name, "buffer_size", buffer_size, 1, max(1024, buffer_size), autotuned, self._resized,
                          kind=KnobKind.OUTPUT_BUFFER)
        self.metrics.buffer_capacity = buffer_size
        self._handed = 0  # elements (errors too) handed out: written by the consumer only, read under the condition
        self._counted = 0  # of them, those counted into the ledger

    def knobs(self) -> list[Knob]:
        return [self._knob]

    def tuning_profile(self) -> TuningProfile:
        return _PREFETCH_PROFILE

    def _resized(self, value: int) -> None:
        self.metrics.buffer_capacity = value
        self._channel.capacity = value

    def _produce(self) -> None:
        channel = self._channel
        while (space := channel.wait_for_room()) is not None:
            start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
            input_ns = self._source.metrics.call_ns
            size = 1  # input positions pulled: an error the input raised takes one
            try:
                limit = self.ledger.skip_delivered(self._source, self._cond)
                chunk = self._source.get_next_chunk(space if limit is None else min(space, limit))
                size = len(chunk)
                if self._transfer is not None:
                    chunk = self._transfer_chunk(chunk)
            except StopIteration:
                channel.finish()
                return
            except errors.CancelledError:  # the input was stopped: so is this stage (its consumer must not wait)
                channel.cancel()
                return
            except BaseException as exc:  # delivered at its place in the sequence; reading goes on after it
                chunk = [Failure(exc)]
            after = self.ledger.mark()
            with self._cond:
                self.account_delivered()  # keeps the ledger short while nobody saves
                self.ledger.pulled(Pulled(size, len(chunk)), after)
            if chunk and type(chunk[0]) is not Failure:
                self.metrics.sample_size(chunk[0])
            # own work only (the device copy, if any): the time inside the input is the input's
            self.metrics.busy_ns += time.perf_counter_ns() - start - (self._source.metrics.call_ns - input_ns)
            self.metrics.cpu_ns += time.thread_time_ns() - cpu_start
            channel.put(chunk)
            chunk = after = None  # type: ignore[assignment]  # hold nothing handed over (a delivered error must not stay reachable)

    def _transfer_chunk(self, chunk: list[Any]) -> list[Any]:
        """``transfer`` over a chunk; an element whose copy fails becomes a failure in its place."""
        out = []
        for element in chunk:
            try:
                out.append(self._transfer(element))
            except Exception as exc:
                out.append(Failure(exc))
        return out

    def _waited(self, ns: int) -> None:
        self.metrics.wait_ns += ns

    def produce_chunk(self, n: int) -> list[Any]:
        self.start_workers(self._produce, 1)
        out = self._channel.take(n, self._waited)
        if not out:
            raise StopIteration
        self._handed += len(out)
        if type(out[0]) is Failure:  # alone: what came before it is handed out already
            raise note_stage(out[0].exc, self.name)
        if self._finish is not None:
            out = [self._finish(element) for element in out]
        return out

    def account_delivered(self) -> None:
        handed = self._handed  # read once: the consumer may hand more out meanwhile (counted next time)
        self.ledger.delivered_in_order(handed - self._counted)
        self._counted = handed

    def cancel_self(self) -> None:
        self._channel.cancel()
