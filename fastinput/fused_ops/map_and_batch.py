"""``ds.map_and_batch(fn, batch_size)``: map and batch fused, writing outputs straight into the batch.

A worker takes ``batch_size`` input elements at once and makes the batch's
first row; then every worker of the stage claims rows of the oldest batch with
rows left (as tf.data's ``map_and_batch`` hands out elements), and the one
that finishes the last row hands the batch over. Small outputs are gathered
and stacked once, as ``batch`` stacks them; large ones (or any, for a function
that accepts an ``out=`` keyword) are written into rows of arrays allocated
from the first output's shapes and dtypes, so no per-element arrays are kept
and there is no final stack. A function with ``out=`` gets the row's views
(the output structure, each leaf a writable view of one row) and may fill them
in place; whatever it returns that is not that view is copied into the row.
Leaves that cannot be preallocated (bytes, ``SparseArray``) are gathered per
row and stacked at the end; an output that does not fit the first one's rows
(another shape, dtype or structure) makes the batch fall back to stacking, so
the result, or the error, is exactly ``batch``'s.

Errors follow tf.data's ``map_and_batch`` (and its default ``map -> batch``):
a batch is ``batch_size`` input positions, an error (the input's or the
function's) takes one, and a batch that meets an error is dropped and its
first error raised. ``map -> batch`` without the rewrite gives the same
(``BatchIterator``'s whole groups), so the rewrite never changes what a user sees.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput import errors, structure
from fastinput._engine import cardinality
from fastinput._engine.arguments import (
    check_bool,
    check_callable,
    check_int,
    check_parallelism,
    fn_name,
    format_arg,
)
from fastinput._engine.buffer import Failure
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.memory import aligned_empty
from fastinput._engine.metrics import element_nbytes
from fastinput._engine.processes import RemoteChunks, pickled_function
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops.batch import stack_elements, stack_leaf
from fastinput.ops.map import (
    call_on_element,
    declared,
    in_processes,
    map_chunk,
    mapped_spec,
    normalize_output,
    resolve_deterministic,
    resolve_parallelism,
)
from fastinput.ops.parallel import ParallelChunkIterator
from fastinput.spec import as_spec, batched


def accepts_out(fn: Callable) -> bool:
    """Whether ``fn`` takes an ``out=`` keyword (then it may fill its batch row in place)."""
    return _out_parameter(fn) is not None


def takes_out_row(fn: Callable) -> bool:
    """Whether ``fn`` has an ``out=None`` parameter: the convention of a function that fills ``out`` when given one
    and makes its own output when not (then ``map -> batch`` may hand it its batch row; see ``rewrites``)."""
    out = _out_parameter(fn)
    return out is not None and out.default is None


def _out_parameter(fn: Callable) -> inspect.Parameter | None:
    """``fn``'s parameter ``out``, if it can be passed by keyword."""
    try:
        out = inspect.signature(fn).parameters.get("out")
    except (TypeError, ValueError):  # builtins without a signature
        return None
    return out if out is not None and out.kind in (out.KEYWORD_ONLY, out.POSITIONAL_OR_KEYWORD) else None


SMALL_OUTPUT_BYTES = 4096
"""Outputs up to this size are gathered and stacked once; larger ones are written into preallocated rows."""


class _LeafSpec:
    """How one output leaf is batched: a preallocated array of ``shape``/``dtype``, or gathered (bytes, sparse)."""

    __slots__ = ("shape", "dtype", "gathered", "kind")

    def __init__(self, value: Any) -> None:
        self.kind = type(value)
        self.gathered = isinstance(value, (bytes, structure.SparseArray))
        self.shape = () if self.gathered else np.shape(value)
        self.dtype = None if self.gathered else np.asarray(value).dtype


