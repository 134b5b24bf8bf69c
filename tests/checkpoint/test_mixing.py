"""Saving and restoring sample_from_datasets and choose_from_datasets at every position: a fresh iterator restored
from the (JSON round-tripped) state gives the same rest, errors included, however the mix is read."""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import UnimplementedError
from tests.checkpoint.stages import Ints
from tests.checkpoint.test_interleave import check_resume, outcomes, total


def _inputs(bad: bool = False) -> list[fi.Dataset]:
    """Three inputs of different lengths, with errors where asked."""
    return [Ints(0, 30, {3, 17} if bad else ()), Ints(100, 110, {105} if bad else ()), Ints(200, 250)]


MIXES = {
    "sample": lambda: fi.Dataset.sample_from_datasets(_inputs(), [0.2, 0.3, 0.5], seed=3),
    "sample, errors": lambda: fi.Dataset.sample_from_datasets(_inputs(bad=True), [0.2, 0.3, 0.5], seed=3),
    "sample, stop on empty": lambda: fi.Dataset.sample_from_datasets(_inputs(), seed=5, stop_on_empty_dataset=True),
    "sample, unseeded": lambda: fi.Dataset.sample_from_datasets(_inputs()),
    "sample, weights dataset": lambda: fi.Dataset.sample_from_datasets(
        _inputs(), fi.Dataset.from_tensor_slices(np.tile([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]], (40, 1))), seed=1),
    "sample, epochs": lambda: fi.Dataset.sample_from_datasets(_inputs(), seed=2, rerandomize_each_iteration=True)
    .repeat(3),
    "choose": lambda: fi.Dataset.choose_from_datasets(
        _inputs(bad=True), Ints(0, 200).map(lambda x: np.int64(x * 7 % 5 - 1)), stop_on_empty_dataset=False),
}
READERS = {
    "one by one": lambda ds: ds,
    "batches": lambda ds: ds.batch(4),
    "prefetch": lambda ds: ds.prefetch(3),
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("mix", MIXES)
def test_mix_resumes_at_every_position(mix, reader):
    ds = READERS[reader](MIXES[mix]())
    for n in range(total(ds) + 2):
        check_resume(ds, n)


def test_an_input_that_cannot_save_is_named_only_when_saving():
    ds = fi.Dataset.sample_from_datasets([Ints(0, 5, saves=False), Ints(10, 15)], seed=1)
    with iter(ds) as it:
        assert len(outcomes(it, 3)) == 3
        with pytest.raises(UnimplementedError, match="ints"):
            it.get_state()
