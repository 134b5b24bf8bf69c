"""The trace files ``fi.profiler.trace`` writes follow the Chrome Trace Event Format.

Checked on a real pipeline with every kind of thread (parallel interleave
readers, parallel map workers, prefetch, the consumer): each event has the
fields its phase needs, complete events nest per thread, every thread is
named, the consumer's steps, buffer and knob counters are there, the event cap
works and nothing is recorded when no trace is active.
"""

from __future__ import annotations

import collections
import json
import math
import time
from collections.abc import Iterable
from typing import Any

import pytest

import fastinput as fi
from fastinput._engine import instrument

STEPS = 60
STEP_SLEEP = 0.001
NEST_TOLERANCE_US = 0.01
"""Float slack when comparing microsecond times converted from nanoseconds."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_errors(trace: dict) -> list[str]:
    """Every way ``trace`` breaks the Chrome Trace Event Format fields fastinput uses (X, C and M events)."""
    errors = []
    if not isinstance(trace.get("traceEvents"), list):
        return ["traceEvents is missing or not a list"]
    for i, event in enumerate(trace["traceEvents"]):
        phase = event.get("ph")
        needed = {
            "X": ("name", "ts", "dur", "pid", "tid"),
            "C": ("name", "ts", "pid", "args"),
            "M": ("name", "pid", "args"),
        }.get(phase)
        if needed is None:
            errors.append(f"event {i}: unexpected phase {phase!r}")
            continue
        errors += [f"event {i} ({phase}): no {field!r}" for field in needed if field not in event]
        if not isinstance(event.get("name"), str) or not event.get("name"):
            errors.append(f"event {i}: the name is not a non-empty string")
        for field in ("ts", "dur"):
            if field in event and not (_number(event[field]) and event[field] >= 0):
                errors.append(f"event {i}: {field} is not a non-negative number: {event[field]!r}")
        if phase == "C" and not (event.get("args") and all(_number(v) for v in event["args"].values())):
            errors.append(f"event {i}: counter args must be numbers: {event.get('args')!r}")
        if phase == "M" and not isinstance(event.get("args", {}).get("name"), str):
            errors.append(f"event {i}: metadata without args.name")
    return errors


def nesting_errors(events: Iterable[dict]) -> list[str]:
    """Complete events on one thread that overlap without one containing the other."""
    by_thread: dict[tuple, list[dict]] = collections.defaultdict(list)
    for event in events:
        if event["ph"] == "X":
            by_thread[event["pid"], event["tid"]].append(event)
    errors = []
    for thread, spans in by_thread.items():
        open_ends: list[tuple[float, str]] = []
        for event in sorted(spans, key=lambda e: (e["ts"], -e["dur"])):
            start, end = event["ts"], event["ts"] + event["dur"]
            while open_ends and open_ends[-1][0] <= start + NEST_TOLERANCE_US:
                open_ends.pop()
            if open_ends and end > open_ends[-1][0] + NEST_TOLERANCE_US:
                errors.append(
                    f"thread {thread}: {event['name']!r} [{start}, {end}] overlaps {open_ends[-1][1]!r}, "
                    f"which ends at {open_ends[-1][0]}"
                )
            open_ends.append((end, event["name"]))
    return errors


def _slow_identity(x: Any) -> Any:
    time.sleep(0.0002)
    return x


def _pipeline() -> fi.Dataset:
    """Every kind of thread: parallel interleave readers, parallel map workers, a prefetch producer."""
    return (
        fi.Dataset.range(8)
        .interleave(
            lambda i: fi.Dataset.range(i * 1000, i * 1000 + 200), cycle_length=2, num_parallel_calls=2
        )
        .map(_slow_identity, num_parallel_calls=2)
        .map(lambda x: x + 1)
        .batch(4)
        .prefetch(2)
    )


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The trace file of ``STEPS`` steps of ``_pipeline``, each step sleeping ``STEP_SLEEP``, loaded as JSON."""
    path = tmp_path_factory.mktemp("trace") / "trace.json"
    with fi.profiler.trace(path):
        it = iter(_pipeline())
        for _ in range(STEPS):
            next(it)
            time.sleep(STEP_SLEEP)
        it.close()
        del it
    with open(path) as f:
        return json.load(f)


def _events(trace: dict, phase: str) -> list[dict]:
    return [e for e in trace["traceEvents"] if e["ph"] == phase]


def test_every_event_has_the_fields_its_phase_needs(traced: dict) -> None:
    assert format_errors(traced) == []
    assert traced["displayTimeUnit"] in ("ms", "ns")


def test_the_format_check_finds_broken_events() -> None:
    broken = {
        "traceEvents": [
            {"ph": "X", "name": "a", "ts": 1.0, "pid": 1, "tid": 1},
            {"ph": "X", "name": "b", "ts": -1.0, "dur": 1.0, "pid": 1, "tid": 1},
            {"ph": "C", "name": "c", "ts": 1.0, "pid": 1, "args": {"v": "high"}},
            {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {}},
        ]
    }
    assert len(format_errors(broken)) == 4


def test_complete_events_nest_per_thread(traced: dict) -> None:
    assert _events(traced, "X")
    assert nesting_errors(traced["traceEvents"]) == []


def test_the_nesting_check_finds_overlaps() -> None:
    def span(name: str, ts: float, dur: float) -> dict:
        return {"ph": "X", "name": name, "ts": ts, "dur": dur, "pid": 1, "tid": 1}

    assert nesting_errors([span("outer", 0, 10), span("inner", 2, 3), span("next", 10, 5)]) == []
    assert len(nesting_errors([span("a", 0, 10), span("b", 5, 10)])) == 1


