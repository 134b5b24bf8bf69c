"""Chunks from a worker to a consumer on the same node through shared memory, past Ray's object store.

Returning a chunk of arrays from an actor call copies every array into Ray's object store (through a synchronous
exchange with the store per object), and that copy, not the pipeline, was most of what a transfer-bound pipeline
cost. When the consumer runs on the worker's node, the worker instead allocates its large arrays (the batches
``batch`` makes) in shared-memory segments from a ``SegmentPool`` (installed as ``memory.allocate_large_with``)
and packs the chunk with ``wire.pack``: what crosses Ray is a small message naming the segments, and the consumer
maps them (``SegmentReceiver``), so a batch is written once, by the worker, where the consumer reads it. A
consumer on another node (or a platform without POSIX shared memory) gets its chunks through the object store.

Segments are used again: writing into fresh shared memory costs a page fault per page, more than the copy
itself. A segment goes back to its worker's pool once neither side's arrays view it: the worker knows of its own
arrays, the consumer reports the segments a chunk brought once its arrays let go (with its next ``next_chunk``
call), and both keep the segment mapped meanwhile. The pool keeps up to ``FREE_BYTES`` of free segments; others
are unlinked ("retired", and the consumer told to drop its mapping).

Segment names are ``<job prefix><worker index>-<worker pid>-<serial>`` and stay while the segment is in use (a
worker also names itself, ``...-<pid>-live``, before its first segment). They are swept by prefix once the workers
that made them have exited: a dead worker's by the consumer that sees it died (``sweep_when_exited``), the job's by
the consumer that stops it (``sweep_after_exit`` with the pids the workers registered with the coordinator, which
also covers a worker that had made no segment yet; ``job.stop_job``, which also runs at interpreter exit for jobs
still running). A process has exited once all of its threads have: its main thread may end first (a zombie leader)
while another thread still makes a segment.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import functools
import mmap
import os
import pickle
import threading
import time
import uuid
import weakref
from typing import Any

import numpy as np

from fastinput._engine import memory, shared_memory, wire

FREE_BYTES = 64 << 20
"""Free segments a worker keeps for its next arrays; past this, a segment its arrays no longer need is unlinked."""

EXIT_WAIT_SECONDS = 5.0
"""How long a sweep after a worker was killed waits for its process to be gone (``sweep_when_exited``)."""

JOB_END_WAIT_SECONDS = 30.0
"""The same when a job ends (``job.stop_job``): its workers all go, and on a loaded machine Ray may take longer than
``EXIT_WAIT_SECONDS`` to end them (a CI run once found one still running and its segment left); the wait ends as
soon as they are gone."""


PREFIX = "fastinput-ray-"
"""The start of every job's segment names."""


def job_prefix() -> str:
    """A new job's segment name prefix (unique on the node)."""
    return f"{PREFIX}{uuid.uuid4().hex[:16]}-"


def sweep_orphans() -> list[str]:
    """Unlink the segments of earlier jobs on this node whose workers have exited; their names.

    A job sweeps its own segments however it ends, unless its consumer dies first (a SIGKILL, the OOM killer): then
    Ray ends the workers and their segments stay. Each new job on the node removes them as it starts.
    """
    gone = [name for name in shared_memory.listing(PREFIX) if not process_runs(_maker(name))]
    for name in gone:
        shared_memory.unlink(name)
    return gone


SIZE_STEP = 64 << 10
"""Segment sizes are rounded up to this, so arrays of nearby sizes reuse each other's segments."""


@functools.lru_cache(maxsize=1024)
def _exporter(nbytes: int) -> type:
    """A ctypes array type of ``nbytes``: an object that exports a mapping's bytes and, unlike a memoryview (numpy
    views it through a memoryview of its own), lives exactly as long as some array views it, so a weakref
    finalizer on it says when the arrays let go."""
    return type(f"SegmentBytes{nbytes}", (ctypes.c_ubyte * nbytes,), {})


def _watched(mapping: mmap.mmap, nbytes: int, offset: int, released: Any, *args: Any) -> Any:
    """``nbytes`` of ``mapping`` from ``offset`` as an exporter; ``released(*args)`` runs once no view of it is
    left."""
    buffer = _exporter(nbytes).from_buffer(mapping, offset)
    weakref.finalize(buffer, released, *args)
    return buffer


