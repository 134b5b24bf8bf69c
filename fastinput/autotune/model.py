"""A performance model of a running pipeline, after the model of the tf.data paper (VLDB 2021).

Each stage is summarised from its metrics over the last tuning window:

- ``own``: wall time of the stage's own work per output element (a parallel
  stage's worker time per element, not divided by its parallelism);
- ``ratio``: input elements consumed per output element (``batch(64)``: 64);
- ``cpu``: CPU time per output element (thread CPU time; far below ``own``
  for a stage that waits on storage);
- ``nbytes``: bytes per buffered element.

The model's question is: how long does the consumer of a stage wait for one
element, given how often it asks (``consumer_time``, the gap between its
requests)? For the root, that consumer is the training loop, and the wait is
what the tuner minimises.

- A synchronous stage answers with its own work plus its inputs':
  ``own + ratio * output_time(input)``.
- A buffered stage (parallel map, parallel interleave, prefetch) produces one
  element every ``P = max(own / parallelism, ratio * output_time(input))``
  (workers pull the input one at a time). Its consumer waits only when the
  buffer is empty; treating the buffer as an M/M/1/K queue (arrivals every P,
  departures every C, K = buffer size), it is empty with probability
  ``pi0 = (1 - rho) / (1 - rho^(K+1))``, ``rho = C / P``, and the wait is then
  about ``P``: ``output_time = pi0 * P``. A slow producer (P >> C) gives a wait
  of about P - C, a fast one (P << C) almost none, with a deeper buffer
  absorbing the variation in between.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass
class StageModel:
    """One stage of the model; knob values are read live from ``knobs`` (name -> Knob)."""

    name: str
    kind: str  # "sync" | "parallel" | "interleave" | "prefetch"
    own: float
    ratio: float
    cpu: float
    nbytes: float
    knobs: dict[str, Any]
    inputs: list[StageModel] = dataclasses.field(default_factory=list)
    rate: float = 0.0  # measured output elements per second in the window

    def value(self, knob: str, default: int = 1) -> int:
        k = self.knobs.get(knob)
        return k.value if k is not None else default


def queue_wait(producer: float, consumer: float, buffer_size: int) -> float:
    """Expected wait per element of a consumer taking from a bounded buffer (M/M/1/K)."""
    if producer <= 0:
        return 0.0
    if consumer <= 0:
        return producer
    rho = consumer / producer
    k = max(1, buffer_size)
    if abs(rho - 1.0) < 1e-9:
        empty = 1.0 / (k + 1)
    elif rho > 1.0:
        # (rho - 1) / (rho^(k+1) - 1), computed without overflow
        log_power = (k + 1) * math.log(rho)
        empty = 0.0 if log_power > 700 else (rho - 1.0) / (math.exp(log_power) - 1.0)
    else:
        empty = (1.0 - rho) / (1.0 - rho ** (k + 1))
    return empty * producer


def output_time(stage: StageModel, consumer_time: float, overrides: dict[int, int] | None = None) -> float:
    """Expected wait of ``stage``'s consumer per element when it asks every ``consumer_time`` seconds.

    ``overrides`` maps ``id(knob)`` to a value to evaluate instead of the knob's current one.
    """
    def knob(name: str, default: int = 1) -> int:
        k = stage.knobs.get(name)
        if k is None:
            return default
        return overrides.get(id(k), k.value) if overrides else k.value

    inputs_time = 0.0
    if stage.kind == "sync":
        per_input = (consumer_time + stage.own) / stage.ratio if stage.ratio else 0.0
        for child in stage.inputs:
            inputs_time += output_time(child, per_input, overrides)
        return stage.own + stage.ratio * inputs_time

    parallelism = knob("parallelism")
    work = stage.own / max(1, parallelism)
    if stage.kind != "interleave":  # an interleave's reads are its own work; its outer input is negligible
        request_gap = work / stage.ratio if stage.ratio else 0.0
        for child in stage.inputs:
            inputs_time += output_time(child, request_gap, overrides)
    producer = max(work, stage.ratio * inputs_time)
    buffer_knob = "buffer_output_elements" if stage.kind == "interleave" else "buffer_size"
    buffer = knob(buffer_knob, 1)
    if stage.kind == "interleave":  # per-dataset buffers: in elements, across the cycle
        buffer = buffer * max(1, parallelism)
    elif stage.kind == "parallel":  # buffer counts chunks of several elements, at least one per worker
        buffer = max(buffer, parallelism) * max(1, int(stage.knobs["_chunk"].value if "_chunk" in stage.knobs else 1))
    return queue_wait(producer, consumer_time, buffer)


def walk(stage: StageModel):
    yield stage
    for child in stage.inputs:
        yield from walk(child)


def cpu_demand(root: StageModel, root_rate: float) -> float:
    """Cores the pipeline keeps busy at ``root_rate`` output elements per second (buffered stages' workers)."""
    total = 0.0
    for stage in walk(root):
        if stage.kind != "sync" and root.rate > 0:
            total += stage.cpu * stage.rate / root.rate * root_rate
    return total


def buffered_bytes(root: StageModel, overrides: dict[int, int] | None = None) -> float:
    """Bytes the pipeline's buffers hold when full, for the knob values (or overrides): every buffer, tuned or not."""
    from fastinput.ops.interleave import elements_per_dataset

    def value(stage: StageModel, name: str, default: int = 0) -> int:
        k = stage.knobs.get(name)
        if k is None:
            return default
        return overrides.get(id(k), k.value) if overrides else k.value

    total = 0.0
    for stage in walk(root):
        if "buffer_size" in stage.knobs:
            slots = value(stage, "buffer_size")
            if stage.kind == "parallel":  # a parallel map holds at least one slot per worker, a chunk per slot
                slots = max(slots, value(stage, "parallelism", 1)) * value(stage, "_chunk", 1)
            total += slots * stage.nbytes
        if "buffer_output_elements" in stage.knobs:  # a buffer per dataset: the cycle's and those read ahead
            datasets = value(stage, "_cycle", value(stage, "parallelism", 1)) + value(stage, "prefetch_input_elements")
            total += elements_per_dataset(value(stage, "buffer_output_elements"), stage.nbytes) * datasets * stage.nbytes
    return total
