"""Holding a user function's outputs to its declared ``output_signature`` (``map``, ``map_and_batch``).

A declared spec is a promise the rest of the pipeline relies on (``element_spec``, ``as_tf_dataset``, the
preallocated rows of a batch), and fastinput does not call a declared function while building, so an output
of another structure, dtype or shape is caught as it is made: it becomes an ``InvalidArgumentError`` in that
element's place, and the stage's error rules go on from there. tf.data raises the same class for the nearest
cases it has (``map`` has no ``output_signature`` there): a ``tf.numpy_function`` output of another dtype or
shape than its declared ``Tout`` (in ``map``), a ``from_generator`` element of another structure than its
``output_signature``. Nothing is cast or reshaped: elements never change.

A stage without a declaration pays nothing (only declared functions are wrapped); one with it pays, per
element, a structure check where the spec is nested and a type, dtype and shape comparison per leaf.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput import structure
from fastinput.errors import InvalidArgumentError
from fastinput.spec import STRING, TensorSpec, from_value


def output_checker(signature: Any, where: str) -> Callable[[Any], Any]:
    """``check(output)``: ``output`` itself (an element, already normalised) when it fits the spec nest
    ``signature``; else ``InvalidArgumentError`` naming ``where`` (the stage), the declared and the actual spec."""
    fits = output_fits(signature)

    def check(output: Any) -> Any:
        if fits(output):
            return output
        raise InvalidArgumentError(f"{where}: the function returned {_describe(output)}, which is not its declared "
                                   f"output_signature {signature}")

    return check


def output_fits(signature: Any) -> Callable[[Any], bool]:
    """Whether a value fits the spec nest ``signature``: the same containers (a list declared stands for a tuple,
    as a returned list is one) and dict keys, each leaf fitting its spec; one closure per node, built once."""
    if isinstance(signature, dict):
        keys = signature.keys()
        items = [(key, output_fits(value)) for key, value in signature.items()]

        def fits_dict(value: Any) -> bool:
            return isinstance(value, dict) and value.keys() == keys and all(fit(value[key]) for key, fit in items)

        return fits_dict
    if isinstance(signature, (tuple, list)):
        parts = [output_fits(value) for value in signature]
        n = len(parts)
        scalar_types = tuple(_scalar_type(value) for value in signature)  # numpy scalars: their types say it all

        def fits_sequence(value: Any) -> bool:
            if type(value) is tuple and tuple(map(type, value)) == scalar_types:
                return True
            if not isinstance(value, (tuple, list)) or len(value) != n:
                return False
            for fit, part in zip(parts, value):
                if not fit(part):
                    return False
            return True

        return fits_sequence
    return _leaf_fits(signature)


def _leaf_fits(spec: Any) -> Callable[[Any], bool]:
    """Whether one output leaf fits ``spec``; numpy values of a dense numeric spec take a short path."""
    def fits(value: Any) -> bool:
        try:
            return spec.is_compatible_with(value)
        except InvalidArgumentError:  # not a tensor value at all (a tuple where a leaf was declared, a str, ...)
            return False

    if type(spec) is not TensorSpec or spec.dtype == STRING or spec.shape is None:
        return fits
    dtype, shape = spec.dtype, spec.shape
    scalar_type = _scalar_type(spec)  # a numpy scalar of this type fits: one identity test

    def fits_array(value: Any) -> bool:
        kind = type(value)
        if kind is scalar_type:
            return True
        if kind is np.ndarray or isinstance(value, np.generic):
            dims = value.shape
            return value.dtype == dtype and (dims == shape or (
                len(dims) == len(shape) and all(d is None or d == n for d, n in zip(shape, dims))))
        return fits(value)

    return fits_array


def _scalar_type(spec: Any) -> type | None:
    """The numpy scalar type whose values fit ``spec`` (a dense numeric scalar spec), else None."""
    if type(spec) is TensorSpec and spec.shape == () and spec.dtype != STRING:
        return spec.dtype.type
    return None


def _describe(output: Any) -> Any:
    """``output``'s spec nest, with the type name in place of any leaf that is not a tensor value."""
    def leaf(value: Any) -> Any:
        try:
            return from_value(value)
        except InvalidArgumentError:
            return f"a {type(value).__name__}"

    return structure.map_structure(leaf, output)
