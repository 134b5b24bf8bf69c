"""The engine's tracing hook: the one place running stages report timeline events to, whoever records them.

The engine records its metrics itself (``fastinput._engine.metrics``); a
timeline is only recorded while a sink is installed here (``fi.profiler.trace``
installs one). Stages read ``ACTIVE`` once per event and do nothing more when
it is None, so tracing costs one module attribute read when it is off. The
engine never imports the profiler: the profiler implements ``TraceSink`` and
installs itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class TraceSink(Protocol):
    """What the engine calls while a trace is recorded (from any thread; implementations take no lock)."""

    def complete(self, name: str, start_ns: int, end_ns: int, args: dict | None = None) -> None:
        """A span of work of stage ``name`` on the calling thread."""

    def counter(self, name: str, values: dict[str, float], now_ns: int | None = None, every_ns: int = 0) -> None:
        """A sample of counter track ``name`` (skipped if the last one is more recent than ``every_ns``)."""

    def pipeline_opened(self, key: int, summary: Callable[[], dict | None]) -> None:
        """A pipeline iterator started: ``summary()`` gives its figures (None once it is gone), for a trace that
        ends while it still runs."""

    def pipeline_closed(self, key: int, summary: dict) -> None:
        """A pipeline iterator stopped, with its final figures (``Iterator.stats_summary()``)."""


ACTIVE: TraceSink | None = None
"""The sink recording now, or None. Stages read this attribute once per event and nothing else when tracing is off."""

COUNTER_INTERVAL_NS = 200_000
"""A buffer's occupancy is sampled at most once per this many nanoseconds per stage."""


def buffer_level(stage: str, elements: int) -> None:
    """Record a stage's buffer occupancy on its counter track, if a trace is being recorded (sampled)."""
    tracer = ACTIVE  # read once: a trace may end between two reads
    if tracer is not None:
        tracer.counter(f"buffer {stage}", {"elements": elements}, every_ns=COUNTER_INTERVAL_NS)


def install(sink: TraceSink | None) -> None:
    """Make ``sink`` the recording sink (None: stop recording)."""
    global ACTIVE
    ACTIVE = sink
