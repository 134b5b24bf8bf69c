"""The core is leaf-agnostic: it knows ``ArrayLeaf``, not the TensorFlow-specific string forms
(see ``fastinput._engine.leaves``)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import fastinput as fi
from fastinput import spec, structure
from fastinput._engine import conversion
from fastinput._engine.leaves import ArrayLeaf
from fastinput.tf_values import PackedStrings

CORE = ["structure.py", "_engine/conversion.py", "spec.py"]


class Ones(ArrayLeaf):
    """A made-up array leaf: ``n`` int64 ones, not held as an array."""

    __slots__ = ("shape",)
    dtype = np.dtype(np.int64)

    def __init__(self, n: int) -> None:
        self.shape = (n,)

    @property
    def size(self) -> int:
        return self.shape[0]

    @property
    def nbytes(self) -> int:
        return 8 * self.size

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.ones(self.shape, dtype or self.dtype)


@pytest.mark.parametrize("module", CORE)
def test_the_core_names_no_tensorflow_specific_leaf(module):
    source = (Path(fi.__file__).parent / module).read_text(encoding="utf-8")
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert "fastinput.tf_values" not in imported
    assert "PackedStrings" not in source and "TensorBackedArray" not in source


@pytest.mark.parametrize("leaf", [Ones(3), PackedStrings(b"abc", np.array([0, 1, 3]))], ids=["Ones", "PackedStrings"])
def test_an_array_leaf_passes_through_the_core_as_it_is(leaf):
    assert conversion.normalize_output({"x": leaf})["x"] is leaf
    assert conversion.normalize_output((leaf, np.int64(1)))[0] is leaf
    assert spec.spec_of(leaf) == fi.TensorSpec(leaf.shape, leaf.dtype)
    sparse = structure.SparseArray(np.array([[0], [1]]), leaf, np.array([5]))
    assert sparse.values is leaf
