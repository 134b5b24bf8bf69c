"""Typed declarations of what a stage is, read by the modules that reason about pipelines.

Each ``Dataset`` class declares ``traits = StageTraits(...)``: what kind of stage
it is and what it does with its input's elements. The TF adapter, the
profiler's analysis and advice and the static rewrites read these, never a
stage's string (which is for people: renaming it changes no decision).

A running iterator declares how the autotuner's model treats it
(``TuningProfile``), and each of its knobs what it turns (``KnobKind``): the
tuner dispatches on those kinds; knob names are for display only.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from typing import Any


class StageKind(str, enum.Enum):
    """What a stage does, in the words a profile report uses."""

    IN_MEMORY = "in-memory source"  # range, from_tensor_slices, from_tensors
    GENERATOR = "generator"  # from_generator: a Python generator's elements
    READ = "read"  # a file reader: TFRecord, CSV
    INTERLEAVE = "interleave"  # datasets made per input element, read several at a time
    MAP = "map"  # a user function per element (or per batch, fused)
    FILTER = "filter"
    BATCH = "batch"
    UNBATCH = "unbatch"
    SHUFFLE = "shuffle"
    REPEAT = "repeat"  # its input's elements again after they end (shuffle_and_repeat too)
    PREFETCH = "prefetch"  # a buffer filled ahead by a thread (to a device too)
    SLICE = "slice"  # take, skip, shard
    COMBINE = "combine"  # zip, concatenate
    CACHE = "cache"
    OTHER = "other"


@dataclasses.dataclass(frozen=True)
class StageTraits:
    """What a Dataset node is, declared once per class (an instance may override it where it depends on its arguments).

    ``op``: the operation's name as a user calls it (``map``, ``TFRecordDataset``).
    ``passes_through``: hands its input's elements on without looking into them (prefetch, take, shuffle):
    whatever an earlier stage puts in a leaf reaches the consumer as it is.
    ``keeps_spec``: its elements keep its input's structure, shapes and dtypes: its element spec is its input's.
    ``parallel_argument``: the argument that runs the stage on several threads (``num_parallel_calls``), if any.
    ``stands_for``: for a stage a static rewrite made, the user's stage whose work it does (``map(f)`` of a fused
    ``map(f) -> batch(32)``), so reports name what the user wrote.
    """

    op: str
    kind: StageKind = StageKind.OTHER
    passes_through: bool = False
    keeps_spec: bool = False
    parallel_argument: str | None = None
    stands_for: str | None = None

    def __post_init__(self) -> None:
        if self.passes_through and not self.keeps_spec:
            raise ValueError(f"StageTraits({self.op!r}): a stage that passes elements through keeps their spec")

    @classmethod
    def from_summary(cls, recorded: Any) -> StageTraits:
        """Traits as ``stats_summary()`` and trace files store them (a dict). Traces written before stages
        recorded their traits have none: those stages are of kind OTHER (the advice then names no kind-specific
        fix), as are kinds this version does not know."""
        if not isinstance(recorded, dict):
            return UNKNOWN
        try:
            kind = StageKind(recorded.get("kind"))
        except ValueError:
            kind = StageKind.OTHER
        known = {field.name for field in dataclasses.fields(cls)} - {"kind"}
        return cls(**{"op": "", **{key: value for key, value in recorded.items() if key in known}, "kind": kind})


UNKNOWN = StageTraits(op="")
"""The traits of a stage that declares none (and of stages in traces that recorded none)."""


class KnobKind(str, enum.Enum):
    """What a knob turns: the tuner steps and budgets each kind its own way."""

    WORKERS = "workers"  # worker threads: stepped by one; the only kind the climb lowers to free resources
    OUTPUT_BUFFER = "output buffer"  # slots of output elements (chunks of them in a parallel map)
    PER_INPUT_BUFFER = "per-input buffer"  # elements buffered per input dataset (interleave)
    INPUTS_AHEAD = "inputs read ahead"  # input datasets opened beyond the cycle (interleave)


class TuningKind(str, enum.Enum):
    """How the autotuner's model treats a running stage."""

    SYNC = "sync"  # runs on its consumer's thread: its own work plus its inputs'
    PARALLEL = "parallel"  # workers fill a buffer of chunks, at least one slot per worker
    INTERLEAVE = "interleave"  # workers read several datasets, a buffer per dataset
    PREFETCH = "prefetch"  # one thread fills a buffer of elements


@dataclasses.dataclass(frozen=True)
class TuningProfile:
    """What the autotuner's model needs to know about a running stage besides its knobs and metrics.

    ``chunk_size``: elements per buffer slot (a parallel map hands work out in chunks);
    ``cycle_length``: datasets an interleave reads at once (each has its own buffer).
    """

    kind: TuningKind = TuningKind.SYNC
    chunk_size: int = 1
    cycle_length: int = 1


class PacksStrings(abc.ABC):
    """A map function that has a variant leaving string leaves packed (``fastinput.tf_values.PackedStrings``).

    ``as_tf_dataset`` uses the variant when only TensorFlow sees the output (it wants the bytes; a Python
    object per value would only slow it down). Implemented by ``make_batched_features_dataset``'s parser.
    """

    @abc.abstractmethod
    def packing_strings(self) -> Any:
        """This function, returning string leaves as ``PackedStrings``."""
