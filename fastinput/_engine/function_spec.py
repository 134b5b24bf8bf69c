"""Learning the output spec of a user function (``map``, ``interleave``) without running the pipeline.

tf.data traces a function once, on symbolic tensors. fastinput calls it on
placeholder elements built from the input's spec, twice: the first time
with unknown dimensions 1 long and every value 0 (``b""`` for strings), the
second with them 2 long and every value 1 (``b"0"``). Output dimensions that
differ between the two calls are unknown (None); so a length that follows
an input's length or value (``np.arange(n)``) is found unknown, as tf.data
finds it. During the calls ``fastinput.spec.tracing()`` is true, and
fastinput's own kernels (``parse_example``, ``fi.image``) return
placeholders of the right spec instead of parsing ``b""``.

If a call raises (a function that cannot take a placeholder), or the two
calls disagree on the output's structure, the spec is unknown
(``UnknownSpecError``): ``element_spec`` says so and asks for
``output_signature=``; checks made while building skip the stage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput import structure
from fastinput.errors import InvalidArgumentError
from fastinput.spec import (
    STRING,
    DatasetSpec,
    RaggedSpec,
    SparseSpec,
    TensorSpec,
    UnknownSpecError,
    most_specific_common,
    spec_of,
    tracing_with,
)

PROBES = ((1, 0), (2, 1))
"""(length of the unknown dimensions, value of every element) of each placeholder call."""


def placeholder(spec: Any, size: int, fill: int) -> Any:
    """An element of ``spec``: unknown dimensions ``size`` long, every value ``fill`` (strings: ``b""`` or
    ``b"0"``), SparseArrays empty, RaggedArrays with rows ``size`` long."""
    def leaf(leaf_spec: Any) -> Any:
        if isinstance(leaf_spec, DatasetSpec):  # a window's dataset: one placeholder element
            return leaf_spec.placeholder(placeholder(leaf_spec.element_spec, size, fill))
        if leaf_spec.shape is None:
            raise UnknownSpecError(f"the input has a component of unknown rank ({leaf_spec})")
        shape = tuple(size if d is None else d for d in leaf_spec.shape)
        if isinstance(leaf_spec, RaggedSpec):
            rows = np.full(shape[0], size, dtype=leaf_spec.row_splits_dtype)
            values = placeholder(TensorSpec((shape[0] * size, *shape[2:]), leaf_spec.dtype), size, fill)
            return structure.RaggedArray.from_row_lengths(values, rows, leaf_spec.row_splits_dtype)
        if isinstance(leaf_spec, SparseSpec):
            return structure.SparseArray(np.zeros((0, len(shape)), np.int64), np.zeros(0, leaf_spec.dtype), shape)
        if leaf_spec.dtype == STRING:
            value = b"0" if fill else b""
            return value if not shape else np.full(shape, value, dtype=object)
        return leaf_spec.dtype.type(fill) if not shape else np.full(shape, fill, dtype=leaf_spec.dtype)

    return structure.map_structure(leaf, spec)


DECLARE = "pass output_signature= to declare what it returns"


def trace(fn: Callable[[Any], Any], input_spec: Any, where: str, remedy: str = DECLARE) -> list[Any]:
    """``fn``'s results on the placeholder elements of ``input_spec`` (see ``PROBES``), under ``tracing``;
    ``remedy`` says what the user can do when a call raises."""
    results = []
    for size, fill in PROBES:
        element = placeholder(input_spec, size, fill)
        with tracing_with(size), np.errstate(all="ignore"):
            try:
                results.append(fn(element))
            except Exception as exc:
                raise UnknownSpecError(
                    f"{where}: the element spec cannot be learnt: the function raised {type(exc).__name__}: {exc} "
                    f"when called on a placeholder element of spec {input_spec}; {remedy}") from exc
    return results


def merge_traces(specs: list[Any], where: str, remedy: str = DECLARE) -> Any:
    """The most specific spec that every trace's output fits."""
    merged = specs[0]
    for other in specs[1:]:
        try:
            merged = most_specific_common(merged, other, where)
        except InvalidArgumentError as exc:
            raise UnknownSpecError(
                f"{where}: the element spec cannot be learnt: the function's output structure or dtypes depend on "
                f"its input values ({specs[0]} and {other}); {remedy}") from exc
    return merged


def output_spec(fn: Callable[[Any], Any], input_spec: Any, where: str) -> Any:
    """The spec of ``fn``'s outputs (already normalised as elements) on elements of ``input_spec``."""
    outputs = trace(fn, input_spec, where)
    for output in outputs:
        if any(leaf is None for leaf in structure.flatten(output)):
            raise InvalidArgumentError(f"{where}: the function returned None; it must return the new element "
                                       "(a nest of arrays)")
    try:
        specs = [spec_of(output) for output in outputs]
    except UnknownSpecError as exc:
        raise UnknownSpecError(f"{where}: the element spec cannot be learnt: the function's output is not a "
                               f"nest of tensor values ({exc}); {DECLARE}") from exc
    return merge_traces(specs, where)
