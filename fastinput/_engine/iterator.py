"""The runtime: a tree of iterators, one per dataset node, and the iterator users hold.

Each ``DatasetIterator`` produces elements for its consumer through two calls:
``get_next()`` (one element) and ``get_next_chunk(n)`` (between 1 and ``n``
elements). Chunks are how small elements move between stages and threads
without per-element overhead. Both raise ``StopIteration`` at the end.

Errors keep their place in the sequence: a stage that hits an error after
producing some elements of a chunk returns those elements and raises the
error on the next call. The first stage an error passes through adds a note
naming itself (``exc.add_note``), so a user sees which stage failed.

Stopping is two-phase: ``cancel()`` sets the stop signal of every iterator in
the tree and wakes every waiting thread (it never blocks); ``close()`` cancels,
then joins the threads each iterator owns and closes its inputs. Each
iterator's signal is a child of its pipeline's (``fastinput._engine.cancellation``),
and ``raise_if_cancelled()`` is the one check. A dropped ``Iterator`` is
closed on the reaper thread, never in its finaliser (``fastinput._engine.lifecycle``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from collections.abc import Iterator as _IteratorABC
from typing import TYPE_CHECKING, Any, Protocol

from fastinput import errors
from fastinput._engine import instrument as _trace
from fastinput._engine import memory
from fastinput._engine.cancellation import StopSignal
from fastinput._engine.checkpoint import (
    STATE_VERSION,
    check_stage,
    pending_error_of,
    resolve_state,
    stage_state,
    with_pending_error,
)
from fastinput._engine.lifecycle import close_later, release_frames, start_reaper
from fastinput._engine.metrics import StageMetrics, StageStats
from fastinput._engine.traits import KnobKind, TuningProfile
from fastinput._engine.workers import WorkerPool
from fastinput.options import Options

if TYPE_CHECKING:
    from fastinput._engine.row_slices import Rows
    from fastinput.dataset import Dataset

logger = logging.getLogger("fastinput")

SYNC_PROFILE = TuningProfile()
"""A stage that runs on its consumer's thread."""


class Tuner(Protocol):
    """What the engine needs of a pipeline's tuner (``fastinput.autotune.tuner.Tuner``): a way to stop it."""

    def stop(self) -> None:
        """Stop tuning and join the tuner's thread."""


def note_stage(exc: BaseException, stage: str) -> BaseException:
    """Add a note naming the stage an exception came from (only the first stage it passes)."""
    if not getattr(exc, "_fastinput_stage", None) and isinstance(exc, Exception):
        try:
            exc._fastinput_stage = stage  # type: ignore[attr-defined]
            exc.add_note(f"fastinput: raised in stage {stage}")
        except (AttributeError, TypeError):  # exceptions with __slots__ or read-only attributes
            pass
    return exc


class IteratorContext:
    """What every iterator of one pipeline shares: the merged options (their defaults resolved) and the
    pipeline's stop signal (the parent of each iterator's own ``cancelled``)."""

    def __init__(self, options: Options) -> None:
        self.options = options.resolved()
        self.cancelled = StopSignal()


