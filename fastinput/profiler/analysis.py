"""Bottleneck analysis: how input-bound a pipeline's consumer is, which stage limits it, what to change.

``fi.profiler.analyze(x)`` reads the statistics every iterator records
(``Iterator.stats_summary()``): from a live ``Iterator``, a summary dict, a
trace file written by ``fi.profiler.trace`` or that trace loaded as a dict
(``otherData.pipelines``). ``ds.profile(...)`` runs a pipeline and analyses it.

The model
---------
*Input-bound*: the consumer's time (first ``next()`` to last return) is its
own step plus the time spent inside ``next()``; the share spent inside
``next()`` classifies the run: not (< 5%), moderately (5-20%) or highly
(>= 20%) input-bound.

*Threads*: a parallel stage (parallel map or interleave, prefetch,
map_and_batch) runs its own work on its own ``parallelism`` threads. A
synchronous stage runs on the thread of the nearest parallel stage above it,
or on the consumer's thread, and the synchronous stages feeding one parallel
stage run one at a time (its workers pull their input under a lock), so each
group of them has one thread. The consumer's thread gives input only the time
the consumer spends in ``next()``.

*Utilisation*: a stage's own work (its busy time, not its inputs') divided by
the thread time available to it over the run: ``parallelism x run time`` for a
parallel stage, the run time for a synchronous group feeding a parallel stage,
the consumer's input wait for the group on the consumer's thread. Put as
rates, a stage's capacity is ``parallelism / own time per element`` and its
utilisation is ``observed rate / capacity``; the stage closest to its capacity
limits throughput. A synchronous stage is judged by its whole group (two
stages at 50% of one thread saturate it) and the group's costliest member is
named.

*Advice* (``fastinput.profiler.advice``): when the consumer is input-bound and
the limiting stage is at least ``SATURATED`` busy, the fix for that kind of
stage (more parallel calls for a map below the core count, cheaper work for a
map at all cores, parallel reads for a sequential reader, "the source is the
limit" for a parallel one); a final prefetch when there is none, and caching
when the costly stage is redone every epoch below a repeat, as further
suggestions. When the consumer hardly waits, nothing drastic is recommended.
A stage's kind is the one its Dataset declares (``StageTraits``, recorded with
its statistics), never read from its name.

Caveats: times are wall-clock busy times, so a stage waiting for the GIL or for
I/O counts as busy (as it should: it is what the consumer waits for).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from fastinput._engine.arguments import check_int
from fastinput._engine.iterator import Iterator
from fastinput._engine.metrics import StageStats
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.options import available_cpus
from fastinput.profiler import advice
from fastinput.profiler.report import NOT_INPUT_BOUND, Report, StageReport, input_bound_class

SATURATED = 0.5
"""From this utilisation on, the limiting stage is busy enough that changing it pays."""
def analyze(source: Any, cpus: int | None = None) -> Report | list[Report]:
    """Analyse a pipeline run: a trace file path, a trace dict, an ``Iterator`` or a ``stats_summary()`` dict.

    A list of ``StageStats`` (``Iterator.stats()``) is accepted too; the
    consumer's time is then the last stage's lifetime, slightly longer than
    from its first ``next()`` to its last. Returns one ``Report``, or a list
    of them (in recording order) for a trace that holds several pipelines.
    ``cpus``: the cores the advice sizes parallelism for (default: the cores
    the trace was recorded on, else the cores this process may use).
    What kind each stage is comes from the traits recorded with it; a trace
    written before stages recorded traits has stages of kind "other", for
    which the advice is the general one (prefetch, move work into a parallel map).

    >>> import fastinput as fi
    >>> with iter(fi.Dataset.range(100).map(lambda x: x + 1).prefetch(2)) as it:
    ...     _ = list(it)
    ...     report = fi.profiler.analyze(it)
    >>> report.input_bound in ("not input-bound", "moderately input-bound", "highly input-bound")
    True
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source) as f:
            source = json.load(f)
    if cpus is None and isinstance(source, dict):
        cpus = source.get("otherData", {}).get("cpus")
    cpus = cpus or available_cpus()
    summaries = _summaries(source)
    reports = [analyze_summary(summary, cpus) for summary in summaries]
    return reports[0] if len(reports) == 1 else reports


