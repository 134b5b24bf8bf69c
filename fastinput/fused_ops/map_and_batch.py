"""``ds.map_and_batch(fn, batch_size)``: map and batch fused, writing outputs straight into the batch.

A worker takes ``batch_size`` input elements at once and makes one batch of
them. Small outputs are gathered and stacked once, as ``batch`` stacks them;
large ones (or any, for a function that accepts an ``out=`` keyword) are
written into rows of arrays allocated from the first output's shapes and
dtypes, so no per-element arrays are kept and there is no final stack. A
function with ``out=`` gets the row's views (the output structure, each leaf a
writable view of one row) and may fill them in place; whatever it returns
that is not that view is copied into the row. Leaves that cannot be
preallocated (bytes, ``SparseArray``) are gathered per row and stacked at the
end; an output that does not fit the first one's rows (another shape, dtype
or structure) makes the batch fall back to stacking, so the result, or the
error, is exactly ``batch``'s.

Errors follow tf.data's ``map_and_batch`` (and its default ``map -> batch``):
a batch is ``batch_size`` input positions, an error (the input's or the
function's) takes one, and a batch that meets an error is dropped and its
first error raised. ``map -> batch`` without the rewrite gives the same
(``BatchIterator``'s whole groups), so the rewrite never changes what a user sees.
"""

from __future__ import annotations

import functools
import inspect
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
        filler = _BatchFiller(self.map_func, self.batch_size, self.drop_remainder, self.use_out)
        if self.num_parallel_calls is None:
            parallelism, autotuned = 1, False
        else:
            parallelism, autotuned = resolve_parallelism(self.num_parallel_calls)
        fill: Any = filler.fill
        if self.in_processes:
            fill = RemoteChunks(pickled_function("map_and_batch", fill), per_element=False)
        return ParallelChunkIterator(self, ctx, source, fill, parallelism, autotuned,
                                     resolve_deterministic(self.deterministic, ctx), _Groups(self.batch_size))


class _BatchFiller:
    """Maps one group of input elements (one batch's worth) into a batch."""

    def __init__(self, fn: Callable, batch_size: int, drop_remainder: bool, use_out: bool) -> None:
        self._fn = fn
        self._batch_size = batch_size
        self._drop_remainder = drop_remainder
        self._with_out = use_out and accepts_out(fn)

    def _call(self, element: Any, out: Any = None) -> Any:
        """One element's output, as ``map`` makes it; raises the input's error at this position, or the function's."""
        if type(element) is Failure:
            raise element.exc
        fn = self._fn if out is None else functools.partial(self._fn, out=out)
        return normalize_output(call_on_element(fn, element))

    def fill(self, group: list[Any]) -> list[Any]:
        """``[batch]``; ``[Failure]`` when an element failed; ``[]`` for a short last group under drop_remainder."""
        try:
            first = self._call(group[0])
            if not self._with_out and element_nbytes(first) <= SMALL_OUTPUT_BYTES:
                batch = stack_elements(self._map_rest(group, first))
            else:
                batch = self._fill_rows(group, first)
        except Exception as exc:
            return [Failure(exc)]
        if self._drop_remainder and len(group) < self._batch_size:
            return []
        return [batch]

    def _map_rest(self, group: list[Any], first: Any) -> list[Any]:
        """The group's outputs (``first``'s made already), mapped as ``map`` maps a chunk; raises the first error by
        position, the input's or the function's, without calling the function past it."""
        end = next((i for i, element in enumerate(group) if type(element) is Failure), len(group))
        outputs = map_chunk(self._fn, group[1:end], [first], stop_at_failure=True)
        if type(outputs[-1]) is Failure:
            raise outputs[-1].exc
        if end < len(group):
            raise group[end].exc
        return outputs

    def _fill_rows(self, group: list[Any], first: Any) -> Any:
        """Write each output into its row of arrays shaped after ``first``."""
        spec = structure.map_structure(_LeafSpec, first)
        spec_leaves = structure.flatten(spec)
        n = len(group)
        leaves = [[None] * n if s.gathered else aligned_empty((n, *s.shape), s.dtype) for s in spec_leaves]
        use_out = self._with_out and not any(s.gathered for s in spec_leaves)
        output, views = first, None
        for row in range(n):
            if row:
                if use_out:
                    views = structure.pack_as(spec, [leaf[row] if leaf.ndim > 1 else leaf[row:row + 1].reshape(())
                                                     for leaf in leaves])
                output = self._call(group[row], out=views)
            values = structure.flatten(output)
            if not _fits(output, values, spec, spec_leaves):
                # another shape, dtype or structure: stack as batch would (its result, or its error)
                done = [structure.pack_as(spec, [leaf[i] for leaf in leaves]) for i in range(row)]
                return stack_elements([*done, output, *(self._call(element) for element in group[row + 1:])])
            view_leaves = structure.flatten(views) if views is not None else [None] * len(values)
            for leaf, value, view in zip(leaves, values, view_leaves):
                if value is not view:
                    leaf[row] = value
        batched = [stack_leaf(leaf) if s.gathered else leaf for leaf, s in zip(leaves, spec_leaves)]
        return structure.pack_as(spec, batched)


def _fits(output: Any, values: list[Any], spec: Any, spec_leaves: list[_LeafSpec]) -> bool:
    """Whether ``output`` has the structure, shapes, dtypes (or gathered kinds) of the rows it goes into."""
    if len(values) != len(spec_leaves) or not structure.same_structure(output, spec):
        return False
    for value, s in zip(values, spec_leaves):
        if s.gathered:
            if type(value) is not s.kind:
                return False
        elif isinstance(value, (np.ndarray, np.generic)):  # the common leaves: their own shape and dtype, no copy
            if value.shape != s.shape or value.dtype != s.dtype:
                return False
        elif (isinstance(value, (bytes, structure.SparseArray)) or np.shape(value) != s.shape
              or np.asarray(value).dtype != s.dtype):
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
