"""as_tf_dataset's two ways of cutting packed strings: one op for leaves of one static size, one per leaf otherwise."""

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import assert_same_elements, fi_elements, tf_elements
from tests.test_tf_adapter import _Batches, _packed

pytestmark = pytest.mark.usefixtures("cut_strings_mode")


def _batches(sizes):
    """Three batches, each a dict of packed string leaves of ``sizes`` values (some empty, some with NUL bytes)
    and a number; and the same batches with plain string arrays."""
    packed, plain = [], []
    for i in range(3):
        leaves = {f"s{k}": [b"%d-%d-%d" % (i, k, j) + b"\x00" * (j % 3) for j in range(size)]
                  for k, size in enumerate(sizes)}
        leaves["s0"][:1] = [b""] * min(1, sizes[0])
        packed.append({key: _packed(values, b"<" * k) for k, (key, values) in enumerate(leaves.items())})
        packed[-1]["n"] = np.arange(2) + i
        plain.append({key: np.array(values, dtype=object) for key, values in leaves.items()})
        plain[-1]["n"] = np.arange(2) + i
    return packed, plain


@pytest.mark.parametrize("sizes", [[8, 8, 8], [3, 3], [0, 0], [8, 5, 1]],
                         ids=["one size, aligned rows", "one size, unaligned rows", "empty", "sizes differ"])
def test_packed_leaves_of_static_sizes_cross_unchanged(tf, sizes):
    packed, plain = _batches(sizes)
    fn = _Batches(plain)
    fn.packed_variant = packed
    ds = fi.Dataset.range(3).map(fn)
    assert [tuple(ds.element_spec[f"s{k}"].shape) for k in range(len(sizes))] == [(size,) for size in sizes]
    adapted = ds.as_tf_dataset()
    assert_same_elements(tf_elements(adapted), plain)
    assert_same_elements(tf_elements(adapted), fi_elements(ds))
