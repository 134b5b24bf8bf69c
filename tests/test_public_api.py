"""The public line: what ``fastinput`` exports, and what tests and benchmarks may import from it.

Adding a public name is a deliberate act: it goes into ``__all__`` (kept sorted) and into the expected list here.

Tests and benchmarks import no underscore name from fastinput. A helper worth a unit test of its own is a
deliberate internal API (a name without an underscore, in its module), not a private one reached into. Two
exceptions, both by design:

- ``fastinput._engine`` is the engine's internal package: its modules are the runtime every stage is built on, and
  tests may import them to test that runtime directly (benchmarks may not: they measure what users run).
- The compiled extension modules (``_records``, ``_example``, ``_jpeg``) are imported only by their wrapper modules
  (``readers/framing.py``, ``readers/example.py``, ``fused_ops/jpeg_kernel.py``). Tests reach them through those
  wrappers, and run the pure-Python fallback by setting the wrapper's attribute to None with ``monkeypatch``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import fastinput as fi

REPO = Path(__file__).resolve().parent.parent

EXPECTED_ALL = [
    "AUTOTUNE",
    "AutotuneOptions",
    "CheckpointOptions",
    "CsvDataset",
    "Dataset",
    "DatasetSpec",
    "FixedLenFeature",
    "FixedLenSequenceFeature",
    "FixedLengthRecordDataset",
    "INFINITE_CARDINALITY",
    "InputCheckpoint",
    "Iterator",
    "OptimizationOptions",
    "Options",
    "PackedStrings",
    "ParquetDataset",
    "RaggedArray",
    "RaggedSpec",
    "RemoteOptions",
    "SparseArray",
    "SparseSpec",
    "SqlDataset",
    "TFRecordDataset",
    "TensorSpec",
    "TextLineDataset",
    "UNKNOWN_CARDINALITY",
    "VarLenFeature",
    "errors",
    "extension",
    "image",
    "make_batched_features_dataset",
    "make_csv_dataset",
    "make_parquet_dataset",
    "parse_example",
    "profiler",
    "tf_input_fn",
]
EXPECTED_PROFILER_ALL = ["Report", "StageReport", "Tracer", "analyze", "trace"]

ENGINE_PACKAGE = "fastinput._engine"
"""The one underscore module path tests may import from (see the module docstring)."""


@pytest.mark.parametrize("module,expected", [("fastinput", EXPECTED_ALL),
                                             ("fastinput.profiler", EXPECTED_PROFILER_ALL)])
def test_all_is_sorted_resolves_and_is_what_is_expected(module, expected):
    exported = importlib.import_module(module).__all__
    assert exported == sorted(exported), f"{module}.__all__ is not sorted"
    assert exported == expected, f"{module}.__all__ changed: update the expected list if that was meant"
    namespace = importlib.import_module(module)
    missing = [name for name in exported if getattr(namespace, name, None) is None]
    assert not missing, f"{module}.__all__ names what it does not have: {missing}"


def test_star_import_gives_exactly_all():
    namespace: dict[str, object] = {}
    exec("from fastinput import *", namespace)
    assert sorted(name for name in namespace if name != "__builtins__") == fi.__all__


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def underscore_imports(source: str, allowed_packages: tuple[str, ...] = ()) -> list[str]:
    """``from fastinput... import ...`` and ``import fastinput...`` statements in ``source`` that name a private
    module or a private name (one starting with an underscore; dunders are fine), as ``line: module.name`` strings.
    Modules under ``allowed_packages`` (and the names imported from them) are not reported."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [(node.module, [alias.name for alias in node.names])]
        elif isinstance(node, ast.Import):
            modules = [(alias.name, []) for alias in node.names]
        else:
            continue
        for module, names in modules:
            if module.split(".")[0] != "fastinput":
                continue
            if any(module == package or module.startswith(package + ".") for package in allowed_packages):
                continue
            full = [f"{module}.{name}" for name in names] or [module]
            found += [f"{node.lineno}: {path}" for path in full if any(map(_is_private, path.split(".")))]
    return found


@pytest.mark.parametrize("folder,allowed", [("tests", (ENGINE_PACKAGE,)), ("fastinput_bench", ())])
def test_no_test_or_benchmark_imports_a_private_name(folder, allowed):
    offenders = {str(path.relative_to(REPO)): found for path in sorted((REPO / folder).rglob("*.py"))
                 if (found := underscore_imports(path.read_text(encoding="utf-8"), allowed))}
    assert not offenders, f"private fastinput names imported (see {__name__}'s docstring): {offenders}"


def test_the_scan_sees_every_form_of_a_private_import():
    source = ("from fastinput.readers import _records\nfrom fastinput.tf_adapter import _gathered, tf_input_fn\n"
              "import fastinput._engine.metrics\nfrom fastinput import __version__, errors\n"
              "from fastinput._engine.metrics import element_nbytes\nfrom numpy import _core\n")
    assert underscore_imports(source) == ["1: fastinput.readers._records", "2: fastinput.tf_adapter._gathered",
                                          "3: fastinput._engine.metrics", "5: fastinput._engine.metrics.element_nbytes"]
    assert underscore_imports(source, (ENGINE_PACKAGE,)) == ["1: fastinput.readers._records",
                                                             "2: fastinput.tf_adapter._gathered"]
