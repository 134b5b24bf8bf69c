"""``ds.scan(initial_state, scan_func)``: a map that carries a state from element to element.

``scan_func(state, element)`` returns ``(new_state, output)``; the outputs are the elements. As in tf.data the
new state must keep the initial state's structure and dtypes (checked while building, by calling ``scan_func`` on
placeholders as ``map`` learns its spec); a dimension that changes becomes unknown in the state's spec.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastinput._engine import conversion
from fastinput._engine.arguments import check_callable, fn_name
from fastinput._engine.checkpoint import decode_value, encode_value
from fastinput._engine.function_spec import output_spec
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.map import normalize_output
from fastinput.spec import most_specific_common, spec_of


def step(scan_func: Callable, state: Any, element: Any, where: str) -> tuple[Any, Any]:
    """``scan_func(state, element)`` as ``(new_state, output)``, both normalised as a map's output is."""
    result = scan_func(state, element)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise InvalidArgumentError(f"{where}: scan_func must return a pair (new_state, output_element), got "
                                   f"{type(result).__name__}")
    return normalize_output(result[0]), normalize_output(result[1])


class ScanDataset(Dataset):
    traits = StageTraits("scan", StageKind.MAP)

    def __init__(self, input_dataset: Dataset, initial_state: Any, scan_func: Callable) -> None:
        super().__init__([input_dataset])
        self.initial_state = conversion.normalize_tensors(initial_state)
        self.scan_func = check_callable("scan", "scan_func", scan_func)

    def __str__(self) -> str:
        return f"scan({fn_name(self.scan_func)})"

    def cardinality(self) -> int:
        return self.inputs[0].cardinality()

    def compute_element_spec(self) -> Any:
        """The outputs' spec, learnt with the state's spec relaxed until the new state fits it (as tf.data
        retraces); a new state of another structure or dtype is an error here, as in tf.data."""
        state_spec, input_spec = spec_of(self.initial_state), self.inputs[0].element_spec
        for _ in range(2):  # relaxing can only turn dimensions unknown: the second trace fits
            new_state, output = output_spec(lambda pair: step(self.scan_func, *pair, str(self)),
                                            (state_spec, input_spec), str(self))
            try:
                relaxed = most_specific_common(state_spec, new_state, str(self))
            except InvalidArgumentError:
                raise InvalidArgumentError(f"{self}: the new state scan_func returns ({new_state}) must have the "
                                           f"initial state's structure and dtypes ({state_spec})") from None
            if relaxed == state_spec:
                break
            state_spec = relaxed
        return output

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _ScanIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _ScanIterator(DatasetIterator):
    """Pulls one element at a time (the state after each is what it saves, with its input's state).

    An error of the input or of ``scan_func`` is raised in its place and leaves the state as it was, as in
    tf.data; the elements after it follow.
    """

    def __init__(self, dataset: ScanDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._fn = dataset.scan_func
        self._source = source
        self._state = dataset.initial_state

    def produce(self) -> Any:
        self._state, output = step(self._fn, self._state, self._source.get_next(), self.name)
        return output

    def own_state(self) -> dict[str, Any]:
        return {"state": encode_value(self._state)}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._state = decode_value(state["state"])


def reduce_dataset(dataset: Dataset, initial_state: Any, reduce_func: Callable) -> Any:
    """``reduce_func`` folded over every element of ``dataset`` from ``initial_state``: the final state."""
    check_callable("reduce", "reduce_func", reduce_func)
    state = conversion.normalize_tensors(initial_state)
    with iter(dataset) as iterator:
        for element in iterator:
            state = normalize_output(reduce_func(state, element))
    return state


def single_element(dataset: Dataset) -> Any:
    """The one element of ``dataset``; ``InvalidArgumentError`` if it has none or more, with tf.data's words."""
    with iter(dataset) as iterator:
        try:
            element = next(iterator)
        except StopIteration:
            raise InvalidArgumentError(f"get_single_element: Dataset was empty. ({dataset!r})") from None
        try:
            next(iterator)
        except StopIteration:
            return element
    raise InvalidArgumentError(f"get_single_element: Dataset had more than one element. ({dataset!r})")
