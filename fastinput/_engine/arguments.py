"""Argument checks run when a pipeline is built, each raising ``InvalidArgumentError`` that names the argument."""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput.errors import InvalidArgumentError

AUTOTUNE = -1
"""Sentinel for "let fastinput choose" (the same value as ``tf.data.AUTOTUNE``)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool)


MAX_PARALLELISM = 256
"""The most worker threads one stage runs. A larger ``num_parallel_calls`` (``num_parallel_reads``, ...) means
this many: threads are a pool sized to the work, never one per unit asked for (tf.data's parallel calls
likewise share a bounded pool)."""

MAX_BUFFER_BYTES = 1 << 30
"""The largest read buffer (``TFRecordDataset``'s and ``CsvDataset``'s ``buffer_size``): 1 GiB."""

MAX_ELEMENTS = 2**31 - 1
"""The most values one fixed shape may hold (a ``FixedLenFeature``'s shape, a ``padded_shapes`` entry)."""

MAX_CYCLE_LENGTH = 1 << 16
"""The most inputs ``interleave`` keeps open at once (more than a process can hold open files)."""


def check_int(op: str, name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
              allow: tuple = ()) -> int:
    """``value`` as an int in ``[minimum, maximum]`` unless it is one of the special values in ``allow``."""
    if not _is_int(value):
        raise InvalidArgumentError(f"{op}: {name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value in allow:
        return value
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        extra = f" (or {', '.join(_special_name(a) for a in allow)})" if allow else ""
        raise InvalidArgumentError(f"{op}: {name} must be {_range_text(minimum, maximum)}{extra}, got {value}")
    return value


def check_number(op: str, name: str, value: Any, *, minimum: float | None = None,
                 maximum: float | None = None) -> float:
    """``value`` as a finite float in ``[minimum, maximum]`` (NaN and infinities are refused)."""
    if not isinstance(value, (numbers.Real, np.floating, np.integer)) or isinstance(value, bool):
        raise InvalidArgumentError(f"{op}: {name} must be a number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if (not math.isfinite(number) or (minimum is not None and number < minimum)
            or (maximum is not None and number > maximum)):
        bounds = _range_text(minimum, maximum)
        raise InvalidArgumentError(
            f"{op}: {name} must be a finite number{' ' + bounds if bounds else ''}, got {value!r}")
    return number


def _range_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"in [{minimum}, {maximum}]"
    if minimum is not None:
        return f">= {minimum}"
    return f"<= {maximum}" if maximum is not None else ""


def _special_name(value: int) -> str:
    return "fi.AUTOTUNE" if value == AUTOTUNE else str(value)


def check_parallelism(op: str, name: str, value: Any) -> int | None:
    """``None`` (run in the consumer's thread), ``AUTOTUNE``, or a positive number of workers (at most
    ``MAX_PARALLELISM``: more means that many)."""
    if value is None:
        return None
    value = check_int(op, name, value, minimum=1, allow=(AUTOTUNE,))
    return value if value == AUTOTUNE else min(value, MAX_PARALLELISM)


def check_buffer_bytes(op: str, name: str, value: Any, *, minimum: int = 0) -> int:
    """A read buffer's size in bytes, at most ``MAX_BUFFER_BYTES``."""
    return check_int(op, name, value, minimum=minimum, maximum=MAX_BUFFER_BYTES)


def check_shape(op: str, name: str, shape: Any, *, allow_unknown: bool = False) -> tuple[int | None, ...]:
    """A shape: sizes >= 0 (with ``allow_unknown``, None or -1 for "any", returned as None) holding at most
    ``MAX_ELEMENTS`` values, so nothing sized by it can ask for more memory than any tensor holds."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise InvalidArgumentError(f"{op}: {name} must be a sequence of sizes, got {shape!r}")
    dims: list[int | None] = []
    for i, dim in enumerate(shape):
        if allow_unknown and (dim is None or (_is_int(dim) and dim == -1)):
            dims.append(None)
        else:
            dims.append(check_int(op, f"{name}[{i}]", dim, minimum=0, maximum=MAX_ELEMENTS))
    size = math.prod(d for d in dims if d is not None)
    if size > MAX_ELEMENTS:
        raise InvalidArgumentError(f"{op}: {name} {list(shape)} holds {size} values, more than the {MAX_ELEMENTS} "
                                   "a shape may hold")
    return tuple(dims)


def check_buffer_size(op: str, value: Any, *, minimum: int) -> int:
    """A prefetch buffer size: ``None`` means ``AUTOTUNE``, as in tf.data; else at least ``minimum``."""
    return check_int(op, "buffer_size", AUTOTUNE if value is None else value, minimum=minimum, allow=(AUTOTUNE,))


def check_callable(op: str, name: str, fn: Any) -> Callable:
    if not callable(fn):
        raise InvalidArgumentError(f"{op}: {name} must be callable, got {fn!r} ({type(fn).__name__})")
    return fn


WORKER_KINDS = ("thread", "process")
"""Where a stage's function runs: on worker threads (the default), or in worker processes (past the GIL)."""


def check_workers(op: str, value: Any) -> str:
    if not isinstance(value, str) or value not in WORKER_KINDS:
        raise InvalidArgumentError(f'{op}: workers must be "thread" or "process", got {value!r}')
    return value


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
