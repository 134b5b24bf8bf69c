"""Optional packages (TensorFlow, torch, jax), imported where a feature needs them, with one clear error if absent.

``pip install fastinput`` brings the engine, the readers, the image kernels and the profiler, which need none of
them; each extra (``fastinput[tf]``, ``[torch]``, ``[jax]``) adds one. Code that needs one imports it here, at the
moment it is needed (never at ``import fastinput``), so that its absence is a ``MissingDependencyError`` saying
what needed it and how to install it, not a bare ``ModuleNotFoundError`` from deep inside fastinput.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fastinput.errors import MissingDependencyError


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """``module``, imported; if it is not installed, ``MissingDependencyError`` naming ``purpose`` (what needs
    it, e.g. "as_tf_dataset") and fastinput's ``extra`` that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module.partition(".")[0]:
            raise  # the package is there but something it imports is missing: its own error says more
        raise MissingDependencyError(f"{purpose} needs {module}, which is not installed: "
                                     f"pip install \"fastinput[{extra}]\"") from None


def tensorflow(purpose: str) -> ModuleType:
    """TensorFlow, for ``purpose``; see ``import_optional``."""
    return import_optional("tensorflow", "tf", purpose)
