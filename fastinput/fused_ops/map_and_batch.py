"""``ds.map_and_batch(fn, batch_size)``: map and batch fused, writing outputs straight into the batch.

A worker takes ``batch_size`` input elements at once and fills one batch:
once the output structure is known (from the first element ever mapped) the
batch's arrays are allocated up front and each element's output is written
into its row, so no per-element arrays are kept and there is no final stack.
A function that accepts an ``out=`` keyword gets the row's views (the output
structure, each leaf a writable view of one row) and may fill them in place;
whatever it returns that is not that view is copied into the row.

Leaves that cannot be preallocated (bytes, ``SparseArray``) are gathered per
row and stacked at the end of the batch.

Errors behave exactly as in ``map`` followed by ``batch``: the failing
element's error is raised at its place and the elements around it still
form full batches (the consumer side carries rows over), so the static
rewrite ``map -> batch`` => ``map_and_batch`` never changes what a user sees.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput import structure
from fastinput.arguments import check_bool, check_callable, check_int, check_parallelism, fn_name, format_arg
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.iterator import DatasetIterator, Failure, IteratorContext
from fastinput.memory import aligned_empty
from fastinput.ops.batch import stack_elements, stack_leaf
from fastinput.ops.map import normalize_output, resolve_deterministic, resolve_parallelism
from fastinput.ops.parallel import ParallelChunkIterator
from fastinput.profiler.metrics import element_nbytes


def accepts_out(fn: Callable) -> bool:
    """Whether ``fn`` takes an ``out=`` keyword (then it may fill its batch row in place)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(p.name == "out" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


SMALL_OUTPUT_BYTES = 4096
"""Outputs up to this size are gathered and stacked once; larger ones are written into preallocated rows."""


class _LeafSpec:
    """How one output leaf is batched: a preallocated array of ``shape``/``dtype``, or gathered (bytes, sparse)."""

    __slots__ = ("shape", "dtype", "gathered")

    def __init__(self, value: Any) -> None:
        self.gathered = isinstance(value, (bytes, structure.SparseArray))
        self.shape = () if self.gathered else np.shape(value)
        self.dtype = None if self.gathered else np.asarray(value).dtype


class _Rows:
    """``count`` consecutive mapped rows: one array (or list, for gathered leaves) per leaf, and their spec."""

    __slots__ = ("leaves", "count", "spec")

    def __init__(self, leaves: list[Any], count: int, spec: Any) -> None:
        self.leaves = leaves
        self.count = count
        self.spec = spec

    @property
    def nbytes(self) -> int:
        """Bytes per row: the stage's buffer counts rows (its input elements), and the RAM budget their bytes."""
        return element_nbytes(self.leaves) // max(1, self.count)


class _ShapeMismatch(Exception):
    """A row whose output does not fit the batch (the whole batch fails, as ``batch`` would)."""


class MapAndBatchDataset(Dataset):
    batching = "batched"

    def __init__(self, input_dataset: Dataset, map_func: Callable, batch_size: int, num_parallel_calls: int | None,
                 drop_remainder: bool, deterministic: bool | None = None, label: str | None = None) -> None:
        super().__init__([input_dataset])
        self.map_func = check_callable("map_and_batch", "map_func", map_func)
        self.batch_size = check_int("map_and_batch", "batch_size", batch_size, minimum=1)
        self.num_parallel_calls = check_parallelism("map_and_batch", "num_parallel_calls", num_parallel_calls)
        self.drop_remainder = check_bool("map_and_batch", "drop_remainder", drop_remainder)
        self.deterministic = check_bool("map_and_batch", "deterministic", deterministic, allow_none=True)
        self.label = label or fn_name(map_func)
        self.rewritten_from: str | None = None  # set by the static rewrite, shown in the stage string

    def __str__(self) -> str:
        args = [self.label, f"batch_size={self.batch_size}"]
        if self.num_parallel_calls is not None:
            args.append(f"num_parallel_calls={format_arg(self.num_parallel_calls)}")
        if self.drop_remainder:
            args.append("drop_remainder=True")
        if self.deterministic is not None:
            args.append(f"deterministic={self.deterministic}")
        fused = f" [fused: {self.rewritten_from}]" if self.rewritten_from else ""
        return f"map_and_batch({', '.join(args)}){fused}"

    def _make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        source = self._inputs[0]._make_iterator(ctx)
        filler = _BatchFiller(self.map_func)
        if self.num_parallel_calls is None:
            parallelism, autotuned = 1, False
        else:
            parallelism, autotuned = resolve_parallelism(self.num_parallel_calls)
        return MapAndBatchIterator(self, ctx, source, filler, parallelism, autotuned,
                                   resolve_deterministic(self.deterministic, ctx))


class _BatchFiller:
    """Maps a chunk of input elements (one batch) into preallocated rows."""

    def __init__(self, fn: Callable) -> None:
        self._fn = fn
        self._with_out = accepts_out(fn)

    def _call(self, element: Any, out: Any = None) -> Any:
        args = element if type(element) is tuple else (element,)
        if out is not None:
            return self._fn(*args, out=out)
        return normalize_output(self._fn(*args))

    def fill(self, chunk: list[Any]) -> list[Any]:
        """The chunk's rows as ``_Rows`` pieces, with a ``Failure`` at each element that raised.

        The first element that maps successfully sets the batch's shapes and
        dtypes (so, as with ``batch``, different batches may differ); an output
        that does not fit fails the whole batch, as stacking would.
        """
        failures: list[tuple[int, Failure]] = []
        first = 0
        while first < len(chunk):
            try:
                first_output = self._call(chunk[first])
                break
            except Exception as exc:
                failures.append((first, Failure(exc)))
                first += 1
        else:
            return [f for _, f in failures]
        spec = structure.map_structure(_LeafSpec, first_output)
        if not self._with_out and element_nbytes(first_output) <= SMALL_OUTPUT_BYTES:
            return self._fill_small(chunk, first, first_output, spec, failures)
        spec_leaves = structure.flatten(spec)
        n = len(chunk)
        leaves = [[None] * n if s.gathered else aligned_empty((n, *s.shape), s.dtype) for s in spec_leaves]
        use_out = self._with_out and not any(s.gathered for s in spec_leaves)
        try:
            self._store(leaves, spec_leaves, first, first_output)
            for row in range(first + 1, n):
                try:
                    if use_out:
                        views = structure.pack_as(spec, [leaf[row] if leaf.ndim > 1 else leaf[row:row + 1].reshape(()) for leaf in leaves])
                        self._store(leaves, spec_leaves, row, self._call(chunk[row], out=views), views)
                    else:
                        self._store(leaves, spec_leaves, row, self._call(chunk[row]))
                except _ShapeMismatch:
                    raise
                except Exception as exc:
                    failures.append((row, Failure(exc)))
        except _ShapeMismatch as exc:
            return [Failure(InvalidArgumentError(str(exc)))]
        return _split_at_failures(leaves, n, failures, spec)

    def _fill_small(self, chunk: list[Any], first: int, first_output: Any, spec: Any,
                    failures: list[tuple[int, Failure]]) -> list[Any]:
        """Small outputs: gather them and stack each leaf once, as ``batch`` does (row writes cost more)."""
        outputs = [first_output]
        fn, unpack = self._call, type(chunk[first]) is tuple
        row = first + 1
        while row < len(chunk):
            try:
                if unpack:
                    for element in chunk[row:]:
                        outputs.append(normalize_output(self._fn(*element)))
                        row += 1
                else:
                    for element in chunk[row:]:
                        outputs.append(fn(element))
                        row += 1
            except Exception as exc:
                failures.append((row, Failure(exc)))
                row += 1
        try:
            stacked = stack_elements(outputs)
        except InvalidArgumentError as exc:  # shapes differ within the batch: the batch fails, as batch's would
            return [Failure(exc)]
        leaves = [list(leaf) if s.gathered else leaf for leaf, s in zip(structure.flatten(stacked), structure.flatten(spec))]
        if not failures:
            return [_Rows(leaves, len(outputs), spec)]
        # rows of the stacked arrays are the successful elements in order; put the failures back in place
        pieces, start, done = [], 0, 0
        for position, failure in failures:
            count = position - start
            if count:
                pieces.append(_Rows([leaf[done:done + count] for leaf in leaves], count, spec))
                done += count
            pieces.append(failure)
            start = position + 1
        if done < len(outputs):
            pieces.append(_Rows([leaf[done:] for leaf in leaves], len(outputs) - done, spec))
        return pieces

    @staticmethod
    def _store(leaves: list[Any], spec_leaves: list[_LeafSpec], row: int, output: Any, views: Any = None) -> None:
        values = structure.flatten(output)
        if len(values) != len(spec_leaves):
            raise _ShapeMismatch(
                f"map_and_batch: element {row} of the batch has {len(values)} component(s), the first had {len(spec_leaves)}"
            )
        view_leaves = structure.flatten(views) if views is not None else [None] * len(values)
        for i, (leaf, spec, value, view) in enumerate(zip(leaves, spec_leaves, values, view_leaves)):
            if value is view:
                continue
            if not spec.gathered and np.shape(value) != spec.shape:
                raise _ShapeMismatch(
                    f"batch: cannot batch elements with different shapes in component {i}: the first element "
                    f"had shape {list(spec.shape)} and element {row} had shape {list(np.shape(value))} "
                    "(use padded_batch, or map them to one shape first)"
                )
            leaf[row] = value


def _split_at_failures(leaves: list[Any], n: int, failures: list[tuple[int, Failure]], spec: Any) -> list[Any]:
    """``[_Rows]`` for a clean chunk; else row ranges (views, no copies) interleaved with the failures."""
    pieces: list[Any] = []
    start = 0
    for row, failure in failures + [(n, None)]:
        if row > start:
            pieces.append(_Rows([leaf[start:row] for leaf in leaves], row - start, spec))
        if failure is not None:
            pieces.append(failure)
        start = row + 1
    return pieces


class MapAndBatchIterator(ParallelChunkIterator):
    """Runs ``_BatchFiller.fill`` on whole batches in parallel and hands out batches.

    Usually a filled piece is exactly one full batch and goes out as it is;
    after a failed element, or at the end, rows are carried over and
    concatenated so batches keep the boundaries ``map -> batch`` would give.
    """

    def __init__(self, dataset: MapAndBatchDataset, ctx: IteratorContext, source: DatasetIterator,
                 filler: _BatchFiller, parallelism: int, autotuned: bool, deterministic: bool) -> None:
        super().__init__(dataset, ctx, source, filler.fill, parallelism, autotuned, deterministic, max_chunk=dataset.batch_size)
        self._chunk_size = dataset.batch_size  # one batch per work item, from the first one
        self._batch_size = dataset.batch_size
        self._drop_remainder = dataset.drop_remainder
        self._carry: list[_Rows] = []
        self._carried = 0
        self._ended = False

    def _adapt_chunk_size(self, n: int, ns: int) -> None:
        """Work items stay whole batches (the base class would size them by time)."""

    def _next(self) -> Any:
        size = self._batch_size
        while self._carried < size and not self._ended:
            try:
                piece = ParallelChunkIterator._next(self)
            except StopIteration:
                self._ended = True
                break
            if not self._carry and piece.count == size:
                return self._pack(piece.leaves, piece.spec)
            self._carry.append(piece)
            self._carried += piece.count
        if not self._carried or (self._drop_remainder and self._carried < size):
            raise StopIteration
        return self._take_carried(min(size, self._carried))

    def _next_chunk(self, n: int) -> list[Any]:
        return DatasetIterator._next_chunk(self, n)

    def _take_carried(self, count: int) -> Any:
        """The first ``count`` carried rows as one batch; the rest stay carried."""
        taken: list[_Rows] = []
        need = count
        while need:
            piece = self._carry[0]
            if piece.count <= need:
                taken.append(self._carry.pop(0))
                need -= piece.count
            else:
                taken.append(_Rows([leaf[:need] for leaf in piece.leaves], need, piece.spec))
                self._carry[0] = _Rows([leaf[need:] for leaf in piece.leaves], piece.count - need, piece.spec)
                need = 0
        self._carried -= count
        spec = taken[0].spec
        if any(not structure.same_structure(p.spec, spec) or
               [(s.shape, s.dtype) for s in structure.flatten(p.spec)] != [(s.shape, s.dtype) for s in structure.flatten(spec)]
               for p in taken):
            raise InvalidArgumentError("batch: cannot batch elements with different shapes or types across a carried-over batch")
        leaves = [_concat([p.leaves[i] for p in taken]) for i in range(len(taken[0].leaves))]
        return self._pack(leaves, spec)

    def _pack(self, leaves: list[Any], spec: Any) -> Any:
        batched = [stack_leaf(list(leaf)) if s.gathered else leaf for leaf, s in zip(leaves, structure.flatten(spec))]
        return structure.pack_as(spec, batched)


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], list):
        return [value for part in parts for value in part]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)

