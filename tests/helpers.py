"""Helpers shared by the tests: running pipelines of both libraries and comparing their elements."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import numpy as np

from fastinput import structure
from fastinput.options import OptimizationOptions, Options

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), f"{where}: keys {actual!r} vs {expected!r}"
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
    actual_array, expected_array = np.asarray(actual), np.asarray(expected)
    assert actual_array.shape == expected_array.shape, f"{where}: shape {actual_array.shape} != {expected_array.shape}"
    if expected_array.dtype != object:
        assert actual_array.dtype == expected_array.dtype, f"{where}: dtype {actual_array.dtype} != {expected_array.dtype}"
    assert np.array_equal(actual_array, expected_array), f"{where}: {actual_array!r} != {expected_array!r}"


def assert_same_elements(actual: list[Any], expected: list[Any]) -> None:
    assert len(actual) == len(expected), f"{len(actual)} elements, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_same_element(a, e, f"element {i}")


NO_REWRITES = Options(optimization=OptimizationOptions(
    map_and_batch_fusion=False, map_fusion=False, shuffle_and_repeat_fusion=False))
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
    def fn(x: Any) -> Any:
        if int(x) in bad:
            raise ValueError(f"bad {int(x)}")
        return x
    return fn


def tf_fails_at(bad: set[int]):
    """The same for tf.data (int64 scalars): an InvalidArgumentError for the values in ``bad``."""
    import tensorflow as tf

    def fn(x: Any) -> Any:
        y = tf.py_function(fails_at(bad), [x], tf.int64)
        y.set_shape([])
        return y
    return fn


def as_ints(elements: list[Any]) -> list[int]:
    return [int(x) for x in elements]


def wait_for_threads(baseline: int, timeout: float = 10.0) -> int:
    """Wait until the live thread count is back to ``baseline``; returns the final count."""
    deadline = time.monotonic() + timeout
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    return threading.active_count()


@contextlib.contextmanager
def no_leaked_threads():
    """Asserts that every thread started inside the block has stopped by its end."""
    baseline = threading.active_count()
    yield
    count = wait_for_threads(baseline)
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("fastinput")]
    assert count <= baseline, f"{count - baseline} thread(s) leaked: {leaked}"