def _summaries(source: Any) -> list[dict]:
    """The ``stats_summary()`` dicts held by ``source`` (a loaded trace, an Iterator, a summary or stats)."""
    if isinstance(source, Iterator):
        return [source.stats_summary()]
    if isinstance(source, (list, tuple)) and source and all(isinstance(s, StageStats) for s in source):
        return [_summary_of_stats(source)]
    if isinstance(source, dict) and "stages" in source:
        return [source]
    if isinstance(source, dict) and ("otherData" in source or "traceEvents" in source):
        pipelines = source.get("otherData", {}).get("pipelines") or []
        if not pipelines:
            raise ValueError("analyze: the trace holds no pipeline statistics (was a pipeline iterated inside "
                             "fi.profiler.trace?)")
        return list(pipelines)
    raise TypeError("analyze: expected a trace file path, a trace dict, a fastinput Iterator, a stats_summary() "
                    f"dict or a list of StageStats, got {type(source).__name__}")


def _summary_of_stats(stats: list[StageStats] | tuple[StageStats, ...]) -> dict:
    """A summary from ``Iterator.stats()`` alone: the consumer's time is taken as the last stage's lifetime."""
    last = next(s for s in stats if s.depth == 0)
    chain = [s.name for s in reversed(stats) if s.inner_of is None]  # not the stages inside an interleave's datasets
    return {"pipeline": " -> ".join(chain), "steps": last.elements,
            "consumer_seconds": last.elapsed_seconds, "input_wait_seconds": last.call_seconds,
            "stages": [dataclasses.asdict(s) for s in stats]}


def analyze_summary(summary: dict, cpus: int) -> Report:
    """The report for one ``stats_summary()`` dict (stages consumer first, in pre-order with depths)."""
    stages = summary["stages"]
    consumer = float(summary["consumer_seconds"])
    waited = float(summary["input_wait_seconds"])
    window = consumer if consumer > 0 else max((s["elapsed_seconds"] for s in stages), default=0.0)
    parents = _parents([s["depth"] for s in stages])
    traits = [StageTraits.from_summary(s.get("traits")) for s in stages]
    below_repeat = _below_repeat(traits, parents)
    own = [max(0.0, float(s["self_seconds"])) for s in stages]
    hosts = _hosts(stages, parents)
    groups = _groups(stages, parents, hosts)
    on_batches = _on_batches(traits, parents)
    group_work = _group_work(stages, groups, own)

    rows, pressure = [], []
    for i, s in enumerate(stages):
        available = _available_seconds(s, groups[i], stages, window, waited)
        share = _share(own[i], available)
        rows.append(StageReport(
            name=s["name"], depth=s["depth"], parallel=s["parallel"], parallelism=s["parallelism"],
            elements=s["elements"], elements_per_second=s["elements"] / window if window > 0 else 0.0,
            seconds_per_element=own[i] / s["elements"] if s["elements"] else 0.0, utilisation=share,
            host=None if hosts[i] is None else stages[hosts[i]]["name"], traits=traits[i],
            below_repeat=below_repeat[i], cores_used=float(s.get("cpu_seconds", 0.0)) / window if window > 0 else 0.0,
            in_processes=bool(s.get("worker_pids")), on_batches=on_batches[i], inner_of=s.get("inner_of"),
        ))
        pressure.append(share if s["parallel"] else _share(group_work[groups[i]], available))
    stage_reports = tuple(rows)
    limiting = max(range(len(rows)), key=lambda i: (pressure[i], own[i]), default=None)
    return _report(summary, stage_reports, limiting, pressure, cpus)


