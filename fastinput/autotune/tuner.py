"""The tuner: a background thread that measures the running pipeline, models it, and turns its knobs.

Every ``interval`` seconds it takes the metrics each stage recorded since the
last look, builds the performance model (``fastinput.autotune.model``), and
hill-climbs over the knobs the user left to ``fi.AUTOTUNE``: it repeatedly
applies the single +1 / -1 step (x2 / /2 for buffers) that most raises the
consumer's modelled rate, one element per ``consumer_time + wait``, as long as
the step raises it by at least ``MIN_STEP_GAIN``, the modelled CPU use stays
within the CPU budget and the buffers' bytes within the RAM budget; a step that
frees a worker at almost no cost is taken too, so idle workers are handed back.
Gains are shares of the rate, not of the wait: when the consumer is slower
than the pipeline (a long training step, TensorFlow calling through
``as_tf_dataset``) the wait is already a sliver of each step, and halving it
again and again (each doubling of a buffer does) buys nothing but memory.
Buffers shrink only when they exceed the RAM budget (as in tf.data): the
model cannot see the bursts a deeper buffer rides out.
Since the model is rebuilt from fresh measurements each round, the knobs
follow the workload when it changes (slower storage, a costlier map). A stage
with workers is judged only on enough finished work (``MAX_WINDOW_SECONDS``):
its window stretches over rounds until as many work items as workers finished,
and its knobs stay as they are meanwhile. After its worker count changes, the
window in which that happened is not judged (its work items ran partly with
the old count): judged, they made the tuned image pipeline's count swing
between 2 and 4 workers every round on a loaded machine. A worker count the climb still turns back and forth (two
counts on the edge of the model, each window's noise deciding) is settled by measurement instead: the count at
which the stage delivered more in a trial of both is pinned a while (``fastinput.autotune.flip_flop``).

Decisions are logged at debug level (logger ``fastinput.autotune``) and the
knob values appear on the profiler's counter tracks.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from typing import Any

from fastinput._engine.iterator import DatasetIterator, Knob
from fastinput._engine.traits import KnobKind
from fastinput.autotune.flip_flop import FlipFlopGuard
from fastinput.autotune.model import StageModel, buffered_bytes, cpu_demand, output_time, share_cores, walk
from fastinput.autotune.run_queue import thread_times
from fastinput.options import AutotuneOptions

logger = logging.getLogger("fastinput.autotune")

INTERVAL_SECONDS = 0.25
MAX_STEPS_PER_ROUND = 32
MIN_STEP_GAIN = 0.02
"""A step up (a worker more, a buffer twice as deep) is taken only if it raises the modelled output rate by this
share."""
FREE_STEP_TOLERANCE = 0.01
"""A step that frees a worker is taken if the modelled output rate falls by less than this share (below
``MIN_STEP_GAIN``, so a worker freed is not bought back in the same round)."""


MAX_WINDOW_SECONDS = 2.0
"""A stage with workers is judged on at least as many finished work items as it has workers, or on what it finished
in this long if fewer (at least one): a work item can outlast a round (a batch of 64 JPEGs on 16 workers sharing 2
cores takes half a second), and a round that saw none or a few of them measured noise."""


class _Window:
    """A stage's counters at the previous look, to turn cumulative metrics into per-window figures; ``threads``:
    its worker threads' (running, run-queue delay) nanoseconds (``fastinput.autotune.run_queue``), None where
    unknown."""

    __slots__ = ("elements", "busy_ns", "call_ns", "cpu_ns", "inputs_call_ns", "time_ns", "threads")

    def __init__(self, it: DatasetIterator) -> None:
        m = it.metrics
        self.time_ns = time.monotonic_ns()
        self.elements, self.busy_ns, self.call_ns, self.cpu_ns = m.elements, m.busy_ns, m.call_ns, m.cpu_ns
        self.inputs_call_ns = sum(child.metrics.call_ns for child in it.inputs)
        threads = it.worker_threads()
        self.threads = None if threads is None else thread_times(threads)

    def queued_ns(self, last: _Window | None) -> int | None:
        """Nanoseconds the stage's workers waited for a core since ``last`` (a thread started since counts from its
        start, one that ended since is missed), or None if unknown."""
        if self.threads is None or (last is not None and last.threads is None):
            return None
        before = last.threads if last is not None else {}
        return sum(max(0, queued - before.get(tid, (0, 0))[1]) for tid, (_, queued) in self.threads.items())

    def blocked_ns(self, last: _Window | None) -> int | None:
        """Nanoseconds the stage's workers slept (neither running nor waiting for a core: the GIL, a lock, storage)
        at work since ``last``, or None if unknown. A worker also sleeps between work items (nothing to do, no
        room to put a result), so each worker's sleep counts in the share of the window the workers were at work
        (``busy_ns``), and never more than their time at work off the CPU: a stage idle most of the window (reads
        from the page cache, far ahead of their consumer) would otherwise count its idle sleep. Threads that
        started or ended since are left out."""
        if self.threads is None or last is None or last.threads is None:
            return None
        wall = self.time_ns - last.time_ns
        both = self.threads.keys() & last.threads.keys()
        if wall <= 0 or not both:
            return None
        slept = sum(max(0, wall - (self.threads[tid][0] - last.threads[tid][0])
                        - (self.threads[tid][1] - last.threads[tid][1])) for tid in both)
        busy = self.busy_ns - last.busy_ns
        at_work = min(1.0, max(0.0, busy / (wall * len(both))))
        return int(min(slept * at_work, max(0, busy - (self.cpu_ns - last.cpu_ns))))


class Tuner:
    """Tunes one pipeline (the tree under ``root``) until ``stop()``."""

    def __init__(self, root: DatasetIterator, consumer: Any, options: AutotuneOptions,
                 interval: float = INTERVAL_SECONDS) -> None:
        self._root = root
        self._consumer = weakref.ref(consumer)  # the user's Iterator (weak: dropping it must still close the pipeline)
        self.cpu_budget = float(options.cpu_cores())
        self.ram_budget = float(options.ram_bytes())
        self._interval = interval
        self._windows: dict[int, _Window] = {}
        self._settled: dict[int, StageModel] = {}  # each stage's figures from its last window with enough evidence
        self._resized: set[int] = set()  # ids of the worker-count knobs the last round changed
        self._guards: dict[int, FlipFlopGuard] = {}  # each stage's with a worker count, by the stage's id
        self._knob_guards: dict[int, FlipFlopGuard] = {}  # the same, by the id of the worker-count knob, this round
        self._start_ns = time.monotonic_ns()
        self._consumer_window = (0, 0, 0)
        self._stop = threading.Event()
        self.model: StageModel | None = None
        self.estimates: dict[str, float] = {}
        self.rounds = 0
        self._warned_fixed = False
        self._thread = threading.Thread(target=self._run, name="fastinput autotuner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval) and self._consumer() is not None:
            try:
                self.tune_once()
            except Exception:  # the tuner must never take the pipeline down
                logger.exception("fastinput autotuner: a tuning round failed; knobs left as they are")

    # -- measuring ---------------------------------------------------------------
    def _stage_model(self, it: DatasetIterator, seen: set[int]) -> StageModel:
        """``it``'s figures since its last window with enough evidence (``MAX_WINDOW_SECONDS``); while a stage with
        workers has not finished enough work since, its last such figures, marked unsettled (its knobs stay).
        Adds the ids of ``it`` and the stages under it to ``seen``."""
        seen.add(id(it))
        m = it.metrics
        last = self._windows.get(id(it))
        now = _Window(it)
        elements = now.elements - (last.elements if last else 0)
        seconds = max(1e-9, (now.time_ns - (last.time_ns if last else self._start_ns)) * 1e-9)
        inputs = [self._stage_model(child, seen) for child in it.inputs]
        knobs = {k.kind: k for k in it.knobs()}
        workers = knobs[KnobKind.WORKERS].value if KnobKind.WORKERS in knobs else 1
        settled = elements >= workers or (elements >= 1 and seconds >= MAX_WINDOW_SECONDS)
        resized = KnobKind.WORKERS in knobs and id(knobs[KnobKind.WORKERS]) in self._resized
        if resized:  # the window straddles the change: start a new one now (see ``tune_once``)
            self._resized.discard(id(knobs[KnobKind.WORKERS]))
            self._windows[id(it)] = now
        if KnobKind.WORKERS in knobs:
            knob = knobs[KnobKind.WORKERS]
            if id(it) not in self._guards:
                self._guards[id(it)] = FlipFlopGuard(f"{knob.stage}.{knob.name}")
            guard = self._knob_guards[id(knob)] = self._guards[id(it)]
            if settled and not resized and last is not None:
                guard.record(workers, elements, seconds)
        if (resized or not settled) and id(it) in self._settled:
            return dataclasses.replace(self._settled[id(it)], inputs=inputs, settled=False)
        input_elements = sum(child.rate for child in inputs) * seconds
        profile = it.tuning_profile()
        if m.parallel:
            own_ns = now.busy_ns - (last.busy_ns if last else 0)
        else:
            own_ns = (now.call_ns - now.inputs_call_ns) - ((last.call_ns - last.inputs_call_ns) if last else 0)
        cpu_ns = now.cpu_ns - (last.cpu_ns if last else 0)
        queued_ns, blocked_ns = now.queued_ns(last), now.blocked_ns(last)
        per = 1.0 / elements if elements > 0 else 0.0
        model = StageModel(
            name=it.name, kind=profile.kind, own=max(0.0, own_ns) * 1e-9 * per,
            ratio=(input_elements * per) if elements else 1.0, cpu=cpu_ns * 1e-9 * per,
            queued=None if queued_ns is None else queued_ns * 1e-9 * per,
            blocked=None if blocked_ns is None else blocked_ns * 1e-9 * per, nbytes=m.bytes_per_element,
            knobs=knobs, inputs=inputs, rate=elements / seconds, chunk_size=profile.chunk_size,
            cycle_length=profile.cycle_length, cores=self.cpu_budget, settled=settled,
        )
        if settled:
            self._windows[id(it)] = now
            self._settled[id(it)] = model
        return model

    def _forget_all_but(self, seen: set[int]) -> None:
        """Drop the windows and figures of stages no longer in the pipeline: a ``repeat`` (or an interleave, a
        flat_map) builds its input's stages again for each epoch (each input), and the figures kept of the closed ones
        held them, their threads' objects and their knobs: ~160 objects an epoch, without end (a month-long run's
        memory grew 20-30 MiB a minute in ``fastinput_bench.memory``). Dropped, an id a new stage reuses starts afresh
        too, not from a closed stage's counters."""
        for kept in (self._windows, self._settled, self._guards):
            for key in kept.keys() - seen:
                del kept[key]

    def _consumer_time(self) -> float:
        """The training loop's time per element outside ``next()`` in the last window."""
        consumer = self._consumer()
        if consumer is None:
            return 0.0
        steps, last_return, wait = consumer.consumer_progress()
        last_steps, last_time, last_wait = self._consumer_window
        self._consumer_window = (steps, last_return, wait)
        if steps <= last_steps or not last_time:
            return 0.0
        outside = (last_return - last_time) - (wait - last_wait)
        return max(0.0, outside * 1e-9 / (steps - last_steps))

    # -- deciding ----------------------------------------------------------------
    def tune_once(self) -> None:
        """One round: rebuild the model from the last window's metrics and climb."""
        seen: set[int] = set()
        self._knob_guards = {}
        model = self._stage_model(self._root, seen)
        self._forget_all_but(seen)
        consumer_time = self._consumer_time()
        self.model = model
        self.rounds += 1
        if not model.settled or model.rate <= 0:
            return  # nothing flowed since the last round (not started, or the consumer paused): no evidence to act on
        share_cores(model)
        self.estimates = {stage.name: output_time(stage, consumer_time) for stage in walk(model)}
        pinned = self._held()
        for knob, value in climb(model, consumer_time, self.cpu_budget, self.ram_budget, pinned).items():
            if knob.kind is KnobKind.WORKERS:
                value = self._settle(knob, value, pinned)
                if value == knob.value:
                    continue
                self._resized.add(id(knob))
            knob.set(value)
        if not self._warned_fixed:
            self._warned_fixed = warn_if_fixed_buffers_exceed(model, self.ram_budget)

    def _held(self) -> dict[int, int]:
        """The worker counts held this round (a flip's trial, or its pin), by knob id."""
        held = {knob_id: guard.held(self.rounds) for knob_id, guard in self._knob_guards.items()}
        return {knob_id: value for knob_id, value in held.items() if value is not None}

    def _settle(self, knob: Knob, value: int, pinned: dict[int, int]) -> int:
        """What the model's ``value`` for a worker-count knob becomes: itself, or, where it is the second step back
        in a row, the current count, held for a trial of both (``fastinput.autotune.flip_flop``). A held knob's value
        comes from the climb as it is (the trial's count, lowered only to fit the RAM budget)."""
        guard = self._knob_guards.get(id(knob))
        if guard is None or id(knob) in pinned:
            return value
        return guard.settle(knob.value, value, self.rounds)