class Knob:
    """A setting of a running iterator that can be changed while it runs (the autotuner's lever).

    ``kind`` says what it turns (worker threads, a buffer, ...): the tuner and its
    model dispatch on it, while ``name`` is for display (``it.knobs()``, traces).
    ``autotuned`` says whether the user asked for ``AUTOTUNE`` (the tuner only
    turns those); ``shrinkable`` marks a buffer depth the user did not choose
    (a stage whose parallelism they fixed still sizes its own buffers), which
    the tuner lowers to keep the RAM budget as it does autotuned ones; ``set``
    works on every knob and clamps to ``[minimum, maximum]``.
    """

    def __init__(
        self, stage: str, name: str, value: int, minimum: int, maximum: int, autotuned: bool,
        on_change: Callable[[int], None], shrinkable: bool = False, *, kind: KnobKind,
    ) -> None:
        self.stage = stage
        self.name = name
        self.kind = kind
        self.value = value
        self.minimum = minimum
        self.maximum = maximum
        self.autotuned = autotuned
        self.shrinkable = autotuned or shrinkable
        self._on_change = on_change

    def set(self, value: int) -> int:
        """Set the knob (clamped to its range); returns the value in force."""
        value = max(self.minimum, min(self.maximum, int(value)))
        if value != self.value:
            logger.debug("knob %s.%s: %d -> %d", self.stage, self.name, self.value, value)
            self.value = value
            self._on_change(value)
            self.trace()
        return value

    def trace(self) -> None:
        """Record the knob's value on its counter track, if a trace is being recorded."""
        tracer = _trace.ACTIVE  # read once: a trace may end between two reads
        if tracer is not None:  # one track per knob: viewers keep a track's series from its first sample
            tracer.counter(f"knob {self.stage} {self.name}", {"value": self.value})

    def __repr__(self) -> str:
        tuned = ", autotuned" if self.autotuned else ""
        return f"Knob({self.stage!r}, {self.name}={self.value}, range=[{self.minimum}, {self.maximum}]{tuned})"