def _report(summary: dict, stages: tuple[StageReport, ...], limiting: int | None, pressure: list[float],
            cpus: int) -> Report:
    consumer, waited = float(summary["consumer_seconds"]), float(summary["input_wait_seconds"])
    wait_share = min(1.0, waited / consumer) if consumer > 0 else 0.0
    busiest = stages[limiting] if limiting is not None else None
    common = dict(pipeline=summary["pipeline"], steps=summary["steps"], consumer_seconds=consumer,
                  input_wait_seconds=waited, stages=stages)
    if busiest is None or input_bound_class(wait_share) == NOT_INPUT_BOUND:
        verdict, recommendation, suggestions = advice.not_input_bound_advice(busiest, wait_share)
        return Report(**common, limiting_stage=None, verdict=verdict, recommendation=recommendation,
                      suggestions=suggestions)
    final_prefetch = advice.has_final_prefetch(stages)
    if advice.holds_the_gil(busiest, cpus):
        verdict, recommendation = advice.gil_advice(busiest, cpus)
        return Report(**common, limiting_stage=busiest.name, verdict=verdict, recommendation=recommendation,
                      suggestions=() if final_prefetch else (advice.PREFETCH_AT_END,))
    if pressure[limiting] < SATURATED:
        verdict, recommendation = advice.unsaturated_advice(busiest, final_prefetch)
        return Report(**common, limiting_stage=busiest.name, verdict=verdict, recommendation=recommendation)
    suggestions = [] if final_prefetch else [advice.PREFETCH_AT_END]
    cache = advice.cache_suggestion(busiest)
    if cache is not None:
        suggestions.append(cache)
    return Report(**common, limiting_stage=busiest.name, verdict=advice.limiting_verdict(busiest),
                  recommendation=advice.fix_for(busiest, cpus), suggestions=tuple(suggestions))


def _parents(depths: list[int]) -> list[int | None]:
    """Each stage's consumer (index) in a pre-order list of depths; None for the last stage."""
    parents: list[int | None] = []
    path: list[int] = []  # indices of the stages on the way down to the current one
    for i, depth in enumerate(depths):
        del path[depth:]
        parents.append(path[-1] if path else None)
        path.append(i)
    return parents


_KEEP_BATCHES = {StageKind.MAP, StageKind.FILTER, StageKind.SHUFFLE, StageKind.REPEAT, StageKind.PREFETCH,
                 StageKind.SLICE, StageKind.CACHE, StageKind.COMBINE}
"""Kinds whose elements are their inputs' kind of element: batches in, batches out."""


def _on_batches(traits: list[StageTraits], parents: list[int | None]) -> list[bool]:
    """Per stage: whether its elements are batches (it batches, or every input of a kind that keeps elements as
    they are has batches)."""
    children: list[list[int]] = [[] for _ in traits]
    for i, parent in enumerate(parents):
        if parent is not None:
            children[parent].append(i)
    batches = [False] * len(traits)
    for i in reversed(range(len(traits))):  # stages are in pre-order: every input after its consumer
        kind = traits[i].kind
        batches[i] = (kind is StageKind.BATCH or traits[i].op == "map_and_batch"
                      or (kind in _KEEP_BATCHES and bool(children[i]) and all(batches[c] for c in children[i])))
    return batches


def _below_repeat(traits: list[StageTraits], parents: list[int | None]) -> list[bool]:
    """Whether a repeat is among each stage's consumers (parents come before their inputs in pre-order)."""
    below: list[bool] = []
    for parent in parents:
        below.append(parent is not None and (traits[parent].kind is StageKind.REPEAT or below[parent]))
    return below


def _hosts(stages: list[dict], parents: list[int | None]) -> list[int | None]:
    """The parallel stage whose threads run each stage (itself if parallel); None: the consumer's thread."""
    hosts: list[int | None] = []
    for i, stage in enumerate(stages):
        parent = parents[i]
        hosts.append(i if stage["parallel"] else (None if parent is None else hosts[parent]))
    return hosts


Group = tuple[int | None, bool]
"""The threads a synchronous stage runs on: its host (None: the consumer's thread), and whether it runs inside the
datasets of that host (a parallel interleave), which the host's threads read at once, one each."""


def _groups(stages: list[dict], parents: list[int | None], hosts: list[int | None]) -> list[Group]:
    """Each stage's group (see ``Group``); a parallel stage is a group of its own."""
    groups: list[Group] = []
    for i, stage in enumerate(stages):
        parent = parents[i]
        inside_host = (stage.get("inner_of") is not None and parent is not None and hosts[i] is not None
                       and (parent == hosts[i] and stages[parent].get("inner_of") != stage["inner_of"]
                            or parent != hosts[i] and groups[parent][1]))
        groups.append((hosts[i], bool(inside_host) and not stage["parallel"]))
    return groups


def _group_work(stages: list[dict], groups: list[Group], own: list[float]) -> dict[Group, float]:
    """Own seconds of the synchronous stages of each group."""
    work: dict[Group, float] = {}
    for stage, group, seconds in zip(stages, groups, own):
        if not stage["parallel"]:
            work[group] = work.get(group, 0.0) + seconds
    return work


