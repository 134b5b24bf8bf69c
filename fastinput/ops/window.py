"""``ds.window(size, shift, stride, drop_remainder)``: windows of consecutive elements, each a small dataset.

As in tf.data, an element of the result is a nest shaped like the input's elements whose leaves are finite
datasets (``WindowValuesDataset``): the first holds that leaf of every element in the window. So
``ds.window(3).flat_map(lambda w: w.batch(3))`` batches overlapping windows, and ``element_spec`` is a nest of
``fi.DatasetSpec``.

Window ``i`` holds the input elements ``i * shift + j * stride`` for ``j < size`` (fewer at the end, unless
``drop_remainder``). Errors follow tf.data's window kernel: an input error takes its element's place in the
buffer; a window that would hold it (at a stride position) is raised as that error instead, using up the
window; an error between stride positions, or among the elements a shift larger than the buffer skips, is
ignored.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from fastinput import structure
from fastinput._engine.arguments import check_bool, check_int
from fastinput._engine.buffer import Failure
from fastinput._engine.checkpoint import SavedValue, decode_value, encode_value, stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.resume import InputMarks, marked
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import CancelledError, InvalidArgumentError
from fastinput.ops.sources import PositionIterator
from fastinput.spec import DatasetSpec, most_specific_common, spec_of


class WindowValuesDataset(Dataset, SavedValue):
    """A finite dataset of given element values: one leaf of a window (what ``window`` yields); a stage that
    holds one (an interleave's cycle) saves it by its values."""

    traits = StageTraits("window_values", StageKind.IN_MEMORY)

    def __init__(self, values: list[Any], spec: Any = None) -> None:
        super().__init__()
        self.values = list(values)
        self.spec = spec
        """Its elements' spec, as the window's input declares it (None: learnt from the values)."""

    def __str__(self) -> str:
        return f"window_values(<{len(self.values)} element(s)>)"

    def cardinality(self) -> int:
        return len(self.values)

    def compute_element_spec(self) -> Any:
        if self.spec is not None:
            return self.spec
        if not self.values:
            raise InvalidArgumentError(f"{self}: an empty window's element spec is not known")
        merged = spec_of(self.values[0])
        for value in self.values[1:]:
            merged = most_specific_common(merged, spec_of(value), str(self))
        return merged

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _ValuesIterator(self, ctx)

    def encode(self) -> dict[str, Any]:
        return {"values": [encode_value(value) for value in self.values]}

    @classmethod
    def decode(cls, body: dict[str, Any]) -> WindowValuesDataset:
        return cls([decode_value(value) for value in body["values"]])  # its spec: learnt from the values


class _ValuesIterator(PositionIterator):
    def __init__(self, dataset: WindowValuesDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._values = dataset.values

    def produce_chunk(self, n: int) -> list[Any]:
        chunk = self._values[self._position:self._position + n]
        if not chunk:
            raise StopIteration
        self._position += len(chunk)
        return chunk


class WindowDataset(Dataset):
    traits = StageTraits("window", StageKind.BATCH)

    def __init__(self, input_dataset: Dataset, size: int, shift: int | None, stride: int,
                 drop_remainder: bool) -> None:
        super().__init__([input_dataset])
        self.size = check_int("window", "size", size, minimum=1)
        self.shift = self.size if shift is None else check_int("window", "shift", shift, minimum=1)
        self.stride = check_int("window", "stride", stride, minimum=1)
        self.drop_remainder = check_bool("window", "drop_remainder", drop_remainder)

    def __str__(self) -> str:
        return (f"window({self.size}, shift={self.shift}, stride={self.stride}, "
                f"drop_remainder={self.drop_remainder})")

    @property
    def span(self) -> int:
        """Input elements one full window covers, from its first to its last."""
        return (self.size - 1) * self.stride + 1

    def cardinality(self) -> int:
        n = self.inputs[0].cardinality()
        if n < 0:
            return n
        if self.drop_remainder:
            rest = n - self.span
            return 0 if rest < 0 else rest // self.shift + 1
        return -(-n // self.shift)

    def compute_element_spec(self) -> Any:
        return structure.map_structure(DatasetSpec, self.inputs[0].element_spec)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _WindowIterator(self, ctx, self.inputs[0].make_iterator(ctx))


def _leaf_specs(dataset: Dataset) -> Any:
    """The input's spec (each window leaf's element spec), or None where it cannot be learnt."""
    try:
        return dataset.element_spec
    except InvalidArgumentError:
        return None


class _WindowIterator(DatasetIterator):
    """A buffer of the next ``span`` input elements (errors as ``Failure``s in place), pulled one at a time.

    Saved, it keeps no element: it saves its input's state from before the first element it buffers; restored,
    it fills its buffer again from there (a full window's worth, as the saved one would have at its next call).
    Windows start at multiples of ``shift`` in the input, so only the input's state before those elements is
    taken (the others never come first in the buffer).
    """

    def __init__(self, dataset: WindowDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._ds = dataset
        self._source = source
        self._specs = _leaf_specs(dataset.inputs[0])
        self._nested = self._specs is not None and structure.is_nested(self._specs)
        self._buffer: deque[Any] = deque()
        self._marks_before: deque[dict[str, Any] | None] = deque()  # the input's state before each buffered one
        self._marks = InputMarks(source)
        self._pulled = 0  # input elements pulled, modulo shift: a window starts where it is 0
        self._input_done = False

    def _pull(self) -> Any:
        """The input's next element (a ``Failure`` for an error); ``StopIteration`` at its end, for good."""
        try:
            element = self._source.get_next()
        except StopIteration:
            self._input_done = True
            raise
        except CancelledError:
            raise
        except Exception as exc:
            element = Failure(exc)
        self._pulled = (self._pulled + 1) % self._ds.shift
        return element

    def _fill(self) -> None:
        while not self._input_done and len(self._buffer) < self._ds.span:
            mark = self._marks.take() if self._pulled == 0 else None
            try:
                element = self._pull()
            except StopIteration:
                break
            self._buffer.append(element)
            self._marks_before.append(mark)

    def _shift(self) -> None:
        """Drop the first ``shift`` input elements: buffered ones, then (a shift past the buffer) new ones, whose
        errors are ignored as in tf.data."""
        buffer, buffered = self._buffer, len(self._buffer)
        for _ in range(min(self._ds.shift, buffered)):
            buffer.popleft()
            self._marks_before.popleft()
        for _ in range(self._ds.shift - buffered):
            if self._input_done:
                break
            try:
                self._pull()
            except StopIteration:
                break

    def produce(self) -> Any:
        ds = self._ds
        self._fill()
        buffer = self._buffer
        if not buffer or (ds.drop_remainder and len(buffer) < ds.span):
            raise StopIteration
        taken = [buffer[i] for i in range(0, len(buffer), ds.stride)]
        self._shift()
        failure = next((item for item in taken if type(item) is Failure), None)
        if failure is not None:
            raise failure.exc
        return self._window(taken)

    def _window(self, elements: list[Any]) -> Any:
        """The nest of datasets of one window: per leaf, the values of that leaf."""
        if self._specs is not None and not self._nested:
            return WindowValuesDataset(elements, self._specs)
        shape = self._specs if self._specs is not None else elements[0]
        columns = zip(*(structure.flatten(element) for element in elements))
        specs = structure.flatten(self._specs) if self._specs is not None else [None] * len(structure.flatten(shape))
        return structure.pack_as(shape, [WindowValuesDataset(list(column), spec)
                                         for column, spec in zip(columns, specs)])

    def get_state(self) -> dict[str, Any]:
        if self._buffer:
            return stage_state(self.op, {}, [marked(self._source, self._marks_before[0])])
        return stage_state(self.op, {}, [self._source.get_state()])
