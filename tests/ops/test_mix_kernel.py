"""The mixing ops' C kernel beyond the layout (``tests/ops/test_mix_layout.py``), each function against its fallback:
the draws among equal weights (``mix_layout.draw_bits``: numpy's numbers), and the buffers' upkeep (``take`` leaves
None, counted, in the slots it empties; ``drop_front`` deletes those as ``del`` would, keeping the list's room)."""

import sys

import numpy as np
import pytest

from fastinput.ops import mix_layout
from fastinput.ops.choices import WeightedChoices
from fastinput.ops.shuffle import SeedSequence


@pytest.fixture
def kernel():
    """The C extension (the tests of its own functions skip where it is not built)."""
    return pytest.importorskip("fastinput.ops._mixing")


@pytest.mark.parametrize("shift", [0, 1, 29, 31])
def test_c_draw_bits_are_the_raw_outputs_halved_and_shifted(kernel, shift):
    fast, slow = np.random.PCG64(shift), np.random.PCG64(shift)
    for n in (2, 1024, 10):
        out = np.empty(n, dtype=np.int64)
        kernel.draw_bits(fast.capsule, shift, out)
        assert np.array_equal(out, (slow.random_raw(n // 2).view(np.uint32) >> np.uint32(shift)).astype(np.int64))
    assert fast.state == slow.state


@pytest.mark.parametrize("count", [2, 8, 256])
def test_draws_without_the_extension_are_the_same(monkeypatch, count):
    """The blocks drawn with the extension (where it is built), then without it: the same."""
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
def test_c_draw_bits_checks_its_arguments(kernel, args, error, match):
    with pytest.raises(error, match=match):
        kernel.draw_bits(np.random.PCG64(0).capsule, *args)


def test_c_draw_bits_wants_a_bit_generators_capsule(kernel):
    with pytest.raises(TypeError):
        kernel.draw_bits(object(), 29, np.empty(2, dtype=np.int64))


def test_take_counts_a_reference_to_none_per_slot_it_empties(kernel):
    """None's count goes up by one per element taken, and back down as the fronts are dropped (the interpreter's
    own references to None may move it by one or two on the way)."""
    buffers, cursors = [[object() for _ in range(5000)] for _ in range(3)], np.zeros(3, dtype=np.int64)
    choices = np.array([0, 2, 2, 1] * 1000)
    before = sys.getrefcount(None)
    taken = kernel.take(choices, buffers, cursors)
    after_take = sys.getrefcount(None)
    for buffer in buffers:
        kernel.drop_front(buffer, buffer.count(None))
    after_drop = sys.getrefcount(None)
    assert len(taken) == len(choices) and [len(buffer) for buffer in buffers] == [4000, 4000, 3000]
    assert abs(after_take - before - len(choices)) <= 2 and abs(after_drop - before) <= 2


@pytest.mark.parametrize("front, count", [([None] * 5, 5), ([None] * 5, 3), ([None, 1, None], 3), ([], 0),
                                          ([None, None], 0)])
@pytest.mark.parametrize("built", [True, False])
def test_drop_front_is_del(monkeypatch, built, front, count):
    """With the extension and without it (``del``)."""
    if built:
        pytest.importorskip("fastinput.ops._mixing")
    else:
        monkeypatch.setattr(mix_layout, "_mixing", None)
    buffer = front + ["a", "b"]
    expected = list(buffer)
    del expected[:count]
    mix_layout.drop_front(buffer, count)
    assert buffer == expected


@pytest.mark.parametrize("count", [-1, 4])
def test_drop_front_wants_a_count_within_the_list(kernel, count):
    with pytest.raises(IndexError):
        kernel.drop_front([None, None, 1], count)