class DatasetIterator:
    """Base of every iterator in the tree.

    Subclasses implement ``produce()`` or ``produce_chunk(n)`` (or both); each
    default is written in terms of the other, so an iterator class that
    defines neither cannot be built (``TypeError``, as for an abstract method).
    Stages that own threads override ``cancel_self`` and ``join_self``.
    """

    parallel = False
    stats_beyond_inputs = False
    """True where ``stats_below()`` shows stages that ``walk()`` does not reach (a repeat's ended epoch, the
    datasets an interleave opens)."""

    def __init__(self, dataset: Dataset, ctx: IteratorContext, inputs: list[DatasetIterator] | tuple = ()) -> None:
        cls = type(self)
        if cls.produce is DatasetIterator.produce and cls.produce_chunk is DatasetIterator.produce_chunk:
            raise TypeError(f"{cls.__qualname__} defines neither produce() nor produce_chunk(n): an iterator must "
                            "define at least one (each default calls the other)")
        self.dataset = dataset
        self.ctx = ctx
        self.name = str(dataset)
        self.inputs: list[DatasetIterator] = list(inputs)
        self.metrics = StageMetrics(self.name, parallel=self.parallel)
        self.cancelled = ctx.cancelled.child()
        """Set when this stage is to stop: by ``cancel()``, or by its pipeline being closed."""
        self._pending: BaseException | None = None
        self._closed = False

    replays_pending_error = False
    """True where ``own_state`` itself stands before an error kept for the next call (its input is read again up
    to it, so a restore meets it again): the state then does not also carry it (``with_pending_error``)."""

    # -- producing elements -------------------------------------------------
    def produce(self) -> Any:
        return self.produce_chunk(1)[0]

    def produce_chunk(self, n: int) -> list[Any]:
        out: list[Any] = []
        append, get = out.append, self.produce
        try:
            for _ in range(n):
                append(get())
        except StopIteration:
            if not out:
                raise
        except Exception as exc:
            if not out:
                raise
            self._pending = exc
        return out

    def get_next(self) -> Any:
        """The next element; ``StopIteration`` at the end."""
        element = self._timed(self.produce)
        self.metrics.elements += 1
        return element

    def get_next_chunk(self, n: int) -> list[Any]:
        """Between 1 and ``n`` next elements (never an empty list); ``StopIteration`` at the end."""
        chunk = self._timed(self.produce_chunk, n)
        self.metrics.elements += len(chunk)
        return chunk

    def get_next_rows(self, n: int) -> Rows:
        """Between 1 and ``n`` next elements as one run of rows (``fastinput._engine.row_slices``); only for an
        iterator of a dataset with a ``row_layout``. ``StopIteration`` at the end."""
        rows = self._timed(self.produce_rows, n)
        self.metrics.elements += rows.count
        return rows

    def produce_rows(self, n: int) -> Rows:
        """``get_next_rows``'s work (iterators of datasets with a ``row_layout`` define it)."""
        raise errors.UnimplementedError(f"{self.name} does not hand on runs of rows")

    def _timed(self, produce: Callable[..., Any], *args: Any) -> Any:
        """Run ``produce`` as this stage's consumer call: pending error first, timing, trace event, error note."""
        if self._pending is not None:
            self._raise_pending()
        start = time.perf_counter_ns()
        try:
            return produce(*args)
        except StopIteration:
            raise
        except Exception as exc:
            note_stage(exc, self.name)
            raise
        finally:
            end = time.perf_counter_ns()
            self.metrics.call_ns += end - start
            tracer = _trace.ACTIVE  # read once: a trace may end between two reads
            if tracer is not None:
                tracer.complete(self.name, start, end)

    def _raise_pending(self) -> None:
        exc, self._pending = self._pending, None
        raise note_stage(exc, self.name)  # type: ignore[arg-type]

    # -- stopping -----------------------------------------------------------
    def cancel(self) -> None:
        """Set the stop signal of this iterator and its inputs and wake their waiting threads; never blocks."""
        self.cancelled.set()
        self.cancel_self()
        for child in self.inputs:
            child.cancel()

    def close(self) -> None:
        """Stop and join every thread this iterator and its inputs own; idempotent."""
        if self._closed:
            return
        self.cancel()
        self.join_self()
        self._closed = True
        for child in self.inputs:
            child.close()

    def raise_if_cancelled(self) -> None:
        """``CancelledError`` if this stage is to stop (the one cancellation check; threaded stages call it with
        their condition held, after a wait)."""
        if self.cancelled.is_set():
            raise errors.CancelledError(f"{self.name}: the iterator was closed")

    def cancel_self(self) -> None:
        """Wake this stage's own waiting threads, its signal being set (stages with threads override)."""

    def join_self(self) -> None:
        """Join this stage's own threads (stages with threads override)."""

    # -- saving and restoring (the contract: fastinput._engine.checkpoint) ---------------------------------
    @property
    def op(self) -> str:
        """The operation this stage runs (its traits' ``op``): what a saved state names it by."""
        return self.dataset.traits.op

    def get_state(self) -> dict[str, Any]:
        """Where this stage stands, its inputs' states nested under ``"inputs"``: a JSON-able nest.

        Stages define ``own_state``; a stage whose inputs' states are not simply its current inputs' (work in
        flight, inputs made anew per epoch) overrides this too.
        """
        own = self.own_state()  # before the inputs', as always
        return self.with_kept_error(stage_state(self.op, own, [child.get_state() for child in self.inputs]))

    def with_kept_error(self, state: dict[str, Any]) -> dict[str, Any]:
        """``state`` with the error this stage keeps for its next call (``with_pending_error``), unless its own
        state already stands before it (``replays_pending_error``); for stages that override ``get_state``."""
        return state if self.replays_pending_error else with_pending_error(state, self._pending)

    def set_state(self, state: dict[str, Any]) -> None:
        """Put this fresh iterator (no element taken yet) and its inputs where ``state`` says; a state saved from
        another pipeline raises ``InvalidArgumentError`` naming the stage that differs."""
        check_stage(state, self.op, self.name, len(self.inputs))
        self.restore_own_state(state)
        for child, saved in zip(self.inputs, state["inputs"]):
            child.set_state(saved)
        self._pending = pending_error_of(state)

    def own_state(self) -> dict[str, Any]:
        """This stage's own position (not its inputs'), JSON-able; ``{}`` for a stage that holds none."""
        raise errors.UnimplementedError(f"get_state: stage {self.name} cannot save its state")

    def restore_own_state(self, state: dict[str, Any]) -> None:
        """Take up the position ``own_state`` saved (``state`` holds it, beside ``"stage"`` and ``"inputs"``)."""

    def restores_in_order(self) -> bool:
        """Whether this stage, restored from a state, gives its elements in the order the saved one would have
        (False below a ``deterministic=False`` stage): a stage above it that saves "the next n elements were
        delivered" may count on it only then."""
        return all(child.restores_in_order() for child in self.inputs)

    # -- introspection ------------------------------------------------------
    def knobs(self) -> list[Knob]:
        """This stage's own tunable knobs (not its inputs')."""
        return []

    def tuning_profile(self) -> TuningProfile:
        """How the autotuner's model treats this stage now (buffered stages override; their chunk size may change)."""
        return SYNC_PROFILE

    def walk(self, depth: int = 0):
        """Yield ``(depth, iterator)`` for this iterator and every iterator below it, consumer first."""
        yield depth, self
        for child in self.inputs:
            yield from child.walk(depth + 1)

    def stats_below(self, depth: int = 0) -> list[StageStats]:
        """Snapshots of this stage's metrics and its inputs', consumer first."""
        return [self.stats(depth), *(s for child in self.inputs for s in child.stats_below(depth + 1))]

    def own_ns(self) -> int:
        """This stage's own work so far, in ns: a parallel stage's busy time; for a synchronous one, the time inside
        it minus the time inside the inputs it calls."""
        m = self.metrics
        if m.parallel:
            return m.busy_ns
        return max(0, m.call_ns - sum(child.metrics.call_ns for child in self.inputs))

    def stats(self, depth: int = 0) -> StageStats:
        """A snapshot of this stage's metrics."""
        m = self.metrics
        self_ns = self.own_ns()
        return StageStats(
            name=m.name,
            depth=depth,
            parallel=m.parallel,
            elements=m.elements,
            call_seconds=m.call_ns / 1e9,
            self_seconds=self_ns / 1e9,
            wait_seconds=m.wait_ns / 1e9,
            buffer_occupancy=m.buffer_occupancy,
            buffer_capacity=m.buffer_capacity,
            bytes_buffered=int(m.buffer_occupancy * m.bytes_per_element),
            parallelism=m.parallelism,
            elapsed_seconds=(time.perf_counter_ns() - m.created_ns) / 1e9,
            cpu_seconds=m.cpu_ns / 1e9,
            traits=self.dataset.traits,
            worker_pids=self.worker_pids(),
        )

    def worker_pids(self) -> tuple[int, ...]:
        """The ids of this stage's worker processes (stages that run functions in processes override)."""
        return ()

    def worker_threads(self) -> tuple[int, ...] | None:
        """The kernel's ids of the threads that do this stage's own work (its workers), whose run-queue delay the
        tuner reads (``fastinput.autotune.run_queue``); None where it does not know them (a synchronous stage runs on
        its consumer's thread, a distributed one's workers are elsewhere): the tuner then estimates the delay."""
        return None


