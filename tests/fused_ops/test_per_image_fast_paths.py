"""The per-image fast paths of the README pipeline give what the general paths give.

- ``map_and_batch`` writes an output that is a plain tuple of leaves (``image, label``) into its rows without
  flattening it; any other output (a list, a namedtuple, a nested tuple, another shape or dtype) still gets
  ``map -> batch``'s outcome.
- ``fi.image``'s argument checks are made once per distinct value: unhashable arguments are checked at every call,
  and a bad value is refused every time, whatever was accepted before.
"""

import collections

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError
from tests.fused_ops.conftest import make_jpeg
from tests.helpers import NO_REWRITES, elements_and_errors

Pair = collections.namedtuple("Pair", ["image", "label"])


def _describe(exc):
    return f"{type(exc).__name__}: {exc}"


def _as_text(outcomes):
    def leaf(value):
        return value.tolist() if isinstance(value, np.ndarray) else value

    return [o if isinstance(o, str) else [leaf(v) for v in (o if isinstance(o, (tuple, list)) else [o])]
            for o in outcomes]


def _image(x: int, out=None) -> np.ndarray:
    """A 16x16 image of value x % 256, written into ``out[0]`` (and that row returned) when given."""
    image = np.full((16, 16, 3), x % 256, np.uint8)
    if out is None:
        return image
    out[0][...] = image
    return out[0]


def _row(x, out=None):
    """An image and its label, written into ``out`` when given; odd rows of some batches are not plain tuples."""
    x = int(x)
    image = _image(x, out)
    label = np.int64(x)
    if x == 11:
        return [image, label]  # a list: a tuple of components, as tf.data takes it
    if x == 19:
        return Pair(image, label)  # a namedtuple in a batch of tuples
    if x == 27:
        return image, (label, label)  # nested: does not fit the rows
    if x == 35:
        return image, np.float32(x)  # another dtype
    if x == 43:
        return np.zeros((8, 8, 3), np.uint8), label  # another shape
    return image, label


@pytest.mark.parametrize("num_parallel_calls", [1, 3])
def test_plain_tuple_rows_and_misfits_give_map_then_batch_outcomes(num_parallel_calls):
    fused = fi.Dataset.range(52).map_and_batch(_row, 8, num_parallel_calls=num_parallel_calls)
    reference = fi.Dataset.range(52).map(lambda x: _row(x)).batch(8).with_options(NO_REWRITES)
    assert _as_text(elements_and_errors(fused, _describe)) == _as_text(elements_and_errors(reference, _describe))


def _pair_or_nested(x, out=None):
    """(image, two numbers) as an array of 2, but a tuple of 2 at x == 5: the same shape and dtype, not a leaf."""
    x = int(x)
    return _image(x, out), ((np.int64(x), np.int64(x)) if x == 5 else np.array([x, x], np.int64))


def _stops_at_2(x, out=None):
    if int(x) == 2:
        raise StopIteration
    return _row(x, out)


@pytest.mark.parametrize("fn", [_pair_or_nested, _stops_at_2])
@pytest.mark.parametrize("num_parallel_calls", [1, 3])
def test_rows_given_out_fail_and_misfit_as_map_then_batch(fn, num_parallel_calls):
    """A nested item shaped like its leaf is no leaf (the batch is stacked, as ``batch`` does, to its error); a
    ``StopIteration`` in a function given ``out=`` is an error naming the function, as in ``map``."""
    fused = fi.Dataset.range(12).map_and_batch(fn, 4, num_parallel_calls=num_parallel_calls)
    reference = fi.Dataset.range(12).map(fn).batch(4).with_options(NO_REWRITES)
    outcomes = _as_text(elements_and_errors(fused, _describe))
    assert outcomes == _as_text(elements_and_errors(reference, _describe))
    assert sum(isinstance(o, str) for o in outcomes) == 1
    assert fn is _pair_or_nested or "_stops_at_2" in next(o for o in outcomes if isinstance(o, str))


def test_plain_tuple_rows_are_written_in_place():
    batches = list(fi.Dataset.range(16).map_and_batch(lambda x, out=None: _row(int(x) * 2, out), 8))
    assert [b[1].tolist() for b in batches] == [list(range(0, 16, 2)), list(range(16, 32, 2))]
    assert [int(b[0][3, 0, 0, 0]) for b in batches] == [6, 22]


@pytest.fixture(scope="module")
def jpeg():
    return make_jpeg(120, 160, "rgb", "4:2:0", 90)


def test_fi_image_is_kept_after_its_first_use():
    module = fi.image
    assert vars(fi)["image"] is module is fi.image


def test_unhashable_arguments_are_checked_and_used(jpeg):
    as_tuples = fi.image.decode_random_crop_resize(jpeg, (32, 48), area_range=(0.3, 1.0), seed=3)
    as_lists = fi.image.decode_random_crop_resize(jpeg, [32, 48], area_range=[0.3, 1.0], seed=3)
    np.testing.assert_array_equal(as_lists, as_tuples)
    with pytest.raises(InvalidArgumentError, match="area_range"):
        fi.image.decode_random_crop_resize(jpeg, [32, 48], area_range=[0.5, 0.1])


@pytest.mark.parametrize("bad", [
    {"flip": 1}, {"flip": "yes"}, {"area_range": (0.5, 0.1)}, {"max_attempts": 0}, {"max_attempts": 1.5},
    {"min_object_covered": -1.0}, {"fallback": "nothing"}, {"size": (0, 10)}, {"dtype": np.int16},
    {"max_pixels": 0},
])
def test_a_bad_value_is_refused_every_time_after_good_ones(jpeg, bad):
    good = {"flip": True, "area_range": (0.05, 1.0), "max_attempts": 10, "min_object_covered": 0.1,
            "fallback": "image", "size": (24, 24), "dtype": np.uint8, "max_pixels": 10**6}
    for _ in range(2):
        fi.image.decode_random_crop_resize(jpeg, **good)
        with pytest.raises(InvalidArgumentError):
            fi.image.decode_random_crop_resize(jpeg, **{**good, **bad})
