"""What the bottleneck analysis returns: ``Report`` (one pipeline) and ``StageReport`` (one stage of it).

Both are frozen dataclasses of plain values, so a report can be kept, compared
and printed long after the pipeline is gone. ``str(report)`` is the short text
``ds.profile`` prints: the verdict, a per-stage table (source first, the way
the pipeline reads) and what to change.
"""

from __future__ import annotations

import dataclasses

from fastinput._engine.traits import UNKNOWN, StageTraits

MODERATELY_INPUT_BOUND = 0.05
"""From this share of the consumer's time spent waiting for input on, the pipeline is moderately input-bound."""
HIGHLY_INPUT_BOUND = 0.20
"""From this share on, highly input-bound."""

NOT_INPUT_BOUND = "not input-bound"
MODERATE = "moderately input-bound"
HIGH = "highly input-bound"

_NAME_WIDTH = 56


def input_bound_class(wait_share: float) -> str:
    """The class of a consumer that waits ``wait_share`` of its time: below 5%, 5 to 20%, 20% and above."""
    if wait_share < MODERATELY_INPUT_BOUND:
        return NOT_INPUT_BOUND
    return MODERATE if wait_share < HIGHLY_INPUT_BOUND else HIGH


@dataclasses.dataclass(frozen=True)
class StageReport:
    """One stage's figures over the observed run.

    ``seconds_per_element`` is the stage's own work per element it produced (not
    its inputs'); ``utilisation`` is the share of the thread time available to
    the stage that its own work took (see ``fastinput.profiler.analysis``).
    ``host`` names the parallel stage whose threads run this stage (a parallel
    stage is its own host); None means the consumer's thread. ``traits`` say
    what kind of stage it is (``fastinput._engine.traits``; kind "other" for a
    stage of a trace that recorded none); ``below_repeat``, whether a repeat is
    among its consumers (its work is redone every epoch). ``cores_used`` is the
    CPU time of its own work over the run, in cores (its worker processes'
    included; 0 where a trace did not record it); ``in_processes``, whether its
    function runs in worker processes (``workers="process"``); ``on_batches``,
    whether its elements are batches (it batches, or it maps, filters, buffers
    ... the batches of a stage below it), so its times read "per batch". ``inner_of`` names the interleave (or
    flat_map) inside whose datasets the stage runs (its figures add up all of them), None for other stages.
    """

    name: str
    depth: int
    parallel: bool
    parallelism: int
    elements: int
    elements_per_second: float
    seconds_per_element: float
    utilisation: float
    host: str | None
    traits: StageTraits = UNKNOWN
    below_repeat: bool = False
    cores_used: float = 0.0
    in_processes: bool = False
    on_batches: bool = False
    inner_of: str | None = None


@dataclasses.dataclass(frozen=True)
class Report:
    """The analysis of one pipeline run: how input-bound its consumer was, what limits it, what to change.

    ``limiting_stage`` is the stage closest to its capacity, or None when the
    consumer is not input-bound (its own step is the limit then).
    ``recommendation`` is the one change to make first; ``suggestions`` are
    further, secondary ones.
    """

    pipeline: str
    steps: int
    consumer_seconds: float
    input_wait_seconds: float
    stages: tuple[StageReport, ...]
    limiting_stage: str | None
    verdict: str
    recommendation: str
    suggestions: tuple[str, ...] = ()

    @property
    def input_wait_share(self) -> float:
        """The share of the consumer's time spent inside ``next()``, waiting for input."""
        if self.consumer_seconds <= 0:
            return 0.0
        return min(1.0, self.input_wait_seconds / self.consumer_seconds)

    @property
    def input_bound(self) -> str:
        """"not input-bound" (< 5%), "moderately input-bound" (5-20%) or "highly input-bound" (>= 20%)."""
        return input_bound_class(self.input_wait_share)

    def stage(self, name: str) -> StageReport:
        """The stage called ``name`` (its string, as in the table)."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def __str__(self) -> str:
        rate = self.steps / self.consumer_seconds if self.consumer_seconds > 0 else 0.0
        lines = [
            f"fastinput profile: {self.pipeline}",
            f"  {self.steps} steps in {self.consumer_seconds:.3g} s ({rate:,.1f} steps/s); the consumer waited for "
            f"input {self.input_wait_share:.1%} of its time: {self.input_bound}",
            "",
            f"  {'stage (source first)':<{_NAME_WIDTH}} {'elements/s':>11} {'own/element':>11} {'parallelism':>11}"
            f" {'utilisation':>11}",
        ]
        idle = False
        for stage in sorted(self.stages, key=lambda s: -s.depth):
            parallelism = str(stage.parallelism) if stage.parallel else "sync"
            rate = f"{stage.elements_per_second:,.1f}" if stage.elements else "idle*"
            idle = idle or not stage.elements
            lines.append(
                f"  {_shorten(stage.name):<{_NAME_WIDTH}} {rate:>11}"
                f" {format_seconds(stage.seconds_per_element):>11} {parallelism:>11} {stage.utilisation:>11.0%}"
            )
        if idle:
            lines.append(f"  {IDLE_NOTE}")
        lines += ["", f"  verdict: {self.verdict}", f"  recommendation: {self.recommendation}"]
        lines += [f"  also: {suggestion}" for suggestion in self.suggestions]
        return "\n".join(lines)


IDLE_NOTE = ("* produced nothing in these steps: a buffer above it (a shuffle, a prefetch) still held what it made "
             "before them, during the warm-up; profile more steps to see it work")


def format_seconds(seconds: float) -> str:
    """A duration with a unit that keeps it readable (``1.2 ms``, ``350 us``)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _shorten(name: str) -> str:
    return name if len(name) <= _NAME_WIDTH else name[:_NAME_WIDTH - 3] + "..."
