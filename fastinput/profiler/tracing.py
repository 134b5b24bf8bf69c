"""Capturing a timeline: ``with fi.profiler.trace("trace.json"): ...`` writes a Chrome Trace Event file.

While a trace is active, every stage records a complete event (``"ph": "X"``)
per ``get_next`` / ``get_next_chunk`` call on the thread that made it, worker
threads record the chunks they process, the consumer's steps (the time the
training loop spent between two ``next()`` calls) get their own events, and
buffer occupancy and knob values become counter tracks. Events are named by
the stage's string (``map(parse, num_parallel_calls=8)``). The file opens in
Perfetto, chrome://tracing and fastinput's own viewer (``fastinput-trace view``).

Cost: when no trace is active each hook is one module attribute read.
Large runs: at most ``max_events`` events are kept; later ones are counted,
not stored, and the file says so in ``otherData``.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator as _Iterator

from fastinput._engine import instrument
from fastinput.options import available_cpus

DEFAULT_MAX_EVENTS = 1_000_000


class Tracer:
    """Collects events in memory (appending to a list is thread-safe under the GIL) and writes them as JSON."""

    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self.max_events = max_events
        self.origin_ns = time.perf_counter_ns()
        self.wall_origin = time.time()
        self._events: list[tuple] = []
        self.dropped = 0
        self._thread_names: dict[int, str] = {}
        self._last_counter_ns: dict[str, int] = {}
        self._open_pipelines: dict[int, Callable[[], dict | None]] = {}  # by key: their figures, for the end
        self._recorded: set[int] = set()  # keys of pipelines whose figures are already stored
        self.stats_snapshots: list[dict] = []

    # -- recording (called from any thread) ---------------------------------------
    def _keep(self) -> bool:
        if len(self._events) < self.max_events:
            return True
        self.dropped += 1
        return False

    def _tid(self) -> int:
        tid = threading.get_ident()
        if tid not in self._thread_names:
            self._thread_names[tid] = threading.current_thread().name
        return tid

    def complete(self, name: str, start_ns: int, end_ns: int, args: dict | None = None) -> None:
        """A span of work of stage ``name`` on the calling thread (clipped to start no earlier than the trace)."""
        start_ns = max(start_ns, self.origin_ns)
        if end_ns >= start_ns and self._keep():
            self._events.append(("X", name, self._tid(), start_ns, end_ns - start_ns, args))

    def counter(self, name: str, values: dict[str, float], now_ns: int | None = None, every_ns: int = 0) -> None:
        """A sample of counter track ``name``; with ``every_ns``, skipped if the last sample is more recent."""
        now_ns = now_ns or time.perf_counter_ns()
        if every_ns and now_ns - self._last_counter_ns.get(name, 0) < every_ns:
            return
        self._last_counter_ns[name] = now_ns
        if self._keep():
            self._events.append(("C", name, 0, now_ns, 0, values))

    def pipeline_opened(self, key: int, summary: Callable[[], dict | None]) -> None:
        """Remember a pipeline iterator started under this trace, to store its figures in the file."""
        self._open_pipelines[key] = summary

    def pipeline_closed(self, key: int, summary: dict) -> None:
        """Store a pipeline's figures as it stops (once; a pipeline started before the trace is stored too)."""
        self._open_pipelines.pop(key, None)
        if key not in self._recorded:
            self._recorded.add(key)
            self.stats_snapshots.append(summary)

    def snapshot_pipelines(self) -> None:
        """Store the figures of every pipeline still running as the trace ends (closed ones stored theirs)."""
        for key, summary in list(self._open_pipelines.items()):
            figures = summary()
            if figures is not None:
                self.pipeline_closed(key, figures)
        self._open_pipelines.clear()

    # -- output -----------------------------------------------------------------
    def to_chrome_trace(self) -> dict:
        """The trace as a Chrome Trace Event Format object (times in microseconds since the trace started)."""
        pid = os.getpid()
        origin = self.origin_ns
        events: list[dict] = [
            {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": "fastinput"}},
        ]
        for tid, name in self._thread_names.items():
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}})
        for ph, name, tid, start, duration, args in self._events:
            event = {"ph": ph, "name": name, "pid": pid, "tid": tid, "ts": (start - origin) / 1000}
            if ph == "X":
                event["dur"] = duration / 1000
                event["cat"] = "stage"
            if args:
                event["args"] = args
            events.append(event)
        other = {"version": "fastinput trace 1", "recorded_events": len(self._events), "dropped_events": self.dropped,
                 "wall_clock_start": self.wall_origin, "cpus": available_cpus(), "pipelines": self.stats_snapshots}
        if self.dropped:
            other["note"] = (f"the trace kept its first {self.max_events} events; {self.dropped} later events were "
                             "dropped (raise max_events to keep more)")
        return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}

    def write(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(self.to_chrome_trace(), f, separators=(",", ":"))


@contextlib.contextmanager
def trace(path: str | os.PathLike | None = None, max_events: int = DEFAULT_MAX_EVENTS) -> _Iterator[Tracer]:
    """Record every pipeline iterated inside the block; write the trace to ``path`` (if given) at the end.

    >>> import fastinput as fi
    >>> with fi.profiler.trace() as tracer:
    ...     _ = list(fi.Dataset.range(3).batch(2))
    >>> len(tracer.to_chrome_trace()["traceEvents"]) > 0
    True
    """
    if instrument.ACTIVE is not None:
        raise RuntimeError("a fastinput trace is already being recorded; traces do not nest")
    tracer = Tracer(max_events)
    instrument.install(tracer)
    try:
        yield tracer
    finally:
        instrument.install(None)
        tracer.snapshot_pipelines()
        if path is not None:
            tracer.write(path)
