"""The worker actor: runs the shipped pipeline with fastinput's own iterator and hands out chunks of its elements.

A consumer keeps a few ``next_chunk`` calls in flight per worker (Ray runs an actor's calls one at a time, in
order), so a worker is never idle while its consumer wants more and never more than that many chunks ahead. Each
chunk holds up to ``max_elements`` elements, ``max_bytes`` bytes, or what ``max_seconds`` of work made: large
elements travel one at a time through Ray's object store (numpy arrays read back without a copy), small ones many
to a call.

Saving for faults: before a chunk, now and then (``StateCadence``), the worker saves its pipeline's state
(``Iterator.get_state``) and sends it with the chunk. The consumer keeps the last state it took elements after and
how many it took since; a restarted worker is ``restore``d from those: the same state, then that many positions
skipped. Pipelines whose state cannot be saved are restored by running from the start and skipping.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from fastinput._engine.metrics import element_nbytes
from fastinput.distribute import transfer
from fastinput.distribute.cluster import import_ray
from fastinput.distribute.shipping import unship
from fastinput.distribute.splits import SplitPlan, with_split_source
from fastinput.errors import FastInputError, InvalidArgumentError, UnimplementedError

STATE_COST_SHARE = 0.05
"""At most this share of a worker's time goes to saving states (a state is saved once the work since the last one
is 1/share times what saving it took)."""


@dataclasses.dataclass
class Chunk:
    """One ``next_chunk`` answer.

    ``state``: the pipeline's state just before ``elements`` (None: not saved this time; the consumer counts on
    from the last one). ``error``: raised after ``elements``, in its place (the pipeline goes on after it where
    fastinput's iterator does). ``end``: the worker's pipeline has ended (after ``elements``). ``restarted``: the
    worker was restarted and waits to be restored (nothing else is set). ``busy_seconds`` / ``cpu_seconds``: the
    worker's wall and CPU time for this chunk, for the per-worker figures. ``packed``: the elements as a
    shared-memory message (``transfer.py``; ``elements`` is then empty until the consumer ``unpack``s it).
    ``segment_prefix``: the names of the worker's segments (swept if it dies).
    """

    elements: list[Any]
    error: BaseException | None = None
    end: bool = False
    state: dict[str, Any] | None = None
    restarted: bool = False
    busy_seconds: float = 0.0
    cpu_seconds: float = 0.0
    packed: bytes | None = None
    segment_prefix: str | None = None

    def unpack(self, receiver: transfer.SegmentReceiver) -> None:
        """Map a shared-memory chunk's elements (a no-op for one that came through the object store)."""
        if self.packed is not None:
            self.elements = receiver.unpack(self.packed)
            self.packed = None


class StateCadence:
    """When to save the pipeline's state: as often as ``STATE_COST_SHARE`` of the worker's time allows."""

    def __init__(self) -> None:
        self._saveable = True  # False once get_state said the pipeline cannot be saved (restores then rerun it)
        self._cost_ns = 0
        self._work_ns = 0  # worker time since the last state

    def maybe_save(self, iterator: Any, after_error: bool) -> dict[str, Any] | None:
        """The pipeline's state now if one is due (never just after an error: a state points at the error)."""
        if not self._saveable or after_error or self._work_ns * STATE_COST_SHARE < self._cost_ns:
            return None
        start = time.perf_counter_ns()
        try:
            state = iterator.get_state()
        except UnimplementedError:
            self._saveable = False
            return None
        self._cost_ns = time.perf_counter_ns() - start
        self._work_ns = 0
        return state

    def worked(self, ns: int) -> None:
        self._work_ns += ns


class _Splits:
    """This worker's split provider: asks the coordinator (``Coordinator.split``)."""

    def __init__(self, ray: Any, coordinator: Any, index: int) -> None:
        self._ray, self._coordinator, self._index = ray, coordinator, index

    def __call__(self, k: int) -> int | None:
        return self._ray.get(self._coordinator.split.remote(self._index, k))


class Worker:
    """Run as a Ray actor (``job.start_job``), one per worker; the methods are its remote calls."""

    def __init__(self, pipeline: bytes, index: int, coordinator: Any, plan: SplitPlan | None,
                 segment_prefix: str) -> None:
        ray = import_ray()
        # a worker starting as the job stops makes no segment: the consumer's sweep would not wait for it
        segments_allowed = ray.get(coordinator.register.remote(os.getpid()))
        self._sender = transfer.SegmentSender(segment_prefix, index,
                                              ray.get_runtime_context().get_node_id() if segments_allowed else None)
        self._unbuildable: Exception | None = None  # why the pipeline cannot be rebuilt here: each call says so
        try:
            dataset = unship(pipeline)
        except Exception as exc:
            self._unbuildable = InvalidArgumentError(
                f"distribute: worker {index} cannot rebuild the pipeline ({type(exc).__name__}: {exc}); the modules "
                "its functions come from must be importable on every worker")
            dataset = None
        if plan is not None and dataset is not None:  # distributed_epoch: read the splits the coordinator hands out
            dataset = with_split_source(dataset, plan, _Splits(ray, coordinator, index))
        self._dataset = dataset
        self._iterator: Any = None
        self._cadence = StateCadence()
        self._after_error = False
        # Restarted by Ray after a fault: hand out nothing before a consumer says where to resume (``restore``).
        self._awaiting_restore = ray.get_runtime_context().was_current_actor_reconstructed

    def restore(self, state: dict[str, Any] | None, skip: int, running_too: bool = False) -> bool:
        """Resume from ``state`` (None: the start), past ``skip`` more positions (an error counts as one). Only on a
        worker that has not started (or was restarted) unless ``running_too`` (the one consumer of a worker whose
        answers were lost knows best): else returns False and changes nothing."""
        if (self._iterator is not None and not self._awaiting_restore and not running_too) or self._unbuildable:
            return False
        self.close()
        iterator = iter(self._dataset)
        if state is not None:
            iterator.set_state(state)
        for _ in range(skip):
            try:
                next(iterator)
            except StopIteration:
                break
            except Exception:  # an error's position was handed out as the error
                pass
        self._iterator = iterator
        self._awaiting_restore = False
        return True

    def next_chunk(self, max_elements: int, max_bytes: int, max_seconds: float, consumer_node: str | None = None,
                   released: list[str] | None = None) -> Chunk:
        """The next elements: at least one unless the pipeline has ended or raised, at most ``max_elements``, and
        no more once ``max_bytes`` or ``max_seconds`` of work are reached. A consumer on this worker's node (its
        Ray node id ``consumer_node``) gets them through shared memory, and says which segments of earlier chunks
        its arrays let go of (``released``; ``transfer.py``)."""
        self._sender.released(released or [])
        if self._awaiting_restore:
            return Chunk([], restarted=True)
        if self._unbuildable is not None:
            return Chunk([], error=self._unbuildable, end=True)
        if self._iterator is None:
            self._iterator = iter(self._dataset)
        iterator = self._iterator
        state = self._cadence.maybe_save(iterator, self._after_error)
        start, cpu_start = time.perf_counter_ns(), time.process_time_ns()
        deadline = start + int(max_seconds * 1e9)
        elements: list[Any] = []
        error: BaseException | None = None
        end = False
        nbytes = 0
        while True:
            try:
                element = next(iterator)
            except StopIteration:
                end = True
                break
            except Exception as exc:
                error = transportable(exc)
                break
            elements.append(element)
            nbytes += element_nbytes(element)
            if len(elements) >= max_elements or nbytes >= max_bytes or time.perf_counter_ns() >= deadline:
                break
        self._after_error = error is not None
        packed = self._sender.pack(elements, consumer_node) if elements else None
        busy_ns = time.perf_counter_ns() - start
        self._cadence.worked(busy_ns)
        return Chunk([] if packed is not None else elements, error, end, state, busy_seconds=busy_ns / 1e9,
                     cpu_seconds=(time.process_time_ns() - cpu_start) / 1e9, packed=packed,
                     segment_prefix=self._sender.prefix)

    def close(self) -> None:
        """Stop the pipeline and join its threads."""
        if self._iterator is not None:
            self._iterator.close()
            self._iterator = None


def transportable(exc: Exception) -> Exception:
    """``exc`` if it pickles (Ray sends it back with the chunk), else a ``FastInputError`` saying what it was."""
    import cloudpickle

    try:
        cloudpickle.loads(cloudpickle.dumps(exc))
    except Exception:
        copy = FastInputError(f"{type(exc).__name__}: {exc}")
        for note in getattr(exc, "__notes__", ()):
            copy.add_note(note)
        return copy
    exc.__traceback__ = None
    return exc