def _available_seconds(stage: dict, group: Group, stages: list[dict], window: float, waited: float) -> float:
    """Thread time the stage's work could have used over the run: a parallel stage's threads; one thread for a
    group of synchronous stages (the consumer's time in next() on the consumer's thread), or the host's threads for
    the stages inside a parallel interleave's datasets."""
    if stage["parallel"]:
        return window * max(1, stage["parallelism"])
    host, inside = group
    if inside:
        return window * max(1, stages[host]["parallelism"])
    return window if host is not None else waited


def _share(seconds: float, available: float) -> float:
    return min(1.0, seconds / available) if available > 0 else 0.0


def profile_dataset(dataset: Any, steps: int = 100, trace_path: str | os.PathLike | None = None, warmup: int = 5,
                    print_report: bool = True) -> Report:
    """Take ``warmup`` then ``steps`` elements of ``dataset`` (under a trace if ``trace_path``) and analyse the steps.

    The report covers the ``steps`` only (the warm-up starts threads and fills
    buffers); the trace file covers the whole run, so ``analyze(trace_path)``
    counts the warm-up too. The iterator is closed before returning. Prints the
    report when ``print_report``.
    """
    from fastinput.profiler.tracing import trace

    steps = check_int("profile", "steps", steps, minimum=1)
    warmup = check_int("profile", "warmup", warmup, minimum=0)
    if trace_path is None:
        summary = _run(dataset, warmup, steps)
    else:
        with trace(trace_path):
            summary = _run(dataset, warmup, steps)
    report = analyze_summary(summary, available_cpus())
    if print_report:
        print(report)
        if report.steps < steps:
            print(f"  (the pipeline ended after {report.steps} of the {steps} steps asked, after {warmup} warm-up "
                  "steps: the figures cover those; add .repeat() to profile a finite pipeline longer)")
    return report


def _run(dataset: Any, warmup: int, steps: int) -> dict:
    """The pipeline's figures over ``steps`` elements taken after ``warmup`` ones (fewer if the dataset ends)."""
    with iter(dataset) as it:
        for _ in zip(range(warmup), it):
            pass
        before = it.stats_summary()
        for _ in zip(range(steps), it):
            pass
        return summary_since(before, it.stats_summary())


_COUNTED = ("elements", "call_seconds", "self_seconds", "wait_seconds", "elapsed_seconds", "cpu_seconds")


def summary_since(before: dict, after: dict) -> dict:
    """A pipeline's figures between two ``stats_summary()`` snapshots of it (counters subtracted, levels as after).

    Stages are matched by their place in the tree, not by index: the stages inside an interleave's datasets appear
    once it has opened one, so ``after`` may hold stages ``before`` did not (their counters are taken whole)."""
    earlier = dict(zip(_stage_keys(before["stages"]), before["stages"]))
    stages = []
    for key, late in zip(_stage_keys(after["stages"]), after["stages"]):
        early = earlier.get(key)
        stages.append(late if early is None else {**late, **{k: late[k] - early[k] for k in _COUNTED if k in late}})
    return {**after, "steps": after["steps"] - before["steps"], "stages": stages,
            "consumer_seconds": after["consumer_seconds"] - before["consumer_seconds"],
            "input_wait_seconds": after["input_wait_seconds"] - before["input_wait_seconds"]}


def _stage_keys(stages: list[dict]) -> list[tuple]:
    """Each stage's place in a pre-order list: its consumer's place, what it is, and which of that consumer's inputs
    of that kind it is. What a stage is: its name, or for a stage inside an interleave's datasets its op (its row
    is renamed ``op(...)`` once datasets whose stages are named differently have been added up)."""
    keys: list[tuple] = []
    taken: dict[tuple, int] = {}
    for i, parent in enumerate(_parents([s["depth"] for s in stages])):
        stage = stages[i]
        inner_of = stage.get("inner_of")
        what = stage["name"] if inner_of is None else StageTraits.from_summary(stage.get("traits")).op
        sibling = (None if parent is None else keys[parent], what, inner_of)
        taken[sibling] = taken.get(sibling, -1) + 1
        keys.append((*sibling, taken[sibling]))
    return keys
