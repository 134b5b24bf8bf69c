"""Timing against an infinitely fast model: which batches are timed, how examples are counted, the progress calls."""

from __future__ import annotations

import numpy as np
import pytest

from fastinput_bench.measure import Measurement, batch_length, interval_bounds, measure


@pytest.mark.parametrize(("steps", "intervals", "bounds"), [
    (10, 10, list(range(1, 11))),
    (10, 3, [3, 7, 10]),
    (4, 10, [1, 2, 3, 4]),  # never more intervals than steps
    (1, 1, [1]),
])
def test_interval_bounds_split_the_steps_evenly(steps, intervals, bounds):
    assert interval_bounds(steps, intervals) == bounds


def test_batch_length_is_the_leading_dimension_of_the_first_leaf():
    assert batch_length((np.zeros((5, 3)), np.zeros(5))) == 5
    assert batch_length({"b": np.zeros(2), "a": np.zeros((7, 1))}) == 7  # dict leaves in sorted key order


@pytest.mark.parametrize(("warmup", "steps", "intervals"), [(0, 5, 5), (3, 10, 4), (2, 3, 10)])
def test_measure_times_only_the_batches_after_warmup(warmup, steps, intervals):
    sizes = list(range(1, warmup + steps + 5))  # batch i holds i examples; a few left over
    batches = iter([np.zeros(n) for n in sizes])
    calls = []

    result = measure(batches, warmup=warmup, steps=steps, intervals=intervals,
                     progress=lambda taken, rate: calls.append((taken, rate)))

    assert result.examples == sum(sizes[warmup:warmup + steps])
    assert len(result.interval_rates) == min(intervals, steps)
    assert result.minimum <= result.median <= result.maximum
    assert result.peak_memory_bytes > 0 and result.cpu_utilization >= 0
    assert next(batches).shape == (sizes[warmup + steps],)  # nothing taken beyond warmup + steps
    taken = [t for t, _ in calls]
    assert taken[:warmup] == list(range(1, warmup + 1)) and taken[-1] == warmup + steps
    assert all(rate is None for _, rate in calls[:warmup])


def test_measure_raises_when_the_pipeline_ends_early():
    with pytest.raises(StopIteration):
        measure(iter([np.zeros(2)] * 3), warmup=1, steps=5, intervals=2)


def test_pooled_keeps_both_runs_intervals_and_weighs_cpu_by_time():
    first = Measurement(examples=100, seconds=1.0, interval_rates=(40.0, 60.0), cpu_utilization=0.5,
                        peak_memory_bytes=10)
    second = Measurement(examples=300, seconds=3.0, interval_rates=(90.0, 110.0), cpu_utilization=0.9,
                         peak_memory_bytes=7)
    both = first.pooled(second)
    assert both.interval_rates == (40.0, 60.0, 90.0, 110.0) and both.median == 75.0
    assert (both.examples, both.seconds, both.mean) == (400, 4.0, 100.0)
    assert both.cpu_utilization == pytest.approx(0.8) and both.peak_memory_bytes == 10


def test_measure_reads_what_the_processes_beside_did_while_timed():
    done = iter([10.0, 12.5])  # their work in seconds of their rate alone, at the timing's start and end
    result = measure(iter([np.zeros(2)] * 4), warmup=1, steps=3, intervals=1, beside=lambda: next(done))
    assert result.beside_share == pytest.approx(2.5 / result.seconds)
    assert measure(iter([np.zeros(2)] * 2), warmup=0, steps=2, intervals=1).beside_share is None
    unknown = measure(iter([np.zeros(2)] * 2), warmup=0, steps=2, intervals=1, beside=lambda: None)
    assert unknown.beside_share is None  # their rate alone was not measured


def test_pooled_weighs_the_share_beside_by_time_and_keeps_none_unknown():
    first = Measurement(100, 1.0, (50.0,), 0.5, 10, beside_share=0.2)
    second = Measurement(300, 3.0, (100.0,), 0.5, 10, beside_share=0.6)
    assert first.pooled(second).beside_share == pytest.approx(0.5)
    assert first.pooled(Measurement(300, 3.0, (100.0,), 0.5, 10)).beside_share is None