@dataclasses.dataclass(eq=False)
class _Segment:
    name: str
    size: int
    mapping: mmap.mmap
    address: int
    in_worker: bool = False  # the worker's arrays view it
    sends: int = 0  # chunks that brought it to the consumer and that the consumer has not reported let go


class SegmentPool:
    """A worker's shared-memory segments: the large arrays its pipeline allocates, and its chunks' other payloads.

    ``empty`` is fastinput's large-array allocator here; ``locate`` and ``copy_into`` are what ``wire.pack`` asks.
    Finalizers run on whichever thread drops an array's last view: the pool's state is under a lock.
    """

    def __init__(self, names: wire.Segments) -> None:
        self._names = names
        self._segments: dict[str, _Segment] = {}
        self._free: dict[int, list[_Segment]] = collections.defaultdict(list)
        self._free_bytes = 0
        self._lock = threading.RLock()
        self._copies: list[np.ndarray] = []  # this chunk's copied payloads, kept until ``sent``
        self.retired: list[str] = []  # unlinked since the consumer was last told

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dtype.itemsize
        segment = self._take(max(1, -(-nbytes // SIZE_STEP)) * SIZE_STEP)
        buffer = _watched(segment.mapping, segment.size, 0, self._worker_released, segment)
        return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)

    def _take(self, size: int) -> _Segment:
        with self._lock:
            free = self._free.get(size)
            if free:
                segment = free.pop()
                self._free_bytes -= size
                segment.in_worker = True
                return segment
        name = self._names.new_name()
        mapping = shared_memory.create(name, size)
        segment = _Segment(name, size, mapping, ctypes.addressof(ctypes.c_char.from_buffer(mapping)), in_worker=True)
        with self._lock:
            self._segments[name] = segment
        return segment

    def locate(self, address: int, nbytes: int) -> wire.Ref | None:
        """Where ``nbytes`` at ``address`` lie, if in one of the segments the worker's arrays view."""
        with self._lock:
            for segment in self._segments.values():
                if segment.in_worker and segment.address <= address <= segment.address + segment.size - nbytes:
                    return segment.name, segment.size, address - segment.address, nbytes
        return None

    def copy_into(self, raw: memoryview) -> wire.Ref:
        """Copy a payload found in no segment (an array numpy allocated) into one of the pool's."""
        array = self.empty((raw.nbytes,), np.dtype(np.uint8))
        array[:] = np.frombuffer(raw, np.uint8)
        self._copies.append(array)
        ref = self.locate(array.ctypes.data, raw.nbytes)
        assert ref is not None
        return ref

    def sent(self, names: list[str]) -> None:
        """A chunk referring to ``names`` is on its way: they stay the consumer's until it reports them (and the
        payloads copied for it stop being the worker's)."""
        with self._lock:
            for name in names:
                self._segments[name].sends += 1
        self._copies.clear()

    def consumer_released(self, names: list[str]) -> None:
        """The consumer's arrays from one chunk each of ``names`` let go."""
        with self._lock:
            for name in names:
                segment = self._segments.get(name)
                if segment is not None:
                    segment.sends -= 1
                    self._maybe_free(segment)

    def _worker_released(self, segment: _Segment) -> None:
        with self._lock:
            segment.in_worker = False
            self._maybe_free(segment)

    def _maybe_free(self, segment: _Segment) -> None:
        if segment.in_worker or segment.sends > 0 or self._segments.get(segment.name) is not segment:
            return
        if self._free_bytes + segment.size <= FREE_BYTES:
            self._free[segment.size].append(segment)
            self._free_bytes += segment.size
            return
        del self._segments[segment.name]  # the memory goes with the last mapping (views may still be closing)
        shared_memory.unlink(segment.name)
        self.retired.append(segment.name)

    def take_retired(self) -> list[str]:
        with self._lock:
            retired, self.retired = self.retired, []
        return retired


class SegmentSender:
    """A worker's side: packs a chunk's elements into shared memory when its consumer is on this node."""

    def __init__(self, prefix: str, index: int, node: str | None) -> None:
        """A sender for worker ``index`` on Ray node ``node`` (None: never through shared memory)."""
        self.prefix = f"{prefix}{index}-{os.getpid()}-"
        self._node = node if shared_memory.available() else None
        self._names = wire.Segments(self.prefix)
        self._pool = SegmentPool(self._names)
        self._installed = False

    def pack(self, elements: list[Any], consumer_node: str | None) -> bytes | None:
        """``elements`` as a message for a consumer on ``consumer_node``: the ``wire`` message and the segments
        retired since the last one; None: send them through Ray (another node, or elements that do not pickle:
        Ray then says why)."""
        if consumer_node is None or consumer_node != self._node:
            return None
        if not self._installed:  # from now on the pipeline's large arrays are allocated in the pool's segments
            shared_memory.create(self.prefix + "live", 1).close()  # so a sweep knows this process before its data
            memory.allocate_large_with(self._pool.empty)
            self._installed = True
        try:
            message, sent = wire.pack(elements, self._names, self._pool, self._pool.copy_into)
        except Exception:
            self._pool.sent([])  # nothing went
            return None
        self._pool.sent(sent)
        return pickle.dumps((message, self._pool.take_retired()), protocol=5)

    def released(self, names: list[str]) -> None:
        """The consumer says its arrays let go of these (one chunk's worth each)."""
        self._pool.consumer_released(names)


class SegmentReceiver:
    """A consumer's side of one worker: maps its segments (once each, while the worker keeps them) and collects
    the names of those whose arrays have let go, for the worker."""

    def __init__(self) -> None:
        self._mapped: dict[str, mmap.mmap] = {}
        self._released: collections.deque[str] = collections.deque()  # appended to by finalizers on any thread

    def unpack(self, packed: bytes) -> list[Any]:
        message, retired = pickle.loads(packed)
        for name in retired:
            self._mapped.pop(name, None)
        return wire.unpack(message, self._buffers)

    def _buffers(self, segments: dict[str, int]) -> dict[str, Any]:
        buffers = {}
        for name, size in segments.items():
            mapping = self._mapped.get(name)
            if mapping is None:
                mapping = self._mapped[name] = shared_memory.attach(name, size, keep_name=True)
            buffers[name] = _watched(mapping, size, 0, self._released.append, name)
        return buffers

    def close(self) -> None:
        """Drop the mappings kept for the worker's next chunks (arrays handed out keep theirs)."""
        self._mapped.clear()

    def take_released(self) -> list[str]:
        names = []
        while self._released:
            names.append(self._released.popleft())
        return names


def sweep(prefix: str) -> None:
    """Unlink the segments left under ``prefix``."""
    shared_memory.sweep(prefix)


def sweep_after_exit(prefix: str, pids: list[int], wait_seconds: float) -> None:
    """Unlink every segment under ``prefix`` once the processes ``pids`` (all that could make one) have exited, or
    after ``wait_seconds`` (a job's end: what a process still running then keeps goes with the job all the same)."""
    deadline = time.monotonic() + wait_seconds
    while any(process_runs(pid) for pid in pids) and time.monotonic() <= deadline:
        time.sleep(0.01)
    sweep(prefix)


def sweep_when_exited(prefix: str, wait_seconds: float = EXIT_WAIT_SECONDS) -> None:
    """Unlink the segments under ``prefix`` once the workers that made them have exited: a killed worker may run on
    for a moment (Ray reports it dead first), and a segment it made after the sweep would stay. A worker still
    running after ``wait_seconds`` keeps its segments (a restarted worker's live ones share the prefix; the job's
    sweep takes them)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        names = shared_memory.listing(prefix)
        running = {pid for pid in {_maker(name) for name in names} if process_runs(pid)}
        if not running or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    for name in names:
        if _maker(name) not in running:
            shared_memory.unlink(name)


def _maker(name: str) -> int:
    """The pid of the worker that made segment ``name`` (``fastinput-ray-<job>-<index>-<pid>-<serial>``; 0 for a
    name not in that form)."""
    try:
        return int(name.split("-")[4])
    except (IndexError, ValueError):
        return 0


def process_runs(pid: int) -> bool:
    """Whether any thread of process ``pid`` runs (a zombie, killed and not yet reaped, does not). Each thread is
    asked: a process whose main thread has exited shows as a zombie while its other threads go on."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False