def climb(model: StageModel, consumer_time: float, cpu_budget: float, ram_budget: float,
          pinned: dict[int, int] | None = None) -> dict[Knob, int]:
    """The new values of ``model``'s ``AUTOTUNE`` knobs (only those that change) for a consumer that takes
    ``consumer_time`` seconds per element outside ``next()``; sets nothing. ``pinned`` maps ``id(knob)`` to the value
    the knob is to hold: the climb sets it there (lower only to fit the RAM budget) and does not turn it."""
    pinned = pinned or {}
    tunable = [k for stage in walk(model) if stage.settled for k in stage.knobs.values()
               if k.autotuned and id(k) not in pinned]
    shrinkable = [k for k in _knobs(model) if k.shrinkable]
    overrides = _fit_ram_budget(model, shrinkable, consumer_time, ram_budget, pinned)
    current = output_time(model, consumer_time, overrides)
    for _ in range(MAX_STEPS_PER_ROUND):
        best = _best_step(model, tunable, overrides, consumer_time, current, cpu_budget, ram_budget)
        if best is None:
            break
        knob, value, current = best
        overrides[id(knob)] = value
    changes = {}
    for knob in shrinkable:
        if id(knob) in overrides and overrides[id(knob)] != knob.value:
            logger.debug("autotune: %s.%s %d -> %d (modelled wait %.3g ms per element)",
                         knob.stage, knob.name, knob.value, overrides[id(knob)], current * 1e3)
            changes[knob] = overrides[id(knob)]
    return changes


