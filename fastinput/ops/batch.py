"""``ds.batch`` and ``ds.padded_batch``: stack consecutive elements leaf by leaf.

Leaves stack into numpy arrays with a new first dimension; bytes become an
object array (TensorFlow's ``tf.string``); ``SparseArray`` leaves batch into
one SparseArray with a batch dimension in front, as ``tf.data`` batches
``tf.SparseTensor``.

Over row blocks (``rows=RowBlocks(...)``, ``fastinput._engine.rows``) a batch
is ``batch_size`` rows cut from the blocks (views when they lie in one block)
and joined column by column; the rows after a cut wait for the next batch.

Over an input that hands on runs of rows (``Dataset.row_layout``: ``from_tensor_slices`` of numeric arrays, a
``repeat`` or a mix of such; ``fastinput._engine.row_slices``) a batch is joined from the runs, one copy per leaf
(``RowsBatchIterator``), instead of stacking an element per row: 12 us instead of 74 us of CPU a batch of 1,024
int64s (``from_tensor_slices(x).repeat().batch(1024)``, 2-core AMD EPYC).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fastinput import errors, structure
from fastinput._engine import cardinality, conversion, memory
from fastinput._engine.arguments import check_bool, check_int, check_parallelism, check_shape
from fastinput._engine.checkpoint import stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.resume import InputMarks, drop_units, marked
from fastinput._engine.row_slices import RowLayout, batch_of_rows
from fastinput._engine.rows import ELEMENTS, RowBlocks, Units
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError, UnimplementedError
from fastinput.spec import SparseSpec, TensorSpec, batched
from fastinput.structure import RaggedArray, SparseArray


def stack_leaf(values: Sequence[Any], component: int = 0) -> Any:
    """One batched leaf from the same leaf of every element."""
    first = values[0]
    if isinstance(first, bytes):
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    if isinstance(first, SparseArray):
        return batch_sparse(values, component)
    if isinstance(first, RaggedArray):
        raise UnimplementedError(f"batch: component {component} is a RaggedArray; fastinput's RaggedArray has one "
                                 "ragged dimension, so batches of them cannot be batched again")
    try:
        if isinstance(first, np.ndarray) and all(isinstance(v, np.ndarray) and v.dtype == first.dtype for v in values):
            # fastinput's allocator: aligned, and in shared memory in a worker that sends its batches on (wire.py)
            return np.stack(values, out=memory.aligned_empty((len(values), *first.shape), first.dtype))
        return np.stack(values) if isinstance(first, np.ndarray) else np.array(values)
    except ValueError:
        _raise_shape_mismatch(values, component)
        raise


def _raise_shape_mismatch(values: Sequence[Any], component: int) -> None:
    first_shape = np.shape(values[0])
    for i, value in enumerate(values):
        if np.shape(value) != first_shape:
            raise InvalidArgumentError(
                f"batch: cannot batch elements with different shapes in component {component}: the first element "
                f"had shape {list(first_shape)} and element {i} had shape {list(np.shape(value))} "
                "(use padded_batch, or map them to one shape first)"
            )


def batch_sparse(values: Sequence[SparseArray], component: int = 0) -> SparseArray:
    """Stack SparseArrays of equal rank: indices get the element's position in front, the shape the maximum."""
    ranks = {len(v.dense_shape) for v in values}
    if len(ranks) > 1:
        raise InvalidArgumentError(f"batch: SparseArrays of different ranks {sorted(ranks)} in component {component}")
    indices = [np.concatenate([np.full((len(v.indices), 1), i, dtype=np.int64), v.indices], axis=1)
               for i, v in enumerate(values)]
    dense_shape = np.max(np.stack([v.dense_shape for v in values]), axis=0)
    return SparseArray(np.concatenate(indices), np.concatenate([v.values for v in values]),
                       np.concatenate([[len(values)], dense_shape]))


def stack_elements(elements: Sequence[Any]) -> Any:
    """A batch: the elements' structure with every leaf stacked."""
    first = elements[0]
    if not structure.is_nested(first):
        return stack_leaf(elements)
    columns = zip(*(structure.flatten(e) for e in elements))
    return structure.pack_as(first, [stack_leaf(column, i) for i, column in enumerate(columns)])


