"""A performance model of a running pipeline, after the model of the tf.data paper (VLDB 2021).

Each stage is summarised from its metrics over the last tuning window:

- ``own``: wall time of the stage's own work per output element (a parallel
  stage's worker time per element, not divided by its parallelism);
- ``ratio``: input elements consumed per output element (``batch(64)``: 64);
- ``cpu``: CPU time per output element (thread CPU time; far below ``own``
  for a stage that waits on storage);
- ``queued``: time per output element the stage's workers were runnable but
  waiting for a core (the kernel's run-queue delay, ``autotune/run_queue.py``);
- ``blocked``: time per output element the workers slept at work (the GIL, a
  lock, storage: the kernel's figures, see ``split_waiting``);
- ``nbytes``: bytes per buffered element.

The model's question is: how long does the consumer of a stage wait for one
element, given how often it asks (``consumer_time``, the gap between its
requests)? For the root, that consumer is the training loop, and the wait is
what the tuner minimises.

- A synchronous stage answers with its own work plus its inputs':
  ``own + ratio * output_time(input)``.
- A buffered stage (parallel map, parallel interleave, prefetch) produces one
  element every ``P = max(own / parallelism, ratio * output_time(input))``
  (workers pull the input one at a time). Its consumer waits only when the
  buffer is empty; treating the buffer as an M/M/1/K queue (arrivals every P,
  departures every C, K = buffer size), it is empty with probability
  ``pi0 = (1 - rho) / (1 - rho^(K+1))``, ``rho = C / P``, and the wait is then
  about ``P``: ``output_time = pi0 * P``. A slow producer (P >> C) gives a wait
  of about P - C, a fast one (P << C) almost none, with a deeper buffer
  absorbing the variation in between.

Workers share ``cores`` (the CPU budget): a worker's ``own`` time is its
CPU time, its time queued for a core, and its waiting (storage, locks).
So ``own`` is split into waiting, which more workers overlap, and CPU, which
they cannot make faster than ``cpu / cores`` per element (``worker_time``),
nor faster than the cores can run the rest of the pipeline beside them
(``cpu_beside``: an interleave's reads on two cores that two decoding
workers fill):
a stage that computes gains nothing from workers past the cores (16 threads
on 2 cores only switch and thrash caches), one that waits keeps gaining, as
tf.data's cap of an autotuned map at the schedulable cores would not allow.
Time queued for a core is neither: when other processes load the machine it
stretches every worker count alike (more threads would only take a larger
share from them, the training step's own host work among them).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from fastinput._engine.traits import KnobKind, TuningKind

if TYPE_CHECKING:
    from fastinput._engine.iterator import Knob


@dataclasses.dataclass
class StageModel:
    """One stage of the model; knob values are read live from ``knobs`` (what each turns -> Knob).

    ``chunk_size``: elements per buffer slot of a parallel stage; ``cycle_length``: datasets an interleave
    reads at once (see ``fastinput._engine.traits.TuningProfile``).
    """

    name: str
    kind: TuningKind
    own: float
    ratio: float
    cpu: float
    nbytes: float
    knobs: dict[KnobKind, Knob]
    inputs: list[StageModel] = dataclasses.field(default_factory=list)
    rate: float = 0.0  # measured output elements per second in the window
    chunk_size: int = 1
    cycle_length: int = 1
    cores: float = math.inf
    """CPU cores the workers share (the tuner's CPU budget); unbounded: workers never queue for a core."""
    settled: bool = True
    """Whether the figures come from enough finished work to turn the stage's knobs on (see the tuner)."""
    queued: float | None = None
    """Seconds per element the workers waited for a core (measured); None: unknown, estimated (``worker_time``)."""
    blocked: float | None = None
    """Seconds per element the workers slept at work (measured: the GIL, a lock, storage); None: unknown."""
    cpu_beside: float = 0.0
    """CPU seconds per element of this stage that the rest of the pipeline spends on the same cores meanwhile (the
    other stages' worker threads: an interleave's readers, a prefetch's thread): set by ``share_cores``."""

    def value(self, kind: KnobKind, overrides: dict[int, int] | None = None, default: int = 1) -> int:
        """The value of the stage's knob of ``kind`` (``overrides`` maps ``id(knob)`` to a value to evaluate
        instead of its current one), or ``default`` if the stage has none."""
        k = self.knobs.get(kind)
        if k is None:
            return default
        return overrides.get(id(k), k.value) if overrides else k.value


def queue_wait(producer: float, consumer: float, buffer_size: int) -> float:
    """Expected wait per element of a consumer taking from a bounded buffer (M/M/1/K)."""
    if producer <= 0:
        return 0.0
    if consumer <= 0:
        return producer
    rho = consumer / producer
    k = max(1, buffer_size)
    if abs(rho - 1.0) < 1e-9:
        empty = 1.0 / (k + 1)
    elif rho > 1.0:
        # (rho - 1) / (rho^(k+1) - 1), computed without overflow
        log_power = (k + 1) * math.log(rho)
        empty = 0.0 if log_power > 700 else (rho - 1.0) / (math.exp(log_power) - 1.0)
    else:
        empty = (1.0 - rho) / (1.0 - rho ** (k + 1))
    return empty * producer


def output_time(stage: StageModel, consumer_time: float, overrides: dict[int, int] | None = None) -> float:
    """Expected wait of ``stage``'s consumer per element when it asks every ``consumer_time`` seconds.

    ``overrides`` maps ``id(knob)`` to a value to evaluate instead of the knob's current one.
    """
    inputs_time = 0.0
    if stage.kind is TuningKind.SYNC:
        per_input = (consumer_time + stage.own) / stage.ratio if stage.ratio else 0.0
        for child in stage.inputs:
            inputs_time += output_time(child, per_input, overrides)
        return stage.own + stage.ratio * inputs_time

    parallelism = stage.value(KnobKind.WORKERS, overrides)
    work = worker_time(stage, parallelism)
    if stage.kind is not TuningKind.INTERLEAVE:  # an interleave's reads are its own work; its outer input is negligible
        request_gap = work / stage.ratio if stage.ratio else 0.0
        for child in stage.inputs:
            inputs_time += output_time(child, request_gap, overrides)
    producer = max(work, stage.ratio * inputs_time)
    if stage.kind is TuningKind.INTERLEAVE:  # per-dataset buffers: in elements, across the cycle
        buffer = stage.value(KnobKind.PER_INPUT_BUFFER, overrides) * max(1, parallelism)
    else:
        buffer = stage.value(KnobKind.OUTPUT_BUFFER, overrides)
        if stage.kind is TuningKind.PARALLEL:  # buffer counts chunks of several elements, at least one per worker
            buffer = max(buffer, parallelism) * max(1, stage.chunk_size)
    return queue_wait(producer, consumer_time, buffer)


def worker_time(stage: StageModel, parallelism: int) -> float:
    """Seconds between ``stage``'s outputs with ``parallelism`` workers (``own`` was measured with the workers it
    has now): its waiting per element overlaps across workers, its CPU time per element is spread over at most
    ``cores`` (which run the rest of the pipeline's CPU too, ``cpu_beside``), and the time it queued for a core is
    not waiting: counted as waiting, it made every added worker look a gain. The result is scaled to agree with the
    measurement at the current worker count (the queueing other processes cause stretches every count alike).

    The queueing is the kernel's figure where known (``queued``); else it is estimated as the CPU time stretched by
    the runnable workers per core where the workers kept the cores busy, which misses the queueing that other
    processes cause.

    Sleep that ``own`` less CPU less queueing misses (``blocked``, see ``split_waiting``) overlaps only up to
    ``blocked_bound`` workers: a worker more is then one more runnable thread taking its share of the cores from
    the other processes, which pays up to a few threads per core and no further. So does all waiting while the
    workers queue for a core ``CONTENDED_SHARE`` of their time or more: GIL waits grow with the workers and, past
    3-4 workers on 2 cores with a busy process beside, show up as ``own`` less CPU less queueing too (README image
    pipeline: 13 ms a batch at 3 workers, 125 at 6, 290 at 14), and every worker added then justified the next.
    A stage waiting on storage sleeps most of its time and queues little, so it keeps gaining past the bound."""
    measured_with = max(1, stage.value(KnobKind.WORKERS))
    if stage.queued is not None:
        queued = stage.queued
    else:
        busy_cores = measured_with * stage.cpu / stage.own if stage.own > 0 else 0.0  # cores the workers kept busy
        share = min(1.0, busy_cores / stage.cores)
        queued = stage.cpu * (max(1.0, share * measured_with / stage.cores) - 1.0)
    waiting, extra = split_waiting(stage, max(0.0, stage.own - stage.cpu - queued))
    bound = blocked_bound(stage.cores)
    bounded = extra + waiting if queued >= CONTENDED_SHARE * stage.own else extra

    def unqueued(workers: int) -> float:
        workers = max(1, workers)
        return max((waiting + extra + stage.cpu) / workers, (bounded + stage.cpu) / min(workers, bound),
                   (stage.cpu + stage.cpu_beside) / stage.cores)

    now = unqueued(measured_with)
    stretch = stage.own / measured_with / now if now > 0 and stage.own > 0 else 1.0
    return unqueued(parallelism) * stretch


BLOCKED_MIN_SHARE = 0.08
"""Sleep at work beyond the waiting below this share of ``own`` is not counted (``split_waiting``)."""
CONTENDED_SHARE = 0.25
"""Workers that queue for a core this share of ``own`` or more overlap their waiting only up to ``blocked_bound``."""
BLOCKED_WORKERS_PER_CORE = 3
"""Workers per core up to which sleep at work overlaps (``blocked_bound``). README image pipeline with one busy
core beside, fixed worker counts (images/s): lead, quiet, best of 3-4 rounds: 3 workers 1,238-1,240, 6: 1,304-1,333,
8: 1,340; busy8, load 6-7, rotated rounds: 2: 806/436/654, 3: 910/657/555, 4: 832/908/672, 6: 1,284/1,042/988,
8: 1,273/977/942 (CPU per image 0.88-0.93 ms at every count). With 2 per core the tuner sat at 4 (872, 913 images/s
in 12 s, load 6.5-7), with 3 per core at 5-6 (965, 940), same minutes."""


def blocked_bound(cores: float) -> int:
    """How many workers the sleep at work overlaps over: ``BLOCKED_WORKERS_PER_CORE`` per core of the budget."""
    return max(1, int(BLOCKED_WORKERS_PER_CORE * cores)) if math.isfinite(cores) else 2**31


def split_waiting(stage: StageModel, unexplained: float) -> tuple[float, float]:
    """(waiting, extra): seconds per element of ``unexplained`` time (``own`` less CPU less queueing) that the
    workers waited, and of their sleep at work (``blocked``) beyond it.

    With other processes on the cores, a worker woken to take the GIL waits for a core; the kernel's run-queue
    delay then also accrues outside the work and exceeds ``own`` less CPU (README image pipeline, one busy core:
    own 402 ms a batch, CPU 92, queued 448), so the workers' GIL waits never show as waiting. The kernel's sleep
    time does show them (10-17% of the workers' time with one busy core, 2-3% without). Counted without a bound
    (readme5's trial) it grew with the workers (GIL convoys: 42 ms a batch at 4 workers, 397 at 16) and the stage
    climbed to 16 workers on 2 cores within 7 s; ``worker_time`` lets it overlap only up to ``blocked_bound``
    workers. Below ``BLOCKED_MIN_SHARE`` of ``own`` (a quiet machine) it is not counted: the quiet worker count
    stays as it was.

    Where the sleep is known, unexplained time beyond it is not waiting: a worker that neither ran, queued nor slept
    was not at work. Own and CPU time are credited when a work item finishes, the kernel's figures as they accrue,
    so a window in which items that had queued in the one before finished read as waiting (the tuned image
    pipeline, load 5: own 226 ms a batch, CPU 49, queued 69, asleep 3), and the worker count jumped."""
    if stage.blocked is None or stage.own <= 0:
        return unexplained, 0.0
    waiting = min(unexplained, stage.blocked)
    extra = stage.blocked - waiting
    return waiting, (extra if extra >= BLOCKED_MIN_SHARE * stage.own else 0.0)


def share_cores(root: StageModel) -> None:
    """Set each stage's ``cpu_beside``: the CPU the pipeline's other workers spend per element of that stage.

    A stage's workers share the cores with every other thread of the pipeline, so no worker count delivers its
    elements faster than the cores run all of the pipeline's CPU per element. Without this floor, the waiting a
    worker does while the rest runs (a map_and_batch worker pulling records the interleave has not read yet)
    looked like time a worker more would fill: on 2 cores the README image pipeline went from 2 workers to 3 every
    few seconds (modelled 2% faster), where 3 ran 6% slower than 2 (2,788 against 2,977 images/s, measured) and
    delivered batches unevenly (gap CV 16% against 9%). Only measured CPU counts (the stages with workers or a
    thread of their own, as in ``cpu_demand``): a stage that runs in its consumer's thread is timed, not clocked,
    and its time may be a wait on storage."""
    stages = list(walk(root))
    total = sum(map(_cores_kept_busy, stages))
    for s in stages:
        s.cpu_beside = max(0.0, total - _cores_kept_busy(s)) / s.rate if s.rate > 0 else 0.0


def walk(stage: StageModel):
    yield stage
    for child in stage.inputs:
        yield from walk(child)


def cpu_demand(root: StageModel, root_rate: float) -> float:
    """Cores the pipeline keeps busy at ``root_rate`` output elements per second (buffered stages' workers)."""
    if root.rate <= 0:
        return 0.0
    return sum(map(_cores_kept_busy, walk(root))) / root.rate * root_rate


def _cores_kept_busy(stage: StageModel) -> float:
    """Cores ``stage``'s own threads kept busy in its window (its measured CPU per element at its rate); none for a
    stage that runs in its consumer's thread, whose time is not clocked."""
    return stage.cpu * stage.rate if stage.kind is not TuningKind.SYNC else 0.0


def buffered_bytes(root: StageModel, overrides: dict[int, int] | None = None) -> float:
    """Bytes the pipeline's buffers hold when full, for the knob values (or overrides): every buffer, tuned or not."""
    from fastinput.ops.interleave import elements_per_dataset

    total = 0.0
    for stage in walk(root):
        if KnobKind.OUTPUT_BUFFER in stage.knobs:
            slots = stage.value(KnobKind.OUTPUT_BUFFER, overrides)
            if stage.kind is TuningKind.PARALLEL:  # a parallel map holds at least one slot per worker, a chunk per slot
                slots = max(slots, stage.value(KnobKind.WORKERS, overrides)) * stage.chunk_size
            total += slots * stage.nbytes
        if KnobKind.PER_INPUT_BUFFER in stage.knobs:  # a buffer per dataset: the cycle's and those read ahead
            datasets = stage.cycle_length + stage.value(KnobKind.INPUTS_AHEAD, overrides, default=0)
            per_dataset = elements_per_dataset(stage.value(KnobKind.PER_INPUT_BUFFER, overrides), stage.nbytes)
            total += per_dataset * datasets * stage.nbytes
    return total
