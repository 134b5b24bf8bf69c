"""The comparison harness: one pipeline description, run by tf.data and by fastinput, outcomes compared.

A :class:`Pipeline` is written once with the tf.data method names (``P.range(10).map(FailAt(2)).batch(4)``)
and built for either library by :meth:`Pipeline.build`. Functions are :mod:`functions` objects with a
numpy and a TensorFlow face; datasets made inside ``interleave``/``flat_map`` are element templates
(:func:`element_range`, :func:`element_tensors`).

:func:`run` iterates a pipeline the way a tf.data user does, carrying on after an error as tf.data's
iterator does, and records an :class:`Outcome`: whether construction raised, then every event (an element
in canonical form, an error's kind, the end of sequence). :func:`compare` compares two outcomes exactly,
as multisets (shuffle, ``deterministic=False``), or per epoch as multisets; a :class:`Mismatch` prints the
pipeline as code and both outputs side by side.
"""

from __future__ import annotations

import collections
import copy
import inspect
import itertools
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from tests.conformance.functions import DualFn, FailAt, Gen

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LIBRARIES = ("tf", "fi")
MAX_EVENTS = 2000
"""Events recorded per run before the output counts as endless (``truncated``)."""


class _Autotune:
    def __repr__(self) -> str:
        return "AUTOTUNE"


AUTOTUNE = _Autotune()
"""Stands for ``tf.data.AUTOTUNE`` / ``fi.AUTOTUNE``."""
AUTOTUNE_VALUE = -1
"""What both libraries' AUTOTUNE is."""


@dataclass(frozen=True)
class Spec:
    """A ``TensorSpec`` argument (``from_generator(output_signature=...)``), built for each library."""

    shape: tuple[int | None, ...]
    dtype: str

    def __repr__(self) -> str:
        return f"TensorSpec({self.shape}, {self.dtype})"


@dataclass(frozen=True)
class DType:
    """A dtype argument (``range(output_type=...)``): ``tf.int32`` for tf.data, ``np.int32`` for fastinput."""

    name: str

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Sparse:
    """A sparse tensor argument: ``tf.SparseTensor`` for tf.data, ``fi.SparseArray`` for fastinput."""

    indices: tuple[tuple[int, ...], ...]
    values: tuple[int, ...]
    dense_shape: tuple[int, ...]

    def build(self, lib: str) -> Any:
        indices = np.array(self.indices, np.int64).reshape(-1, len(self.dense_shape))
        values, shape = np.array(self.values, np.int64), np.array(self.dense_shape, np.int64)
        if lib == "tf":
            import tensorflow as tf

            return tf.SparseTensor(indices, values, shape)
        import fastinput as fi

        return fi.SparseArray(indices, values, shape)


_CACHE_FILES = itertools.count()


@dataclass(frozen=True)
class CacheFile:
    """A cache file: every cache step built gets a new file (two caches never write the same file)."""

    name: str = "cache"

    def __repr__(self) -> str:
        return f"CacheFile({self.name!r})"


@dataclass(frozen=True)
class Step:
    op: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def __repr__(self) -> str:
        parts = [_code(a) for a in self.args] + [f"{k}={_code(v)}" for k, v in self.kwargs]
        if self.op == "element_range":
            return f"D.range(x % {self.args[0]})"
        if self.op == "element_tensors":
            return "D.from_tensors(x)"
        prefix = "D." if self.op in _SOURCES else "."
        return f"{prefix}{self.op}({', '.join(parts)})"


_SOURCES = {"range", "from_tensor_slices", "from_tensors", "from_generator", "zip_datasets",
            "element_range", "element_tensors"}
_METHODS = {"map", "filter", "batch", "padded_batch", "unbatch", "shuffle", "repeat", "take", "skip", "shard",
            "interleave", "flat_map", "concatenate", "enumerate", "cache", "prefetch", "map_and_batch"}


def _code(value: Any) -> str:
    if isinstance(value, np.ndarray):  # the code is also the key of tf.data's cached outcomes: keep it exact
        dtype = value.dtype.str if value.dtype.kind in "SU" else value.dtype.name
        body = f"np.array({value.ravel().tolist()!r}, {dtype!r})"
        return body if value.ndim == 1 else f"{body}.reshape{value.shape}"
    if isinstance(value, np.generic):
        return f"np.{value.dtype.name}({value.item()!r})"
    if isinstance(value, tuple):
        inner = ", ".join(_code(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_code(v)}" for k, v in value.items()) + "}"
    return repr(value)