def _knobs(model: StageModel) -> list[Knob]:
    """Every knob of the model's stages. The climb turns the ``autotuned`` ones both ways; the ``shrinkable`` ones
    (autotuned ones and buffer depths the user did not choose) are lowered to fit the RAM budget."""
    return [k for stage in walk(model) for k in stage.knobs.values()]


def warn_if_fixed_buffers_exceed(model: StageModel, ram_budget: float) -> bool:
    """Warn (and return True) if the buffers alone hold more than the RAM budget with every shrinkable knob at its
    minimum: the user's own settings (prefetch depths, worker counts) then break the budget, and only they can fix
    it."""
    floor = {id(k): k.minimum for k in _knobs(model) if k.shrinkable}
    fixed = buffered_bytes(model, floor)
    if fixed <= ram_budget:
        return False
    stages = sorted({stage.name for stage in walk(model) for k in stage.knobs.values() if not k.shrinkable})
    logger.warning(
        "fastinput autotune: the buffers the tuner cannot shrink hold %.1f MiB, over the RAM budget of %.1f MiB "
        "(AutotuneOptions(ram_budget=...)); set by hand in: %s. Lower their buffer_size or num_parallel_calls, "
        "or raise the budget.", fixed / 2**20, ram_budget / 2**20, "; ".join(stages) or "(none)")
    return True


