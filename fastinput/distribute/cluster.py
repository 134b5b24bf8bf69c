"""Ray, the optional engine under ``distribute``: imported only here, only when a distributed pipeline runs."""

from __future__ import annotations

import os
from typing import Any


def import_ray() -> Any:
    """The ``ray`` module, or an ``ImportError`` that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("Dataset.distribute runs on Ray, which is not installed: "
                          "pip install 'fastinput[ray]'") from exc
    return ray


def connect(address: str | None) -> Any:
    """The ``ray`` module, connected: to the cluster this process already joined; else to ``address``; else, with
    ``address=None``, to the one ``RAY_ADDRESS`` names or, without it, a new local one (``ray.init()``'s rules)."""
    ray = import_ray()
    if not ray.is_initialized():
        if address is None and not os.environ.get("RAY_ADDRESS"):
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    return ray
