"""Argument checks run when a pipeline is built, each raising ``InvalidArgumentError`` that names the argument."""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput.errors import InvalidArgumentError

AUTOTUNE = -1
"""Sentinel for "let fastinput choose" (the same value as ``tf.data.AUTOTUNE``)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


def check_int(op: str, name: str, value: Any, *, minimum: int | None = None, allow: tuple = ()) -> int:
    """``value`` as an int, at least ``minimum`` unless it is one of the special values in ``allow``."""
    if not _is_int(value):
        raise InvalidArgumentError(f"{op}: {name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value in allow:
        return value
    if minimum is not None and value < minimum:
        extra = f" (or {', '.join(_special_name(a) for a in allow)})" if allow else ""
        raise InvalidArgumentError(f"{op}: {name} must be >= {minimum}{extra}, got {value}")
    return value


def _special_name(value: int) -> str:
    return "fi.AUTOTUNE" if value == AUTOTUNE else str(value)


def check_parallelism(op: str, name: str, value: Any) -> int | None:
    """``None`` (run in the consumer's thread), ``AUTOTUNE``, or a positive number of workers."""
    if value is None:
        return None
    return check_int(op, name, value, minimum=1, allow=(AUTOTUNE,))


def check_buffer_size(op: str, value: Any, *, minimum: int) -> int:
    """A prefetch buffer size: ``None`` means ``AUTOTUNE``, as in tf.data; else at least ``minimum``."""
    return check_int(op, "buffer_size", AUTOTUNE if value is None else value, minimum=minimum, allow=(AUTOTUNE,))


def check_callable(op: str, name: str, fn: Any) -> Callable:
    if not callable(fn):
        raise InvalidArgumentError(f"{op}: {name} must be callable, got {fn!r} ({type(fn).__name__})")
    return fn


def check_bool(op: str, name: str, value: Any, *, allow_none: bool = False) -> bool | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(f"{op}: {name} must be True or False, got {value!r}")
    return bool(value)


def check_seed(op: str, value: Any) -> int | None:
    if value is None:
        return None
    return check_int(op, "seed", value, minimum=0)


def fn_name(fn: Callable) -> str:
    """A short name for a user function, used in stage strings (``map(parse, ...)``)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return name


def format_arg(value: Any) -> str:
    """How an argument value reads in a stage string."""
    if value == AUTOTUNE and _is_int(value):
        return "AUTOTUNE"
    return repr(value)
