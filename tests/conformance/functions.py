"""User functions written once, runnable by both libraries.

A conformance case must hand the *same* function to ``tf.data`` and to fastinput. tf.data traces its map
functions over symbolic tensors, fastinput calls them on numpy values, so each function here is a small,
picklable class with two faces: ``fi(*args)`` (numpy, what a fastinput user writes) and ``tf(*args)``
(TensorFlow ops, what a tf.data user writes), with the same results, dtypes and shapes. Errors are
injected by :class:`FailAt`, which raises :class:`InjectedError` for chosen values; in tf.data it runs
through ``tf.numpy_function``, the way a tf.data user calls Python code.

Every class has a ``repr`` that reads like the call that made it, so a pipeline prints as code.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class InjectedError(ValueError):
    """The error that :class:`FailAt` raises (a ValueError, so tf.data reports it as InvalidArgumentError)."""


def _tf() -> Any:
    import tensorflow as tf

    return tf


def _element(args: tuple[Any, ...]) -> Any:
    """Both libraries unpack a tuple element into arguments; put it back together."""
    return args if len(args) > 1 else args[0]


def _first_leaf(args: tuple[Any, ...]) -> Any:
    """The first tensor of the element (the first component, recursively)."""
    first = args[0]
    while isinstance(first, tuple | list | dict):  # a dict's first key in sorted order, as ``tf.nest`` flattens it
        first = first[min(first)] if isinstance(first, dict) else first[0]
    return first


def _numeric(x: Any) -> bool:
    return not isinstance(x, bytes | str) and np.asarray(x).dtype.kind in "iufcb"


class DualFn:
    """A function with a numpy face (``fi``) and a TensorFlow face (``tf``)."""

    def fi(self, *args: Any) -> Any:
        raise NotImplementedError

    def tf(self, *args: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(repr(v) for v in vars(self).values())
        return f"{type(self).__name__}({params})"


class Identity(DualFn):
    def fi(self, *args: Any) -> Any:
        return _element(args)

    def tf(self, *args: Any) -> Any:
        return _element(args)


class AddConst(DualFn):
    """Adds ``k`` to every numeric leaf, keeping its dtype (``k`` cast to it first, so an unsigned or small integer
    wraps around as TensorFlow's ``x + tf.cast(k, x.dtype)`` does); bool leaves are negated. Not left as they are:
    tf.data's optimizer removes a ``map`` whose function returns its input unchanged, and a ``batch`` after it then
    takes batch's error rule, not map_and_batch's (README, "Where fastinput differs"; differential seed 28979)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def fi(self, *args: Any) -> Any:
        from fastinput import structure

        def add(x: Any) -> Any:
            if not _numeric(x):
                return x
            x = np.asarray(x)
            if x.dtype.kind == "b":
                return np.logical_not(x)
            return x + np.asarray(self.k).astype(x.dtype)

        return structure.map_structure(add, _element(args))

    def tf(self, *args: Any) -> Any:
        tf = _tf()
        def add(x: Any) -> Any:
            if x.dtype == tf.string:
                return x
            return tf.logical_not(x) if x.dtype == tf.bool else x + tf.cast(self.k, x.dtype)

        return tf.nest.map_structure(add, _element(args))


class Pair(DualFn):
    """``x -> (x, x * 2)``: makes a tuple element."""

    def fi(self, *args: Any) -> Any:
        x = np.asarray(_element(args))
        return x, x * 2

    def tf(self, *args: Any) -> Any:
        x = _element(args)
        return x, x * 2


class First(DualFn):
    """A tuple element's first component (a non-tuple element is returned as it is)."""

    def fi(self, *args: Any) -> Any:
        return args[0]

    def tf(self, *args: Any) -> Any:
        return args[0]


class Vec(DualFn):
    """``x -> [x] * (x % 4 + min_length)``: a vector whose length depends on the value (for padded_batch, unbatch)."""

    def __init__(self, min_length: int = 0) -> None:
        self.min_length = min_length

    def __repr__(self) -> str:
        return f"Vec({self.min_length})" if self.min_length else "Vec()"

    def fi(self, *args: Any) -> Any:
        x = np.asarray(args[0])
        return np.full([int(x) % 4 + self.min_length], x, dtype=x.dtype)

    def tf(self, *args: Any) -> Any:
        tf = _tf()
        x = args[0]
        return tf.fill([tf.math.floormod(x, 4) + self.min_length], x)


class Sum(DualFn):
    """The sum of the first tensor of the element (a scalar of the same dtype, summed in it: a small integer wraps
    around as in ``tf.reduce_sum``)."""

    def fi(self, *args: Any) -> Any:
        x = np.asarray(_first_leaf(args))
        return x.dtype.type(x.sum(dtype=x.dtype))

    def tf(self, *args: Any) -> Any:
        return _tf().reduce_sum(_first_leaf(args))


class ToStr(DualFn):
    """Numbers to their decimal strings (bytes), element by element."""

    def fi(self, *args: Any) -> Any:
        x = np.asarray(args[0])
        if x.ndim == 0:
            return str(int(x)).encode()
        return np.array([str(int(v)).encode() for v in x.ravel()], dtype=object).reshape(x.shape)

    def tf(self, *args: Any) -> Any:
        return _tf().strings.as_string(args[0])


class Const(DualFn):
    """Ignores the element and returns ``value`` as given (a Python value: each library converts it)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def fi(self, *args: Any) -> Any:
        return self.value

    def tf(self, *args: Any) -> Any:
        return self.value


class Half(DualFn):
    """``y / 2`` with Python's true division (tf.data and numpy both promote int64 to float64)."""

    def fi(self, *args: Any) -> Any:
        return args[0] / 2

    def tf(self, *args: Any) -> Any:
        return args[0] / 2


class AsList(DualFn):
    """``x -> [x, x]``: a Python list as the map's result (tf.data packs it into one tensor)."""

    def fi(self, *args: Any) -> Any:
        return [args[0], args[0]]

    def tf(self, *args: Any) -> Any:
        return [args[0], args[0]]


class WithList(DualFn):
    """``x -> (x, [x, x])``: a Python list inside a tuple result (tf.data packs the list into one tensor)."""

    def fi(self, *args: Any) -> Any:
        return args[0], [args[0], args[0]]

    def tf(self, *args: Any) -> Any:
        return args[0], [args[0], args[0]]


class AddPair(DualFn):
    """``(a, b) -> a + b``."""

    def fi(self, a: Any, b: Any) -> Any:
        return a + b

    def tf(self, a: Any, b: Any) -> Any:
        return a + b


class FailAt(DualFn):
    """The element unchanged, except that it raises for the chosen ``values``.

    The element fails when any number in any of its leaves is one of ``values``. ``exc`` picks what is
    raised: ``"value"`` an :class:`InjectedError`, ``"stop"`` a ``StopIteration`` (which must not end the
    dataset). As a filter predicate (``predicate=True``) it returns True for the elements it keeps.
    """

    def __init__(self, *values: int, exc: str = "value", predicate: bool = False) -> None:
        self.values = tuple(values)
        self.exc = exc
        self.predicate = predicate

    def __repr__(self) -> str:
        extra = "" if self.exc == "value" else f", exc={self.exc!r}"
        extra += ", predicate=True" if self.predicate else ""
        return f"FailAt({', '.join(map(repr, self.values))}{extra})"

    def check(self, *leaves: Any) -> Any:
        for leaf in leaves:
            if _numeric(leaf) and np.isin(np.asarray(leaf), self.values).any():
                if self.exc == "stop":
                    raise StopIteration
                raise InjectedError(f"injected error at {np.asarray(leaf).tolist()}")
        return leaves

    def fi(self, *args: Any) -> Any:
        from fastinput import structure

        self.check(*structure.flatten(_element(args)))
        return True if self.predicate else _element(args)

    def tf(self, *args: Any) -> Any:
        tf = _tf()
        element = _element(args)
        leaves = tf.nest.flatten(element)
        checked = tf.numpy_function(lambda *v: list(self.check(*v)), leaves, [leaf.dtype for leaf in leaves],
                                    stateful=False)
        for out, leaf in zip(checked, leaves):
            out.set_shape(leaf.shape)
        if self.predicate:  # True, computed from the checked value so that the check is not pruned
            return tf.reduce_all(tf.equal(checked[0], checked[0]))
        return tf.nest.pack_sequence_as(element, checked)


class Mod(DualFn):
    """Filter predicate: the sum of the element's first tensor (in its dtype, as ``Sum``), modulo ``k``, equals
    ``r``; for integers and floats of whole values (``int`` of a float sum and ``floormod`` agree on those)."""

    def __init__(self, k: int, r: int = 0) -> None:
        self.k = k
        self.r = r

    def fi(self, *args: Any) -> Any:
        x = np.asarray(_first_leaf(args))
        return bool(int(x.sum(dtype=x.dtype)) % self.k == self.r)

    def tf(self, *args: Any) -> Any:
        tf = _tf()
        return tf.equal(tf.math.floormod(tf.reduce_sum(_first_leaf(args)), self.k), self.r)


class Gen:
    """A generator factory for ``from_generator``: yields ``0 .. n-1`` as int64 scalars.

    ``fail_at`` raises :class:`InjectedError` in place of those values (the generator then ends, as a
    Python generator does when it raises); ``empty_calls`` makes the first calls yield nothing.
    """

    def __init__(self, n: int, fail_at: int | None = None, empty_calls: int = 0) -> None:
        self.n = n
        self.fail_at = fail_at
        self.empty_calls = empty_calls
        self.calls = 0

    def __repr__(self) -> str:
        extra = "" if self.fail_at is None else f", fail_at={self.fail_at}"
        extra += "" if not self.empty_calls else f", empty_calls={self.empty_calls}"
        return f"Gen({self.n}{extra})"

    def __call__(self):
        self.calls += 1
        if self.calls <= self.empty_calls:
            return
        for i in range(self.n):
            if i == self.fail_at:
                raise InjectedError(f"generator fails at {i}")
            yield np.int64(i)
