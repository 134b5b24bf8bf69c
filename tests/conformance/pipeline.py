"""Pipeline descriptions written once, built as a ``tf.data.Dataset`` or as a ``fi.Dataset``.

A :class:`Pipeline` is written with tf.data's method names (``P.range(10).map(FailAt(2)).batch(4)``) and
built for either library by :meth:`Pipeline.build`. Functions are :mod:`functions` objects with a numpy and
a TensorFlow face; datasets made inside ``interleave``/``flat_map`` are element templates
(:func:`element_range`, :func:`element_tensors`); arguments that differ between the libraries (AUTOTUNE,
dtypes, specs, sparse tensors, cache files) are small sentinels converted when the pipeline is built.
Its ``repr`` is the pipeline as code (``D`` standing for either library's Dataset), and keys tf.data's
cached outcomes, so it keeps every argument exactly.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import inspect
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.conformance.functions import DualFn, FailAt, Gen

MAP_WORKERS = {"workers": "thread"}
"""Where fastinput's maps (``map``, ``map_and_batch``) run in the pipelines built here: the conformance suite runs
once on threads and again on worker processes (``map_workers``), which must not change a single event."""


@contextlib.contextmanager
def map_workers(workers: str) -> Iterator[None]:
    """Build fastinput's maps with ``workers=`` (``"process"``: in worker processes) inside the block."""
    before = MAP_WORKERS["workers"]
    MAP_WORKERS["workers"] = workers
    try:
        yield
    finally:
        MAP_WORKERS["workers"] = before


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


LAYOUTS = ("reversed", "strided", "fortran", "byteswapped")
"""How :class:`Laid` may lay an array out in memory."""


class Laid:
    """An array argument laid out otherwise than C-contiguous and native, with the same values: its rows in reverse
    memory order (``reversed``), every other row of a larger array (``strided``), Fortran order (``fortran``; C
    order for one dimension), or the other byte order (``byteswapped``). Both libraries get the same array: fast
    paths over arrays (fastinput's rows path) must handle such input or decline it."""

    def __init__(self, values: np.ndarray, layout: str) -> None:
        self.values = values
        self.layout = layout

    def __repr__(self) -> str:
        return f"laid({_code(self.values)}, {self.layout!r})"

    def build(self) -> np.ndarray:
        values = self.values
        if self.layout == "reversed":
            return np.ascontiguousarray(values[::-1])[::-1]
        if self.layout == "strided":
            wider = np.zeros((2 * len(values), *values.shape[1:]), values.dtype)
            wider[::2] = values
            return wider[::2]
        if self.layout == "fortran":
            return np.asfortranarray(values)
        return values.astype(values.dtype.newbyteorder())


_CACHE_FILES: dict[str, itertools.count] = collections.defaultdict(itertools.count)
"""Cache files made so far, per working folder: the same pipeline built in the same folder, in any process, names
the same files (the checkpoint tests restore a pipeline in a fresh process, where its cache must be found)."""


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


_SOURCES = {"range", "from_tensor_slices", "from_tensors", "from_generator", "zip_datasets", "choose_from_datasets",
            "sample_from_datasets", "element_range", "element_tensors"}
_METHODS = {"map", "filter", "batch", "padded_batch", "unbatch", "shuffle", "repeat", "take", "skip", "shard",
            "interleave", "flat_map", "concatenate", "enumerate", "cache", "prefetch", "map_and_batch",
            "take_while", "unique", "ignore_errors", "sparse_batch"}


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

    @staticmethod
    def choose_from_datasets(datasets: tuple[Pipeline, ...], choice_dataset: Pipeline,
                             stop_on_empty_dataset: bool = True) -> Pipeline:
        """``Dataset.choose_from_datasets``: each element from the input the next choice names."""
        return Pipeline((Step("choose_from_datasets", (datasets, choice_dataset),
                              (("stop_on_empty_dataset", stop_on_empty_dataset),)),))

    @staticmethod
    def sample_from_datasets(datasets: tuple[Pipeline, ...], weights: tuple[float, ...] | None, seed: int,
                             stop_on_empty_dataset: bool) -> Pipeline:
        """``Dataset.sample_from_datasets``, compared through the choices it made (``tests.conformance.sample``)."""
        return Pipeline((Step("sample_from_datasets", (datasets,), (("weights", weights), ("seed", seed),
                                                                   ("stop_on_empty_dataset", stop_on_empty_dataset))),))

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
            elif step.op == "choose_from_datasets":  # tf.data takes a list of datasets
                ds = dataset_class.choose_from_datasets(list(args[0]), args[1], **kwargs)
            elif step.op == "sample_from_datasets":
                ds = dataset_class.sample_from_datasets(list(args[0]), **kwargs)
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
                if lib == "fi" and step.op in ("map", "map_and_batch") and MAP_WORKERS["workers"] != "thread":
                    kwargs["workers"] = MAP_WORKERS["workers"]
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
    if isinstance(value, Laid):
        return value.build()
    if isinstance(value, CacheFile):  # a file of its own for every cache step built
        return os.path.join(workdir, f"{lib}-{value.name}-{next(_CACHE_FILES[workdir])}")
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_convert(v, lib, workdir) for v in value)
    if isinstance(value, dict):
        return {k: _convert(v, lib, workdir) for k, v in value.items()}
    return value
