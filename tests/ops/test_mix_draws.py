"""The mixing ops' draws among equal weights in C (``mix_layout.draw_bits``): numpy's numbers, and its fallback."""

import numpy as np
import pytest

from fastinput.ops import mix_layout
from fastinput.ops.choices import WeightedChoices
from fastinput.ops.shuffle import SeedSequence

_mixing = pytest.importorskip("fastinput.ops._mixing")


@pytest.mark.parametrize("shift", [0, 1, 29, 31])
def test_c_draw_bits_are_the_raw_outputs_halved_and_shifted(shift):
    fast, slow = np.random.PCG64(shift), np.random.PCG64(shift)
    for n in (2, 1024, 10):
        out = np.empty(n, dtype=np.int64)
        _mixing.draw_bits(fast.capsule, shift, out)
        assert np.array_equal(out, (slow.random_raw(n // 2).view(np.uint32) >> np.uint32(shift)).astype(np.int64))
    assert fast.state == slow.state


@pytest.mark.parametrize("count", [2, 8, 256])
def test_draws_without_the_extension_are_the_same(monkeypatch, count):
    with_c = WeightedChoices(np.ones(count), SeedSequence(count, False))
    blocks = [with_c.draw() for _ in range(3)]
    monkeypatch.setattr(mix_layout, "_mixing", None)
    without = WeightedChoices(np.ones(count), SeedSequence(count, False))
    for block in blocks:
        assert np.array_equal(without.draw(), block)
    assert without._rng.bit_generator.state == with_c._rng.bit_generator.state


@pytest.mark.parametrize("args, error, match", [
    ((29, np.empty(3, dtype=np.int64)), ValueError, "even"),
    ((32, np.empty(2, dtype=np.int64)), ValueError, "shift"),
    ((-1, np.empty(2, dtype=np.int64)), ValueError, "shift"),
    ((29, np.empty(2, dtype=np.int32)), TypeError, "int64"),
    ((29, np.empty(2, dtype=np.int64)[::-1]), ValueError, "contiguous"),
])
def test_c_draw_bits_checks_its_arguments(args, error, match):
    with pytest.raises(error, match=match):
        _mixing.draw_bits(np.random.PCG64(0).capsule, *args)


def test_c_draw_bits_wants_a_bit_generators_capsule():
    with pytest.raises(TypeError):
        _mixing.draw_bits(object(), 29, np.empty(2, dtype=np.int64))
