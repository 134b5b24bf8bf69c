"""PyTorch: a fastinput iterator is a ``torch.distributed.checkpoint`` ``Stateful`` object, saved with ``torch.save``
or ``dcp.save`` and resumed exactly."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import fastinput as fi
from tests.checkpoint.stages import Batches

torch = pytest.importorskip("torch")
dcp = pytest.importorskip("torch.distributed.checkpoint")
from torch.distributed.checkpoint.stateful import Stateful  # noqa: E402  (after the skip: torch may be missing)


def _labels(it: Any) -> list[int]:
    return [int(y[0, 0]) for _, y in it]


def test_the_iterator_is_stateful() -> None:
    with iter(Batches(3)) as it:
        assert isinstance(it, Stateful)


def test_torch_save_and_load_resume_exactly(tmp_path) -> None:
    with iter(Batches(10)) as it:
        next(it), next(it), next(it)
        torch.save({"input": it.state_dict()}, tmp_path / "ckpt.pt")
    with iter(Batches(10)) as resumed:
        resumed.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True)["input"])
        assert _labels(resumed) == list(range(3, 10))


def test_distributed_checkpoint_saves_and_loads_the_iterator(tmp_path) -> None:
    """dcp.load fills the fresh iterator's state_dict() in place: a state whose nest differs from a fresh one's
    (``Batches`` saves a list that grows, as a shuffle buffer does) loads all the same."""
    with warnings.catch_warnings():  # one process, no process group: dcp says so
        warnings.simplefilter("ignore", UserWarning)
        with iter(Batches(10)) as it:
            next(it), next(it)
            dcp.save({"input": it}, checkpoint_id=str(tmp_path))
        with iter(Batches(10)) as resumed:
            dcp.load({"input": resumed}, checkpoint_id=str(tmp_path))
            assert _labels(resumed) == list(range(2, 10))


def test_a_dict_that_is_not_a_state_dict_is_refused() -> None:
    with iter(Batches(10)) as it, pytest.raises(fi.errors.InvalidArgumentError, match="state_dict"):
        it.load_state_dict(it.get_state())


def test_a_state_from_another_pipeline_is_refused() -> None:
    with iter(Batches(10)) as it:
        state = it.state_dict()
    with iter(fi.Dataset.range(3)) as other, pytest.raises(fi.errors.InvalidArgumentError, match="batches"):
        other.load_state_dict(state)
