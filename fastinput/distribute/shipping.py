"""A pipeline description as bytes for the workers (cloudpickle: user functions and lambdas go by value), and back.

A pipeline that cannot be pickled is refused when ``distribute`` is called, not when a worker starts: the error
names the first stage (sources first) that cannot go, and why.
"""

from __future__ import annotations

import copy
from typing import Any

from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError


def ship(dataset: Dataset) -> bytes:
    """``dataset`` pickled for the workers; ``InvalidArgumentError`` naming the stage that cannot be pickled."""
    import cloudpickle

    try:
        return cloudpickle.dumps(dataset)
    except Exception as exc:
        stage, reason = _first_unpicklable(dataset) or (dataset, exc)
        raise InvalidArgumentError(
            f"distribute: the pipeline cannot be shipped to the workers: stage {stage} cannot be pickled "
            f"({type(reason).__name__}: {reason}); its functions and arguments must be picklable with cloudpickle"
        ) from exc


def unship(blob: bytes) -> Dataset:
    """The description ``ship`` pickled."""
    import cloudpickle

    return cloudpickle.loads(blob)


def _first_unpicklable(dataset: Dataset) -> tuple[Dataset, Exception] | None:
    """The first node (sources first) that does not pickle on its own (inputs left out), and its error."""
    import cloudpickle

    for child in dataset.inputs:
        found = _first_unpicklable(child)
        if found is not None:
            return found
    alone: Any = copy.copy(dataset)
    alone.inputs = ()
    try:
        cloudpickle.dumps(alone)
    except Exception as exc:
        return dataset, exc
    return None