class BatchDataset(Dataset):
    traits = StageTraits("batch", StageKind.BATCH)

    def __init__(self, input_dataset: Dataset, batch_size: int, drop_remainder: bool,
                 num_parallel_calls: int | None = None, deterministic: bool | None = None,
                 rows: RowBlocks | None = None) -> None:
        super().__init__([input_dataset])
        self.batch_size = check_int("batch", "batch_size", batch_size, minimum=1)
        self.drop_remainder = check_bool("batch", "drop_remainder", drop_remainder)
        check_parallelism("batch", "num_parallel_calls", num_parallel_calls)
        check_bool("batch", "deterministic", deterministic, allow_none=True)
        self.rows = rows

    def cardinality(self) -> int:
        return cardinality.batched(self.inputs[0].cardinality(), self.batch_size, self.drop_remainder)

    def __str__(self) -> str:
        extra = ", drop_remainder=True" if self.drop_remainder else ""
        return f"batch({self.batch_size}{extra})"

    def compute_element_spec(self) -> Any:
        size = self.batch_size if self.drop_remainder else None
        if self.rows is not None:
            return self.rows.batch_spec(self.inputs[0].element_spec, size)
        return batched(self.inputs[0].element_spec, size)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        from fastinput.ops.map import MapDataset
        from fastinput.ops.noops import without_noops

        source = self.inputs[0].make_iterator(ctx)
        if self.rows is not None:
            return BatchIterator(self, ctx, source, self.rows.batch, units=self.rows)
        # tf.data fuses map -> batch into map_and_batch by default, whose batches are whole groups;
        # following it here too means switching fastinput's own fusion off never changes the result. It removes
        # no-op stages first (skip(0), ...), so a map below them counts.
        whole_groups = type(without_noops(self.inputs[0])) is MapDataset
        layout = self.inputs[0].row_layout()
        if layout is not None:
            return RowsBatchIterator(self, ctx, source, layout)
        return BatchIterator(self, ctx, source, stack_elements, whole_groups)


