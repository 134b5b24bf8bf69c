"""The parallel chunk engine behind parallel ``map`` (and the fused ops built on it).

Worker threads take turns pulling a chunk of elements from the input (under
the input lock, so the input is never called concurrently), reserve a result
slot in arrival order, process the chunk outside every lock, and fill the slot.
The consumer takes slots in order (``deterministic``) or whichever is done
first. Two knobs can be turned while it runs: ``parallelism`` (worker count)
and ``buffer_size`` (result slots outstanding, in chunks; never fewer than
the workers, so shrinking the buffer cannot idle them).

What a work item is, and how big, is the stage's choice, given as a
``WorkItems`` collaborator. Parallel ``map`` uses ``AdaptiveChunks``: a chunk
costs about ``TARGET_CHUNK_NS`` of work, so tiny elements travel in hundreds
and expensive ones one at a time, and a cheap map is not drowned in hand-off
overhead while a costly one still spreads over every worker. ``map_and_batch``
pulls whole batches' worth of input positions instead.

A chunk never holds back a finished element from a waiting consumer: an
``incremental`` chunk function appends each output to its slot as it goes and,
after each element, looks at the slot's ``wanted`` flag (a list: one truth
test), which the consumer raises on the slot it is waiting for (the oldest
one when ``deterministic``, every one otherwise). A raised flag makes the
worker wake the consumer, which takes the slot's finished part. So a map
function that waits for the consumer to receive the element before it cannot
hang, as it cannot in tf.data; while nobody waits, the flag costs one test
per element.

Saving (``get_state``) records positions, never work in flight (``_engine/ledger.py``): each slot is a ``Pulled``
entry carrying the input's state captured before its work item was pulled, and the consumer's hand-outs are
counted per slot, so the state is the input's state before the oldest slot not fully handed out plus the input
positions after it whose outputs were handed out (any of them, when not ``deterministic``). A partly handed-out
slot's outputs are its first input positions' (one output per input element, as a map gives; a function that
gives one output per work item, map_and_batch's, hands its slot out whole).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from fastinput import errors
from fastinput._engine import instrument as _trace
from fastinput._engine.arguments import MAX_PARALLELISM
from fastinput._engine.buffer import Failure, ItemQueue, record_occupancy
from fastinput._engine.iterator import DatasetIterator, IteratorContext, Knob, note_stage
from fastinput._engine.ledger import Pulled, WorkAheadIterator
from fastinput._engine.processes import ProcessPool, RemoteChunks
from fastinput._engine.traits import KnobKind, TuningKind, TuningProfile
from fastinput.options import available_cpus

TARGET_CHUNK_NS = 500_000
PROCESS_TARGET_CHUNK_NS = 4_000_000
"""A work item sent to a worker process costs a round trip (tens of microseconds): larger chunks amortise it."""
MAX_CHUNK = 1024
MAX_CHUNK_BYTES = 256 << 10
"""Chunks of large elements are cut to about this many bytes, so buffers stay small."""


class WorkItems(Protocol):
    """How a ``ParallelChunkIterator`` pulls its work items from its input, and how big they are."""

    @property
    def chunk_size(self) -> int:
        """Input elements in the next work item (the autotuner's model counts a buffer slot as that many)."""

    def pull(self, source: DatasetIterator, limit: int | None) -> list[Any]:
        """The next work item from ``source`` (called under the engine's input lock); ``StopIteration`` at the end.
        An item whose outputs may be handed out in parts takes at most ``limit`` input positions if given (a
        restored stage must not pull past positions it is to drop; see ``InputLedger.skip_delivered``); one
        handed out whole may ignore it (a state never drops part of it)."""

    def measured(self, elements: int, ns: int, bytes_per_element: float) -> None:
        """A work item of ``elements`` input elements took ``ns`` to pull and process; output elements are about
        ``bytes_per_element`` bytes per input element."""


class AdaptiveChunks:
    """Chunks of up to ``chunk_size`` elements, the size moved toward ``target_ns`` of work and at most
    MAX_CHUNK_BYTES (it grows at most 2x per chunk, starting from one element)."""

    def __init__(self, target_ns: int = TARGET_CHUNK_NS) -> None:
        self.chunk_size = 1
        self._target_ns = target_ns
        self._ns_per_element = 0.0

    def pull(self, source: DatasetIterator, limit: int | None) -> list[Any]:
        return source.get_next_chunk(self.chunk_size if limit is None else min(limit, self.chunk_size))

    def measured(self, elements: int, ns: int, bytes_per_element: float) -> None:
        per_element = ns / max(1, elements)
        self._ns_per_element = (per_element if not self._ns_per_element
                                else 0.8 * self._ns_per_element + 0.2 * per_element)
        ideal = int(self._target_ns / max(self._ns_per_element, 1.0))
        if bytes_per_element:
            ideal = min(ideal, int(MAX_CHUNK_BYTES / bytes_per_element))
        self.chunk_size = max(1, min(MAX_CHUNK, ideal, 2 * self.chunk_size))


class SharedJob(Protocol):
    """A work item that several workers process together (``ParallelChunkIterator(shared=True)``): map_and_batch's
    batch, whose rows any worker claims, so that the workers fill the oldest batch first, as tf.data's do, and
    batches come out one after another rather than in bursts of one per worker."""

    @property
    def open(self) -> bool:
        """Whether part of it is not claimed by a worker yet (other workers look only once it called ``opened``)."""

    def work(self, go_on: Callable[[], bool] | None = None) -> list[Any] | None:
        """Claim and process parts (runs without any lock held): before it is open to every worker, every part;
        once open, one, and another after each while ``go_on()`` says so, so that the worker's next part may be an
        older job's. The work item's results if this call finished its last part, else None (parts are left, or
        another worker still processes one)."""


class _Slot(Pulled):
    """One chunk's results, in input order: filled by one worker, handed out whole or (to a waiting consumer) in
    parts. As a ledger entry, ``size`` is its input positions and ``delivered`` its results handed out."""

    __slots__ = ("done", "job", "opened", "results", "taken", "wanted")

    def __init__(self, size: int, wanted: bool) -> None:
        super().__init__(size)
        self.done = False
        self.job: SharedJob | None = None  # a shared work item being processed (``ParallelChunkIterator(shared=)``)
        self.opened = False  # its job called ``opened()``: every worker may help with it
        self.results: list[Any] | None = []  # None once done and all moved out (holds nothing handed over)
        self.taken = 0  # results moved to the consumer side (a finished part taken while the slot was in progress)
        self.wanted: list[None] = [None] if wanted else []  # non-empty: a consumer waits for this slot's results

    @property
    def whole(self) -> bool:
        return self.results is None and self.delivered == self.taken

    def take(self, ready: ItemQueue) -> int:
        """Move the results not moved yet to ``ready``; how many there were."""
        results = self.results
        end = len(results)  # read once: an incremental worker may append meanwhile
        moved = end - self.taken
        if moved:
            ready.put(results[self.taken:end])
            self.taken = end
        if self.done:
            self.results = None
        return moved


class ParallelChunkIterator(WorkAheadIterator):
    """Applies ``process_chunk`` to work items of the input (pulled by ``work``) on worker threads.

    ``process_chunk(chunk) -> list`` returns one output per input element (a
    ``Failure`` in place of an element whose processing raised), or fewer when
    the stage filters; it runs without any lock held. An ``incremental`` one
    is called as ``process_chunk(chunk, out, wanted, wake)``: it appends each
    output to ``out`` as soon as it has it and then, if ``wanted`` is not
    empty, clears it and calls ``wake()`` (see the module docstring).

    A ``shared`` one is called as ``process_chunk(chunk, opened) -> SharedJob``, cheaply, when the chunk is
    pulled; the worker that pulled it starts on it, and once the job calls ``opened()`` (its first part may settle
    how the others are done), every worker helps with the oldest open job before it pulls another work item,
    choosing again after a part once another job has opened (``_help``). The one that finishes a job's last part
    fills its slot.

    A ``RemoteChunks`` runs in worker processes instead (``_engine/processes.py``): each worker thread hands its
    work item to a process of the stage's ``ProcessPool`` and waits; ``parallelism`` is then the number of
    processes, at most the CPUs (a process per core is what a GIL-bound function can use).
    """

    def __init__(
        self, dataset: Any, ctx: IteratorContext, input_iterator: DatasetIterator,
        process_chunk: Callable[[list[Any]], list[Any]] | RemoteChunks, parallelism: int, autotuned: bool,
        deterministic: bool, work: WorkItems, incremental: bool = False, shared: bool = False,
    ) -> None:
        super().__init__(dataset, ctx, input_iterator)
        self._input = input_iterator
        self._processes = (ProcessPool(self.name, process_chunk, parallelism)
                           if isinstance(process_chunk, RemoteChunks) else None)
        self._process = process_chunk
        self._work = work
        self._incremental = incremental and self._processes is None
        self._shared = shared and self._processes is None
        self._deterministic = deterministic or not self.input_in_order  # see InputLedger.one_at_a_time
        self._input_lock = threading.Lock()
        self._slots: deque[_Slot] = deque()  # counted in buffer_occupancy (input elements) until taken
        self._ready = ItemQueue()  # consumer side: results taken from slots, not handed out yet
        self._moved: deque[list[Any]] = deque()  # [slot, count] per move to _ready, not yet counted as handed out
        self._moved_count = 0  # results in _moved
        self._input_done = False
        self._consumer_waiting = False
        self._openings = 0  # shared jobs opened so far (``_help``)
        # I/O-bound stages use more workers than cores, never more than MAX_PARALLELISM; processes one per core
        cores = available_cpus()
        max_parallelism = (max(cores, parallelism) if self._processes is not None
                           else min(MAX_PARALLELISM, max(8 * cores, 16, parallelism)))
        self._parallelism = Knob(self.name, "parallelism", parallelism, 1, max_parallelism, autotuned,
                                 self._set_parallelism, kind=KnobKind.WORKERS)
        # Never the user's choice: the tuner may shrink it to keep the RAM budget.
        self._buffer = Knob(self.name, "buffer_size", 2 * parallelism, 1, 64 * max_parallelism, autotuned,
                            self._set_buffer, shrinkable=True, kind=KnobKind.OUTPUT_BUFFER)
        self.metrics.parallelism = parallelism
        self.metrics.buffer_capacity = self._buffer.value

    def restores_in_order(self) -> bool:
        return self._deterministic and self.input_in_order

    # -- knobs -----------------------------------------------------------------
    def knobs(self) -> list[Knob]:
        return [self._parallelism, self._buffer]

    def tuning_profile(self) -> TuningProfile:
        """A buffer slot holds one work item's results: ``chunk_size`` input elements, which may change as it runs."""
        return TuningProfile(TuningKind.PARALLEL, chunk_size=self._work.chunk_size)

    def _set_parallelism(self, value: int) -> None:
        self.metrics.parallelism = value
        if self._pool is not None:
            self._pool.resize(value)
        if self._processes is not None:
            self._processes.resize(value)
        with self._cond:
            self._cond.notify_all()

    def _set_buffer(self, value: int) -> None:
        with self._cond:
            self.metrics.buffer_capacity = value
            self._cond.notify_all()

    # -- workers ---------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            work = self._next_work()
            if work is None:
                return
            slot, chunk, pull_ns, slot_job, openings = work
            if chunk is None:  # a shared work item already pulled: help with it
                self._help(slot, slot_job, openings=openings)
            elif type(chunk) is Failure:  # the input's error, delivered at its place in the sequence
                self._finish(slot, [chunk], 0, 0)
            elif self._shared:
                self._help(slot, slot_job, pull_ns)
            else:
                start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
                results, remote_cpu = self._run_process(chunk, slot)
                busy = time.perf_counter_ns() - start
                self._completed(slot, results, busy, pull_ns, time.thread_time_ns() - cpu_start + remote_cpu)
                self._traced(start, busy, len(chunk))
            # hold nothing handed over (an error delivered to the user must not stay reachable from here)
            work = slot = chunk = slot_job = results = None  # type: ignore[assignment]

    def _next_work(self) -> tuple[_Slot, list[Any] | Failure | None, int, SharedJob | None, int] | None:
        """``(slot, chunk, pull_ns, job, openings)``: a new work item pulled from the input (``chunk`` a ``Failure``
        for the input's error) and its slot, added to the buffer, with its shared job if ``shared``; or an open shared
        job's slot (``chunk`` None), oldest first, before any new one is pulled, with ``_openings`` as it was then
        (-1 for a new work item). None: stop (cancelled, the input ended, a worker retired)."""
        cond, slots = self._cond, self._slots
        if self._shared:
            if self._pool is not None and self._pool.should_retire():
                return None
            with cond:
                slot = self._open_slot()
                if slot is not None:
                    return slot, None, 0, slot.job, self._openings
        with self._input_lock:
            with cond:
                # at least one slot per worker: a small buffer never idles workers
                while True:
                    if self.cancelled.is_set():
                        return None
                    if self._shared:
                        slot = self._open_slot()
                        if slot is not None:
                            return slot, None, 0, slot.job, self._openings
                    if self._input_done:
                        return None
                    if len(slots) < max(self._buffer.value, self._parallelism.value):
                        break
                    cond.wait()
            if self._pool is not None and self._pool.should_retire():
                return None
            pull_start = time.perf_counter_ns()
            try:
                limit = self.ledger.skip_delivered(self._input, cond)
                chunk: list[Any] | Failure = self._work.pull(self._input, limit)
            except StopIteration:
                with cond:
                    self._input_done = True
                    cond.notify_all()
                return None
            except errors.CancelledError:
                return None
            except Exception as exc:  # the input's error, delivered at its place in the sequence
                chunk = Failure(exc)
            after = self.ledger.mark()  # where the input stands after this work item: the next one's start
            pull_ns = time.perf_counter_ns() - pull_start
            with cond:
                # a consumer already waiting wants this slot too (in order: only if it is the oldest)
                wanted = self._consumer_waiting and not (self._deterministic and slots)
                slot = _Slot(len(chunk) if type(chunk) is not Failure else 1, wanted)
                self.ledger.pulled(slot, after)
                slots.append(slot)
                record_occupancy(self.metrics, slot.size)
                if self._shared and type(chunk) is not Failure:
                    slot.job = job = self._process(chunk, functools.partial(self._opened, slot))
                else:
                    job = None
        return slot, chunk, pull_ns, job, -1

    def _opened(self, slot: _Slot) -> None:
        """Called by ``slot``'s shared job once other workers may claim its parts: they help with it from now."""
        with self._cond:
            slot.opened = True
            self._openings += 1
            self._cond.notify_all()

    def _open_slot(self) -> _Slot | None:
        """With the condition held: the oldest slot whose shared job is open to every worker and has parts no worker
        claimed yet. Oldest by pull, not by opening: a younger batch filled first would wait for the older one and
        both would come out at once."""
        for slot in self._slots:
            job = slot.job
            if job is not None and slot.opened and job.open:
                return slot
        return None

    def _help(self, slot: _Slot, job: SharedJob, pull_ns: int = 0, openings: int = -1) -> None:
        """Process parts of ``slot``'s shared ``job``; the worker that finishes its last part fills the slot.

        A job chosen as the oldest open one (``openings``: ``_openings`` when it was chosen) is worked on part after
        part while no other job has opened since, none unclaimed is left and the stage goes on: it is still the one
        ``_next_work`` would choose (a job never opens twice; one opened since may be older): the job asks
        ``go_on`` after each part, and counts the parts done once, at the end. Going back to ``_next_work`` after
        each part instead cost the README image pipeline two turns of the stage's condition, a turn of the job's
        lock and two CPU-clock reads per image, each a point where a thread may wait for the GIL."""
        start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
        pool, cancelled = self._pool, self.cancelled

        def go_on() -> bool:
            return (openings == self._openings and not cancelled.is_set()
                    and not (pool is not None and pool.surplus))

        results = job.work(go_on if openings >= 0 else None)
        busy = time.perf_counter_ns() - start
        cpu = time.thread_time_ns() - cpu_start
        self._traced(start, busy, slot.size)
        if results is None:  # others still process parts they claimed: count this worker's share only
            with self._cond:
                self.metrics.busy_ns += busy
                self.metrics.cpu_ns += cpu
            return
        slot.job = None
        self._completed(slot, results, busy, pull_ns, cpu)

    def _completed(self, slot: _Slot, results: list[Any], busy: int, pull_ns: int, cpu: int) -> None:
        """A work item done (``busy`` ns of work after ``pull_ns`` pulling it): its size sampled and its time
        measured for the chunk sizes, then its slot filled (``_finish``)."""
        if results and type(results[0]) is not Failure:  # occupancy counts input elements: bytes per one
            self.metrics.sample_size(results[0], units=slot.size / len(results))
        self._work.measured(slot.size, busy + pull_ns, self.metrics.bytes_per_element)
        self._finish(slot, results, busy, cpu)

    def _finish(self, slot: _Slot, results: list[Any], busy: int, cpu: int) -> None:
        """Hand ``slot`` its results (worked on for ``busy`` ns, ``cpu`` ns of CPU) and wake the consumer."""
        with self._cond:
            slot.results = results
            slot.done = True
            self.metrics.busy_ns += busy
            self.metrics.cpu_ns += cpu
            self._cond.notify_all()

    def _traced(self, start: int, busy: int, elements: int) -> None:
        """The profiler's event for a worker's ``busy`` ns from ``start`` on a work item of ``elements``."""
        tracer = _trace.ACTIVE  # read once: a trace may end between two reads
        if tracer is not None:
            tracer.complete(self.name, start, start + busy, {"elements": elements})

    def _run_process(self, chunk: list[Any], slot: _Slot) -> tuple[list[Any], int]:
        """The chunk's results (for an incremental function: the slot's own list, filled as it went), and the CPU
        time a worker process spent on them (ns)."""
        try:
            if self._processes is not None:
                return self._processes.run(chunk)
            if not self._incremental:
                return self._process(chunk), 0
            self._process(chunk, slot.results, slot.wanted, self._wake)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt or a bug: fail the rest in place, never hang
            if not self._incremental:
                return [Failure(exc)], 0
            slot.results.append(Failure(exc))
        return slot.results, 0

    def worker_pids(self) -> tuple[int, ...]:
        return tuple(self._processes.pids) if self._processes is not None else ()

    def worker_threads(self) -> tuple[int, ...] | None:
        return None if self._processes is not None else super().worker_threads()

    def cancel_self(self) -> None:
        super().cancel_self()
        if self._processes is not None:  # a worker thread waiting on its process wakes as the process ends
            self._processes.shut_down()

    def join_self(self) -> None:
        super().join_self()
        if self._processes is not None:
            self._processes.close()

    def _wake(self) -> None:
        """Called by an incremental worker that has finished results for a waiting consumer."""
        with self._cond:
            self._cond.notify_all()

    # -- consumer --------------------------------------------------------------
    def _refill(self) -> None:
        """Move the next results to ``_ready``: a done slot's (in order, or any when not deterministic), else, as
        soon as there is one, a finished part of the slot(s) the consumer is waiting for. StopIteration at the end."""
        self.start_workers(self._worker, self._parallelism.value)
        cond, slots, ready = self._cond, self._slots, self._ready
        with cond:
            self.account_delivered()
            waited_from = 0
            try:
                while True:
                    self.raise_if_cancelled()
                    if self._take_from(slots, ready):
                        break
                    if not slots and self._input_done:
                        raise StopIteration
                    if not waited_from:  # raise the flags, then look once more before sleeping (see _want)
                        waited_from = time.perf_counter_ns()
                        self._want(True)
                        continue
                    cond.wait()
            finally:
                if waited_from:
                    self._want(False)
                    self.metrics.wait_ns += time.perf_counter_ns() - waited_from
            cond.notify_all()

    def _take_from(self, slots: deque[_Slot], ready: ItemQueue) -> bool:
        """With the condition held: move results to ``ready``; False if none is there yet."""
        if not slots:
            return False
        head = slots[0]
        done = head if head.done or self._deterministic else next((s for s in slots if s.done), None)
        if done is not None and done.done:
            if done is head:
                slots.popleft()
            else:
                slots.remove(done)
            record_occupancy(self.metrics, -done.size)
            self._move(done)
            return True
        if self._deterministic:  # a finished part of the slot in progress (see _want)
            return self._move(head)
        return any(self._move(slot) for slot in slots)

    def _move(self, slot: _Slot) -> bool:
        """With the condition held: move ``slot``'s results to ``_ready``, noting whose they are; False if none."""
        moved = slot.take(self._ready)
        if moved:
            self._moved.append([slot, moved])
            self._moved_count += moved
        return bool(moved)

    def account_delivered(self) -> None:
        """Count the results handed out from ``_ready`` since the last call to the slots they came from."""
        handed = self._moved_count - len(self._ready)
        self._moved_count -= handed
        moved = self._moved
        while handed:
            entry = moved[0]
            count = min(handed, entry[1])
            entry[0].delivered += count
            handed -= count
            if count == entry[1]:
                moved.popleft()
            else:
                entry[1] -= count
        self.ledger.prune()

    def _want(self, waiting: bool) -> None:
        """Raise (or lower) the ``wanted`` flags of the slots a waiting consumer takes from.

        A worker appends a result, then tests the flag; the consumer raises the
        flag, then looks for results (``_refill``): so either the consumer sees
        the result or the worker sees the flag, and a finished element is never
        left waiting for the rest of its chunk.
        """
        self._consumer_waiting = waiting
        slots: Any = self._slots
        if self._deterministic:
            slots = [slots[0]] if slots else []
        for slot in slots:
            if waiting:
                slot.wanted.append(None)
            else:
                slot.wanted.clear()

    def produce(self) -> Any:
        while not self._ready:
            self._refill()
        element = self._ready.pop()
        if type(element) is Failure:
            raise note_stage(element.exc, self.name)
        return element

    def produce_chunk(self, n: int) -> list[Any]:
        while not self._ready:
            self._refill()
        out = self._ready.take(n)
        if type(out[0]) is Failure:  # alone: what came before it is handed out already
            raise note_stage(out[0].exc, self.name)
        return out
