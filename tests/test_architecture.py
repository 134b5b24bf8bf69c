"""The engine depends on nothing above it: no engine module imports the profiler or the autotuner.

The profiler and the autotuner read the engine's metrics and turn its knobs;
the façade (``Dataset.__iter__``) wires the tuner in. If the engine imported
them back, every pipeline would load them and a change to a report could
change how a pipeline runs. Checked on the source (every import statement, at
any depth: inside functions too), so a lazy import cannot slip through.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fastinput"

ENGINE = ["_engine", "ops", "readers", "fused_ops"]
"""The engine's modules and packages, relative to ``fastinput/``."""

PUBLIC_EXCEPTIONS = {"fused_ops/image.py"}
"""``fi.image``: a public API module that lives beside the fused kernels, not part of the engine."""

FORBIDDEN = ("fastinput.profiler", "fastinput.autotune")


def engine_modules() -> list[Path]:
    paths: list[Path] = []
    for entry in ENGINE:
        path = PACKAGE / entry
        paths.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return [p for p in paths if p.relative_to(PACKAGE).as_posix() not in PUBLIC_EXCEPTIONS]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[str, int]]:
    """Every module the ``import`` and ``from ... import`` statements of ``source`` (the text of ``module``) name,
    relative ones resolved, with their lines; ``from x import y`` counts as ``x`` and ``x.y`` (``y`` may be a
    module)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            found.append((base, node.lineno))
            found.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
    return found


def forbidden(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in FORBIDDEN)


def test_the_engine_list_finds_the_engine():
    names = {module_name(p) for p in engine_modules()}
    assert {"fastinput._engine.iterator", "fastinput._engine.buffer", "fastinput.ops.map", "fastinput.readers.tfrecord",
            "fastinput.fused_ops.map_and_batch"} <= names
    assert "fastinput.fused_ops.image" not in names


@pytest.mark.parametrize("path", engine_modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_engine_module_imports_no_profiler_or_autotuner(path: Path):
    name = module_name(path)
    imports = imported_modules(path.read_text(), name, is_package=path.name == "__init__.py")
    offending = [f"{name} line {line} imports {imported}" for imported, line in imports if forbidden(imported)]
    assert not offending, "the engine must not depend on the profiler or the autotuner: " + "; ".join(offending)


@pytest.mark.parametrize("source, offending", [
    ("import fastinput.profiler", {"fastinput.profiler"}),
    ("def f():\n    from fastinput.autotune.tuner import Tuner",
     {"fastinput.autotune.tuner", "fastinput.autotune.tuner.Tuner"}),
    ("from fastinput import profiler", {"fastinput.profiler"}),
    ("from .. import autotune", {"fastinput.autotune"}),
    ("from ..autotune import tuner", {"fastinput.autotune", "fastinput.autotune.tuner"}),
    ("from fastinput import profile_helpers", set()),
    ("import fastinput.ops.map", set()),
    ("from . import map", set()),
])
def test_the_check_sees_imports_at_any_depth(source: str, offending: set[str]):
    imports = imported_modules(source, "fastinput.ops.example")
    assert {name for name, _ in imports if forbidden(name)} == offending
