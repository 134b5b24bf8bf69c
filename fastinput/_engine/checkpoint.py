"""Saving and restoring where a running pipeline stands: the contract every stage implements.

Each running stage's ``get_state()`` returns a plain nest (dicts, lists, strings, numbers, booleans, None)
saying where it stands, with its inputs' states nested under ``"inputs"`` (Grain's parent nesting);
``set_state(state)`` on a fresh iterator of the same pipeline, before its first element, puts it exactly
there. ``fi.Iterator.get_state()`` wraps the root's state with a version and the pipeline's description.

Rules every stage follows:

- **Positions, not work in flight.** A stage that works ahead (parallel map, map_and_batch, prefetch, parallel
  interleave) saves no element it has computed but not yet handed out: it saves its input's state as it was
  *before* the first element not yet delivered (captured when that work was pulled) and how many outputs of
  that work were delivered already; a restored stage pulls again from there and drops those outputs.
- **Values only where nothing can be re-read.** A buffer of elements (shuffle) saves the elements themselves
  (``encode_value``) unless its input can re-read them by position.
- **Errors are not saved.** A state points at the element that failed, so a restored pipeline over the same
  data meets the same error again, at the same place.
- **Same pipeline.** Every state names its stage's op (``traits.op``); restoring into a pipeline whose stage
  differs raises ``InvalidArgumentError`` naming the stage (``check_stage``).
- A stage that cannot save (a generator that is not restartable, ...) raises ``UnimplementedError`` that says
  why, at ``get_state()``: never a state that would restore wrongly.

``encode_value`` / ``decode_value`` turn element values (numpy arrays and scalars, bytes, nests, sparse
arrays) into JSON-able nests and back, bit for bit.
"""

from __future__ import annotations

import abc
import base64
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from fastinput import errors

STATE_VERSION = 1
"""The version of the state format ``fi.Iterator.get_state()`` writes; a state of another version is refused."""


def stage_state(op: str, own: dict[str, Any], inputs: list[Any]) -> dict[str, Any]:
    """A stage's state: its op, its own fields, its inputs' states (in input order)."""
    return {"stage": op, **own, "inputs": inputs}


def with_pending_error(state: dict[str, Any], pending: BaseException | None) -> dict[str, Any]:
    """``state`` with the error its stage holds for the next call, if any.

    A stage that hands out a chunk of several elements and meets an error making the next one keeps that error for
    its next call; its input already stands past the error, so a state saved then would lose it. Saved beside the
    state (its type and message, as tf.data saves a buffered error's code and message), it is raised again at the
    same place by the restored stage (``pending_error_of``).
    """
    if pending is None:
        return state
    kind = type(pending)
    return {**state, "pending_error": {"type": f"{kind.__module__}.{kind.__qualname__}", "message": str(pending)}}


