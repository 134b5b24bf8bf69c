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
    """Per input: a used front (before its cursor), then the elements the choices need and a few more."""
    counts = np.bincount(choices, minlength=inputs)
    return [[("used", j) for j in range(2)] + [(i, j) for j in range(int(counts[i]) + int(rng.integers(0, extra + 1)))]
            for i in range(inputs)]


@pytest.mark.parametrize("inputs", [1, 2, 8, 200])
@pytest.mark.parametrize("n", [0, 1, 5, 1024])
def test_c_take_is_the_numpy_take(inputs, n):
    rng = np.random.default_rng(n * 1000 + inputs)
    choices = rng.integers(0, inputs, n)
    c_buffers = _buffers(rng, choices, inputs, 3)
    np_buffers, before = [list(b) for b in c_buffers], [list(b) for b in c_buffers]
    c_cursors, np_cursors = np.full(inputs, 2), np.full(inputs, 2)
    out = _mixing.take(choices, c_buffers, c_cursors)
    assert out == mix_layout.take_numpy(choices, np_buffers, np_cursors)
    assert np.array_equal(c_cursors, np_cursors)
    assert np.array_equal(c_cursors, 2 + np.bincount(choices, minlength=inputs))
    for buffer, np_buffer, old, cursor in zip(c_buffers, np_buffers, before, c_cursors.tolist()):
        # the elements taken leave None in their places; the front before and the rest after are unchanged
        assert buffer == np_buffer == old[:2] + [None] * (cursor - 2) + old[cursor:]
    taken = {i: 0 for i in range(inputs)}
    for choice, element in zip(choices.tolist(), out):  # each choice got its input's next element
        assert element == (choice, taken[choice])
        taken[choice] += 1


@pytest.mark.parametrize("take", [_mixing.take, mix_layout.take_numpy])
@pytest.mark.parametrize("choices", [np.array([0, 2, 1]), np.array([0, -1]), np.array([1, 1, 1]),
                                     np.array([0, 0, 0, 1])])
def test_take_cannot_serve_and_changes_nothing(take, choices):
    """A choice out of range, or more choices of a list than it holds past its cursor: None, nothing moved."""
    buffers, cursors = [[1, 2, 3], [3, 4]], np.array([1, 0])
    assert take(choices, buffers, cursors) is None
    assert buffers == [[1, 2, 3], [3, 4]] and cursors.tolist() == [1, 0]


@pytest.mark.parametrize("take", [_mixing.take, mix_layout.take_numpy])
def test_take_writes_a_batch_of_bytes_into_out(take):
    buffers, cursors = [[b"a", b"b"], [b"c", 5]], np.array([0, 0])
    out = np.empty(4, dtype=object)  # what is left of a batch: the first slots are written
    assert take(np.array([0, 1, 0]), buffers, cursors, out) == 3
    assert out.tolist() == [b"a", b"c", b"b", None] and cursors.tolist() == [2, 1]
    assert buffers == [[None, None], [None, 5]]
    out = np.empty(1, dtype=object)
    assert take(np.array([1]), buffers, cursors, out) == [5]  # not bytes: a list, ``out`` left alone
    assert out.tolist() == [None] and cursors.tolist() == [2, 2]


@pytest.mark.parametrize("choices", [np.array([0, 1], dtype=np.int32), np.array([0.0, 1.0]), b"ab"])
def test_c_take_wants_int64_choices(choices):
    with pytest.raises(TypeError, match="int64"):
        _mixing.take(choices, [[1], [2]], np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize("cursors, error", [(np.zeros(2, dtype=np.int32), TypeError), (np.zeros(3, dtype=np.int64),
                                            ValueError), (np.array([0, 2]), IndexError)])
def test_c_take_wants_one_int64_cursor_per_list_within_it(cursors, error):
    with pytest.raises(error):
        _mixing.take(np.array([0]), [[1], [2]], cursors)


def test_c_take_wants_lists():
    with pytest.raises(TypeError, match="not a list"):
        _mixing.take(np.array([0]), [(1,)], np.zeros(1, dtype=np.int64))


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


@pytest.mark.parametrize("weights", [np.ones(8), np.ones(3), np.array([1.0, 3.0])])
def test_the_generator_moves_on_as_if_every_uniform_number_were_drawn(weights):
    """Uniform weights with raw-bits draws skip the unused uniform numbers (``advance``): later draws, and the
    state a checkpoint saves, are those of drawing them."""
    fast = WeightedChoices(weights, SeedSequence(9, False))
    reference = fast.seed.generator()
    for _ in range(3):
        fast.draw()
        reference.integers(0, len(weights), 1024)
        reference.random(1024)
    state = fast._rng.bit_generator.state
    assert (state["state"], state["has_uint32"]) == (reference.bit_generator.state["state"],
                                                     reference.bit_generator.state["has_uint32"])


@pytest.mark.parametrize("count", [1, 3, 5, 12])
def test_other_counts_draw_with_integers(count):
    assert WeightedChoices(np.ones(count), SeedSequence(0, False))._shift is None