class MapAndBatchDataset(Dataset):
    traits = StageTraits("map_and_batch", StageKind.MAP, parallel_argument="num_parallel_calls")

    def __init__(self, input_dataset: Dataset, map_func: Callable, batch_size: int, num_parallel_calls: int | None,
                 drop_remainder: bool, deterministic: bool | None = None, label: str | None = None,
                 use_out: bool = True, output_signature: Any = None, workers: str = "thread") -> None:
        super().__init__([input_dataset])
        self.map_func = check_callable("map_and_batch", "map_func", map_func)
        self.batch_size = check_int("map_and_batch", "batch_size", batch_size, minimum=1)
        self.num_parallel_calls = check_parallelism("map_and_batch", "num_parallel_calls", num_parallel_calls)
        self.drop_remainder = check_bool("map_and_batch", "drop_remainder", drop_remainder)
        self.deterministic = check_bool("map_and_batch", "deterministic", deterministic, allow_none=True)
        self.in_processes = in_processes("map_and_batch", map_func, workers)
        """``workers="process"``: the function runs in worker processes, which write the batches into shared
        memory (``_engine/processes.py``)."""
        self.label = label or fn_name(map_func)
        self.use_out = use_out  # off when rewritten from map -> batch, unless the function takes out=None
        self.rewritten_from: str | None = None  # set by the static rewrite, shown in the stage string
        self.output_signature = None if output_signature is None else as_spec(output_signature,
                                                                              "map_and_batch: output_signature")
        """The declared spec of ``map_func``'s output for one element, or None: learnt (see ``map``)."""

    def compute_element_spec(self) -> Any:
        row = mapped_spec(self, self.map_func, self.output_signature)
        return batched(row, self.batch_size if self.drop_remainder else None)

    def cardinality(self) -> int:
        return cardinality.batched(self.inputs[0].cardinality(), self.batch_size, self.drop_remainder)

    def __str__(self) -> str:
        args = [self.label, f"batch_size={self.batch_size}"]
        if self.num_parallel_calls is not None:
            args.append(f"num_parallel_calls={format_arg(self.num_parallel_calls)}")
        if self.drop_remainder:
            args.append("drop_remainder=True")
        if self.deterministic is not None:
            args.append(f"deterministic={self.deterministic}")
        if self.in_processes:
            args.append('workers="process"')
        fused = f" [fused: {self.rewritten_from}]" if self.rewritten_from else ""
        return f"map_and_batch({', '.join(args)}){fused}"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        source = self.inputs[0].make_iterator(ctx)
        fn = declared(self.map_func, self.output_signature, str(self))
        filler = _BatchFiller(fn, self.batch_size, self.drop_remainder, self.use_out)
        if self.num_parallel_calls is None:
            parallelism, autotuned = 1, False
        else:
            parallelism, autotuned = resolve_parallelism(self.num_parallel_calls)
        fill: Any = (RemoteChunks(pickled_function("map_and_batch", filler.fill), per_element=False)
                     if self.in_processes else filler.start)  # worker threads share each batch's rows
        return ParallelChunkIterator(self, ctx, source, fill, parallelism, autotuned,
                                     resolve_deterministic(self.deterministic, ctx), _Groups(self.batch_size),
                                     shared=True)


class _BatchFiller:
    """Maps groups of input elements (one batch's worth each) into batches: ``start(group)`` makes the batch's
    ``SharedJob``, whose rows the stage's workers fill together; ``fill(group)`` makes the batch in one call (a
    worker process's work item)."""

    def __init__(self, fn: Callable, batch_size: int, drop_remainder: bool, use_out: bool) -> None:
        self.fn = fn
        self._batch_size = batch_size
        self._drop_remainder = drop_remainder
        self.with_out = use_out and accepts_out(fn)

    def call(self, element: Any, out: Any = None) -> Any:
        """One element's output, as ``map`` makes it; raises the input's error at this position, or the function's."""
        if type(element) is Failure:
            raise element.exc
        return normalize_output(call_on_element(self.fn, element, out))

    def start(self, group: list[Any], opened: Callable[[], None]) -> _BatchJob:
        """The batch's job; ``opened()`` is called once its first row is done and the others may be shared."""
        return _BatchJob(self, group, opened)

    def fill(self, group: list[Any]) -> list[Any]:
        """``[batch]``; ``[Failure]`` when an element failed; ``[]`` for a short last group under drop_remainder."""
        return _BatchJob(self, group).work()  # type: ignore[return-value]  # one worker: it finishes every row

    def finish(self, group: list[Any], kept: list[Any], rows: _Rows | None) -> list[Any]:
        """The batch of ``group``, once every row is done: ``kept`` holds each row's output, or its ``Failure``,
        or None where the output is in ``rows``' arrays. The first error by position fails the batch; outputs that
        do not all fit the arrays (another shape, dtype or structure) are stacked as ``batch`` stacks them (its
        result, or its error)."""
        if Failure in set(map(type, kept)):  # (a pass in C: the outputs of a batch of scalars are many)
            return [next(output for output in kept if type(output) is Failure)]
        try:
            if rows is None:
                batch = stack_elements(kept)
            elif not rows.kept:
                batch = rows.batch()
            else:
                batch = stack_elements([rows.row(i) if output is None else output for i, output in enumerate(kept)])
        except Exception as exc:
            return [Failure(exc)]
        if self._drop_remainder and len(group) < self._batch_size:
            return []
        return [batch]


