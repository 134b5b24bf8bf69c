"""``ds.group_by_window(key_func, reduce_func, window_size)``: windows of elements that share a key.

``GroupingIterator`` is the engine of the family: it keys its input's
elements a chunk at a time, gathers them per key, and each time a key's
group is full (or, at the end of the input, for every group left, smallest
key first, as tf.data) hands that window to a *reducer*, whose outputs it
yields. ``group_by_window``'s reducer runs the Dataset that ``reduce_func``
makes of the window (a ``WindowValuesDataset`` of the buffered elements, as
``window`` yields, with the input's element spec); ``bucket_by_sequence_length``
(``ops/bucket.py``) keys by length, batch-wise, and pads each window into one
batch with ``padded_batch``'s kernel.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from fastinput._engine import cardinality
from fastinput._engine.arguments import check_callable, check_int, fn_name
from fastinput._engine.checkpoint import Deferred, decode_value, encode_value, stage_state
from fastinput._engine.function_spec import merge_traces, trace
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.rows import READ_CHUNK
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.map import call_on_element, function_error
from fastinput.ops.window import WindowValuesDataset
from fastinput.spec import UnknownSpecError, running


class Outputs(Protocol):
    """What a reducer makes of one window: its outputs, one per ``get_next()`` (``StopIteration`` after the last),
    and where it stands (``get_state`` / ``set_state``), so a saved pipeline resumes inside a window."""

    def get_next(self) -> Any: ...
    def get_state(self) -> Any: ...
    def set_state(self, state: Any) -> None: ...
    def close(self) -> None: ...


class Grouping(Protocol):
    """How a ``GroupingIterator`` keys, sizes and reduces windows (``group_by_window``, ``bucket_by_sequence_length``
    each have one)."""

    def keys(self, chunk: list[Any]) -> list[Any]:
        """Each element's key (an int), or in its place the exception computing it raised."""

    def window_size(self, key: int) -> int:
        """How many elements make a full window of ``key``."""

    def reduce(self, key: int, window: list[Any], ctx: IteratorContext) -> Outputs:
        """The outputs of one window."""


class GroupingIterator(DatasetIterator):
    """Groups elements by key into windows and yields what the grouping's reducer makes of each.

    An error keying an element, sizing its window or pulling from the input
    is raised in its place, that element consumed (as in tf.data). Saved, it
    holds values: the groups, the elements pulled and not yet grouped, and
    the window being reduced (with its reducer's state); the input is saved
    where it stands.
    """

    def __init__(self, dataset: Dataset, ctx: IteratorContext, source: DatasetIterator, grouping: Grouping) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._grouping = grouping
        self._held: deque[Any] = deque()  # elements pulled, not yet grouped
        self._keys: deque[Any] = deque()  # their keys (or the errors computing them)
        self._groups: dict[int, list[Any]] = {}
        self._sizes: dict[int, int] = {}  # each key's window size, once known
        self._window: tuple[int, list[Any]] | None = None  # the window being reduced
        self._outputs: Outputs | None = None  # its reducer's outputs
        self._ended = False

    def produce(self) -> Any:
        while True:
            if self._outputs is not None:
                try:
                    return self._outputs.get_next()
                except StopIteration:
                    self._finish_window()
            if self._held:
                self._group(self._held.popleft(), self._keys.popleft())
            elif not self._ended:
                self._pull()
            elif self._groups:
                key = min(self._groups)
                self._start(key, self._groups.pop(key))
            else:
                raise StopIteration

    def _pull(self) -> None:
        try:
            chunk = self._source.get_next_chunk(READ_CHUNK)
        except StopIteration:
            self._ended = True
            return
        self._keys.extend(self._grouping.keys(chunk))
        self._held.extend(chunk)

    def _group(self, element: Any, key: Any) -> None:
        if isinstance(key, Exception):
            raise key
        size = self._sizes.get(key)
        if size is None:
            size = self._sizes[key] = self._grouping.window_size(key)
        group = self._groups.setdefault(key, [])
        group.append(element)
        if len(group) >= size:
            self._start(key, self._groups.pop(key))

    def _start(self, key: int, window: list[Any]) -> None:
        self._window = (key, window)
        self._outputs = self._grouping.reduce(key, window, self.ctx)

    def _finish_window(self) -> None:
        outputs, self._outputs, self._window = self._outputs, None, None
        outputs.close()  # type: ignore[union-attr]

    def join_self(self) -> None:
        if self._outputs is not None:
            self._outputs.close()

    def get_state(self) -> dict[str, Any]:
        groups = [(key, list(group)) for key, group in self._groups.items()]
        held = list(self._held)
        own: dict[str, Any] = {
            "groups": Deferred(lambda: [[key, [encode_value(e) for e in group]] for key, group in groups]),
            "held": Deferred(lambda: [encode_value(e) for e in held]),
            "sizes": [[key, size] for key, size in self._sizes.items()],
            "ended": self._ended,
            "window": None,
        }
        if self._window is not None:
            key, window = self._window
            own["window"] = {"key": key, "elements": Deferred(lambda: [encode_value(e) for e in window]),
                             "outputs": self._outputs.get_state()}  # type: ignore[union-attr]
        return self.with_kept_error(stage_state(self.op, own, [self._source.get_state()]))

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._groups = {key: [decode_value(e) for e in group] for key, group in state["groups"]}
        held = [decode_value(e) for e in state["held"]]
        self._held.extend(held)
        self._keys.extend(self._grouping.keys(held))  # keyed again: an error computing one is met again
        self._sizes = {key: size for key, size in state["sizes"]}
        self._ended = state["ended"]
        if state["window"] is not None:
            window = state["window"]
            self._start(window["key"], [decode_value(e) for e in window["elements"]])
            self._outputs.set_state(window["outputs"])  # type: ignore[union-attr]


