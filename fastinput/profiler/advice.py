"""The words of the analysis: what kind of stage limits a pipeline, and what to change for that kind.

``fastinput.profiler.analysis`` decides which stage limits throughput; this
module turns that decision into a verdict and concrete advice that names the
stage and the numbers (``raise map(parse)'s num_parallel_calls from 1 to 8``).
What kind of stage it is comes from its traits (``StageReport.traits``,
recorded from the Dataset's declaration), never from its string: the string
only names the stage in the text.
"""

from __future__ import annotations

from fastinput._engine.traits import StageKind
from fastinput.profiler.report import StageReport, format_seconds

_READS = (StageKind.READ, StageKind.GENERATOR, StageKind.INTERLEAVE)

INTERLEAVE_TEMPLATE = "interleave(..., num_parallel_calls=fi.AUTOTUNE)"


def user_stage(stage: StageReport) -> str:
    """The stage as the user wrote it: ``map(f)`` for the ``map_and_batch`` a rewrite fused from ``map(f) -> batch``."""
    return stage.traits.stands_for or stage.name


def has_final_prefetch(stages: tuple[StageReport, ...]) -> bool:
    """Whether the pipeline's last stage (the one the consumer calls) prefetches."""
    last = next(s for s in stages if s.depth == 0)
    return last.traits.kind is StageKind.PREFETCH


def capacity_phrase(stage: StageReport) -> str:
    """What the stage's utilisation is a share of, in words."""
    if stage.parallel:
        return f"its {stage.parallelism} thread{'s' if stage.parallelism > 1 else ''}"
    if stage.inner_of is not None and stage.host == stage.inner_of:
        threads = f"{stage.parallelism} thread{'s' if stage.parallelism > 1 else ''}"
        return f"the {threads} of {stage.host} that read its datasets"
    if stage.host is None:
        return "the consumer's time in next() (it runs on the consumer's thread)"
    return f"the one thread that feeds {stage.host}"


def limiting_verdict(stage: StageReport) -> str:
    """The verdict naming the saturated stage, its own time per element and how much of its capacity it uses."""
    return (f"{stage.name} limits throughput: its own work ({format_seconds(stage.seconds_per_element)} "
            f"{per_element(stage)}) uses {stage.utilisation:.0%} of {capacity_phrase(stage)}")


def per_element(stage: StageReport) -> str:
    """"per batch" for a stage whose elements are batches (``StageReport.on_batches``), "per element" otherwise."""
    return "per batch" if stage.on_batches else "per element"


def fix_for(stage: StageReport, cpus: int) -> str:
    """The one change to make first when ``stage`` is the saturated stage that limits the pipeline."""
    traits = stage.traits
    kind = traits.kind
    threads = stage.parallelism if stage.parallel else 1
    inner = _inner_fix(stage) if stage.inner_of is not None and not stage.parallel else None
    if inner is not None:
        return inner
    if kind is StageKind.MAP:
        target = user_stage(stage)
        if threads < cpus:
            return f"raise {target}'s {traits.parallel_argument} from {threads} to {cpus} (fi.AUTOTUNE)"
        if traits.op == "map_and_batch":  # already fused: only the function itself is left to make cheaper
            return (f"{target} already runs on {threads} threads for {cpus} cores and writes into its batches: make "
                    "its function cheaper (fi.image's kernels for JPEGs, numpy over arrays rather than Python over "
                    "values), or precompute it offline")
        return (f"{target} already runs on {threads} threads for {cpus} cores: make its function cheaper: "
                "vectorise it (batch first, then map over whole batches), use fused kernels where it does not yet "
                "(map_and_batch, fi.image's decode_random_crop_resize), or precompute it offline")
    if kind in _READS and not stage.parallel:
        if kind is StageKind.GENERATOR:
            return ("read in parallel: split the generator into shards and interleave them, "
                    "fi.Dataset.range(num_shards).interleave("
                    "lambda shard: fi.Dataset.from_generator(gen, args=(shard,)), "
                    "num_parallel_calls=fi.AUTOTUNE)")
        if kind is StageKind.READ and traits.parallel_argument:  # a reader that interleaves its files itself
            return (f"read files in parallel: {traits.op}(..., {traits.parallel_argument}=fi.AUTOTUNE) in place of "
                    f"{stage.name} (an {INTERLEAVE_TEMPLATE} over the files)")
        return f"read files in parallel with {INTERLEAVE_TEMPLATE} in place of {stage.name}"
    if kind in _READS:
        return (f"the source is the limit: {stage.name} keeps its {threads} readers {stage.utilisation:.0%} busy; "
                "use faster storage or more files (more readers help only while the storage has headroom)")
    if kind is StageKind.IN_MEMORY:
        return (f"the in-memory source {stage.name} is the limit: it hands out one element at a time; "
                "batch right after it and transform whole batches")
    if kind is StageKind.PREFETCH:
        return (f"{stage.name}'s copies are the limit: copy fewer bytes (uint8 rather than float32, cast on the "
                "device) in larger batches")
    if stage.host is None:
        return (f"{stage.name} runs on the consumer's thread: add prefetch(fi.AUTOTUNE) right after it so it runs "
                "ahead on its own thread, and move heavy work into map(..., num_parallel_calls=fi.AUTOTUNE)")
    return (f"{stage.name} runs one element at a time on the thread that feeds {stage.host}: make it cheaper, "
            "or do its heavy work in a parallel map before it")


