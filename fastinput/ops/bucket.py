"""``ds.bucket_by_sequence_length(...)``: batch elements of similar length together, padded per bucket.

tf.data builds it from ``group_by_window`` (key: the bucket a length falls
in; window: the bucket's batch size; reduce: ``padded_batch``), and so does
fastinput, on ``GroupingIterator`` without a Dataset per window: the lengths
of a chunk of elements go to their buckets in one ``np.searchsorted``, and a
full bucket is padded into one batch by ``padded_batch``'s kernel
(``PaddedBatchDataset.pad_and_stack``: one ``np.full`` and, for vectors, one
masked assignment per component). The only Python per element is the
length function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine import cardinality
from fastinput._engine.arguments import check_bool, check_callable, check_int, fn_name
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.batch import PaddedBatchDataset, stack_elements
from fastinput.ops.group_by_window import GroupingIterator, Outputs, as_int
from fastinput.ops.map import call_on_element, function_error
from fastinput.spec import batched


class _OneBatch:
    """A window's outputs when they are one batch (or none: a short window under ``drop_remainder``), made when
    first asked for; an error making it is raised in its place."""

    def __init__(self, make: Callable[[], Any], empty: bool) -> None:
        self._make = make
        self._done = empty

    def get_next(self) -> Any:
        if self._done:
            raise StopIteration
        self._done = True
        return self._make()

    def get_state(self) -> Any:
        return {"done": self._done}

    def set_state(self, state: Any) -> None:
        self._done = state["done"]

    def close(self) -> None:
        pass


class _ByLength:
    """The grouping: a bucket per length range, a window per bucket's batch size, a (padded) batch per window."""

    def __init__(self, dataset: BucketBySequenceLengthDataset) -> None:
        self._dataset = dataset
        self._name = str(dataset)
        self._boundaries = np.asarray(dataset.bucket_boundaries, dtype=np.int64)
        self._kernels = [dataset.batch_kernel(bucket) for bucket in range(len(dataset.bucket_batch_sizes))]

    def keys(self, chunk: list[Any]) -> list[Any]:
        length_func, where = self._dataset.element_length_func, f"{self._name}: element_length_func"
        lengths: list[Any] = []
        for element in chunk:
            try:
                lengths.append(as_int(call_on_element(length_func, element), where))
            except Exception as exc:
                lengths.append(function_error(length_func, exc))
        valid = [i for i, length in enumerate(lengths) if not isinstance(length, Exception)]
        buckets = np.searchsorted(self._boundaries, [lengths[i] for i in valid], side="right").tolist()
        for i, bucket in zip(valid, buckets):
            lengths[i] = bucket
        return lengths

    def window_size(self, key: int) -> int:
        return self._dataset.bucket_batch_sizes[key]

    def reduce(self, key: int, window: list[Any], ctx: IteratorContext) -> Outputs:
        short = len(window) < self._dataset.bucket_batch_sizes[key]
        return _OneBatch(lambda: self._kernels[key](window), empty=short and self._dataset.drop_remainder)


def _sizes(op: str, name: str, values: Any, minimum: int) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise InvalidArgumentError(f"{op}: {name} must be a list of integers, got {values!r}")
    return tuple(check_int(op, f"{name}[{i}]", value, minimum=minimum) for i, value in enumerate(values))


class BucketBySequenceLengthDataset(Dataset):
    traits = StageTraits("bucket_by_sequence_length", StageKind.BATCH)

    def __init__(self, input_dataset: Dataset, element_length_func: Callable, bucket_boundaries: Sequence[int],
                 bucket_batch_sizes: Sequence[int], padded_shapes: Any, padding_values: Any,
                 pad_to_bucket_boundary: bool, no_padding: bool, drop_remainder: bool) -> None:
        super().__init__([input_dataset])
        op = "bucket_by_sequence_length"
        self.element_length_func = check_callable(op, "element_length_func", element_length_func)
        self.bucket_boundaries = _sizes(op, "bucket_boundaries", bucket_boundaries, minimum=0)
        if any(b > a for a, b in zip(self.bucket_boundaries[1:], self.bucket_boundaries)):
            raise InvalidArgumentError(f"{op}: bucket_boundaries must be sorted, got {list(self.bucket_boundaries)}")
        self.bucket_batch_sizes = _sizes(op, "bucket_batch_sizes", bucket_batch_sizes, minimum=1)
        if len(self.bucket_batch_sizes) != len(self.bucket_boundaries) + 1:
            raise InvalidArgumentError(
                f"{op}: bucket_batch_sizes must have one more entry than bucket_boundaries (one per bucket): got "
                f"{len(self.bucket_batch_sizes)} sizes for {len(self.bucket_boundaries)} boundaries")
        self.pad_to_bucket_boundary = check_bool(op, "pad_to_bucket_boundary", pad_to_bucket_boundary)
        self.no_padding = check_bool(op, "no_padding", no_padding)
        self.drop_remainder = check_bool(op, "drop_remainder", drop_remainder)
        self.padded_shapes = padded_shapes
        self.padding_values = padding_values
        self._padded = PaddedBatchDataset(input_dataset, 1, padded_shapes, padding_values, False)  # checks them

    def __str__(self) -> str:
        extra = "".join(f", {name}=True" for name in ("pad_to_bucket_boundary", "no_padding", "drop_remainder")
                        if getattr(self, name))
        return (f"bucket_by_sequence_length({fn_name(self.element_length_func)}, {list(self.bucket_boundaries)}, "
                f"{list(self.bucket_batch_sizes)}{extra})")

    def cardinality(self) -> int:
        return cardinality.grouped(self.inputs[0].cardinality())

    def compute_element_spec(self) -> Any:
        """As tf.data's: the batch dimension unknown (a bucket's size is not), padded dimensions as
        ``padded_batch``'s (unknown where they follow the bucket's boundary or the batch's longest)."""
        if self.no_padding:
            return batched(self.inputs[0].element_spec, None)
        return self._padded.element_spec

    def batch_kernel(self, bucket: int) -> Callable[[list[Any]], Any]:
        """What makes a batch of one bucket's window: ``batch``'s or ``padded_batch``'s kernel, padding unknown
        dimensions to the bucket's boundary less one with ``pad_to_bucket_boundary``."""
        if self.no_padding:
            return stack_elements
        if not self.pad_to_bucket_boundary:
            return self._padded.pad_and_stack
        if bucket == len(self.bucket_boundaries):
            return self._beyond_the_last_boundary
        filler = self.bucket_boundaries[bucket] - 1
        spec = self.inputs[0].element_spec
        shapes = self._padded.leaf_shapes(spec)
        filled = [tuple(filler if d is None else d for d in shape) for shape in shapes]
        return PaddedBatchDataset(self.inputs[0], 1, structure.pack_as(spec, filled), self.padding_values,
                                  False).pad_and_stack

    def _beyond_the_last_boundary(self, window: list[Any]) -> Any:
        raise InvalidArgumentError(f"{self}: with pad_to_bucket_boundary=True, elements must have a length below the "
                                   f"last bucket boundary ({self.bucket_boundaries[-1]})")

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return GroupingIterator(self, ctx, self.inputs[0].make_iterator(ctx), _ByLength(self))