class _Rows:
    """A batch's preallocated arrays, shaped after its first output: each row written in place (or by ``out=``).
    ``kept``: whether an output did not fit (then the batch is stacked from every row instead)."""

    def __init__(self, first: Any, n: int, with_out: bool) -> None:
        self.spec = structure.map_structure(_LeafSpec, first)
        self.spec_leaves = structure.flatten(self.spec)
        self.leaves = [[None] * n if s.gathered else aligned_empty((n, *s.shape), s.dtype) for s in self.spec_leaves]
        self.use_out = with_out and not any(s.gathered for s in self.spec_leaves)
        self.kept = False
        # A plain tuple of leaves (the common ``image, label``) is its own flat form: no flatten / pack per row.
        self._flat = type(self.spec) is tuple and not any(map(structure.is_nested, self.spec))

    def views(self, row: int) -> Any:
        """The output structure with each leaf a writable view of ``row`` (for a function's ``out=``; a scalar's
        row is a 0-d view, which ``[row, ...]`` gives)."""
        leaves = [leaf[row, ...] for leaf in self.leaves]
        return tuple(leaves) if self._flat else structure.pack_as(self.spec, leaves)

    def put(self, row: int, output: Any, views: Any) -> bool:
        """Write ``output`` into ``row`` (what is not the ``views`` already there); False if it does not fit."""
        if self._flat and type(output) is tuple and len(output) == len(self.spec_leaves):
            # its items are the leaves, if they fit (a nested item does not)
            values, fits, view_leaves = output, _leaves_fit(output, self.spec_leaves), views
        else:
            values = structure.flatten(output)
            fits = _fits(output, values, self.spec, self.spec_leaves)
            view_leaves = structure.flatten(views) if views is not None else None
        if not fits:
            self.kept = True
            return False
        if view_leaves is None:
            view_leaves = [None] * len(values)
        for leaf, value, view in zip(self.leaves, values, view_leaves):
            if value is not view:
                leaf[row] = value
        return True

    def row(self, row: int) -> Any:
        return structure.pack_as(self.spec, [leaf[row] for leaf in self.leaves])

    def batch(self) -> Any:
        return structure.pack_as(self.spec, [stack_leaf(leaf) if s.gathered else leaf
                                             for leaf, s in zip(self.leaves, self.spec_leaves)])


CLAIM_SECONDS = 200e-6
"""The work a worker claims at once from a shared batch, in rows at the rate its last claim ran (the first row is
claimed alone): a costly row (an image) alone, cheap ones by the hundred (or the whole batch, which is then not
shared), so claiming costs little beside the work; a batch of rows each a few microseconds filled row by row by three
threads ran at half the rate."""


