"""The mixing ops' read-ahead marks are refreshed: what a restore replays stays bounded however long the run was.

A mix tops up an input's buffer before it runs out, so the state it took at the input's last empty pull would
otherwise stay its mark for good, and a restore would replay every element since the start. With its mark
``REFRESH`` elements old, an input is let run out before it pulls again (``ReadAhead.stale``); these tests shrink
the constants so that happens often, and check the elements, the resumes and the bound.
"""

from __future__ import annotations

from typing import Any

import pytest

import fastinput as fi
from fastinput.ops import directed_interleave
from tests.checkpoint.stages import Ints
from tests.checkpoint.test_interleave import check_resume, total
from tests.helpers import fi_outcomes


def _shrink(patch: pytest.MonkeyPatch) -> None:
    """Pulls of 4 elements, inputs below 2 topping up, marks refreshed after 8 elements."""
    patch.setattr(directed_interleave, "MIN_PULL", 4)
    patch.setattr(directed_interleave, "MAX_PULL", 4)
    patch.setattr(directed_interleave, "REFRESH", 8)


@pytest.fixture
def small_buffers(monkeypatch):
    _shrink(monkeypatch)


def _mixes() -> dict[str, fi.Dataset]:
    inputs = [Ints(0, 60, {7, 31}), Ints(100, 140), Ints(200, 290, {250})]
    return {
        "sample": fi.Dataset.sample_from_datasets(inputs, [0.5, 0.2, 0.3], seed=4),
        "sample, batches": fi.Dataset.sample_from_datasets(inputs, [0.5, 0.2, 0.3], seed=4).batch(5),
        "sample, stop on empty, batches": fi.Dataset.sample_from_datasets(inputs, seed=6,
                                                                          stop_on_empty_dataset=True).batch(3),
    }


@pytest.mark.parametrize("mix", list(_mixes()))
def test_refreshing_marks_changes_no_element(mix):
    expected = fi_outcomes(_mixes()[mix])
    with pytest.MonkeyPatch.context() as patch:
        _shrink(patch)
        assert fi_outcomes(_mixes()[mix]) == expected


@pytest.mark.parametrize("mix", list(_mixes()))
def test_resumes_at_every_position_with_marks_refreshed(small_buffers, mix):
    ds = _mixes()[mix]
    for n in range(total(ds) + 2):
        check_resume(ds, n)


def _skips(state: Any) -> list[int]:
    """The mix's ``skip`` (elements of each input a restore replays) in a saved state."""
    if isinstance(state, dict):
        if state.get("stage") in ("sample_from_datasets", "choose_from_datasets"):
            return state["skip"]
        return next((found for value in state.values() if (found := _skips(value))), [])
    if isinstance(state, list):
        return next((found for value in state if (found := _skips(value))), [])
    return []


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_what_a_restore_replays_stays_bounded(small_buffers, batch):
    endless = [fi.Dataset.range(i * 10**6, (i + 1) * 10**6) for i in range(3)]
    ds = fi.Dataset.sample_from_datasets(endless, [0.6, 0.3, 0.1], seed=1).batch(batch)
    with iter(ds) as it:
        for step in range(3000 // batch):
            next(it)
            if step % 7 == 0:
                skips = _skips(it.get_state())
                assert len(skips) == 3 and max(skips) < 8 + 4 + batch, skips
