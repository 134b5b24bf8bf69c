"""A pipeline's fingerprint: a digest of what its stages are and do (``Dataset.fingerprint``, ``snapshot``'s folder).

tf.data fingerprints its graph, constants and captured values included: two pipelines with the same fingerprint
give the same elements (while their files and random draws do). A fastinput pipeline has no graph, so the digest is
taken over each stage's class, description and attributes, upstream first: numbers, strings and arrays by value,
functions by their code, and what their code reads that is not an argument (closure cells, default values, the
globals it names) by value in turn, to a bounded depth; a Dataset a function captures is digested as a pipeline. A
captured number, string or array that changes changes the fingerprint, as a captured constant does in tf.data; a
captured object of another kind is digested by its type only (its state is not read), so changing such an
object's state keeps the fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
import types
from typing import Any

import numpy as np

DEPTH = 3
"""How deep nested containers and functions' captured values are digested."""


def fingerprint(dataset: Any) -> str:
    """The hex digest (20 digits) of the pipeline ``dataset`` describes (see the module's docstring)."""
    digest = hashlib.sha256()
    _digest_pipeline(digest, dataset, DEPTH)
    return digest.hexdigest()[:20]


def _digest_pipeline(digest: Any, dataset: Any, depth: int) -> None:
    for node in _upstream_first(dataset):
        digest.update(f"{type(node).__module__}.{type(node).__qualname__}|{node}|".encode())
        for key, value in sorted(vars(node).items()):
            if key != "inputs" and not key.startswith("_spec"):
                digest.update(f"{key}=".encode())
                _digest_value(digest, value, depth)


def _upstream_first(dataset: Any) -> Any:
    for child in dataset.inputs:
        yield from _upstream_first(child)
    yield dataset


def _digest_value(digest: Any, value: Any, depth: int) -> None:
    if isinstance(value, (str, bytes, int, float, bool, type(None))):
        digest.update(repr(value).encode())
    elif isinstance(value, np.generic):
        digest.update(f"{value.dtype}:{value.item()!r}".encode())
    elif isinstance(value, np.ndarray):
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(value.tobytes() if value.dtype != object else repr(value.tolist()).encode())
    elif isinstance(value, types.FunctionType):
        digest.update(value.__qualname__.encode())
        digest.update(_code_bytes(value.__code__))
        if depth > 0:
            _digest_reads(digest, value, depth - 1)
    elif _is_dataset(value) and depth > 0:  # one a function captures (a flat_map's, a zip's other input)
        _digest_pipeline(digest, value, depth - 1)
    elif isinstance(value, functools.partial):
        _digest_value(digest, (value.func, value.args, value.keywords), depth)
    elif isinstance(value, (list, tuple, dict)) and depth > 0:
        items = sorted(value.items(), key=repr) if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            digest.update(repr(key).encode())
            _digest_value(digest, item, depth - 1)
    else:
        digest.update(type(value).__qualname__.encode())


def _is_dataset(value: Any) -> bool:
    from fastinput.dataset import Dataset  # here: fastinput.dataset imports this module's users

    return isinstance(value, Dataset)


def _digest_reads(digest: Any, function: types.FunctionType, depth: int) -> None:
    """What ``function``'s code reads besides its arguments: its closure cells, its default values and the
    module globals it names (an attribute name that is no global is skipped)."""
    for cell in function.__closure__ or ():
        try:
            _digest_value(digest, cell.cell_contents, depth)
        except ValueError:  # a cell not yet filled
            digest.update(b"<empty cell>")
    _digest_value(digest, function.__defaults__, depth)
    _digest_value(digest, function.__kwdefaults__, depth)
    for name in sorted(_names(function.__code__)):
        if name in function.__globals__:
            digest.update(f"global {name}=".encode())
            _digest_value(digest, function.__globals__[name], depth)


def _names(code: types.CodeType) -> set[str]:
    """The global and attribute names ``code`` and the functions nested in it use."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names(constant)
    return names


def _code_bytes(code: types.CodeType) -> bytes:
    """A function's bytecode, names and constants (nested functions' too): what it does, not where it is."""
    parts = [code.co_code, repr(code.co_names).encode()]
    for constant in code.co_consts:
        parts.append(_code_bytes(constant) if isinstance(constant, types.CodeType) else repr(constant).encode())
    return b"|".join(parts)
