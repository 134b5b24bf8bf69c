"""Datasets that make elements from nothing or from in-memory values: range, tensor slices, generators."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine import conversion
from fastinput._engine.arguments import check_callable, check_int, fn_name
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.row_slices import RowLayout, Rows, layout_of
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.spec import SparseSpec, TensorSpec, UnknownSpecError, as_spec, from_value, spec_of, unbatched


def as_numpy_dtype(dtype: Any) -> np.dtype:
    """A numpy dtype from a numpy dtype, a Python type or a TensorFlow dtype (``tf.int64``, ``tf.string``)."""
    numpy_dtype = getattr(dtype, "as_numpy_dtype", dtype)  # tf.DType
    return np.dtype(numpy_dtype)


class RangeDataset(Dataset):
    """``range(start, stop, step)`` as int64 scalars (or ``output_type``)."""

    traits = StageTraits("range", StageKind.IN_MEMORY)

    def __init__(self, *args: int, output_type: Any = None) -> None:
        super().__init__()
        if not 1 <= len(args) <= 3:
            raise InvalidArgumentError(f"range: takes 1 to 3 integers (stop, or start, stop[, step]), got {len(args)}")
        values = [check_int("range", name, a)
                  for name, a in zip(("start", "stop", "step"), args if len(args) > 1 else (0, *args))]
        self.start, self.stop = values[0], values[1]
        self.step = values[2] if len(values) > 2 else 1
        if self.step == 0:
            raise InvalidArgumentError("range: step must not be 0")
        self.dtype = as_numpy_dtype(output_type if output_type is not None else np.int64)
        self._args = args

    def cardinality(self) -> int:
        return len(self)

    def __str__(self) -> str:
        return f"range({', '.join(str(a) for a in self._args)})"

    def __len__(self) -> int:
        return len(range(self.start, self.stop, self.step))

    def compute_element_spec(self) -> Any:
        return TensorSpec((), self.dtype)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _RangeIterator(self, ctx)


class PositionIterator(DatasetIterator):
    """An in-memory source: its state is the index of its next element."""

    def __init__(self, dataset: Dataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._position = 0

    def own_state(self) -> dict[str, Any]:
        return {"position": self._position}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._position = state["position"]


class _RangeIterator(PositionIterator):
    def __init__(self, dataset: RangeDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._values = range(dataset.start, dataset.stop, dataset.step)
        self._dtype = dataset.dtype

    def produce(self) -> Any:
        if self._position >= len(self._values):
            raise StopIteration
        value = self._values[self._position]
        self._position += 1
        return self._dtype.type(value)

    def produce_chunk(self, n: int) -> list[Any]:
        values = self._values[self._position:self._position + n]
        if not values:
            raise StopIteration
        self._position += len(values)
        return list(np.arange(values.start, values.stop, values.step, dtype=self._dtype))

    def own_state(self) -> dict[str, Any]:
        return {"position": self._position}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._position = state["position"]


class TensorSlicesDataset(Dataset):
    """One element per row of the given arrays (``from_tensor_slices``), or the whole value once (``from_tensors``)."""

    traits = StageTraits("from_tensor_slices", StageKind.IN_MEMORY)

    def __init__(self, tensors: Any, single: bool = False) -> None:
        super().__init__()
        self.single = single
        self.structure = conversion.normalize_tensors(tensors)
        self.leaves = structure.flatten(self.structure)
        if single:
            self.traits = StageTraits("from_tensors", StageKind.IN_MEMORY)
            self.length = 1
            return
        for i, leaf in enumerate(self.leaves):
            if isinstance(leaf, structure.SparseArray):
                raise InvalidArgumentError(
                    "from_tensor_slices: SparseArray inputs are not supported; pass dense arrays")
            if np.ndim(leaf) == 0:
                raise InvalidArgumentError(f"from_tensor_slices: component {i} is a scalar; "
                                           "every component needs a first dimension to slice")
        lengths = {len(leaf) for leaf in self.leaves}
        if len(lengths) > 1:
            raise InvalidArgumentError(
                f"from_tensor_slices: all components must have the same first dimension, got sizes {sorted(lengths)}"
            )
        self.length = lengths.pop() if lengths else 0
        self._layout = layout_of(self.structure, self.leaves)

    def row_layout(self) -> RowLayout | None:
        """Runs of rows are slices of the arrays (views), for numeric leaves (``row_slices.layout_of``)."""
        return None if self.single else self._layout

    def cardinality(self) -> int:
        return self.length

    def __str__(self) -> str:
        name = "from_tensors" if self.single else "from_tensor_slices"
        return f"{name}(<{len(self.leaves)} component(s), {self.length} element(s)>)"

    def __len__(self) -> int:
        return self.length

    def compute_element_spec(self) -> Any:
        whole = spec_of(self.structure)
        return whole if self.single else unbatched(whole, str(self))

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _TensorSlicesIterator(self, ctx)


class _TensorSlicesIterator(PositionIterator):
    def __init__(self, dataset: TensorSlicesDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset

    def _advance(self, n: int) -> tuple[int, int]:
        """The positions of the next up to ``n`` elements, ``start:stop``, moved past; ``StopIteration`` at the end."""
        start, stop = self._position, min(self._position + n, self._ds.length)
        if start >= stop:
            raise StopIteration
        self._position = stop
        return start, stop

    def produce_chunk(self, n: int) -> list[Any]:
        ds = self._ds
        start, stop = self._advance(n)
        if ds.single:
            return [ds.structure]
        if not structure.is_nested(ds.structure):
            return list(ds.structure[start:stop])
        columns = [list(leaf[start:stop]) for leaf in ds.leaves]
        return [structure.pack_as(ds.structure, row) for row in zip(*columns)]

    def produce_rows(self, n: int) -> Rows:
        start, stop = self._advance(n)
        return Rows([leaf[start:stop] for leaf in self._ds.leaves], stop - start)

    def own_state(self) -> dict[str, Any]:
        return {"position": self._position}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._position = state["position"]


class GeneratorDataset(Dataset):
    """Elements from ``generator(*args)``; the generator is called again for each new iterator."""

    traits = StageTraits("from_generator", StageKind.GENERATOR)

    def __init__(self, generator: Callable[..., Iterable[Any]], output_types: Any, output_shapes: Any,
                 args: Sequence[Any] | None, output_signature: Any) -> None:
        super().__init__()
        self.generator = check_callable("from_generator", "generator", generator)
        self.args = tuple(args) if args is not None else ()
        if output_signature is not None and (output_types is not None or output_shapes is not None):
            raise InvalidArgumentError("from_generator: give output_signature or output_types/output_shapes, not both")
        self.signature = _signature(output_types, output_shapes, output_signature)
        """The declared element spec (a nest of fastinput specs), or None: elements are taken as they come."""

    def __str__(self) -> str:
        return f"from_generator({fn_name(self.generator)})"

    def compute_element_spec(self) -> Any:
        if self.signature is None:
            raise UnknownSpecError(
                f"{self}: the element spec is unknown: pass output_signature= (or output_types= and "
                "output_shapes=) to from_generator, as tf.data requires")
        return self.signature

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _GeneratorIterator(self, ctx)


def _signature(output_types: Any, output_shapes: Any, output_signature: Any) -> Any:
    """The declared element spec: ``output_signature``, or ``output_types`` with ``output_shapes`` (unknown
    ranks without them), or None."""
    if output_signature is not None:
        return as_spec(output_signature, "from_generator: output_signature")
    if output_types is None:
        if output_shapes is not None:
            raise InvalidArgumentError("from_generator: output_shapes needs output_types")
        return None
    dtypes = structure.map_structure(as_numpy_dtype, output_types)
    flat = structure.flatten(dtypes)
    shapes = (structure.flatten_up_to(dtypes, _shapes_structure(output_shapes)) if output_shapes is not None
              else [None] * len(flat))
    return structure.pack_as(dtypes, [TensorSpec(shape, dtype) for dtype, shape in zip(flat, shapes)])


def _shapes_structure(output_shapes: Any) -> Any:
    """Output shapes given as nests of lists: a list of ints (or Nones) is one shape, not a nest."""
    def is_shape(x: Any) -> bool:
        return x == () or (isinstance(x, (list, tuple)) and all(d is None or isinstance(d, int) for d in x))

    if is_shape(output_shapes) or hasattr(output_shapes, "as_list"):
        return output_shapes if hasattr(output_shapes, "as_list") else tuple(output_shapes)
    if isinstance(output_shapes, dict):
        return {k: _shapes_structure(v) for k, v in output_shapes.items()}
    return tuple(_shapes_structure(v) for v in output_shapes)


class _GeneratorIterator(DatasetIterator):
    """Calls the generator at the first element and converts what it yields.

    Its state counts the generator's outcomes handed on (values, and errors it raised). A restore calls the
    generator anew and draws that many outcomes again, dropping them: this needs a generator that yields the
    same sequence on every call (as a generator function over fixed data does). One that runs dry sooner is
    reported when the restored pipeline first asks it for an element.
    """

    replays_pending_error = True  # own_state stands before a kept error

    def __init__(self, dataset: GeneratorDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset
        self._source: Any = None
        self._count = 0  # values the generator gave
        self._calls = 0  # its outcomes handed on: values and errors
        self._before = (0, 0)  # (calls, count) before the latest call: the state while its error is pending

    def produce(self) -> Any:
        if self._source is None:
            self._source = self._open()
        self._before = (self._calls, self._count)
        try:
            value = next(self._source)
        except StopIteration:
            raise
        except Exception:
            self._calls += 1
            raise
        self._calls += 1
        self._count += 1
        if self._ds.signature is None:
            return conversion.normalize_output(value)
        return self._convert(value)

    def _convert(self, value: Any) -> Any:
        ds = self._ds
        try:
            values = structure.flatten_up_to(ds.signature, value)
        except ValueError as exc:
            raise InvalidArgumentError(
                f"from_generator({fn_name(ds.generator)}): element {self._count - 1} "
                f"does not have the declared structure: {exc}"
            ) from None
        leaves = []
        for i, (leaf, spec) in enumerate(zip(values, structure.flatten(ds.signature))):
            array = leaf if isinstance(spec, SparseSpec) else _to_array(leaf, spec.dtype)
            if not spec.is_compatible_with(array):
                raise InvalidArgumentError(
                    f"from_generator({fn_name(ds.generator)}): element {self._count - 1}, component {i} is "
                    f"{from_value(array)}, which is not the declared {spec}"
                )
            leaves.append(array[()] if getattr(array, "ndim", None) == 0 else array)
        return structure.pack_as(ds.signature, leaves)

    def _open(self) -> Any:
        """The generator, called anew; after a restore, past the outcomes handed on before the state was saved."""
        source = iter(self._ds.generator(*self._ds.args))
        for drawn in range(self._calls):
            try:
                next(source)
            except StopIteration:
                raise InvalidArgumentError(
                    f"set_state: {self._ds}: restoring calls the generator again and skips the {self._calls} "
                    f"outcome(s) already handed on, but this call ended after {drawn}: a restored from_generator "
                    "needs a generator that yields the same sequence on every call") from None
            except Exception:  # an error it raised there was handed on too
                pass
        return source

    def own_state(self) -> dict[str, Any]:
        calls, count = self._before if self._pending is not None else (self._calls, self._count)
        return {"calls": calls, "elements": count}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._calls, self._count = state["calls"], state["elements"]


def _to_array(leaf: Any, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "SUO":  # strings: TensorFlow's tf.string is bytes
        leaf = conversion.normalize_tensors(leaf)
        if isinstance(leaf, bytes):
            return np.array(leaf, dtype=object)
        return np.asarray(leaf, dtype=object)
    try:
        return np.asarray(leaf, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"from_generator: cannot convert {leaf!r} to {dtype}") from exc
