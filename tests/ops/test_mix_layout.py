"""The mixing ops' layout step (``fastinput.ops.mix_layout``): the C kernel, its numpy fallback, and the choosers'
shortcuts, each against the plain computation."""

import numpy as np
import pytest

import fastinput as fi
from fastinput.ops import mix_layout
from fastinput.ops.choices import WeightedChoices
from fastinput.ops.shuffle import SeedSequence
from tests.helpers import fi_outcomes, fi_raising_at

_mixing = pytest.importorskip("fastinput.ops._mixing")


def _buffers(rng: np.random.Generator, choices: np.ndarray, inputs: int, extra: int) -> list[list[object]]:
    counts = np.bincount(choices, minlength=inputs)
    return [[(i, j) for j in range(int(counts[i]) + int(rng.integers(0, extra + 1)))] for i in range(inputs)]


@pytest.mark.parametrize("inputs", [1, 2, 8, 200])
@pytest.mark.parametrize("n", [0, 1, 5, 1024])
def test_c_take_is_the_numpy_take(inputs, n):
    rng = np.random.default_rng(n * 1000 + inputs)
    choices = rng.integers(0, inputs, n)
    np_buffers = _buffers(rng, choices, inputs, 3)
    c_buffers = [list(b) for b in np_buffers]
    out = _mixing.take(choices, c_buffers)
    assert out == mix_layout.take_numpy(choices, np_buffers)
    assert c_buffers == np_buffers  # the same elements left, in the same order
    taken = {i: 0 for i in range(inputs)}
    for choice, element in zip(choices.tolist(), out):  # each choice got its input's next element
        assert element == (choice, taken[choice])
        taken[choice] += 1


@pytest.mark.parametrize("choices, message", [
    (np.array([0, 2, 1]), "out of range"),
    (np.array([0, -1]), "out of range"),
    (np.array([1, 1, 1]), "choices of buffer 1"),
])
def test_c_take_refuses_bad_choices_and_changes_nothing(choices, message):
    buffers = [[1, 2], [3, 4]]
    with pytest.raises(IndexError, match=message):
        _mixing.take(choices, buffers)
    assert buffers == [[1, 2], [3, 4]]


@pytest.mark.parametrize("choices", [np.array([0, 1], dtype=np.int32), np.array([0.0, 1.0]), b"ab"])
def test_c_take_wants_int64_choices(choices):
    with pytest.raises(TypeError, match="int64"):
        _mixing.take(choices, [[1], [2]])


def test_c_take_wants_lists():
    with pytest.raises(TypeError, match="not a list"):
        _mixing.take(np.array([0]), [(1,)])


def _mixes(fail):
    """Mixes of inputs of unequal length, one failing mid-way, read in chunks of several sizes."""
    inputs = [fi.Dataset.range(i * 1000, i * 1000 + 30 + 25 * i) for i in range(4)]
    inputs[2] = inputs[2].map(fail(2010, 2030))
    for stop in (True, False):
        for weights in (None, [0.5, 0.1, 0.3, 0.1]):
            mixed = fi.Dataset.sample_from_datasets(inputs, weights, seed=3, stop_on_empty_dataset=stop)
            yield mixed
            yield mixed.batch(7)
            yield mixed.map(lambda x: b"%d" % int(x)).batch(7)  # not fused: bytes through batch's stacking
            yield fi.Dataset.sample_from_datasets([ds.map(lambda x: b"%d" % int(x)) for ds in inputs], weights,
                                                  seed=3, stop_on_empty_dataset=stop).batch(7)  # fused: bytes laid out


def test_the_numpy_fallback_gives_what_the_kernel_gives(monkeypatch):
    expected = [fi_outcomes(ds) for ds in _mixes(fi_raising_at)]
    monkeypatch.setattr(mix_layout, "_mixing", None)
    assert [fi_outcomes(ds) for ds in _mixes(fi_raising_at)] == expected


@pytest.mark.parametrize("weights", [[1.0] * 8, [0.125] * 8, [0.1] * 3, [2.0, 2.0]])
def test_uniform_weights_draw_what_the_alias_step_would(weights):
    fast = WeightedChoices(np.asarray(weights), SeedSequence(5, False))
    slow = WeightedChoices(np.asarray(weights), SeedSequence(5, False))
    assert fast._uniform
    slow._uniform = False
    for _ in range(3):
        assert np.array_equal(fast.draw(), slow.draw())


@pytest.mark.parametrize("count", [2, 4, 8, 64, 256])
def test_raw_bits_draws_are_numpys_integers(count):
    """For a power-of-2 number of inputs the indices come from the generator's raw bits: the same numbers as
    ``integers``, and the generator left in the same state."""
    fast = WeightedChoices(np.ones(count), SeedSequence(count, False))
    assert fast._shift is not None
    reference = fast.seed.generator()
    for _ in range(4):
        expected = reference.integers(0, count, 1024)
        reference.random(1024)
        assert np.array_equal(fast.draw(), expected)
    assert fast._rng.bit_generator.state["state"] == reference.bit_generator.state["state"]
    assert fast._rng.bit_generator.state["has_uint32"] == 0


@pytest.mark.parametrize("count", [1, 3, 5, 12])
def test_other_counts_draw_with_integers(count):
    assert WeightedChoices(np.ones(count), SeedSequence(0, False))._shift is None
