"""The parallel chunk engine behind parallel ``map`` (and the fused ops built on it).

Worker threads take turns pulling a chunk of elements from the input (under
the input lock, so the input is never called concurrently), reserve a result
slot in arrival order, process the chunk outside every lock, and fill the slot.
The consumer takes slots in order (``deterministic``) or whichever is done
first. Two knobs can be turned while it runs: ``parallelism`` (worker count)
and ``buffer_size`` (result slots outstanding, in chunks; never fewer than
the workers, so shrinking the buffer cannot idle them).

Chunk size adapts so that one chunk costs about ``TARGET_CHUNK_NS`` of work:
tiny elements travel in hundreds, expensive ones one at a time, so a cheap
map is not drowned in hand-off overhead and a costly one still spreads over
every worker.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from fastinput import errors
from fastinput.iterator import DatasetIterator, Failure, IteratorContext, Knob, ThreadedIterator, note_stage
from fastinput.options import available_cpus
from fastinput.profiler import tracing as _trace

TARGET_CHUNK_NS = 500_000
MAX_CHUNK = 1024
MAX_CHUNK_BYTES = 256 << 10
"""Chunks of large elements are cut to about this many bytes, so buffers stay small."""


class _Slot:
    __slots__ = ("done", "results", "has_failure", "size")

    def __init__(self, size: int) -> None:
        self.done = False
        self.results: list[Any] = []
        self.has_failure = False
        self.size = size


class ParallelChunkIterator(ThreadedIterator):
    """Applies ``process_chunk(list) -> list`` to chunks of the input on worker threads.

    ``process_chunk`` must return one output per input element (a ``Failure``
    in place of an element whose processing raised), or fewer when the stage
    filters; it runs without any lock held.
    """

    tuning_kind = "parallel"

    def __init__(
        self, dataset: Any, ctx: IteratorContext, input_iterator: DatasetIterator,
        process_chunk: Callable[[list[Any]], list[Any]], parallelism: int, autotuned: bool,
        deterministic: bool, max_chunk: int = MAX_CHUNK,
    ) -> None:
        super().__init__(dataset, ctx, [input_iterator])
        self._input = input_iterator
        self._process = process_chunk
        self._deterministic = deterministic
        self._max_chunk = max_chunk
        self._input_lock = threading.Lock()
        self._slots: deque[_Slot] = deque()
        self._ready: deque[Any] = deque()  # consumer side: elements of the slot being handed out
        self._input_done = False
        self._chunk_size = 1
        self._ns_per_element = 0.0
        max_parallelism = max(8 * available_cpus(), 16, parallelism)  # I/O-bound stages use more workers than cores
        self._parallelism = Knob(self.name, "parallelism", parallelism, 1, max_parallelism, autotuned, self._set_parallelism)
        self._buffer = Knob(self.name, "buffer_size", 2 * parallelism, 1, 64 * max_parallelism, autotuned, self._set_buffer,
                            shrinkable=True)  # never the user's choice: the tuner may shrink it to keep the RAM budget
        self.metrics.parallelism = parallelism
        self.metrics.buffer_capacity = self._buffer.value

    # -- knobs -----------------------------------------------------------------
    def knobs(self) -> list[Knob]:
        return [self._parallelism, self._buffer]

    def _set_parallelism(self, value: int) -> None:
        self.metrics.parallelism = value
        if self._pool is not None:
            self._pool.resize(value)
        with self._cond:
            self._cond.notify_all()

    def _set_buffer(self, value: int) -> None:
        with self._cond:
            self.metrics.buffer_capacity = value
            self._cond.notify_all()

    # -- workers ---------------------------------------------------------------
    def _worker(self) -> None:
        cond, slots = self._cond, self._slots
        while True:
            with self._input_lock:
                with cond:
                    # at least one slot per worker: a small buffer never idles workers
                    while (not self._cancelled and not self._input_done
                           and len(slots) >= max(self._buffer.value, self._parallelism.value)):
                        cond.wait()
                    if self._cancelled or self._input_done:
                        return
                if self._pool is not None and self._pool.should_retire():
                    return
                size = self._chunk_size
                pull_start = time.perf_counter_ns()
                try:
                    chunk = self._input.get_next_chunk(size)
                except StopIteration:
                    with cond:
                        self._input_done = True
                        cond.notify_all()
                    return
                except errors.CancelledError:
                    return
                except Exception as exc:  # the input's error, delivered at its place in the sequence
                    chunk = None
                    failure = Failure(exc)
                pull_ns = time.perf_counter_ns() - pull_start
                slot = _Slot(len(chunk) if chunk is not None else 1)
                with cond:
                    slots.append(slot)
                    self.metrics.buffer_occupancy += slot.size
            if chunk is None:
                results, busy, cpu = [failure], 0, 0
            else:
                start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
                results = self._run_process(chunk)
                busy = time.perf_counter_ns() - start
                cpu = time.thread_time_ns() - cpu_start
                self._adapt_chunk_size(len(chunk), busy + pull_ns)
                if results and type(results[0]) is not Failure:
                    self.metrics.sample_size(results[0])
            with cond:
                slot.results = results
                slot.has_failure = chunk is None or any(type(r) is Failure for r in results)
                slot.done = True
                self.metrics.busy_ns += busy
                self.metrics.cpu_ns += cpu if chunk is not None else 0
                cond.notify_all()
            tracer = _trace.ACTIVE
            if tracer is not None and chunk is not None:
                tracer.complete(self.name, start, start + busy, {"elements": len(chunk)})
                tracer.counter(f"buffer {self.name}", {"elements": self.metrics.buffer_occupancy},
                               every_ns=_trace.COUNTER_INTERVAL_NS)

    def _run_process(self, chunk: list[Any]) -> list[Any]:
        try:
            return self._process(chunk)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt or a bug: fail the chunk in place, never hang
            return [Failure(exc)]

    def _adapt_chunk_size(self, n: int, ns: int) -> None:
        """Move the chunk size toward TARGET_CHUNK_NS of work and at most MAX_CHUNK_BYTES (grows at most 2x per chunk)."""
        per_element = ns / max(1, n)
        self._ns_per_element = per_element if not self._ns_per_element else 0.8 * self._ns_per_element + 0.2 * per_element
        ideal = int(TARGET_CHUNK_NS / max(self._ns_per_element, 1.0))
        if self.metrics.bytes_per_element:
            ideal = min(ideal, int(MAX_CHUNK_BYTES / self.metrics.bytes_per_element))
        self._chunk_size = max(1, min(self._max_chunk, ideal, 2 * self._chunk_size))

    # -- consumer --------------------------------------------------------------
    def _take_slot(self) -> _Slot:
        """Block until a slot can be handed out (in order, or any done one); StopIteration at the end."""
        self.start_workers(self._worker, self._parallelism.value)
        cond, slots = self._cond, self._slots
        with cond:
            waited_from = 0
            while True:
                self.raise_if_cancelled()
                if slots:
                    if slots[0].done:
                        slot = slots.popleft()
                        break
                    if not self._deterministic:
                        slot = next((s for s in slots if s.done), None)
                        if slot is not None:
                            slots.remove(slot)
                            break
                elif self._input_done:
                    raise StopIteration
                if not waited_from:
                    waited_from = time.perf_counter_ns()
                cond.wait()
            if waited_from:
                self.metrics.wait_ns += time.perf_counter_ns() - waited_from
            self.metrics.buffer_occupancy -= slot.size
            cond.notify_all()
        return slot

    def _refill(self) -> None:
        slot = self._take_slot()
        if slot.has_failure:
            for result in slot.results:
                self._ready.append(result)
        else:
            self._ready.extend(slot.results)

    def _next(self) -> Any:
        while not self._ready:
            self._refill()
        element = self._ready.popleft()
        if type(element) is Failure:
            raise note_stage(element.exc, self.name)
        return element

    def _next_chunk(self, n: int) -> list[Any]:
        ready = self._ready
        while not ready:
            self._refill()
        if len(ready) <= n and not any(type(e) is Failure for e in ready):
            out = list(ready)
            ready.clear()
            return out
        out = []
        while ready and len(out) < n:
            if type(ready[0]) is Failure:
                if out:
                    return out
                raise note_stage(ready.popleft().exc, self.name)
            out.append(ready.popleft())
        return out