class BatchIterator(DatasetIterator):
    """Gathers ``batch_size`` elements and hands them to ``combine``.

    Errors go as in tf.data, which has two rules. By default (tf.data's
    ``batch`` and ``padded_batch``) an input error is raised at once, the
    elements gathered for that batch are dropped and the next batch starts
    after the error. With ``whole_groups`` (tf.data's ``map -> batch``, which
    it fuses into ``map_and_batch``) each batch takes ``batch_size`` input
    positions, an error taking one: a batch that met an error is dropped and
    its first error raised. Either way an error in the last, partial batch is
    raised, ``drop_remainder`` or not.

    ``units`` says what a position is (an element, or a row of a row block,
    where the rows after a batch's end are carried over to the next one).
    ``sizes`` (``rebatch``'s list) are the batch sizes, taken in turn; by
    default the dataset's ``batch_size`` every time.

    Saved, it holds nothing but those carried rows, which all come from the
    input's latest chunk: it saves the input's state before that chunk and
    how many of its rows earlier batches took; a restore pulls it again and
    drops them. A call pulls for one batch only, so an input error is never
    kept waiting behind batches already made (the state would have to point
    at it); over row blocks it then cuts more batches, as many as asked for,
    while the carried rows fill them (one call, one hand-off, for several).
    """

    def __init__(self, dataset: Any, ctx: IteratorContext, source: DatasetIterator, combine: Any,
                 whole_groups: bool = False, units: Units = ELEMENTS, sizes: Sequence[int] = ()) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._sizes = tuple(sizes) or (dataset.batch_size,)
        self._turn = 0  # batches made, modulo len(sizes): the next one is sizes[turn] long
        self._drop_remainder = dataset.drop_remainder
        self._combine = combine
        self._whole_groups = whole_groups
        self._units = units
        self._carried: list[Any] = []  # items after the last batch's end (rows of a cut block)
        self._ended = False
        self._marks = InputMarks(source) if units is not ELEMENTS else None  # only rows are ever carried over
        self._mark: dict[str, Any] | None = None  # the input's state before its latest chunk (row blocks)
        self._pulled = 0  # units in that chunk
        self._skip = 0  # after a restore: units of the input to drop before the first batch

    def produce_chunk(self, n: int) -> list[Any]:
        """One batch, and over row blocks up to ``n`` in all while the rows carried over fill whole batches (cut
        from the input's latest chunk, no pull: nothing can fail, and the state stays that chunk's)."""
        out = [self.produce()]
        if self._marks is not None:
            while len(out) < n and self._units.count(self._carried) >= self._sizes[self._turn]:
                out.append(self._cut(self._carried, self._sizes[self._turn]))
        return out

    def produce(self) -> Any:
        units, size, error = self._units, self._sizes[self._turn], None
        pull = self._source.get_next_chunk if self._marks is None else self._pull_marked
        while self._skip:
            taken, self._carried = units.split(pull(units.request(self._skip)), self._skip)
            self._skip -= units.count(taken)
        gathered, self._carried = self._carried, []
        positions = units.count(gathered)
        while positions < size and not self._ended:
            try:
                chunk = pull(units.request(size - positions))
            except StopIteration:
                self._ended = True
                break
            except errors.CancelledError:
                raise
            except Exception as exc:
                if not self._whole_groups:
                    raise
                error = error or exc
                positions += 1
                continue
            gathered.extend(chunk)
            positions += units.count(chunk)
        if error is not None:
            raise error
        if not positions or (self._drop_remainder and positions < size):
            raise StopIteration
        return self._cut(gathered, size)

    def _cut(self, gathered: list[Any], size: int) -> Any:
        """The batch of the first ``size`` units of ``gathered``; the rest are carried over."""
        batch, self._carried = self._units.split(gathered, size)
        self._turn = (self._turn + 1) % len(self._sizes)
        return self._combine(batch)

    def _pull_marked(self, request: int) -> list[Any]:
        self._mark = self._marks.take()  # type: ignore[union-attr]
        chunk = self._source.get_next_chunk(request)
        self._pulled = self._units.count(chunk)
        return chunk

    def get_state(self) -> dict[str, Any]:
        turn = {"turn": self._turn} if len(self._sizes) > 1 else {}
        if self._carried:
            taken = self._pulled - self._units.count(self._carried)
            return stage_state(self.op, {"skip": taken, **turn}, [marked(self._source, self._mark)])
        return stage_state(self.op, {"skip": self._skip, **turn}, [self._source.get_state()])

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._skip = state["skip"]
        self._turn = state.get("turn", 0)


class RowsBatchIterator(DatasetIterator):
    """``batch`` over an input that hands on runs of rows (``fastinput._engine.row_slices``): each batch joined
    from the runs its rows come in (one copy per leaf; one concatenation where an epoch of a ``repeat`` ends).

    The elements are ``BatchIterator``'s: an error passes through, the rows gathered dropped, and the next batch
    starts after it; the last, partial batch comes unless ``drop_remainder``. The input is asked for no more rows
    than the batch lacks, so no row is ever carried over and the state is the input's, behind ``BatchIterator``'s
    (``skip`` 0): states move between the two paths.
    """

    def __init__(self, dataset: BatchDataset, ctx: IteratorContext, source: DatasetIterator, layout: RowLayout
                 ) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._layout = layout
        self._size = dataset.batch_size
        self._drop_remainder = dataset.drop_remainder
        self._skip = 0  # after a restore: elements of the input to drop first (0 in every state a batch saves)

    def produce(self) -> Any:
        if self._skip:
            drop_units(self._source, self._skip)
            self._skip = 0
        return batch_of_rows(self._source.get_next_rows, self._size, self._drop_remainder, self._layout)

    def own_state(self) -> dict[str, Any]:
        return {"skip": self._skip}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._skip = state["skip"]