class _BatchJob:
    """One batch being made (a ``SharedJob``): workers claim its rows (``CLAIM_SECONDS`` of work at a time), so
    several fill the oldest batch at once, as in tf.data's ``map_and_batch``. The first row's output decides how
    rows are kept: large ones (or any, for a function with ``out=``) written into preallocated arrays (``_Rows``),
    small ones gathered and stacked once, as ``batch`` stacks them; so the other rows are shared (``opened``) only
    once it is done. Once shared, ``work(go_on)`` claims another row after each only while the engine's ``go_on()``
    says this is still the oldest batch with rows left (``ParallelChunkIterator._help``). A worker that went on
    claiming rows of its own batch while another worker did the same with the next batch made the two finish
    together (with 2 workers, a fifth of the gaps between batches were under 2 ms)."""

    def __init__(self, filler: _BatchFiller, group: list[Any], opened: Callable[[], None] | None = None) -> None:
        self._filler = filler
        self._group = group
        self._size = len(group)  # kept: a worker may look (open, work) after the last one let go of the group
        self._opened = opened if self._size > 1 else None
        self._lock = threading.Lock()
        self._claimed = 0  # rows handed to a worker
        self._per_claim = 1  # rows a worker claims at once: the first alone, then as many as CLAIM_SECONDS holds
        self._input_failed = Failure in set(map(type, group))  # an input error among the rows: each row on its own
        self._finished = 0  # rows done
        self._kept: list[Any] = [None] * self._size  # each row's output or Failure; None: written into the arrays
        self._rows: _Rows | None = None
        self._gathered = False  # the first output was small: every output is kept and stacked
        self._shared = False  # opened to every worker: work() claims once per call

    @property
    def open(self) -> bool:
        return self._claimed < self._size

    def work(self, go_on: Callable[[], bool] | None = None) -> list[Any] | None:
        n, lock = self._size, self._lock
        done = 0
        while True:
            with lock:
                start = self._claimed
                if start >= n:
                    break
                end = self._claimed = min(n, start + self._per_claim)
            began = time.perf_counter()
            if start:
                self._fill_rows(start, end)
            else:  # the first row, alone: it settles the layout
                self._fill(0)
            # as many rows as CLAIM_SECONDS holds, at the rate of the last claim's (the first row's includes setup)
            self._per_claim = max(1, int(CLAIM_SECONDS * (end - start) / max(time.perf_counter() - began, 1e-9)))
            done += end - start
            if not start and self._opened is not None and self._per_claim < n - 1:
                self._opened()  # other workers may claim the other rows
                self._shared = True
                break  # the engine decides whether this worker's next claim is of this batch
            if self._shared and (go_on is None or not go_on()):
                break  # the worker goes on with the oldest batch, maybe not this one
        with lock:  # the rows done are counted once, at the end: the worker whose count completes the batch fills it
            self._finished += done
            last = done > 0 and self._finished == n
        if not last:
            return None
        result = self._filler.finish(self._group, self._kept, self._rows)
        self._group = self._kept = self._rows = None  # type: ignore[assignment]  # hold nothing handed over
        return result

    def _fill_rows(self, start: int, end: int) -> None:
        """Rows ``start`` to ``end``; small outputs (gathered) in one ``map_chunk`` call, as ``map`` makes them."""
        block = self._group[start:end]
        if self._gathered and not self._input_failed:
            self._kept[start:end] = map_chunk(self._filler.fn, block)
            return
        for row in range(start, end):
            self._fill(row)

    def _fill(self, row: int) -> None:
        rows = self._rows
        views = rows.views(row) if rows is not None and rows.use_out else None
        try:
            output = self._filler.call(self._group[row], views)
        except Exception as exc:
            self._kept[row] = Failure(exc)
            return
        if rows is None and not self._gathered:  # the first output in (the first row's, unless it failed)
            with self._lock:
                if self._rows is None and not self._gathered:
                    if self._filler.with_out or element_nbytes(output) > SMALL_OUTPUT_BYTES:
                        self._rows = _Rows(output, self._size, self._filler.with_out)
                    else:
                        self._gathered = True
                rows = self._rows
        if rows is None or not rows.put(row, output, views):
            self._kept[row] = output


def _fits(output: Any, values: list[Any], spec: Any, spec_leaves: list[_LeafSpec]) -> bool:
    """Whether ``output`` has the structure, shapes, dtypes (or gathered kinds) of the rows it goes into."""
    return (len(values) == len(spec_leaves) and structure.same_structure(output, spec)
            and _leaves_fit(values, spec_leaves))


def _leaves_fit(values: Any, spec_leaves: list[_LeafSpec]) -> bool:
    """Whether each of ``values`` (an output's leaves, or a flat tuple's items) has the shape and dtype (or gathered
    kind) of its rows; a container (dict, tuple, list) never fits."""
    for value, s in zip(values, spec_leaves):
        if s.gathered:
            if type(value) is not s.kind:
                return False
        elif isinstance(value, (np.ndarray, np.generic)):  # the common leaves: their own shape and dtype, no copy
            if value.shape != s.shape or value.dtype != s.dtype:
                return False
        elif (isinstance(value, (bytes, structure.SparseArray)) or structure.is_nested(value)
              or np.shape(value) != s.shape or np.asarray(value).dtype != s.dtype):
            return False
    return True


class _Groups:
    """map_and_batch's work items (see ``ParallelChunkIterator``): whole groups of ``batch_size`` input positions
    (fewer at the end), an input error kept at its position (a ``Failure``), so each work item gives exactly one
    batch, one error, or nothing (a short last group under ``drop_remainder``). Their size never adapts.

    A batch is handed out whole: a saved state never drops part of a group, so a group ignores the pull ``limit``."""

    def __init__(self, batch_size: int) -> None:
        self.chunk_size = batch_size
        self._input_ended = False

    def pull(self, source: DatasetIterator, limit: int | None) -> list[Any]:
        group: list[Any] = []
        while len(group) < self.chunk_size and not self._input_ended:
            try:
                group.extend(source.get_next_chunk(self.chunk_size - len(group)))
            except StopIteration:
                self._input_ended = True
            except errors.CancelledError:
                raise
            except Exception as exc:
                group.append(Failure(exc))
        if not group:
            raise StopIteration
        return group

    def measured(self, elements: int, ns: int, bytes_per_element: float) -> None:
        """Groups stay whole batches, whatever they cost."""