class Pipeline:
    """A pipeline description in tf.data's method names; immutable, built per library on demand."""

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.steps = steps

    # -- sources ----------------------------------------------------------------
    @staticmethod
    def range(*args: Any, **kwargs: Any) -> Pipeline:
        return Pipeline((Step("range", args, tuple(kwargs.items())),))

    @staticmethod
    def from_tensor_slices(tensors: Any) -> Pipeline:
        return Pipeline((Step("from_tensor_slices", (tensors,)),))

    @staticmethod
    def from_tensors(tensors: Any) -> Pipeline:
        return Pipeline((Step("from_tensors", (tensors,)),))

    @staticmethod
    def from_generator(generator: Gen, output_signature: Any) -> Pipeline:
        return Pipeline((Step("from_generator", (generator,), (("output_signature", output_signature),)),))

    @staticmethod
    def zip_datasets(datasets: Any) -> Pipeline:
        """``Dataset.zip(datasets)`` with a tuple or dict of pipelines."""
        return Pipeline((Step("zip_datasets", (datasets,)),))

    # -- transformations ----------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        if name not in _METHODS:
            raise AttributeError(name)

        def method(*args: Any, **kwargs: Any) -> Pipeline:
            return Pipeline((*self.steps, Step(name, args, tuple(kwargs.items()))))

        return method

    def __repr__(self) -> str:
        return "".join(repr(step) for step in self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    # -- building -------------------------------------------------------------------
    def build(self, lib: str, workdir: str, element: Any = None) -> Any:
        """This pipeline as a ``tf.data.Dataset`` (``lib="tf"``) or a ``fi.Dataset`` (``"fi"``)."""
        dataset_class = _dataset_class(lib)
        ds = None
        for step in self.steps:
            args = [_convert(a, lib, workdir) for a in step.args]
            kwargs = {k: _convert(v, lib, workdir) for k, v in step.kwargs}
            if step.op == "element_range":
                first = element
                while isinstance(first, tuple):
                    first = first[0]
                ds = dataset_class.range(first % args[0])
            elif step.op == "element_tensors":
                ds = dataset_class.from_tensors(element)
            elif step.op == "zip_datasets":
                ds = dataset_class.zip(*args)
            elif step.op in _SOURCES:
                ds = getattr(dataset_class, step.op)(*args, **kwargs)
            elif step.op == "map_and_batch" and lib == "tf":
                fn, batch_size, *rest = args
                npc = rest[0] if rest else kwargs.pop("num_parallel_calls", AUTOTUNE_VALUE)
                drop = rest[1] if len(rest) > 1 else kwargs.pop("drop_remainder", False)
                ds = ds.map(fn, num_parallel_calls=npc, **kwargs).batch(batch_size, drop_remainder=drop)
            else:
                if lib == "fi" and _declares_output(step, getattr(ds, step.op)):
                    kwargs["output_signature"] = ds.element_spec
                ds = getattr(ds, step.op)(*args, **kwargs)
        return ds


P = Pipeline


def _declares_output(step: Step, method: Any) -> bool:
    """Whether a map of :class:`FailAt` declares its output, as ``tf.numpy_function`` makes the tf.data user do.

    FailAt returns its input unchanged; in tf.data its Python code runs in ``tf.numpy_function``, whose output
    dtypes and shapes are declared, so tf.data never calls it to learn them. fastinput's counterpart of that
    declaration is ``output_signature=`` (where ``map`` takes it): without it fastinput would call FailAt on a
    placeholder element, and FailAt may raise for the placeholder's value.
    """
    if step.op not in ("map", "map_and_batch") or not step.args or not isinstance(step.args[0], FailAt):
        return False
    if any(k == "output_signature" for k, _ in step.kwargs):
        return False
    return "output_signature" in inspect.signature(method).parameters


def element_range(k: int) -> Pipeline:
    """Template of ``interleave``'s dataset: ``range(x % k)`` for the element ``x`` (its first component)."""
    return Pipeline((Step("element_range", (k,)),))


def element_tensors() -> Pipeline:
    """Template of ``interleave``'s dataset: ``from_tensors(x)`` for the element ``x``."""
    return Pipeline((Step("element_tensors"),))


@dataclass(frozen=True)
class DatasetFn:
    """``lambda *x: template`` for interleave/flat_map; the template starts with an element source."""

    template: Pipeline

    def __repr__(self) -> str:
        return f"(lambda x: {self.template!r})"


def _dataset_class(lib: str) -> Any:
    if lib == "tf":
        import tensorflow as tf

        return tf.data.Dataset
    import fastinput as fi

    return fi.Dataset


@dataclass(frozen=True)
class _FiSpec:
    """Stands in for ``fi.TensorSpec`` where it does not exist (an object with ``shape`` and ``dtype``)."""

    shape: tuple[int | None, ...]
    dtype: Any


def _no_autograph(fn: Any) -> Any:
    """``fn`` as tf.data calls it without AutoGraph: the TensorFlow faces have no Python control flow on tensors."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(fn)


def _convert(value: Any, lib: str, workdir: str) -> Any:
    """A description's argument as the library's own value."""
    if isinstance(value, Pipeline):
        return value.build(lib, workdir)
    if isinstance(value, DatasetFn):
        template = value.template

        def make(*args: Any) -> Any:
            return template.build(lib, workdir, element=args if len(args) > 1 else args[0])

        return _no_autograph(make) if lib == "tf" else make
    if isinstance(value, DualFn):
        fn = getattr(copy.deepcopy(value), lib)
        return _no_autograph(fn) if lib == "tf" else fn
    if isinstance(value, Gen):
        return copy.deepcopy(value)
    if value is AUTOTUNE:
        return AUTOTUNE_VALUE
    if isinstance(value, Spec):
        if lib == "tf":
            import tensorflow as tf

            return tf.TensorSpec(value.shape, tf.as_dtype(value.dtype))
        import fastinput as fi

        spec_class = getattr(fi, "TensorSpec", _FiSpec)
        return spec_class(value.shape, np.dtype(object if value.dtype == "string" else value.dtype))
    if isinstance(value, DType):
        if lib == "tf":
            import tensorflow as tf

            return tf.as_dtype(value.name)
        return np.dtype(value.name).type
    if isinstance(value, Sparse):
        return value.build(lib)
    if isinstance(value, CacheFile):  # a file of its own for every cache step built
        return os.path.join(workdir, f"{lib}-{value.name}-{next(_CACHE_FILES)}")
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_convert(v, lib, workdir) for v in value)
    if isinstance(value, dict):
        return {k: _convert(v, lib, workdir) for k, v in value.items()}
    return value


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
    return Leaf(array.dtype.name, array.shape, values)


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
    """One step of the output: ``("value", element)``, ``("error", kind)``, ``("end", None)`` or ``("truncated", None)``."""

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


def _iterate(ds: Any, lib: str, outcome: Outcome, max_events: int) -> None:
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
                outcome.details.append(f"{len(outcome.events) - 1}: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
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


def tf_outcome(pipeline: Pipeline) -> Outcome:
    """``run(pipeline, "tf")``, once per pipeline and process."""
    key = repr(pipeline)
    if key not in _TF_OUTCOMES:
        _TF_OUTCOMES[key] = run(pipeline, "tf")
    return _TF_OUTCOMES[key]


def run(pipeline: Pipeline, lib: str, max_events: int = MAX_EVENTS) -> Outcome:
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
        _iterate(ds, lib, outcome, max_events)
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


def compare(pipeline: Pipeline, expected: Outcome, actual: Outcome, mode: str = "exact") -> Mismatch | None:
    """``None`` when the outcomes agree under ``mode``.

    "exact": event by event. "multiset": the same events in any order (``deterministic=False``).
    "shuffle:N" (a shuffle, then N epochs): errors at the same places and the end alike, and the elements
    of each of the N epochs the same multiset (tf.data's shuffle hands out one epoch's elements before the
    next one's; its errors come when the buffer is filled, which does not depend on the seed).
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
    size = len(values_e) // epochs if len(values_e) % epochs == 0 else len(values_e)
    for start in range(0, len(values_e), max(size, 1)):
        found = _multiset_mismatch(values_e[start:start + size], values_a[start:start + size], mismatch)
        if found is not None:
            found.reason = f"epoch {start // max(size, 1)}: {found.reason}"
            return found
    return None


def _pattern(events: list[Event]) -> str:
    return " ".join("V" if x.what == "value" else repr(x) for x in events)


def _multiset_mismatch(e: list[Event], a: list[Event], mismatch: Any) -> Mismatch | None:
    ce, ca = collections.Counter(e), collections.Counter(a)
    if ce == ca:
        return None
    missing, extra = list((ce - ca).elements()), list((ca - ce).elements())
    return mismatch(f"different multisets: fastinput lacks {missing[:10]}, has extra {extra[:10]}")


def check(pipeline: Pipeline, mode: str = "exact") -> Mismatch | None:
    """Run ``pipeline`` through both libraries and compare."""
    return compare(pipeline, tf_outcome(pipeline), run(pipeline, "fi"), mode)


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