class PaddedBatchDataset(Dataset):
    traits = StageTraits("padded_batch", StageKind.BATCH)

    def __init__(self, input_dataset: Dataset, batch_size: int, padded_shapes: Any, padding_values: Any,
                 drop_remainder: bool) -> None:
        super().__init__([input_dataset])
        self.batch_size = check_int("padded_batch", "batch_size", batch_size, minimum=1)
        self.drop_remainder = check_bool("padded_batch", "drop_remainder", drop_remainder)
        self.padded_shapes = padded_shapes
        self.padding_values = padding_values
        self._shapes = _padded_shapes(padded_shapes)
        self._pads = _padding_values(padding_values)

    def cardinality(self) -> int:
        return cardinality.batched(self.inputs[0].cardinality(), self.batch_size, self.drop_remainder)

    def __str__(self) -> str:
        extra = ", drop_remainder=True" if self.drop_remainder else ""
        shapes = f", padded_shapes={self.padded_shapes!r}" if self.padded_shapes is not None else ""
        return f"padded_batch({self.batch_size}{shapes}{extra})"

    def compute_element_spec(self) -> Any:
        """As tf.data: each component's padded shape (its own shape without ``padded_shapes``; None
        dimensions padded to the batch's longest), behind the batch dimension; dense components only."""
        input_spec = self.inputs[0].element_spec
        out = []
        for i, (leaf, padded) in enumerate(zip(structure.flatten(input_spec), self.leaf_shapes(input_spec))):
            padded = TensorSpec(padded, leaf.dtype).shape
            if leaf.shape is not None and (len(padded) != len(leaf.shape) or any(
                    p is not None and d is not None and d > p for p, d in zip(padded, leaf.shape))):
                raise InvalidArgumentError(f"{self}: the padded shape {list(padded)} of component {i} does not fit "
                                           f"its shape {list(leaf.shape)}")
            out.append(TensorSpec((self.batch_size if self.drop_remainder else None, *padded), leaf.dtype))
        return structure.pack_as(input_spec, out)

    def leaf_shapes(self, input_spec: Any) -> list[tuple[int | None, ...]]:
        """Each component's padded shape: its ``padded_shapes`` entry, else its own shape (None dimensions: the
        batch's longest); dense components of known rank only."""
        shapes = self._per_leaf(self._shapes, input_spec, "padded_shapes", is_shape=True)
        out = []
        for i, (leaf, padded) in enumerate(zip(structure.flatten(input_spec), shapes)):
            if isinstance(leaf, SparseSpec):
                raise InvalidArgumentError(f"{self}: component {i} is a SparseArray; padded_batch pads dense "
                                           "components only (as tf.data)")
            if padded is None:
                if leaf.shape is None:
                    raise InvalidArgumentError(f"{self}: component {i} has an unknown rank; give its padded_shapes")
                padded = leaf.shape
            out.append(padded)
        return out

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return BatchIterator(self, ctx, self.inputs[0].make_iterator(ctx), self.pad_and_stack)

    def pad_and_stack(self, elements: list[Any]) -> Any:
        """One padded batch of ``elements`` (``bucket_by_sequence_length`` pads its windows with it too)."""
        first = elements[0]
        columns = list(zip(*(structure.flatten(e) for e in elements)))
        shapes = self._per_leaf(self._shapes, first, "padded_shapes", is_shape=True)
        pads = self._per_leaf(self._pads, first, "padding_values", is_shape=False)
        leaves = [pad_and_stack_leaf(list(column), shape, pad, i)
                  for i, (column, shape, pad) in enumerate(zip(columns, shapes, pads))]
        return structure.pack_as(first, leaves)

    @staticmethod
    def _per_leaf(spec: Any, element: Any, name: str, is_shape: bool) -> list[Any]:
        count = len(structure.flatten(element))
        if spec is None:
            return [None] * count
        if not structure.is_nested(element) or (not is_shape and not structure.is_nested(spec)):
            return [spec] * count if not is_shape else [spec]
        flat = _flatten_shapes(spec) if is_shape else structure.flatten(spec)
        if len(flat) != count:
            raise InvalidArgumentError(f"padded_batch: {name} has {len(flat)} components but elements have {count}")
        return flat


def _padded_shapes(spec: Any) -> Any:
    """``padded_shapes`` checked when the pipeline is built: each shape a tuple of ints and Nones (-1: None).

    A shape is an int (a vector's length), a ``tf.TensorShape``, an integer array, or a list/tuple of
    dimensions; dicts, and lists/tuples of anything else, are nests of shapes.
    """
    if spec is None:
        return None
    if isinstance(spec, dict):
        return {key: _padded_shapes(value) for key, value in spec.items()}
    if hasattr(spec, "as_list"):  # tf.TensorShape
        spec = spec.as_list() if spec.rank is not None else None
        return None if spec is None else _dims(spec)
    if isinstance(spec, np.ndarray):
        return _dims(spec.tolist() if spec.ndim else [spec.item()])
    if isinstance(spec, (list, tuple)):
        if all(not isinstance(d, (list, tuple, dict, np.ndarray)) and not hasattr(d, "as_list") for d in spec):
            return _dims(spec)
        return tuple(_padded_shapes(item) for item in spec)
    return _dims([spec])