def pending_error_of(state: dict[str, Any]) -> Exception | None:
    """The error ``with_pending_error`` saved, rebuilt: its own type where that is an exception class already
    imported and built from a message alone, else a ``FastInputError`` naming the type. Nothing is imported."""
    saved = state.get("pending_error")
    if saved is None:
        return None
    if not (isinstance(saved, dict) and isinstance(saved.get("type"), str) and isinstance(saved.get("message"), str)):
        raise errors.InvalidArgumentError(f"set_state: the pending error saved ({saved!r}) is not a type and a "
                                          "message: the state is damaged")
    module_name, _, qualname = saved["type"].rpartition(".")
    kind: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        kind = getattr(kind, part, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(saved["message"])
        except Exception:  # noqa: BLE001 - a constructor that wants more than a message: the fallback below
            pass
    return errors.FastInputError(f"{saved['type']}: {saved['message']} (an error met before the state was saved)")


def check_stage(state: Any, op: str, name: str, inputs: int | None = None) -> dict[str, Any]:
    """``state`` if it is a state of a stage ``op`` (with ``inputs`` input states, if given), else an
    ``InvalidArgumentError`` saying which stage of the running pipeline differs from the saved one."""
    if not isinstance(state, dict) or "stage" not in state:
        raise errors.InvalidArgumentError(f"set_state: {name}: the saved state has no stage here (got "
                                          f"{type(state).__name__}): it was saved from a different pipeline")
    if state["stage"] != op:
        raise errors.InvalidArgumentError(f"set_state: the pipeline differs from the one saved: stage {name} is "
                                          f"{op!r} here, {state['stage']!r} in the saved state")
    saved_inputs = state.get("inputs", [])
    if inputs is not None and len(saved_inputs) != inputs:
        raise errors.InvalidArgumentError(f"set_state: the pipeline differs from the one saved: stage {name} reads "
                                          f"{inputs} input(s) here, {len(saved_inputs)} in the saved state")
    return state


class Deferred:
    """A part of a state that is encoded only when the state is written out (``fi.Iterator.get_state()``).

    A stage that works ahead captures its input's state at every pull; a shuffle buffer of 10,000 records encoded
    at each pull would cost more than the work. So a stage puts the expensive part of its state here, as a
    function over a snapshot of its values taken now (a list copy: references, not bytes), and
    ``resolve_state`` calls it once, for the one state that is kept.
    """

    __slots__ = ("_encode",)

    def __init__(self, encode: Callable[[], Any]) -> None:
        self._encode = encode

    def encode(self) -> Any:
        return self._encode()


def resolve_state(state: Any) -> Any:
    """``state`` with every ``Deferred`` part encoded: plain JSON-able data."""
    if isinstance(state, Deferred):
        return resolve_state(state.encode())
    if isinstance(state, dict):
        return {key: resolve_state(value) for key, value in state.items()}
    if isinstance(state, list):
        return [resolve_state(value) for value in state]
    return state


# -- element values ------------------------------------------------------------------------------------------


class SavedValue(abc.ABC):
    """An element value that is not a nest of arrays (each dataset a ``window`` yields) and says how it is saved.

    ``encode()`` gives a JSON-able body; the subclass's ``decode(body)`` makes the value again. Each subclass is
    registered under its class name, which the saved value names and ``decode_value`` looks up.
    """

    kinds: ClassVar[dict[str, type[SavedValue]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        SavedValue.kinds[cls.__name__] = cls

    @abc.abstractmethod
    def encode(self) -> Any:
        """This value as a JSON-able nest (``encode_value`` of its parts)."""

    @classmethod
    @abc.abstractmethod
    def decode(cls, body: Any) -> SavedValue:
        """The value ``encode`` gave ``body`` for."""


def encode_value(value: Any) -> Any:
    """An element (or any nest of its leaves) as a JSON-able nest that ``decode_value`` turns back into it exactly."""
    from fastinput.structure import RaggedArray, SparseArray

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, np.generic):
        return {"scalar": _encode_array(np.asarray(value))}
    if isinstance(value, np.ndarray):
        return {"array": _encode_array(value)}
    if isinstance(value, SparseArray):
        return {"sparse": [encode_value(value.indices), encode_value(value.values), encode_value(value.dense_shape)]}
    if isinstance(value, RaggedArray):
        return {"ragged": [encode_value(value.values), encode_value(value.row_splits)]}
    if isinstance(value, dict):
        return {"dict": [[encode_value(key), encode_value(item)] for key, item in value.items()]}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        raise errors.UnimplementedError(f"get_state: a namedtuple ({type(value).__name__}) in a saved buffer cannot "
                                        "be restored by name; use a dict or a tuple")
    if isinstance(value, (tuple, list)):
        return {"tuple" if isinstance(value, tuple) else "list": [encode_value(item) for item in value]}
    if isinstance(value, SavedValue):
        return {"value": [type(value).__name__, value.encode()]}
    raise errors.UnimplementedError(f"get_state: cannot save a value of type {type(value).__name__} held by the "
                                    "pipeline (numpy arrays, scalars, bytes, str and nests of them can be saved)")


def decode_value(encoded: Any) -> Any:
    """The value ``encode_value`` encoded."""
    from fastinput.structure import RaggedArray, SparseArray

    if not isinstance(encoded, dict):
        return encoded
    (kind, body), = encoded.items()
    if kind == "bytes":
        return base64.b64decode(body)
    if kind == "scalar":
        return _decode_array(body)[()]
    if kind == "array":
        return _decode_array(body)
    if kind == "sparse":
        indices, values, shape = (decode_value(part) for part in body)
        return SparseArray(indices, values, shape)
    if kind == "ragged":
        values, splits = (decode_value(part) for part in body)
        return RaggedArray(values, splits)
    if kind == "dict":
        return {decode_value(key): decode_value(item) for key, item in body}
    if kind == "tuple":
        return tuple(decode_value(item) for item in body)
    if kind == "list":
        return [decode_value(item) for item in body]
    if kind == "value" and body[0] in SavedValue.kinds:
        return SavedValue.kinds[body[0]].decode(body[1])
    raise errors.InvalidArgumentError(f"set_state: unknown value kind {kind!r} in the saved state")


def _encode_array(array: np.ndarray) -> dict[str, Any]:
    if array.dtype == object:  # strings: bytes objects
        return {"dtype": "object", "shape": list(array.shape),
                "items": [encode_value(item) for item in array.reshape(-1).tolist()]}
    data = np.ascontiguousarray(array)  # 1-d for a 0-d array: the shape is the array's own
    return {"dtype": data.dtype.str, "shape": list(array.shape),
            "data": base64.b64encode(data.tobytes()).decode("ascii")}


def _decode_array(body: dict[str, Any]) -> np.ndarray:
    shape = tuple(body["shape"])
    if body["dtype"] == "object":
        out = np.empty(len(body["items"]), dtype=object)
        out[:] = [decode_value(item) for item in body["items"]]
        return out.reshape(shape)
    return np.frombuffer(base64.b64decode(body["data"]), dtype=np.dtype(body["dtype"])).reshape(shape).copy()


def encode_rng(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy random generator's state, JSON-able (its bit generator's own state dict)."""
    return _jsonable(rng.bit_generator.state)


def decode_rng(state: dict[str, Any]) -> np.random.Generator:
    """The generator ``encode_rng`` saved, in the same state."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value