def _inner_fix(stage: StageReport) -> str | None:
    """The fix for a synchronous stage inside an interleave's datasets, where it differs from the stage's own."""
    target = user_stage(stage)
    if stage.traits.kind in (StageKind.MAP, StageKind.FILTER):
        return (f"{target} runs inside each dataset of {stage.inner_of}, one element at a time per dataset: apply "
                f"{target} to the interleave's output instead, with num_parallel_calls=fi.AUTOTUNE, so it gets "
                "threads of its own and the interleave only reads")
    if stage.traits.kind not in _READS:
        return None
    if stage.host != stage.inner_of:  # a sequential interleave: one dataset read at a time
        return (f"{stage.inner_of} reads its datasets one at a time: read them in parallel, with "
                f"num_parallel_calls=fi.AUTOTUNE on it ({INTERLEAVE_TEMPLATE})")
    return (f"the source is the limit: {stage.inner_of}'s {stage.parallelism} readers keep {target} "
            f"{stage.utilisation:.0%} busy; use faster storage or more files (more readers help only while the "
            "storage has headroom)")


def holds_the_gil(stage: StageReport | None, cpus: int) -> bool:
    """Whether ``stage`` is a parallel map whose threads took turns: between them they were busy about one thread's
    worth of the run, computing (not waiting on I/O) while busy. That is a Python function holding the GIL: its
    threads wait for the GIL between work items, where no busy time is counted, so the stage does not look
    saturated although it is the limit."""
    if (stage is None or stage.traits.kind is not StageKind.MAP or not stage.parallel or stage.in_processes
            or stage.parallelism < 2 or cpus < 2 or not stage.elements or not stage.elements_per_second):
        return False
    window = stage.elements / stage.elements_per_second
    busy_threads = stage.seconds_per_element * stage.elements / window
    return 0.5 <= busy_threads <= 1.3 and stage.cores_used >= 0.5 * busy_threads


def gil_advice(stage: StageReport, cpus: int) -> tuple[str, str]:
    """(verdict, recommendation) for a map whose function holds the GIL (``holds_the_gil``)."""
    target = user_stage(stage)
    verdict = (f"{stage.name} is the limit: its {stage.parallelism} threads take turns on one core, because its "
               f"function holds Python's GIL (they used {stage.cores_used:.1f} of {cpus} cores between them)")
    return verdict, (f"run the function in worker processes, one per core: add workers=\"process\" to {target} "
                     "(or make it release the GIL: numpy on whole arrays, fi.image's kernels)")


def cache_suggestion(stage: StageReport) -> str | None:
    """'cache after <stage>' when a costly map or read runs below a repeat (its work is redone every epoch)."""
    if stage.traits.kind not in (StageKind.MAP, *_READS) or not stage.below_repeat:
        return None
    target = user_stage(stage)
    return (f"if {target}'s output is the same every epoch (no random augmentation) and fits in memory or on local "
            f"disk, cache after {target}: add .cache() right after it, before the repeat, so later epochs skip it")


PREFETCH_AT_END = "add prefetch(fi.AUTOTUNE) at the end, so the next batch is ready while the step runs"


def unsaturated_advice(busiest: StageReport, final_prefetch: bool) -> tuple[str, str]:
    """(verdict, recommendation) when the consumer waits although no stage is near its capacity."""
    verdict = (f"no stage is near its capacity (the busiest, {busiest.name}, is at {busiest.utilisation:.0%}): "
               "the consumer waits on latency, not on throughput")
    if not final_prefetch:
        return verdict, PREFETCH_AT_END
    return verdict, ("let more work overlap the step: raise the last prefetch's buffer_size (fi.AUTOTUNE) and "
                     "use num_parallel_calls=fi.AUTOTUNE on the maps and reads")


def not_input_bound_advice(busiest: StageReport | None, wait_share: float) -> tuple[str, str, tuple[str, ...]]:
    """(verdict, recommendation, suggestions) when the consumer hardly waits: nothing drastic to change."""
    verdict = (f"the input pipeline keeps up: the consumer waited only {wait_share:.1%} of its time; "
               "its own step is the limit")
    recommendation = "nothing to change in the input pipeline; make the step itself faster first"
    if busiest is None or busiest.utilisation < 0.5:
        return verdict, recommendation, ()
    headroom = (f"{busiest.name} is the busiest stage ({busiest.utilisation:.0%} of {capacity_phrase(busiest)}); "
                f"it will limit the pipeline once the step is about {1 / busiest.utilisation:.1f}x faster")
    return verdict, recommendation, (headroom,)
