"""Metrics every iterator records, and the snapshot users and the autotuner read.

Recording is a handful of integer additions per *chunk* of elements, so it
costs almost nothing when nobody reads it. Times are nanoseconds internally
and seconds in ``StageStats``.

For a synchronous stage, ``self_seconds`` is the time its consumer spent inside
it minus the time it spent inside its own inputs; for a parallel stage it is
the workers' busy time, and ``wait_seconds`` is how long its consumer was
blocked on an empty buffer.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from fastinput._engine.traits import UNKNOWN, StageTraits


class StageMetrics:
    """Mutable counters owned by one iterator (one stage of a running pipeline)."""

    __slots__ = (
        "name",
        "parallel",
        "elements",
        "call_ns",
        "busy_ns",
        "wait_ns",
        "buffer_occupancy",
        "buffer_capacity",
        "parallelism",
        "created_ns",
        "cpu_ns",
        "bytes_per_element",
        "size_samples",
    )

    def __init__(self, name: str, *, parallel: bool = False) -> None:
        self.name = name
        self.parallel = parallel
        self.elements = 0  # elements handed to the consumer
        self.call_ns = 0  # time the consumer spent inside get_next / get_next_chunk
        self.busy_ns = 0  # parallel stages: worker time spent on this stage's own work
        self.wait_ns = 0  # parallel stages: time the consumer was blocked on an empty buffer
        self.buffer_occupancy = 0  # elements buffered now (ready or in flight)
        self.buffer_capacity = 0
        self.parallelism = 1
        self.created_ns = time.perf_counter_ns()
        self.cpu_ns = 0  # parallel stages: CPU time of their workers (thread time), vs busy_ns which is wall time
        self.bytes_per_element = 0.0  # sampled size of an output element (for RAM budgets)
        self.size_samples = 0

    def carry_over(self, previous: StageMetrics) -> None:
        """Go on from ``previous``'s counts: those of the same stage in a repeat's last epoch (each epoch builds its
        input's stages anew), so that a stage's figures, and its consumer's own time, cover the whole run."""
        self.elements += previous.elements
        self.call_ns += previous.call_ns
        self.busy_ns += previous.busy_ns
        self.wait_ns += previous.wait_ns
        self.cpu_ns += previous.cpu_ns
        self.created_ns = previous.created_ns
        self.bytes_per_element = previous.bytes_per_element
        self.size_samples = previous.size_samples

    def sample_size(self, element: object, units: float = 1.0) -> None:
        """Fold the size of one element into ``bytes_per_element``; measures one call in 16 (after the first).

        ``units``: how many buffered elements (as ``buffer_occupancy`` counts them) one such element
        stands for, e.g. a batch of 32 made from 32 input elements of a ``map_and_batch`` slot.
        """
        self.size_samples += 1
        if self.bytes_per_element and self.size_samples % 16:
            return
        size = element_nbytes(element) / max(units, 1e-9)
        self.bytes_per_element = size if not self.bytes_per_element else 0.9 * self.bytes_per_element + 0.1 * size


def element_nbytes(element: object) -> int:
    """Bytes held by an element's leaves (arrays, bytes, sparse components), nests included."""
    if isinstance(element, dict):
        return sum(element_nbytes(v) for v in element.values())
    if isinstance(element, (tuple, list)):
        return sum(element_nbytes(v) for v in element)
    if isinstance(element, (bytes, bytearray)):
        return len(element)
    nbytes = getattr(element, "nbytes", None)
    if nbytes is not None:
        if isinstance(element, np.ndarray) and element.dtype == object and element.size:
            # bytes objects: estimate from a few (summing them all costs as much as parsing a batch)
            flat = element.reshape(-1)
            sample = flat[:: max(1, flat.size // 8)][:8]
            per_item = sum(len(v) + 33 for v in sample if isinstance(v, bytes)) / len(sample)
            return int(nbytes + per_item * flat.size)
        return int(nbytes)
    indices = getattr(element, "indices", None)  # SparseArray
    if indices is not None:
        return element_nbytes(indices) + element_nbytes(element.values)
    return 8


@dataclasses.dataclass(frozen=True)
class StageStats:
    """A read-only snapshot of one stage, as ``iterator.stats()`` returns it.

    ``self_seconds`` is the time spent on this stage's own work (not its
    inputs'); ``elements_per_second`` is the stage's output rate since it started.
    ``traits`` are its Dataset's (what kind of stage it is): the profiler's
    analysis reads them, here and in trace files, never the stage's name.
    ``worker_pids`` are the ids of a ``workers="process"`` stage's worker processes (to profile them, e.g. with
    py-spy). ``inner_of`` names the interleave (or ``flat_map``) whose datasets this stage belongs to: its figures
    are those of every dataset the interleave opened, added up (``fastinput._engine.inner_stats``), and its
    ``parallelism`` is how many of them that interleave reads at once.
    """

    name: str
    depth: int
    parallel: bool
    elements: int
    call_seconds: float
    self_seconds: float
    wait_seconds: float
    buffer_occupancy: int
    buffer_capacity: int
    bytes_buffered: int
    parallelism: int
    elapsed_seconds: float
    cpu_seconds: float = 0.0
    traits: StageTraits = UNKNOWN
    worker_pids: tuple[int, ...] = ()
    inner_of: str | None = None

    @property
    def elements_per_second(self) -> float:
        return self.elements / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def seconds_per_element(self) -> float:
        """Own work per element (busy time divided by elements produced)."""
        return self.self_seconds / self.elements if self.elements else 0.0
