"""The comparison harness: one pipeline description, run by tf.data and by fastinput, outcomes compared.

Pipelines are described once (:mod:`pipeline`). :func:`run` iterates a pipeline the way a tf.data user does, carrying
on after an error as tf.data's iterator does, and records an :class:`Outcome`: whether construction raised, then every
event (an element in canonical form, an error's kind, the end of sequence). :func:`compare` compares two outcomes
exactly, as multisets (shuffle, ``deterministic=False``), or per epoch as multisets; a :class:`Mismatch` prints the
pipeline as code and both outputs side by side.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tests.conformance.pipeline import Pipeline, Step

if TYPE_CHECKING:
    from tests.conformance.differences import Difference

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MAX_EVENTS = 2000
"""Events recorded per run before the output counts as endless (``truncated``)."""


# -- canonical values ----------------------------------------------------------------------


class Leaf(NamedTuple):
    """One tensor: its dtype name ("string" for bytes), its shape and its values in order."""

    dtype: str
    shape: tuple[int, ...]
    values: tuple[Any, ...]

    def __repr__(self) -> str:
        if self.dtype == "string":
            body = repr(self.values[0]) if self.shape == () else repr(list(self.values))
            return body if self.shape in ((), (len(self.values),)) else f"{body}{list(self.shape)}"
        if self.shape == ():
            body = repr(self.values[0])
        else:
            body = "[" + " ".join(map(str, self.values)) + "]"
            body += "" if len(self.shape) == 1 else f".reshape{self.shape}"
        return body if self.dtype in ("int64",) else f"{body}:{self.dtype}"


def canonical(x: Any) -> Any:
    """A hashable, comparable form of one element of either library."""
    if type(x).__name__ in ("SparseArray", "SparseTensor", "SparseTensorValue"):
        return ("sparse", canonical(np.asarray(x.indices)), canonical(np.asarray(x.values)),
                canonical(np.asarray(x.dense_shape)))
    if isinstance(x, dict):
        return ("dict", tuple((k, canonical(v)) for k, v in sorted(x.items())))
    if isinstance(x, tuple):
        return ("tuple", tuple(canonical(v) for v in x))
    if isinstance(x, list):
        return ("list", tuple(canonical(v) for v in x))
    if isinstance(x, bytes):
        return Leaf("string", (), (bytes(x),))
    if isinstance(x, str):
        return Leaf("str", (), (x,))
    array = np.asarray(x)
    if array.dtype == object:
        values = tuple(bytes(v) if isinstance(v, bytes) else v for v in array.ravel().tolist())
        kind = "string" if all(isinstance(v, bytes) for v in values) else "object"
        return Leaf(kind, array.shape, values)
    if array.dtype.kind == "S":
        return Leaf(f"bytes_{array.dtype.str}", array.shape, tuple(array.ravel().tolist()))
    values = tuple("nan" if isinstance(v, float) and v != v else v for v in array.ravel().tolist())
    order = "" if array.dtype.isnative else f" ({array.dtype.byteorder})"  # tf.data's are always native
    return Leaf(array.dtype.name + order, array.shape, values)


def render(value: Any) -> str:
    """A canonical element, compactly."""
    if isinstance(value, Leaf):
        return repr(value)
    tag, body = value[0], value[1:]
    if tag == "tuple":
        return "(" + ", ".join(render(v) for v in body[0]) + ("," if len(body[0]) == 1 else "") + ")"
    if tag == "list":
        return "list[" + ", ".join(render(v) for v in body[0]) + "]"
    if tag == "dict":
        return "{" + ", ".join(f"{k}: {render(v)}" for k, v in body[0]) + "}"
    return f"Sparse(indices={render(body[0])}, values={render(body[1])}, shape={render(body[2])})"


# -- running ----------------------------------------------------------------------------------


class Event(NamedTuple):
    """One step of the output: ``("value", element)``, ``("error", kind)``, ``("end", None)`` or
    ``("truncated", None)``."""

    what: str
    value: Any

    def __repr__(self) -> str:
        if self.what == "value":
            return render(self.value)
        if self.what == "error":
            return f"!{self.value}"
        return self.what.upper()


END = Event("end", None)
TRUNCATED = Event("truncated", None)


@dataclass
class Outcome:
    """What one library did with a pipeline."""

    construct_error: str | None = None
    events: list[Event] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    spec: Any = None
    """tf.data's element spec in canonical form (``canonical_spec``); recorded for tf.data only."""

    def __repr__(self) -> str:
        if self.construct_error is not None:
            return f"raises at construction: {self.construct_error}"
        return " ".join(map(repr, self.events))