def as_int(value: Any, where: str) -> int:
    """A key or length function's result as an int: it must be an integer scalar (tf.data: a scalar int64)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iu":
        return int(value)
    raise InvalidArgumentError(f"{where} must return a scalar integer (tf.data's int64), got {value!r}")


# -- group_by_window ----------------------------------------------------------------------------------------


class _ByKey:
    """``group_by_window``'s grouping: ``key_func`` per element, ``window_size_func`` per new key, and the
    Dataset ``reduce_func`` makes of each window, run in the pipeline's context."""

    def __init__(self, dataset: GroupByWindowDataset) -> None:
        self._dataset = dataset
        self._name = str(dataset)
        try:
            self._spec = dataset.inputs[0].element_spec  # the windows' spec, as tf.data gives it
        except UnknownSpecError:
            self._spec = None  # learnt from each window's values

    def keys(self, chunk: list[Any]) -> list[Any]:
        key_func, out = self._dataset.key_func, []
        for element in chunk:
            try:
                out.append(as_int(call_on_element(key_func, element), f"{self._name}: key_func"))
            except Exception as exc:
                out.append(function_error(key_func, exc))
        return out

    def window_size(self, key: int) -> int:
        dataset = self._dataset
        if dataset.window_size_func is None:
            return dataset.window_size  # type: ignore[return-value]
        try:
            size = dataset.window_size_func(np.int64(key))
        except Exception as exc:
            raise function_error(dataset.window_size_func, exc) from None
        if np.ndim(size) or not isinstance(np.asarray(size).item(), int) or int(size) < 1:
            raise InvalidArgumentError(f"{self._name}: window_size_func returned {size!r} for key {key}; a window "
                                       "size must be an integer >= 1")
        return int(size)

    def reduce(self, key: int, window: list[Any], ctx: IteratorContext) -> Outputs:
        with running():
            reduced = self._dataset.reduced(np.int64(key), window, self._spec)
        return reduced.make_iterator(ctx)


class GroupByWindowDataset(Dataset):
    traits = StageTraits("group_by_window", StageKind.BATCH)

    def __init__(self, input_dataset: Dataset, key_func: Callable, reduce_func: Callable,
                 window_size: int | None, window_size_func: Callable | None) -> None:
        super().__init__([input_dataset])
        self.key_func = check_callable("group_by_window", "key_func", key_func)
        self.reduce_func = check_callable("group_by_window", "reduce_func", reduce_func)
        if (window_size is None) == (window_size_func is None):
            raise InvalidArgumentError("group_by_window: give exactly one of window_size and window_size_func")
        self.window_size = None if window_size is None else check_int("group_by_window", "window_size", window_size,
                                                                       minimum=1)
        self.window_size_func = None if window_size_func is None else check_callable(
            "group_by_window", "window_size_func", window_size_func)

    def __str__(self) -> str:
        size = (f"window_size={self.window_size}" if self.window_size_func is None
                else f"window_size_func={fn_name(self.window_size_func)}")
        return f"group_by_window({fn_name(self.key_func)}, {fn_name(self.reduce_func)}, {size})"

    def cardinality(self) -> int:
        return cardinality.grouped(self.inputs[0].cardinality())

    def reduced(self, key: Any, window: list[Any], spec: Any) -> Dataset:
        """The Dataset ``reduce_func`` makes of one window (a ``WindowValuesDataset`` of its elements, of ``spec``)."""
        return self._as_dataset(self.reduce_func(key, WindowValuesDataset(window, spec)))

    def _as_dataset(self, reduced: Any) -> Dataset:
        if not isinstance(reduced, Dataset):
            raise InvalidArgumentError(f"{self}: reduce_func must return a Dataset, got {type(reduced).__name__}")
        return reduced

    def compute_element_spec(self) -> Any:
        """The spec of what ``reduce_func`` returns, traced on a window of placeholder elements."""
        remedy = "reduce_func must build its Dataset from any window of the input's elements"
        spec = self.inputs[0].element_spec
        returned = trace(lambda element: self.reduce_func(np.int64(0), WindowValuesDataset([element], spec)),
                         spec, str(self), remedy)
        return merge_traces([self._as_dataset(dataset).element_spec for dataset in returned], str(self), remedy)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return GroupingIterator(self, ctx, self.inputs[0].make_iterator(ctx), _ByKey(self))

