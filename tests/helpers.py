"""Helpers shared by the tests: running pipelines of both libraries and comparing their elements."""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine.lifecycle import REAPER_THREAD_NAME
from fastinput.options import OptimizationOptions, Options

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The checkout the tests run from (child interpreters import its fastinput)."""


def tf_elements(tf_dataset: Any) -> list[Any]:
    """Every element of a tf.data pipeline as numpy values (strings as bytes, sparse tensors as SparseArray)."""
    import tensorflow as tf

    def to_numpy(value: Any) -> Any:
        if isinstance(value, tf.SparseTensor):
            return structure.SparseArray(value.indices.numpy(), value.values.numpy(), value.dense_shape.numpy())
        return value.numpy()

    return [tf.nest.map_structure(to_numpy, element) for element in tf_dataset]


def fi_elements(dataset: Any) -> list[Any]:
    with iter(dataset) as it:
        return list(it)


def assert_same_element(actual: Any, expected: Any, where: str = "") -> None:
    """Equal structure, and leaf by leaf equal values, shapes and (for numbers) dtypes."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), (
            f"{where}: keys {actual!r} vs {expected!r}")
        for key in expected:
            assert_same_element(actual[key], expected[key], f"{where}[{key!r}]")
        return
    if isinstance(expected, tuple):
        assert isinstance(actual, tuple) and len(actual) == len(expected), f"{where}: {actual!r} vs {expected!r}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same_element(a, e, f"{where}[{i}]")
        return
    if isinstance(expected, bytes):
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"
        return
    if isinstance(actual, structure.SparseArray):
        expected_sparse = structure.SparseArray(expected.indices, expected.values, expected.dense_shape)
        assert actual == expected_sparse, f"{where}: {actual!r} != {expected_sparse!r}"
        return
    if isinstance(actual, structure.RaggedArray):
        assert actual == expected and actual.row_splits.dtype == expected.row_splits.dtype, (
            f"{where}: {actual!r} != {expected!r}")
        return
    actual_array, expected_array = np.asarray(actual), np.asarray(expected)
    assert actual_array.shape == expected_array.shape, f"{where}: shape {actual_array.shape} != {expected_array.shape}"
    if expected_array.dtype != object:
        assert actual_array.dtype == expected_array.dtype, (
            f"{where}: dtype {actual_array.dtype} != {expected_array.dtype}")
    assert np.array_equal(actual_array, expected_array), f"{where}: {actual_array!r} != {expected_array!r}"


def assert_same_elements(actual: list[Any], expected: list[Any]) -> None:
    assert len(actual) == len(expected), f"{len(actual)} elements, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_same_element(a, e, f"element {i}")


def assert_same_run(actual: list[Any], expected: list[Any], error_type: type, where: str = "") -> None:
    """Two runs of elements with errors in their places (``error_type`` objects, compared with ``==``): item by item
    the same; ``where`` starts each message."""
    assert len(actual) == len(expected), (
        f"{where}{len(actual)} items, expected {len(expected)}: {actual!r} vs {expected!r}")
    for i, (a, e) in enumerate(zip(actual, expected)):
        if isinstance(e, error_type):
            assert a == e, f"{where}item {i}: {a!r} vs {e!r}"
        else:
            assert_same_element(a, e, f"{where}item {i}")


NO_REWRITES = Options(optimization=OptimizationOptions(
    map_and_batch_fusion=False, map_fusion=False, noop_elimination=False, shuffle_and_repeat_fusion=False,
    mix_and_batch_fusion=False))
"""Options that switch every static rewrite off."""

ERROR = "<error>"
"""What ``elements_and_errors`` puts in place of an error."""


def elements_and_errors(dataset: Any, error: Any = lambda exc: ERROR) -> list[Any]:
    """Every element of a fastinput or tf.data pipeline in order, ``error(exc)`` (``ERROR``) in place of each error.

    Iteration goes on after an error, as both libraries allow; tf.data's elements come as numpy values.
    """
    from fastinput.dataset import Dataset

    out: list[Any] = []
    if isinstance(dataset, Dataset):
        with iter(dataset) as it:
            while True:
                try:
                    out.append(next(it))
                except StopIteration:
                    return out
                except Exception as exc:
                    out.append(error(exc))
    import tensorflow as tf

    it = iter(dataset)
    while True:
        try:
            element = next(it)
        except StopIteration:
            return out
        except tf.errors.OpError:
            out.append(ERROR)
            continue
        out.append(tf_elements([element])[0])


def assert_same_with_errors(actual: list[Any], expected: list[Any]) -> None:
    """``assert_same_elements`` for lists from ``elements_and_errors``: errors at the same places."""
    assert len(actual) == len(expected), f"{len(actual)} items, expected {len(expected)}: {actual!r} vs {expected!r}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        if isinstance(a, str) or isinstance(e, str):
            assert a is e, f"item {i}: {a!r} vs {e!r}"
        else:
            assert_same_element(a, e, f"item {i}")