def _dims(dims: Any) -> tuple[int | None, ...]:
    """One padded shape: sizes >= 0, or None / -1 for the batch's largest (returned as None)."""
    return check_shape("padded_batch", "padded_shapes", list(dims), allow_unknown=True)


def _padding_values(spec: Any) -> Any:
    """``padding_values`` checked when the pipeline is built: numbers and bytes (a str becomes UTF-8 bytes)."""
    if isinstance(spec, dict):
        return {key: _padding_values(value) for key, value in spec.items()}
    if isinstance(spec, (list, tuple)):
        return tuple(_padding_values(value) for value in spec)
    if isinstance(spec, np.ndarray) and spec.ndim == 0:
        spec = spec[()]
    if isinstance(spec, str):
        return spec.encode("utf-8")
    if spec is None or isinstance(spec, (bytes, int, float, np.number, np.bool_)):
        return spec
    raise InvalidArgumentError(f"padded_batch: padding_values: {spec!r} is not a scalar number or string")


def _flatten_shapes(spec: Any) -> list[Any]:
    """Flatten a nest whose leaves are shapes (lists/tuples of ints or None)."""
    if isinstance(spec, dict):
        return [s for key in sorted(spec) for s in _flatten_shapes(spec[key])]
    if isinstance(spec, (list, tuple)) and all(d is None or isinstance(d, (int, np.integer)) for d in spec):
        return [spec]
    return [s for item in spec for s in _flatten_shapes(item)]


def pad_and_stack_leaf(values: list[Any], padded_shape: Any, padding_value: Any, component: int) -> np.ndarray:
    """Stack arrays after padding each to ``padded_shape`` (``None`` / -1 dims: the batch's largest)."""
    arrays = [conversion.as_array(v) for v in values]
    ranks = {a.ndim for a in arrays}
    if len(ranks) > 1:
        raise InvalidArgumentError(
            f"padded_batch: elements of component {component} have different ranks {sorted(ranks)}")
    rank = ranks.pop()
    largest = np.max([a.shape for a in arrays], axis=0) if rank else np.zeros(0, dtype=int)
    if padded_shape is None:
        target = [int(d) for d in largest]
    else:
        padded_shape = list(padded_shape)
        if len(padded_shape) != rank:
            raise InvalidArgumentError(f"padded_batch: padded shape {padded_shape} of component {component} "
                                       f"has rank {len(padded_shape)}, elements have rank {rank}")
        target = []
        for axis, (want, have) in enumerate(zip(padded_shape, largest)):
            if want is None or want == -1:
                target.append(int(have))
            elif have > want:
                raise InvalidArgumentError(
                    f"padded_batch: component {component} has size {int(have)} in dimension {axis}, "
                    f"larger than the padded shape {padded_shape}"
                )
            else:
                target.append(int(want))
    dtype = arrays[0].dtype
    if padding_value is None:
        padding_value = b"" if dtype.kind == "O" else 0
    elif (dtype.kind == "O") != isinstance(padding_value, bytes):
        raise InvalidArgumentError(f"padded_batch: padding value {padding_value!r} of component {component} does not "
                                   f"match its {'string' if dtype.kind == 'O' else dtype} elements")
    out = np.full([len(arrays), *target], padding_value, dtype=dtype)
    if rank == 1 and dtype.kind != "O" and all(a.dtype == dtype for a in arrays):  # vectors: one masked copy
        lengths = np.fromiter(map(len, arrays), dtype=np.int64, count=len(arrays))
        out[np.arange(target[0]) < lengths[:, None]] = np.concatenate(arrays)
        return out
    for i, a in enumerate(arrays):
        out[(i, *(slice(0, d) for d in a.shape))] = a if a.ndim else a[()]  # a[()]: the bytes, not a 0-d array
    return out
