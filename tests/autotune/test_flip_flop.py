"""A worker count the model turns back and forth is settled by measurement: the faster count is pinned a while."""

import logging
import time

import pytest

import fastinput as fi
from fastinput._engine.iterator import Knob
from fastinput._engine.traits import KnobKind, TuningKind, TuningProfile
from fastinput.autotune import tuner as tuner_module
from fastinput.autotune.flip_flop import (
    FIRST_HOLD_ROUNDS,
    FLIP_ROUNDS,
    MAX_HOLD_ROUNDS,
    TRIAL_ROUNDS,
    FlipFlopGuard,
)
from fastinput.autotune.tuner import Tuner, climb
from tests.autotune.test_tuner import _prefetch_over_map

WORKERS = KnobKind.WORKERS


def _flip(guard: FlipFlopGuard, round_: int = 0) -> int:
    """The model turns the knob 2 -> 3 at ``round_``, back, and again; returns the round the trial starts."""
    assert guard.settle(2, 3, round_) == 3
    assert guard.settle(3, 2, round_ + 1) == 2  # one step back: the model's
    assert guard.settle(2, 3, round_ + 2) == 2  # the second in a row: the flip; 2 is held for the trial, 3 next
    return round_ + 2


def _run_trial(guard: FlipFlopGuard, start: int, rates: dict[int, float]) -> int:
    """Each round of the trial from ``start``: the tuner's record (a quarter-second window at the held count,
    delivering ``rates[count] / 4`` elements) and held. Returns the round the pin starts."""
    round_ = start + 1
    while True:
        count = guard.held(round_)
        if round_ >= start + 2 * TRIAL_ROUNDS or count is None:
            return round_
        guard.record(count, rates[count] / 4, 0.25)
        round_ += 1


def test_a_change_that_undoes_none_is_the_models():
    guard = FlipFlopGuard()
    assert guard.settle(2, 3, round_=5) == 3
    assert guard.settle(3, 4, round_=6) == 4
    assert guard.held(7) is None


def test_a_flip_tries_the_other_count_between_two_halves_of_its_own_then_pins_the_faster(caplog):
    caplog.set_level(logging.DEBUG, logger="fastinput.autotune")
    guard = FlipFlopGuard()
    start = _flip(guard)
    half = TRIAL_ROUNDS // 2
    assert ([guard.held(start + i) for i in range(2 * TRIAL_ROUNDS)]
            == [2] * half + [3] * TRIAL_ROUNDS + [2] * (TRIAL_ROUNDS - half))
    guard = FlipFlopGuard()
    start = _flip(guard)
    pinned_from = _run_trial(guard, start, {2: 100.0, 3: 120.0})
    assert guard.held(pinned_from) == 3
    assert guard.rate(3) == pytest.approx(120.0) and guard.rate(2) == pytest.approx(100.0)
    assert guard.held(pinned_from + FIRST_HOLD_ROUNDS - 1) == 3
    assert guard.held(pinned_from + FIRST_HOLD_ROUNDS) is None
    assert "held at 3" in caplog.records[-1].getMessage()


def test_counts_measured_alike_pin_the_smaller():
    # a consumer slower than the pipeline makes every count deliver alike: a worker more only takes cores
    guard = FlipFlopGuard()
    pinned_from = _run_trial(guard, _flip(guard), {2: 100.0, 3: 101.0})
    assert guard.held(pinned_from) == 2


def test_the_work_in_flight_at_a_change_is_not_counted():
    # a worker let go finishes its batch after the change, a new one delivers nothing for a batch's time: the
    # first elements after each change are not the count's
    guard = FlipFlopGuard()
    start = _flip(guard)
    guard.held(start)
    guard.record(2, 2.0, 0.25)  # 2 of the 3 in flight
    guard.record(2, 2.0, 0.25)  # the third, and one of 2's own: the window is not counted
    assert guard.rate(2) is None
    guard.record(2, 30.0, 0.25)
    assert guard.rate(2) == pytest.approx(120.0)
    guard.record(3, 99.0, 0.25)  # not the count held: not counted
    assert guard.rate(3) is None


def test_a_trial_of_the_same_counts_adds_to_the_last_one_at_half_weight():
    guard = FlipFlopGuard()
    pinned_from = _run_trial(guard, _flip(guard), {2: 100.0, 3: 200.0})
    end = pinned_from
    while guard.held(end) is not None:
        end += 1
    start = _flip(guard, end)  # the model turns it again: a second trial, where both counts deliver 100
    _run_trial(guard, start, {2: 100.0, 3: 100.0})
    # as long at 3 in both trials, the first at half weight: (200 / 2 + 100) / (1 / 2 + 1)
    assert guard.rate(3) == pytest.approx(200 / 1.5, rel=0.05)
    assert guard.rate(2) == pytest.approx(100.0)


