"""The README's "Using fastinput with TensorFlow, PyTorch and JAX" examples run as written (on CPU devices here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
FRAMEWORKS = {"TensorFlow": "tensorflow", "PyTorch": "torch", "JAX": "jax"}


def examples() -> list[str]:
    """The Python blocks of the section, in order: TensorFlow, PyTorch, JAX."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Using fastinput with TensorFlow, PyTorch and JAX\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_section_has_one_example_per_framework():
    assert len(examples()) == len(FRAMEWORKS)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_example_runs_as_written(framework):
    pytest.importorskip(FRAMEWORKS[framework])
    code = examples()[list(FRAMEWORKS).index(framework)]
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    if framework == "PyTorch":
        assert namespace["loss"].item() < 1e3 and namespace["features"].shape == (64, 16)
    if framework == "JAX":
        assert namespace["batch"].shape == (64, 16)