_TF_KINDS = {"InvalidArgumentError": "InvalidArgument", "OutOfRangeError": "OutOfRange", "NotFoundError": "NotFound",
             "DataLossError": "DataLoss", "UnknownError": "Unknown", "ResourceExhaustedError": "ResourceExhausted",
             "UnimplementedError": "Unimplemented", "FailedPreconditionError": "FailedPrecondition"}


def error_kind(exc: BaseException) -> str:
    """The error's class in tf.data's terms (user exceptions map as ``tf.py_function`` maps them)."""
    name = type(exc).__name__
    if name in _TF_KINDS and "tensorflow" in type(exc).__module__:
        return _TF_KINDS[name]
    if isinstance(exc, ValueError | TypeError | StopIteration):
        return "InvalidArgument"
    if isinstance(exc, FileNotFoundError):
        return "NotFound"
    if name == "DataLossError":
        return "DataLoss"
    if isinstance(exc, IndexError):
        return "OutOfRange"
    return "Unknown"


def iterate(ds: Any, lib: str, outcome: Outcome, max_events: int) -> None:
    """Iterate ``ds`` (a dataset of ``lib``, "tf" or "fi") to its end or ``max_events``, recording each event in
    ``outcome`` and carrying on after errors as tf.data's iterator does."""
    try:
        it = iter(ds)
    except Exception as exc:  # an error when the iterator is made is an error at element 0
        outcome.events += [Event("error", error_kind(exc)), END]
        outcome.details.append(f"iter(): {type(exc).__name__}: {str(exc)[:200]}")
        return
    try:
        while len(outcome.events) < max_events:
            try:
                element = next(it)
            except StopIteration:
                outcome.events.append(END)
                return
            except Exception as exc:
                outcome.events.append(Event("error", error_kind(exc)))
                outcome.details.append(f"{len(outcome.events) - 1}: {type(exc).__name__}: "
                                       f"{str(exc).splitlines()[0][:200] if str(exc) else ''}")
                continue
            if lib == "tf":
                element = _tf_to_numpy(element)
            outcome.events.append(Event("value", canonical(element)))
        outcome.events.append(TRUNCATED)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _tf_to_numpy(element: Any) -> Any:
    import tensorflow as tf

    def leaf(x: Any) -> Any:
        if isinstance(x, tf.SparseTensor):
            return tf.compat.v1.SparseTensorValue(x.indices.numpy(), x.values.numpy(), x.dense_shape.numpy())
        return x.numpy()

    return tf.nest.map_structure(leaf, element)


_TF_OUTCOMES: dict[str, Outcome] = {}
"""tf.data's outcomes by pipeline code: the element-spec tests reuse what the output tests ran."""


def tf_outcome(pipeline: Pipeline, shuffle_and_repeat_fusion: bool = True) -> Outcome:
    """``run(pipeline, "tf")``, once per pipeline (and fusion setting) and process."""
    key = repr(pipeline) if shuffle_and_repeat_fusion else f"{pipeline!r} [no shuffle_and_repeat_fusion]"
    if key not in _TF_OUTCOMES:
        _TF_OUTCOMES[key] = run(pipeline, "tf", shuffle_and_repeat_fusion=shuffle_and_repeat_fusion)
    return _TF_OUTCOMES[key]


def run(pipeline: Pipeline, lib: str, max_events: int = MAX_EVENTS, shuffle_and_repeat_fusion: bool = True) -> Outcome:
    """Build ``pipeline`` for ``lib`` and iterate it to the end, carrying on after errors."""
    outcome = Outcome()
    with tempfile.TemporaryDirectory(prefix="conformance-") as workdir:
        try:
            ds = pipeline.build(lib, workdir)
        except Exception as exc:
            outcome.construct_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            return outcome
        if lib == "tf":
            outcome.spec = canonical_spec(ds.element_spec)
            if not shuffle_and_repeat_fusion:
                ds = ds.with_options(_without_shuffle_and_repeat_fusion())
        iterate(ds, lib, outcome, max_events)
    return outcome