def test_a_trial_that_measured_nothing_pins_the_smaller(caplog):
    caplog.set_level(logging.DEBUG, logger="fastinput.autotune")
    guard = FlipFlopGuard()
    start = _flip(guard)
    assert [guard.held(start + i) for i in range(2 * TRIAL_ROUNDS + 1)][-1] == 2
    assert "not measured" in caplog.records[-1].getMessage()


def test_a_change_back_after_a_while_is_no_flip():
    guard = FlipFlopGuard()
    guard.settle(2, 3, round_=5)
    guard.settle(3, 2, round_=6)
    assert guard.settle(2, 3, round_=6 + FLIP_ROUNDS + 1) == 3
    assert guard.held(6 + FLIP_ROUNDS + 2) is None


def test_one_step_back_is_the_models():
    # the model correcting itself (a start-up window, a change of workload) is not a flip
    guard = FlipFlopGuard()
    guard.settle(4, 2, round_=1)
    assert guard.settle(2, 4, round_=3) == 4
    assert guard.settle(4, 8, round_=5) == 8
    assert guard.held(6) is None


def test_each_further_flip_pins_twice_as_long_up_to_the_longest():
    guard, start, holds = FlipFlopGuard(), 0, []
    for _ in range(6):
        pinned_from = _run_trial(guard, _flip(guard, start), {2: 100.0, 3: 200.0})
        end = pinned_from
        while guard.held(end) is not None:
            end += 1
        holds.append(end - pinned_from)
        start = end
    assert holds == [min(MAX_HOLD_ROUNDS, FIRST_HOLD_ROUNDS << i) for i in range(6)]


def test_the_climb_leaves_a_pinned_count_alone():
    # a map all waiting (each element 4x its CPU time, as with storage): the climb adds workers, unless pinned
    model = _prefetch_over_map(map_seconds=0.01, workers=2, tune_workers=True)
    model.inputs[0].cpu = 0.0025
    workers = model.inputs[0].knobs[WORKERS]
    assert climb(model, 0.0, 2.0, 8 << 30).get(workers, 2) > 2
    assert workers not in climb(model, 0.0, 2.0, 8 << 30, {id(workers): 2})


def test_a_pinned_count_still_shrinks_to_fit_the_ram_budget():
    model = _prefetch_over_map(map_seconds=0.01, workers=8, tune_workers=True)
    workers = model.inputs[0].knobs[WORKERS]
    assert climb(model, 0.0, 2.0, 4 * model.nbytes, {id(workers): 8})[workers] < 8


class _Metrics:
    parallel = True
    bytes_per_element = 1e6
    elements = busy_ns = call_ns = cpu_ns = 0


class _FlippingMap:
    """A stand-in for a parallel map whose figures make the model ask for 4 workers while it has 2 (half of each
    element's time waiting) and for 2 while it has 4 (none), and which delivers ``rates[workers]`` elements a
    second: the tuner measures them over the time between its rounds."""

    name = "map(f)"
    inputs = ()

    def __init__(self, rates: dict[int, float]):
        self.metrics = _Metrics()
        self.rates = rates
        self.workers = Knob(self.name, "parallelism", 2, 1, 16, True, lambda value: None, kind=WORKERS)
        self.buffer = Knob(self.name, "buffer_size", 4, 1, 4, False, lambda value: None,
                           kind=KnobKind.OUTPUT_BUFFER)

    def run(self, seconds: float) -> None:
        time.sleep(seconds)
        elements = max(self.workers.value, round(self.rates[self.workers.value] * seconds))
        cpu = 0.01
        own = 2 * cpu if self.workers.value == 2 else cpu
        self.metrics.elements += elements
        self.metrics.busy_ns += int(elements * own * 1e9)
        self.metrics.cpu_ns += int(elements * cpu * 1e9)

    def knobs(self):
        return [self.workers, self.buffer]

    def worker_threads(self):
        return None

    def tuning_profile(self):
        return TuningProfile(TuningKind.PARALLEL)


class _Consumer:
    def consumer_progress(self):
        return 0, 0, 0


@pytest.mark.parametrize("rates, held", [({2: 200.0, 4: 400.0}, 4), ({2: 200.0, 4: 200.0}, 2)])
def test_the_tuner_tries_a_flipping_count_and_pins_where_it_measured_more(monkeypatch, rates, held):
    monkeypatch.setattr(tuner_module, "thread_times", lambda threads: None)
    stage = _FlippingMap(rates)
    tuner = Tuner(stage, _Consumer(), fi.AutotuneOptions(cpu_budget=2), interval=3600)
    try:
        seen = []
        for _ in range(8 + 2 * TRIAL_ROUNDS + 12):
            stage.run(0.02)
            tuner.tune_once()
            seen.append(stage.workers.value)
        assert seen[0] == 4  # the model's step up; its step back is the flip ...
        assert seen.count(4) >= TRIAL_ROUNDS and seen.count(2) >= TRIAL_ROUNDS  # ... so both are tried in turn ...
        assert set(seen[-12:]) == {held}  # ... and the one measured faster is pinned
    finally:
        tuner.stop()