def fails_at(bad: set[int]):
    """An identity map function for fastinput that raises ValueError for the values in ``bad``."""
    return fi_raising_at(*bad)


def tf_fails_at(bad: set[int]):
    """The same for tf.data (int64 scalars): an InvalidArgumentError for the values in ``bad``."""
    return tf_raising_at(*bad)


def as_ints(elements: list[Any]) -> list[int]:
    return [int(x) for x in elements]


def fastinput_threads() -> list[threading.Thread]:
    """Live threads that fastinput started, but its reaper (one per process, it lives as long as the process)."""
    return [t for t in threading.enumerate() if t.name.startswith("fastinput") and t.name != REAPER_THREAD_NAME]


def wait_for_fastinput_threads(timeout: float = 10.0) -> list[threading.Thread]:
    """Wait until fastinput's threads are gone (a dropped iterator is closed by the reaper, soon after);
    returns those still alive."""
    deadline = time.monotonic() + timeout
    while fastinput_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return fastinput_threads()


@contextlib.contextmanager
def no_leaked_threads():
    """Asserts that every fastinput thread started inside the block has stopped by its end."""
    before = set(fastinput_threads())
    yield
    deadline = time.monotonic() + 10.0
    while set(fastinput_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    leaked = [t.name for t in set(fastinput_threads()) - before]
    assert not leaked, f"{len(leaked)} thread(s) leaked: {leaked}"


def child_command(script: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run ``script`` in a fresh interpreter using this checkout's fastinput."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))}
    return [sys.executable, "-c", textwrap.dedent(script), *args], env


def run_child(script: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter; fails the test if it outlives ``timeout``.

    What must be seen from outside a process (a deadlock, a hang at exit, a
    signal) is tested there, so a failure cannot hang the test run.
    """
    command, env = child_command(script, *args)
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the child interpreter did not finish within {timeout} s; its output:\n"
                             f"{exc.stdout!r}\n{exc.stderr!r}") from None


ERROR = "error"
"""An error in an outcome list (``tf_outcomes`` / ``fi_outcomes``): raised by ``next()`` at that place."""


def _outcomes(iterator: Any, error_types: tuple[type[BaseException], ...], to_python: Any, limit: int) -> list[Any]:
    """What ``next()`` gives, call after call: elements as Python values, ``ERROR`` for a raise, ``"end"`` last."""
    out: list[Any] = []
    for _ in range(limit):
        try:
            element = next(iterator)
        except StopIteration:
            out.append("end")
            break
        except error_types:
            out.append(ERROR)
            continue
        out.append(to_python(element))
    return out


def tf_outcomes(tf_dataset: Any, limit: int = 1000) -> list[Any]:
    """Every element and error of a tf.data pipeline, in order, going on after each error (see ``_outcomes``)."""
    import tensorflow as tf

    return _outcomes(iter(tf_dataset), (tf.errors.OpError,),
                     lambda element: tf.nest.map_structure(lambda v: v.numpy().tolist(), element), limit)


def fi_outcomes(dataset: Any, limit: int = 1000) -> list[Any]:
    """Every element and error of a fastinput pipeline, in the form of ``tf_outcomes``."""
    with iter(dataset) as it:
        return _outcomes(it, (Exception,),
                         lambda element: structure.map_structure(lambda v: np.asarray(v).tolist(), element), limit)


def fi_raising_at(*positions: int, error: type[Exception] = ValueError) -> Any:
    """A map function (of int64 scalars) that raises ``error`` for the given values and returns the others."""

    def check(value: Any) -> Any:
        if int(value) in positions:
            raise error(f"injected error at {int(value)}")
        return value

    return check


def tf_raising_at(*positions: int, error: type[Exception] = ValueError) -> Any:
    """The tf.data twin of ``fi_raising_at`` (the Python function runs through ``tf.py_function``)."""
    import tensorflow as tf

    check = fi_raising_at(*positions, error=error)

    def fn(x: Any) -> Any:
        y = tf.py_function(check, [x], tf.int64)
        y.set_shape([])  # a scalar in, a scalar out: tf.data keeps knowing the element's shape
        return y

    return fn


def package_dataset_classes() -> list[type]:
    """Every ``fi.Dataset`` subclass the fastinput package defines (all its modules imported first)."""
    import fastinput as fi

    for module in pkgutil.walk_packages(fi.__path__, "fastinput."):
        if "trace_viewer" not in module.name:
            with contextlib.suppress(fi.errors.MissingDependencyError):  # a module of an extra not installed here
                importlib.import_module(module.name)
    classes, stack = [], [fi.Dataset]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub.__module__.startswith("fastinput."):
                classes.append(sub)
                stack.append(sub)
    return classes