# -- comparing -------------------------------------------------------------------------------------


@dataclass
class Mismatch:
    pipeline: Pipeline
    mode: str
    reason: str
    expected: Outcome
    actual: Outcome

    def __str__(self) -> str:
        lines = [f"pipeline: {self.pipeline!r}", f"compared: {self.mode}", f"mismatch: {self.reason}",
                 f"  tf.data:   {_shorten(repr(self.expected))}", f"  fastinput: {_shorten(repr(self.actual))}"]
        for name, outcome in (("tf.data", self.expected), ("fastinput", self.actual)):
            lines += [f"  {name} error: {d}" for d in outcome.details[:3]]
        return "\n".join(lines)


def _shorten(text: str, limit: int = 1500) -> str:
    return text if len(text) <= limit else text[:limit] + f" ... ({len(text) - limit} more characters)"


def compare(pipeline: Pipeline, expected: Outcome, actual: Outcome, mode: str = "exact",
            epoch_ends: Callable[[], list[int] | None] | None = None) -> Mismatch | None:
    """``None`` when the outcomes agree under ``mode``.

    "exact": event by event. "multiset": the same events in any order (``deterministic=False``).
    "shuffle:N" (a shuffle, then N epochs): errors at the same places and the end alike, and the elements
    of each of the N epochs the same multiset (tf.data's shuffle hands out one epoch's elements before the
    next one's; its errors come when the buffer is filled, which does not depend on the seed). Epochs are
    taken to be of one length; where that split differs, ``epoch_ends()`` (if given) says how many elements
    tf.data gives by the end of each epoch but the last, and the epochs are compared so: a ``cache`` replays
    its first epoch without the input's errors, so a batch after it may make fewer batches in the first epoch
    (seed 1448).
    """

    def mismatch(reason: str) -> Mismatch:
        return Mismatch(pipeline, mode, reason, expected, actual)

    if (expected.construct_error is None) != (actual.construct_error is None):
        which = "tf.data" if expected.construct_error is not None else "fastinput"
        return mismatch(f"only {which} raises at construction")
    if expected.construct_error is not None:
        return None
    e, a = expected.events, actual.events
    if mode == "exact":
        for i, (x, y) in enumerate(itertools.zip_longest(e, a)):
            if x != y:
                return mismatch(f"event {i}: tf.data {x!r}, fastinput {y!r}")
        return None
    if mode == "multiset":
        return _multiset_mismatch(e, a, mismatch)
    pattern_e = [x.what for x in e]
    pattern_a = [y.what for y in a]
    if pattern_e != pattern_a or [x for x in e if x.what != "value"] != [y for y in a if y.what != "value"]:
        return mismatch("errors and elements come in a different pattern (V = an element): tf.data "
                        f"{_pattern(e)}, fastinput {_pattern(a)}")
    values_e = [x for x in e if x.what == "value"]
    values_a = [y for y in a if y.what == "value"]
    epochs = int(mode.split(":")[1])
    size = max(len(values_e) // epochs if len(values_e) % epochs == 0 else len(values_e), 1)
    equal_ends = list(range(size, len(values_e), size))
    found = _epochs_mismatch(values_e, values_a, equal_ends, mismatch)
    ends = epoch_ends() if found is not None and epoch_ends is not None else None
    if ends is not None and ends != equal_ends:
        return _epochs_mismatch(values_e, values_a, ends, mismatch)
    return found


def _epochs_mismatch(e: list[Event], a: list[Event], ends: list[int], mismatch: Any) -> Mismatch | None:
    """The first epoch whose elements are not the same multiset in both runs; ``ends``: where each epoch but the
    last ends."""
    bounds = [0, *ends, max(len(e), len(a))]
    for epoch, (start, end) in enumerate(itertools.pairwise(bounds)):
        found = _multiset_mismatch(e[start:end], a[start:end], mismatch)
        if found is not None:
            found.reason = f"epoch {epoch}: {found.reason}"
            return found
    return None


def tf_epoch_ends(pipeline: Pipeline, epochs: int, shuffle_and_repeat_fusion: bool = True) -> list[int] | None:
    """How many elements tf.data gives by the end of each of the first ``epochs - 1`` epochs of ``pipeline``,
    one that ends in ``repeat(epochs)``: its elements with ``repeat(k)`` in its place, k = 1 .. epochs - 1
    (None if it does not end so)."""
    last = pipeline.steps[-1]
    if last.op != "repeat" or last.args != (epochs,) or last.kwargs:
        return None
    ends = []
    for k in range(1, epochs):
        shorter = Pipeline((*pipeline.steps[:-1], Step("repeat", (k,))))
        ends.append(sum(x.what == "value" for x in tf_outcome(shorter, shuffle_and_repeat_fusion).events))
    return ends


def _pattern(events: list[Event]) -> str:
    return " ".join("V" if x.what == "value" else repr(x) for x in events)


def _multiset_mismatch(e: list[Event], a: list[Event], mismatch: Any) -> Mismatch | None:
    ce, ca = collections.Counter(e), collections.Counter(a)
    if ce == ca:
        return None
    missing, extra = list((ce - ca).elements()), list((ca - ce).elements())
    return mismatch(f"different multisets: fastinput lacks {missing[:10]}, has extra {extra[:10]}")


def _without_shuffle_and_repeat_fusion() -> Any:
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.shuffle_and_repeat_fusion = False
    return options


def check(pipeline: Pipeline, mode: str = "exact", differs: Difference | None = None) -> Mismatch | None:
    """Run ``pipeline`` through both libraries and compare; ``differs``: a documented difference it meets,
    which says what tf.data is run as (or how its error kinds read) to give fastinput's behaviour."""
    tf_pipeline = (differs.tf_pipeline if differs else None) or pipeline
    fusion = differs.tf_shuffle_and_repeat_fusion if differs else True
    epochs = int(mode.split(":")[1]) if mode.startswith("shuffle:") else 1
    ends = functools.partial(tf_epoch_ends, tf_pipeline, epochs, fusion) if epochs > 1 else None
    expected = tf_outcome(tf_pipeline, fusion)
    kinds = dict(differs.tf_kinds) if differs else {}
    if kinds:
        expected = dataclasses.replace(expected, events=[
            Event("error", kinds.get(e.value, e.value)) if e.what == "error" else e for e in expected.events])
    return compare(pipeline, expected, run(pipeline, "fi"), mode, ends)


# -- element specs -----------------------------------------------------------------------------------


def canonical_spec(spec: Any) -> Any:
    """A spec nest of either library as nested tuples of ``(kind, shape, dtype name)``."""
    if isinstance(spec, dict):
        return {k: canonical_spec(v) for k, v in spec.items()}
    if isinstance(spec, tuple | list) and not hasattr(spec, "dtype"):
        return tuple(canonical_spec(v) for v in spec)
    kind = "sparse" if "Sparse" in type(spec).__name__ else "tensor"
    shape = spec.shape
    if hasattr(shape, "rank"):  # tf.TensorShape
        shape = None if shape.rank is None else tuple(shape.as_list())
    elif shape is not None:
        shape = tuple(None if d is None else int(d) for d in shape)
    dtype = spec.dtype
    if hasattr(dtype, "as_numpy_dtype"):
        name = "object" if dtype.name == "string" else np.dtype(dtype.as_numpy_dtype).name
    else:
        name = np.dtype(dtype).name
    return (kind, shape, name)


def spec_mismatch(pipeline: Pipeline) -> str | None:
    """``None`` when ``ds.element_spec`` of both libraries agree (or both reject the pipeline)."""
    expected = tf_outcome(pipeline).spec
    if expected is None:  # tf.data rejects the pipeline
        return None
    with tempfile.TemporaryDirectory(prefix="conformance-spec-") as workdir:
        try:
            actual = canonical_spec(pipeline.build("fi", workdir).element_spec)
        except Exception as exc:
            return f"{pipeline!r}: fastinput's element_spec raises {type(exc).__name__}: {exc}"
    if expected != actual:
        return f"{pipeline!r}: element_spec tf.data {expected}, fastinput {actual}"
    return None