class ThreadedIterator(DatasetIterator):
    """Base of stages that own worker threads: one condition for their buffer, a worker pool.

    Workers are started at the first request (``start_workers``), so building
    an iterator tree starts no thread.
    """

    parallel = True

    def __init__(self, dataset: Dataset, ctx: IteratorContext, inputs: list[DatasetIterator] | tuple = ()) -> None:
        super().__init__(dataset, ctx, inputs)
        self._cond = threading.Condition(threading.Lock())
        self._pool: WorkerPool | None = None

    def start_workers(self, target: Callable[[], None], count: int) -> None:
        if self._pool is None:
            self._pool = WorkerPool(self.name, target, count)

    def worker_threads(self) -> tuple[int, ...] | None:
        return self._pool.native_ids() if self._pool is not None else ()

    def cancel_self(self) -> None:
        with self._cond:  # a thread that saw the signal unset under the condition is waiting by now
            self._cond.notify_all()

    def join_self(self) -> None:
        if self._pool is not None:
            self._pool.join()


STATE_DICT_KEY = "fastinput_iterator_state"
"""The key of ``Iterator.state_dict()``'s one entry: the iterator's state as JSON text."""


def _weak_summary(pipeline: Iterator) -> Callable[[], dict | None]:
    """``pipeline.stats_summary()`` without keeping the pipeline alive (None once it is gone)."""
    ref = weakref.ref(pipeline)

    def summary() -> dict | None:
        alive = ref()
        return None if alive is None else alive.stats_summary()

    return summary


