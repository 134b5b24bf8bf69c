"""``ds.distribute(...)``: the Dataset node, and the consumer's iterator that streams chunks from the workers.

The consumer keeps ``CHUNKS_IN_FLIGHT`` ``next_chunk`` calls outstanding on each worker and takes whichever
worker's next chunk is ready first (so elements come in the order workers make them, as with tf.data service),
handing one chunk out before it takes the next. Per worker it keeps the last pipeline state that came with a chunk
and how many positions it handed out since: what a restarted worker is restored from, and what
``get_state`` saves.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import Any

from fastinput import errors
from fastinput._engine.arguments import check_int
from fastinput._engine.checkpoint import check_stage, stage_state
from fastinput._engine.instrument import buffer_level
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.metrics import StageMetrics
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.distribute import transfer
from fastinput.distribute.job import MAX_RESTARTS, start_job, stop_job
from fastinput.distribute.shipping import ship
from fastinput.distribute.splits import SplitPlan, plan_splits
from fastinput.distribute.worker import Chunk

logger = logging.getLogger("fastinput")

PROCESSING_MODES = ("distributed_epoch", "parallel_epochs")

WORKER_RESOURCE_KEYS = frozenset({"num_cpus", "num_gpus", "memory", "resources", "accelerator_type",
                                  "scheduling_strategy", "runtime_env"})
"""The Ray actor options ``worker_resources`` may set."""

CHUNKS_IN_FLIGHT = 2
"""``next_chunk`` calls outstanding per worker: one being made while the consumer takes the other."""

CHUNK_ELEMENTS, CHUNK_BYTES, CHUNK_SECONDS = 256, 32 << 20, 0.05
"""A chunk ends at whichever comes first: elements, bytes, or seconds of the worker's time. Each chunk costs the
consumer a Ray call (a few tenths of a millisecond): 32 MB holds six 4.8 MB image batches, where 8 MB held two and
the calls were a third of what the consumer spent per batch."""

RESTART_WAIT_SECONDS = 120.0
"""How long the consumer waits for Ray to restart a worker that died."""

WAIT_SLICE_SECONDS = 0.1
"""The consumer waits for chunks in slices this long, so closing the iterator stops a wait at once."""


class DistributeDataset(Dataset):
    """Everything upstream runs on ``num_workers`` Ray actors; its elements stream to this stage's consumer.

    ``processing_mode``: ``"parallel_epochs"``, each worker runs the whole pipeline; ``"distributed_epoch"``, the
    pipeline's source is split (files, or ranges of positions) and a coordinator hands the splits out, so each
    element is made once by one worker. ``address``: the Ray cluster (None: the one this process joined, else
    ``RAY_ADDRESS``'s, else a new local one). ``worker_resources``: Ray actor options of each worker
    (``{"num_cpus": 4}``). ``job_name``: consumers (processes) naming the same job share its workers, each getting
    a disjoint share of the elements.
    """

    traits = StageTraits("distribute", StageKind.PREFETCH, passes_through=True, keeps_spec=True,
                         parallel_argument="num_workers")

    def __init__(self, input_dataset: Dataset, num_workers: int, processing_mode: str, address: str | None,
                 worker_resources: dict[str, Any] | None, job_name: str | None) -> None:
        super().__init__([input_dataset])
        self.num_workers = check_int("distribute", "num_workers", num_workers, minimum=1)
        if processing_mode not in PROCESSING_MODES:
            raise errors.InvalidArgumentError(f"distribute: processing_mode must be one of {PROCESSING_MODES}, "
                                              f"got {processing_mode!r}")
        self.processing_mode = processing_mode
        self.address = _optional_str("address", address)
        self.job_name = _optional_str("job_name", job_name)
        self.worker_resources = _resources(worker_resources)
        self.plan: SplitPlan | None = (plan_splits(input_dataset, self.num_workers)
                                       if processing_mode == "distributed_epoch" else None)
        self.pipeline = ship(input_dataset)
        """The upstream description, pickled for the workers."""

    def __str__(self) -> str:
        extra = f", job_name={self.job_name!r}" if self.job_name else ""
        return f"distribute(num_workers={self.num_workers}, processing_mode={self.processing_mode!r}{extra})"

    def job_config(self) -> dict[str, Any]:
        """What a consumer joining this job by name must agree on."""
        return {"job_name": self.job_name, "num_workers": self.num_workers, "processing_mode": self.processing_mode,
                "pipeline": repr(self.inputs[0])}

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return DistributeIterator(self, ctx)


def _optional_str(name: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise errors.InvalidArgumentError(f"distribute: {name} must be a non-empty string or None, got {value!r}")
    return value


def _resources(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise errors.InvalidArgumentError(f"distribute: worker_resources must be a dict of Ray actor options or "
                                          f"None, got {type(value).__name__}")
    unknown = sorted(set(value) - WORKER_RESOURCE_KEYS)
    if unknown:
        raise errors.InvalidArgumentError(f"distribute: worker_resources: unknown option(s) {unknown}; "
                                          f"known: {sorted(WORKER_RESOURCE_KEYS)}")
    return dict(value)


class _WorkerView(DatasetIterator):
    """One worker as ``it.stats()`` shows it: the elements it delivered, its busy and CPU time (as it reports
    them with each chunk); its buffer is its chunks in flight."""

    parallel = True

    def __init__(self, dataset: DistributeDataset, ctx: IteratorContext, index: int) -> None:
        super().__init__(dataset, ctx)
        self.name = f"worker {index} of {dataset}"
        self.metrics = StageMetrics(self.name, parallel=True)
        self.metrics.buffer_capacity = CHUNKS_IN_FLIGHT

    def produce_chunk(self, n: int) -> list[Any]:
        raise errors.UnimplementedError(f"{self.name} runs remotely; its elements come through its distribute stage")

    def received(self, chunk: Chunk, in_flight: int) -> None:
        metrics = self.metrics
        metrics.elements += len(chunk.elements)
        metrics.busy_ns += int(chunk.busy_seconds * 1e9)
        metrics.cpu_ns += int(chunk.cpu_seconds * 1e9)
        metrics.buffer_occupancy = in_flight
        buffer_level(self.name, in_flight)  # the worker's track in a trace: its chunks in flight


class _Feed:
    """The consumer's side of one worker: its calls in flight and where its delivered elements stand."""

    def __init__(self, index: int, actor: Any, view: _WorkerView) -> None:
        self.index = index
        self.actor = actor
        self.view = view
        self.in_flight: collections.deque = collections.deque()
        self.base: dict[str, Any] | None = None  # the worker's pipeline state the last chunk came with (None: start)
        self.handed = 0  # positions handed out since ``base`` (an error is one)
        self.ended = False
        self.segment_prefix: str | None = None  # the worker's shared-memory segments (as its last chunk said)
        self.segments = transfer.SegmentReceiver()


class DistributeIterator(DatasetIterator):
    """Streams chunks from a job's workers (started at the first element); see the module docstring."""

    parallel = True

    def __init__(self, dataset: DistributeDataset, ctx: IteratorContext) -> None:
        views = [_WorkerView(dataset, ctx, i) for i in range(dataset.num_workers)]
        super().__init__(dataset, ctx, views)
        self._ds = dataset
        self._job: Any = None
        self._feeds: list[_Feed] = []
        self._current: tuple[_Feed, Chunk] | None = None
        self._next_element = 0  # in the current chunk
        self._restore_from: dict[str, Any] | None = None
        self._stopped_state: dict[str, Any] | BaseException | None = None  # get_state's answer once the job stopped

    # -- producing -------------------------------------------------------------------------------------------------
    def produce_chunk(self, n: int) -> list[Any]:
        while self._current is None or self._next_element == len(self._current[1].elements):
            if self._current is not None and self._current[1].error is not None:
                feed, chunk = self._current
                self._current = None
                feed.handed += 1
                raise chunk.error
            self._current = self._take_chunk()
            self._next_element = 0
            if self._current is None:
                raise StopIteration
        feed, chunk = self._current
        start = self._next_element
        out = chunk.elements[start:start + n]
        self._next_element += len(out)
        feed.handed += len(out)
        if self._next_element == len(chunk.elements):
            chunk.elements = []  # hold no element handed out
            self._next_element = 0
        return out

    def _take_chunk(self) -> tuple[_Feed, Chunk] | None:
        """The next chunk with elements or an error from whichever worker has one ready (None: all have ended)."""
        if self._job is None:
            self._start()
        ray = self._job.ray
        while True:
            feeds = [feed for feed in self._feeds if not feed.ended]
            if not feeds:
                return None
            for feed in feeds:
                while len(feed.in_flight) < CHUNKS_IN_FLIGHT:
                    feed.in_flight.append(feed.actor.next_chunk.remote(
                        CHUNK_ELEMENTS, CHUNK_BYTES, CHUNK_SECONDS, self._job.node, feed.segments.take_released()))
            heads = {feed.in_flight[0]: feed for feed in feeds}
            start = time.perf_counter_ns()
            ready: list[Any] = []
            while not ready:
                self.raise_if_cancelled()
                ready, _ = ray.wait(list(heads), num_returns=1, timeout=WAIT_SLICE_SECONDS)
            feed = heads[ready[0]]
            try:
                chunk = ray.get(feed.in_flight.popleft())
                chunk.unpack(feed.segments)
            except ray.exceptions.RayActorError as exc:
                self._recover(feed, exc)
                continue
            finally:
                self.metrics.wait_ns += time.perf_counter_ns() - start
            if chunk.restarted:  # restarted before this consumer saw a call fail
                self._recover(feed, None)
                continue
            feed.segment_prefix = chunk.segment_prefix
            if chunk.state is not None:
                feed.base, feed.handed = chunk.state, 0
            feed.view.received(chunk, len(feed.in_flight))
            if chunk.end:
                feed.ended = True
                feed.in_flight.clear()
            if chunk.elements or chunk.error is not None:
                return feed, chunk

    def _start(self) -> None:
        from fastinput.distribute.cluster import connect

        ds = self._ds
        ray = connect(ds.address)
        self._job = start_job(ray, ds.job_config(), ds.pipeline, ds.plan, ds.worker_resources)
        self._feeds = [_Feed(i, actor, view) for i, (actor, view) in enumerate(zip(self._job.workers, self.inputs))]
        saved = self._restore_from
        if saved is None:
            return
        if saved["splits"] is not None:
            ray.get(self._job.coordinator.load.remote(saved["splits"]))
        for feed, worker in zip(self._feeds, saved["workers"]):
            feed.base, feed.handed, feed.ended = worker["state"], worker["skip"], worker["ended"]
            if not feed.ended:
                ray.get(feed.actor.restore.remote(feed.base, feed.handed))

    def _recover(self, feed: _Feed, cause: BaseException | None) -> None:
        """Resume a worker that died (and that Ray restarts) from the last state this consumer has of it."""
        ray = self._job.ray
        feed.in_flight.clear()  # they failed with it
        if feed.segment_prefix is not None:  # the segments of its chunks that never arrived
            transfer.sweep_when_exited(feed.segment_prefix)
        logger.warning("%s: worker %d stopped (%s); resuming it %d position(s) after its last saved state",
                       self.name, feed.index, type(cause).__name__ if cause else "restarted", feed.handed)
        deadline = time.monotonic() + RESTART_WAIT_SECONDS
        while True:
            self.raise_if_cancelled()
            try:  # a job's only consumer resumes the worker even if it was not restarted: its lost answers are redone
                ray.get(feed.actor.restore.remote(feed.base, feed.handed, self._ds.job_name is None))
                return
            except ray.exceptions.ActorUnavailableError:  # being restarted
                if time.monotonic() > deadline:
                    raise errors.UnavailableError(f"{self.name}: worker {feed.index} died and was not restarted "
                                                  f"within {RESTART_WAIT_SECONDS:.0f} s") from cause
                time.sleep(0.05)
            except ray.exceptions.RayActorError as exc:
                raise errors.UnavailableError(
                    f"{self.name}: worker {feed.index} died and cannot be restarted (Ray restarts a worker up to "
                    f"{MAX_RESTARTS} times): {exc}") from (cause or exc)

    # -- stopping ----------------------------------------------------------------------------------------------------
    def join_self(self) -> None:
        job = self._job
        if job is not None and self._ds.job_name is None:
            try:  # the state stays what it was when the workers stopped (at the end of the run, or closed)
                self._stopped_state = self._state_of_running_job()
            except Exception as exc:  # the cluster is gone: get_state says so rather than return a wrong state
                self._stopped_state = exc
        self._job = None
        self._current = None
        for feed in self._feeds:
            feed.segments.close()
        if job is not None:
            stop_job(job)

    # -- saving and restoring ----------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        if self._ds.job_name is not None:
            raise errors.UnimplementedError(f"get_state: {self.name}: a job shared by name is not saved by one of "
                                            "its consumers")
        if self._job is not None:
            return self._state_of_running_job()
        if isinstance(self._stopped_state, BaseException):
            raise errors.UnavailableError(f"get_state: {self.name}: the state of the workers could not be read as "
                                          f"they stopped: {self._stopped_state}") from self._stopped_state
        if self._stopped_state is not None:
            return self._stopped_state
        if self._restore_from is not None:
            return self._restore_from
        workers = [{"state": None, "skip": 0, "ended": False}] * self._ds.num_workers  # not started
        return stage_state(self.op, {"workers": workers, "splits": None}, [])

    def _state_of_running_job(self) -> dict[str, Any]:
        splits = None
        if self._ds.plan is not None:
            splits = self._job.ray.get(self._job.coordinator.state.remote())
        workers = [{"state": feed.base, "skip": feed.handed, "ended": feed.ended and not self._holds_part_of(feed)}
                   for feed in self._feeds]
        return stage_state(self.op, {"workers": workers, "splits": splits}, [])

    def _holds_part_of(self, feed: _Feed) -> bool:
        """Whether elements (or an error) of ``feed``'s last chunk are still to be handed out."""
        if self._current is None or self._current[0] is not feed:
            return False
        chunk = self._current[1]
        return self._next_element < len(chunk.elements) or chunk.error is not None

    def set_state(self, state: dict[str, Any]) -> None:
        check_stage(state, self.op, self.name, 0)
        if len(state["workers"]) != self._ds.num_workers:
            raise errors.InvalidArgumentError(f"set_state: {self.name}: the state was saved with "
                                              f"{len(state['workers'])} worker(s)")
        self._restore_from = state

    def restores_in_order(self) -> bool:
        return False  # elements come in the order the workers make them

