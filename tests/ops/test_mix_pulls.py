"""How many elements the mixing ops pull from an input at a time (``directed_interleave.pull_size``): about
``PULL_BYTES`` of them, so small elements come many at a time and large ones few (a mix of inputs of large records
holds a bounded number of bytes), and the elements are the same whatever the pulls."""

import numpy as np
import pytest

import fastinput as fi
from fastinput.ops import directed_interleave
from fastinput.ops.directed_interleave import MAX_PULL, MIN_PULL, PULL_BYTES, pull_size
from tests.helpers import fi_outcomes


@pytest.mark.parametrize("element, expected", [
    (np.int64(5), MAX_PULL),  # small: as many as a pull may ask for
    (b"x" * 1000, PULL_BYTES // 1064),  # 1 KB records: ~1,000
    ((np.zeros((64, 64, 3), np.uint8), np.int64(1)), PULL_BYTES // (64 * 64 * 3 + 8 + 64)),  # a nest: its leaves
    (b"x" * 10**6, MIN_PULL),  # large: as few as a pull asks for
])
def test_a_pull_brings_about_pull_bytes(element, expected):
    assert pull_size(element) == expected


def _mix(size: int) -> fi.Dataset:
    inputs = [fi.Dataset.range(i * 100, i * 100 + 40 + 13 * i).map(lambda x, size=size: b"%d" % x + b"." * size)
              for i in range(3)]
    return fi.Dataset.sample_from_datasets(inputs, [0.5, 0.2, 0.3], seed=2).batch(8)


@pytest.mark.parametrize("size", [10, 100_000])
def test_the_elements_do_not_depend_on_the_pulls(monkeypatch, size):
    expected = fi_outcomes(_mix(size))
    monkeypatch.setattr(directed_interleave, "MIN_PULL", 1)
    monkeypatch.setattr(directed_interleave, "MAX_PULL", 1)
    assert fi_outcomes(_mix(size)) == expected