def _stop_pipeline(root: DatasetIterator, tuner: Tuner | None) -> None:
    """What closing an ``Iterator`` does: stop the tuner, stop every stage (those made while it closes too), join
    every thread."""
    if tuner is not None:
        tuner.stop()
    root.ctx.cancelled.set()
    root.close()
    memory.REUSED.release_free()  # its batches' memory, unless another pipeline (or its consumer) still has them


class Iterator(_IteratorABC):
    """What ``iter(dataset)`` returns: a Python iterator over the pipeline's elements.

    It is a context manager; ``close()``, leaving a ``with`` block or reaching
    the end stops and joins every thread the pipeline started. Breaking out of
    a ``for`` loop, dropping the last reference or an error that ends the loop
    has them stopped and joined soon after, by the reaper thread (see
    ``fastinput._engine.lifecycle``): an error's traceback never keeps the iterator alive.

    >>> import fastinput as fi
    >>> with iter(fi.Dataset.range(3)) as it:
    ...     [int(x) for x in it]
    [0, 1, 2]
    """

    def __init__(self, root: DatasetIterator) -> None:
        self._root = root
        self._done = False
        self._steps = 0
        self._first_call_ns = 0
        self._last_return_ns = 0
        self._tuner: Tuner | None = None
        self._closed = False
        start_reaper()  # before any finaliser may need it: a finaliser cannot start a thread safely
        tracer = _trace.ACTIVE
        if tracer is not None:
            tracer.pipeline_opened(id(self), _weak_summary(self))
            for knob in self.knobs():
                knob.trace()

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        now = time.perf_counter_ns()
        if self._last_return_ns:
            tracer = _trace.ACTIVE
            if tracer is not None:  # the consumer's step: its time between two next() calls
                tracer.complete("step", self._last_return_ns, now, {"step": self._steps})
        else:
            self._first_call_ns = now
        try:
            element = self._root.get_next()
        except BaseException as exc:
            self._last_return_ns = time.perf_counter_ns()
            if isinstance(exc, StopIteration):
                self.close()  # the end: its threads have nothing left to do; join them now
            elif isinstance(exc, errors.CancelledError):
                self._done = True
            else:
                release_frames(exc)
            # The traceback keeps this frame: it must not keep the iterator, and so its threads, alive
            # (a `for` loop ended by the error leaves no other reference; dropping it closes the pipeline).
            del self
            raise
        self._last_return_ns = time.perf_counter_ns()
        self._steps += 1
        return element

    def get_next(self) -> Any:
        """The next element (same as ``next(it)``)."""
        return next(self)

    def close(self) -> None:
        """Stop the pipeline and join every thread it started; idempotent."""
        self._done = True
        if self._closed:
            return
        self._closed = True
        tracer = _trace.ACTIVE
        if tracer is not None:
            tracer.pipeline_closed(id(self), self.stats_summary())
        _stop_pipeline(self._root, self._tuner)

    # -- saving and restoring ----------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Where this iterator stands, as a small JSON-serialisable value: ``set_state`` on a fresh iterator of the
        same pipeline continues exactly from here. Call it between two ``next()`` calls.

        >>> import fastinput as fi
        >>> ds = fi.Dataset.range(10).shuffle(4, seed=1).batch(3)
        >>> it = iter(ds)
        >>> first = next(it).tolist()
        >>> state = it.get_state()
        >>> rest = [b.tolist() for b in it]
        >>> resumed = iter(ds)
        >>> resumed.set_state(state)
        >>> [b.tolist() for b in resumed] == rest
        True
        """
        return {"fastinput_state": STATE_VERSION, "pipeline": repr(self._root.dataset),
                "root": resolve_state(self._root.get_state())}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue where ``state`` (from ``get_state``, JSON round trips included) stood; only on a fresh iterator,
        before its first element. A state of a different pipeline raises ``InvalidArgumentError`` naming the stage."""
        if self._steps or self._first_call_ns or self._closed:
            raise errors.InvalidArgumentError("set_state: call it on a fresh iterator (iter(dataset)), before its "
                                              "first element")
        if not isinstance(state, dict) or state.get("fastinput_state") != STATE_VERSION:
            raise errors.InvalidArgumentError(f"set_state: not a fastinput iterator state of version {STATE_VERSION} "
                                              "(it comes from Iterator.get_state())")
        self._root.set_state(state["root"])

    def state_dict(self) -> dict[str, str]:
        """``get_state()`` as JSON text under one key: with ``load_state_dict`` this makes the iterator a PyTorch
        ``Stateful`` object (``torch.save``, ``torch.distributed.checkpoint``). One string, because
        ``torch.distributed.checkpoint`` loads into the structure of the fresh iterator's ``state_dict()``, and a
        state's nest (a shuffle buffer's length, ...) differs from a fresh iterator's."""
        return {STATE_DICT_KEY: json.dumps(self.get_state())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue where ``state_dict`` (from ``state_dict()``) stood: ``set_state`` of the state it holds."""
        if not isinstance(state_dict, dict) or not isinstance(state_dict.get(STATE_DICT_KEY), str):
            raise errors.InvalidArgumentError(f"load_state_dict: not a fastinput iterator's state_dict (a dict with "
                                              f"{STATE_DICT_KEY!r}, from Iterator.state_dict())")
        self.set_state(json.loads(state_dict[STATE_DICT_KEY]))

    def __enter__(self) -> Iterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # May run in any thread, even one of this pipeline's workers holding its lock (the cyclic GC runs
        # wherever an allocation triggers it): take no lock here; the reaper thread stops the pipeline.
        if getattr(self, "_closed", True):
            return
        self._closed = True
        try:
            tracer = _trace.ACTIVE
            if tracer is not None:  # the tracer's bookkeeping takes no lock
                tracer.pipeline_closed(id(self), self.stats_summary())
            close_later(functools.partial(_stop_pipeline, self._root, self._tuner))
        except Exception:  # interpreter shutdown: nothing left to stop
            pass

    # -- what the profiler, the autotuner and curious users read ------------
    def stats(self) -> list[StageStats]:
        """A snapshot of every stage's metrics, consumer first (depth 0 is the last stage)."""
        return self._root.stats_below()

    def attach_tuner(self, make_tuner: Callable[[DatasetIterator, Iterator], Tuner]) -> None:
        """Run a tuner on this pipeline: ``make_tuner(root, self)`` starts it, closing the iterator stops it.

        ``Dataset.__iter__`` attaches ``fastinput.autotune``'s tuner: the engine itself knows no tuner.
        """
        self._tuner = make_tuner(self._root, self)

    @property
    def tuner(self) -> Any:
        """The autotuner (its ``model`` and ``estimates``; stopped once the iterator is closed), or None."""
        return self._tuner

    def consumer_progress(self) -> tuple[int, int, int]:
        """(steps taken, when the last ``next()`` returned in ns, total ns spent inside ``next()``)."""
        return self._steps, self._last_return_ns, self._root.metrics.call_ns

    def stats_summary(self) -> dict:
        """The pipeline's figures as plain data: what the analysis reads and traces store.

        ``consumer_seconds`` is the time from the first ``next()`` to the last
        return; ``input_wait_seconds`` the part of it spent inside ``next()``.
        """
        consumer_ns = max(0, self._last_return_ns - self._first_call_ns)
        return {
            "pipeline": repr(self._root.dataset),
            "steps": self._steps,
            "consumer_seconds": consumer_ns / 1e9,
            "input_wait_seconds": self._root.metrics.call_ns / 1e9,
            "stages": [dataclasses.asdict(s) for s in self.stats()],
        }

    def knobs(self) -> list[Knob]:
        """Every knob of every running stage, consumer first."""
        return [knob for _, it in self._root.walk() for knob in it.knobs()]