def _fit_ram_budget(model: StageModel, shrinkable: list[Knob], consumer_time: float,
                    ram_budget: float, start: dict[int, int]) -> dict[int, int]:
    """Shrink buffers (halving) and autotuned worker counts (a parallel map holds a slot per worker), cheapest
    first, from the knob values (``start`` overriding some) until the buffered bytes fit the RAM budget; returns the
    knob values as overrides."""
    overrides = dict(start)
    while buffered_bytes(model, overrides) > ram_budget:
        options = []
        for knob in shrinkable:
            value = overrides.get(id(knob), knob.value)
            smaller = value - 1 if knob.kind is KnobKind.WORKERS else value // 2
            if knob.minimum <= smaller < value:  # progress: halving 0 or 1 gives nothing smaller
                trial = {**overrides, id(knob): smaller}
                options.append((output_time(model, consumer_time, trial), id(knob), knob, smaller))
        if not options:
            break
        _, _, knob, value = min(options, key=lambda o: (o[0], o[1]))
        overrides[id(knob)] = value
    return overrides


def _best_step(model: StageModel, tunable: list[Knob], overrides: dict[int, int], consumer_time: float,
               current: float, cpu_budget: float, ram_budget: float) -> tuple[Knob, int, float] | None:
    best: tuple[Knob, int, float] | None = None
    best_gain = 0.0
    for knob in tunable:
        value = overrides.get(id(knob), knob.value)
        for candidate in _neighbours(knob, value):
            trial = {**overrides, id(knob): candidate}
            wait = output_time(model, consumer_time, trial)
            if candidate > value and not _within_budgets(model, trial, consumer_time, wait, cpu_budget, ram_budget):
                continue
            if candidate < value and knob.kind is not KnobKind.WORKERS:
                continue  # buffers shrink only to fit the RAM budget (_fit_ram_budget): depth smooths bursts
            # Steps are judged by the consumer's modelled rate, one element per (consumer_time + wait): a
            # wait already tiny next to the consumer's own step is not worth a worker or a buffer more.
            if candidate > value:
                gain = (current - wait) / max(consumer_time + current, 1e-12)  # share of the step saved
                if gain < MIN_STEP_GAIN:
                    continue
            else:  # freeing a worker is worth it unless it costs the rate noticeably
                cost = (wait - current) / max(consumer_time + wait, 1e-12)
                if cost >= FREE_STEP_TOLERANCE:
                    continue
                gain = FREE_STEP_TOLERANCE - cost
            if gain > best_gain + 1e-3:
                best, best_gain = (knob, candidate, wait), gain
    return best


def _within_budgets(model: StageModel, overrides: dict[int, int], consumer_time: float, wait: float,
                    cpu_budget: float, ram_budget: float) -> bool:
    rate = 1.0 / max(consumer_time + wait, 1e-9)
    return cpu_demand(model, rate) <= cpu_budget * 1.05 and buffered_bytes(model, overrides) <= ram_budget


def _neighbours(knob: Knob, value: int) -> list[int]:
    """One step up and down: +-1 for worker counts, x2 and /2 for buffers."""
    if knob.kind is KnobKind.WORKERS:
        steps = [value + 1, value - 1]
    else:
        steps = [value * 2, value // 2]
    return [v for v in steps if knob.minimum <= v <= knob.maximum and v != value]
