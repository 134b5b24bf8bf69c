"""``ds.prefetch(buffer_size)``: a background thread keeps up to ``buffer_size`` elements ready."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from fastinput import errors
from fastinput._engine import instrument as _trace
from fastinput._engine.buffer import Failure
from fastinput.arguments import AUTOTUNE, check_buffer_size, format_arg
from fastinput.dataset import Dataset
from fastinput.iterator import DatasetIterator, IteratorContext, Knob, ThreadedIterator, note_stage
from fastinput.options import available_cpus


def default_prefetch_buffer() -> int:
    """What ``AUTOTUNE`` means for a buffer until the tuner adjusts it: enough to ride out a slow step."""
    return max(2, available_cpus() // 2)


class PrefetchDataset(Dataset):
    passes_shapes_through = True
    leaves_untouched = True

    def __init__(self, input_dataset: Dataset, buffer_size: int) -> None:
        super().__init__([input_dataset])
        self.buffer_size = check_buffer_size("prefetch", buffer_size, minimum=0)

    def __str__(self) -> str:
        return f"prefetch({format_arg(self.buffer_size)})"

    def _make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        source = self._inputs[0]._make_iterator(ctx)
        if self.buffer_size == 0:  # tf.data: prefetch(0) prefetches nothing
            return source
        autotuned = self.buffer_size == AUTOTUNE
        size = default_prefetch_buffer() if autotuned else self.buffer_size
        return PrefetchIterator(self, ctx, source, size, autotuned)


class PrefetchIterator(ThreadedIterator):
    """One producer thread filling a bounded buffer; the ``buffer_size`` knob can change while it runs.

    ``transfer`` (optional) runs on the producer thread for each element before
    it is buffered (device prefetch copies there); ``finish`` runs in the
    consumer's thread as an element is handed out (e.g. to order a CUDA copy
    before the consumer's stream).
    """

    tuning_kind = "prefetch"

    def __init__(self, dataset: Any, ctx: IteratorContext, source: DatasetIterator, buffer_size: int, autotuned: bool,
                 transfer: Callable[[Any], Any] | None = None, finish: Callable[[Any], Any] | None = None) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._transfer = transfer
        self._finish = finish
        self._buffer: deque[Any] = deque()
        self._done = False
        self._knob = Knob(self.name, "buffer_size", buffer_size, 1, max(1024, buffer_size), autotuned, self._resized)
        self.metrics.buffer_capacity = buffer_size

    def knobs(self) -> list[Knob]:
        return [self._knob]

    def _resized(self, value: int) -> None:
        with self._cond:
            self.metrics.buffer_capacity = value
            self._cond.notify_all()

    def _produce(self) -> None:
        cond, buffer = self._cond, self._buffer
        while True:
            with cond:
                while not self.cancelled.is_set() and len(buffer) >= self._knob.value:
                    cond.wait()
                if self.cancelled.is_set():
                    return
                space = self._knob.value - len(buffer)
            start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
            input_ns = self._source.metrics.call_ns
            try:
                chunk = self._source.get_next_chunk(space)
                if self._transfer is not None:
                    chunk = self._transfer_chunk(chunk)
            except StopIteration:
                chunk, finished = [], True
            except errors.CancelledError:
                return
            except BaseException as exc:  # delivered at its place in the sequence; reading goes on after it
                chunk, finished = [Failure(exc)], False
            else:
                finished = False
            if chunk and type(chunk[0]) is not Failure:
                self.metrics.sample_size(chunk[0])
            with cond:
                # own work only (the device copy, if any): the time inside the input is the input's
                self.metrics.busy_ns += time.perf_counter_ns() - start - (self._source.metrics.call_ns - input_ns)
                self.metrics.cpu_ns += time.thread_time_ns() - cpu_start
                buffer.extend(chunk)
                self.metrics.buffer_occupancy = len(buffer)
                self._done = finished
                cond.notify_all()
            _trace.buffer_level(self.name, self.metrics.buffer_occupancy)
            if finished:
                return
            chunk = None  # type: ignore[assignment]  # hold nothing handed over (a delivered error must not stay reachable)

    def _transfer_chunk(self, chunk: list[Any]) -> list[Any]:
        """``transfer`` over a chunk; an element whose copy fails becomes a failure in its place."""
        out = []
        for element in chunk:
            try:
                out.append(self._transfer(element))
            except Exception as exc:
                out.append(Failure(exc))
        return out

    def _wait_for_data(self) -> None:
        self.start_workers(self._produce, 1)
        with self._cond:
            if not self._buffer and not self._done:
                start = time.perf_counter_ns()
                while not self._buffer and not self._done and not self.cancelled.is_set():
                    self._cond.wait()
                self.metrics.wait_ns += time.perf_counter_ns() - start
            self.raise_if_cancelled()

    def _next_chunk(self, n: int) -> list[Any]:
        self._wait_for_data()
        with self._cond:
            buffer = self._buffer
            if not buffer:
                raise StopIteration
            out = []
            while buffer and len(out) < n:
                if type(buffer[0]) is Failure:
                    if out:
                        break
                    failure = buffer.popleft()
                    self.metrics.buffer_occupancy = len(buffer)
                    self._cond.notify_all()
                    raise note_stage(failure.exc, self.name)
                out.append(buffer.popleft())
            self.metrics.buffer_occupancy = len(buffer)
            self._cond.notify_all()
        if self._finish is not None:
            out = [self._finish(element) for element in out]
        return out
