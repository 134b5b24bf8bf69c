"""A worker count the model turns back and forth is settled by measurement: the faster count is pinned a while."""

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
    MIN_WINDOWS,
    FlipFlopGuard,
)
from fastinput.autotune.tuner import Tuner, climb
from tests.autotune.test_tuner import _prefetch_over_map

WORKERS = KnobKind.WORKERS


def _measured(rates: dict[int, float], windows: int = MIN_WINDOWS) -> FlipFlopGuard:
    """A guard that has seen ``windows`` one-second windows at each count of ``rates`` (elements per second)."""
    guard = FlipFlopGuard()
    for workers, rate in rates.items():
        for _ in range(windows):
            guard.record(workers, rate, 1.0)
    return guard


def test_a_change_that_undoes_none_is_the_models():
    guard = _measured({2: 10.0, 3: 20.0})
    assert guard.settle(2, 3, round_=5) == 3
    assert guard.pinned(6) is None


def test_undoing_the_last_change_pins_the_count_measured_faster():
    guard = _measured({2: 10.0, 3: 12.0})
    assert guard.settle(2, 3, round_=5) == 3
    assert guard.settle(3, 2, round_=7) == 3  # the model turns it back: 3 delivered 20% more, so 3 stays
    assert guard.pinned(8) == 3
    assert guard.pinned(7 + FIRST_HOLD_ROUNDS - 1) == 3
    assert guard.pinned(7 + FIRST_HOLD_ROUNDS) is None


def test_counts_measured_alike_pin_the_smaller():
    # a consumer slower than the pipeline makes every count deliver alike: a worker more only takes cores
    guard = _measured({2: 10.0, 3: 10.1})
    guard.settle(2, 3, round_=5)
    assert guard.settle(3, 2, round_=6) == 2
    assert guard.pinned(7) == 2


def test_no_pin_without_enough_windows_at_both_counts():
    guard = _measured({2: 10.0})
    guard.record(3, 30.0, 1.0)
    guard.settle(2, 3, round_=5)
    assert guard.settle(3, 2, round_=6) == 2  # one window at 3 is not evidence: the model goes on deciding
    assert guard.pinned(7) is None


def test_a_change_back_after_a_while_is_no_flip():
    guard = _measured({2: 10.0, 3: 20.0})
    guard.settle(2, 3, round_=5)
    assert guard.settle(3, 2, round_=5 + FLIP_ROUNDS + 1) == 2
    assert guard.pinned(5 + FLIP_ROUNDS + 2) is None


def test_each_further_flip_pins_twice_as_long_up_to_the_longest():
    guard = _measured({2: 10.0, 3: 20.0})
    guard.settle(2, 3, round_=0)
    start, holds = 1, []
    guard.settle(3, 2, round_=start)  # the first flip: pinned at 3
    for _ in range(6):
        end = start
        while guard.pinned(end) is not None:
            end += 1
        holds.append(end - start)
        assert guard.settle(3, 2, round_=end) == 2  # once the pin ends the model turns it again ...
        start = end + 1
        assert guard.settle(2, 3, round_=start) == 3  # ... and back: a flip, pinned again at 3
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
def test_the_tuner_pins_a_flipping_count_where_it_measured_more(monkeypatch, rates, held):
    monkeypatch.setattr(tuner_module, "thread_times", lambda threads: None)
    stage = _FlippingMap(rates)
    tuner = Tuner(stage, _Consumer(), fi.AutotuneOptions(cpu_budget=2), interval=3600)
    try:
        seen = []
        for _ in range(40):
            stage.run(0.02)
            tuner.tune_once()
            seen.append(stage.workers.value)
        assert len(set(seen[:10])) == 2  # the model turned it back and forth ...
        assert set(seen[-12:]) == {held}  # ... until the tuner measured both counts and pinned one
    finally:
        tuner.stop()