def test_every_thread_with_events_is_named(traced: dict) -> None:
    names = {
        (e["pid"], e["tid"]): e["args"]["name"] for e in _events(traced, "M") if e["name"] == "thread_name"
    }
    used = {(e["pid"], e["tid"]) for e in _events(traced, "X")}
    assert used <= set(names)
    worker_names = [names[t] for t in used]
    for stage in ("interleave(", "map(_slow_identity", "prefetch(2)"):
        assert any(stage in name for name in worker_names), (stage, worker_names)
    assert any(e["name"] == "process_name" for e in _events(traced, "M"))


def test_the_consumer_steps_are_recorded_in_microseconds(traced: dict) -> None:
    steps = [e for e in _events(traced, "X") if e["name"] == "step"]
    assert len(steps) == STEPS - 1  # a step is the time between two next() calls
    assert len({(e["pid"], e["tid"]) for e in steps}) == 1
    # Each step slept STEP_SLEEP seconds at least: a lower bound that holds however loaded the machine is.
    assert min(e["dur"] for e in steps) >= STEP_SLEEP * 1e6


def test_stage_events_are_named_by_the_stage_strings(traced: dict) -> None:
    (pipeline,) = traced["otherData"]["pipelines"]
    recorded = {e["name"] for e in _events(traced, "X")}
    for stage in pipeline["stages"]:
        if stage["inner_of"] is not None and stage["name"].endswith("(...)"):
            # one row for the interleave's datasets' stages, named differently: each one's events have its name
            assert any(name.startswith(stage["name"][:-len("...)")]) for name in recorded), stage["name"]
        else:
            assert stage["name"] in recorded, stage["name"]


def test_buffer_and_knob_counters(traced: dict) -> None:
    counters = collections.Counter(e["name"] for e in _events(traced, "C"))
    assert any(name.startswith("buffer prefetch(2)") for name in counters)
    assert any(name.startswith("buffer map(_slow_identity") for name in counters)
    knobs = {e["name"] for e in _events(traced, "C") if e["name"].startswith("knob ")}
    assert any(name.endswith(" parallelism") for name in knobs) and any(name.endswith(" buffer_size") for name in knobs)


def test_each_counter_track_keeps_the_same_series(traced: dict) -> None:
    series: dict[str, set] = {}
    for event in _events(traced, "C"):
        assert series.setdefault(event["name"], set(event["args"])) == set(event["args"]), event["name"]


def test_other_data_holds_the_stage_statistics(traced: dict) -> None:
    other = traced["otherData"]
    assert other["dropped_events"] == 0 and "note" not in other
    assert other["recorded_events"] == len(traced["traceEvents"]) - len(_events(traced, "M"))
    (pipeline,) = other["pipelines"]
    assert pipeline["steps"] == STEPS
    # a chain down to the interleave (map -> batch fused), whose input (range(8)) and whose datasets
    # (range(i * 1000, ...), added up in one row) are below it
    depths = [(s["depth"], s["inner_of"] is not None) for s in pipeline["stages"]]
    assert depths == [(0, False), (1, False), (2, False), (3, False), (4, False), (4, True)]
    inner = pipeline["stages"][-1]
    assert inner["name"] == "range(...)" and inner["inner_of"].startswith("interleave(")
    assert inner["elements"] >= STEPS * 4  # every element the steps took came from one of them


def test_a_pipeline_closed_inside_the_trace_is_stored_once() -> None:
    with fi.profiler.trace() as tracer:
        with iter(fi.Dataset.range(10).prefetch(2)) as it:
            next(it)
    assert len(tracer.to_chrome_trace()["otherData"]["pipelines"]) == 1


def test_the_event_cap_drops_events_and_says_so(tmp_path) -> None:
    path = tmp_path / "capped.json"
    with fi.profiler.trace(path, max_events=50):
        with iter(_pipeline()) as it:
            for _ in range(20):
                next(it)
    with open(path) as f:
        trace = json.load(f)
    other = trace["otherData"]
    assert other["recorded_events"] == 50
    assert other["dropped_events"] > 0
    assert "50" in other["note"] and "max_events" in other["note"]
    assert format_errors(trace) == [] and nesting_errors(trace["traceEvents"]) == []


def test_nothing_is_recorded_without_an_active_trace() -> None:
    with iter(_pipeline()) as it:
        for _ in range(10):
            next(it)
        for knob in it.knobs():
            knob.set(knob.value + 1)  # the knob hook, with no trace to write to
        next(it)
    assert instrument.ACTIVE is None
    with fi.profiler.trace() as tracer:
        pass
    written = tracer.to_chrome_trace()
    assert [e["name"] for e in written["traceEvents"]] == ["process_name"]
    assert written["otherData"]["pipelines"] == [] and written["otherData"]["recorded_events"] == 0


def test_a_pipeline_started_before_the_trace_has_its_later_steps_recorded() -> None:
    with iter(_pipeline()) as it:
        for _ in range(5):
            next(it)
        with fi.profiler.trace() as tracer:
            for _ in range(5):
                next(it)
        written = tracer.to_chrome_trace()
    assert sum(e["name"] == "step" for e in written["traceEvents"]) == 5
    assert nesting_errors(written["traceEvents"]) == []


def test_spans_that_began_before_the_trace_start_at_its_origin() -> None:
    with iter(_pipeline()) as it:
        next(it)
        with fi.profiler.trace() as tracer:
            next(it)
        written = tracer.to_chrome_trace()
    assert format_errors(written) == []


def test_traces_do_not_nest() -> None:
    with fi.profiler.trace():
        with pytest.raises(RuntimeError, match="already"), fi.profiler.trace():
            pass
    assert instrument.ACTIVE is None
