"""``map -> batch`` fused hands a function with ``out=None`` its batch row (``OptimizationOptions.map_and_batch_out``).

The README's ``preprocess(record, out=None)`` is written for ``map_and_batch``;
users also write ``map(preprocess).batch(64)``. Fused, that function gets
its row as ``out=`` and decodes into the batch instead of into a fresh
array. The results are the same with the option on or off and without any
rewrite (errors included), the option turns it off, and a state saved at
every position resumes.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

import fastinput as fi
from fastinput.fused_ops.map_and_batch import takes_out_row
from tests.checkpoint.stages import Ints
from tests.checkpoint.test_parallel import check_resume
from tests.helpers import NO_REWRITES, assert_same_run, elements_and_errors

ROW = 2000  # elements larger than map_and_batch's small-output limit


class Image:
    """A ``fi.image``-style function: fills ``out`` when given one, else makes its own array; counts both."""

    def __init__(self, fail_at: int | None = None, label: bool = True, size: int = ROW) -> None:
        self.fail_at, self.label, self.size = fail_at, label, size
        self.calls = {"out": 0, "fresh": 0}
        self._lock = threading.Lock()

    def __call__(self, x, out=None):
        if self.fail_at is not None and int(x) == self.fail_at:
            raise ValueError(f"failed at {int(x)}")
        with self._lock:
            self.calls["fresh" if out is None else "out"] += 1
        pixels = np.arange(self.size, dtype=np.float32) if self.size else np.float32(1)
        if not self.label:
            return np.multiply(pixels, np.float32(x), out=out)
        image = np.multiply(pixels, np.float32(x), out=None if out is None else out[0])
        return image, np.int64(x)


@dataclasses.dataclass(frozen=True)
class Raised:
    """An error in a run: equal to another of the same kind and message."""

    kind: str
    message: str


def _error(exc: Exception) -> Raised:
    return Raised(type(exc).__name__, str(exc))


def _without_out_rows() -> fi.Options:
    return fi.Options(optimization=fi.OptimizationOptions(map_and_batch_out=False))


def _pipeline(fn, parallel=None, drop_remainder=False) -> fi.Dataset:
    return fi.Dataset.range(11).map(fn, num_parallel_calls=parallel).batch(4, drop_remainder)


@pytest.mark.parametrize("parallel", [None, 3])
@pytest.mark.parametrize("fail_at", [None, 5])
def test_rows_are_handed_to_the_function_and_results_stay_the_same(parallel, fail_at):
    expected = elements_and_errors(_pipeline(Image(fail_at), parallel).with_options(NO_REWRITES), _error)
    fused = Image(fail_at)
    assert_same_run(elements_and_errors(_pipeline(fused, parallel), _error), expected, Raised)
    assert fused.calls["out"] > 0  # every row but each batch's first, which tells the rows' shapes
    plain = Image(fail_at)
    assert_same_run(elements_and_errors(_pipeline(plain, parallel).with_options(_without_out_rows()), _error),
                    expected, Raised)
    assert plain.calls["out"] == 0


def test_a_function_whose_outputs_change_shape_falls_back_to_stacking_as_batch_does():
    def ragged(x, out=None):
        return np.zeros(ROW + int(x) % 2, np.float32)

    expected = elements_and_errors(_pipeline(ragged).with_options(NO_REWRITES), _error)
    assert expected[0].kind == "InvalidArgumentError"
    assert_same_run(elements_and_errors(_pipeline(ragged), _error), expected, Raised)


def test_only_an_out_none_parameter_counts():
    def other_default(x, out=3):
        return x

    def keyword_only(x, *, out=None):
        return x

    assert takes_out_row(Image()) and takes_out_row(keyword_only)
    assert not takes_out_row(other_default) and not takes_out_row(lambda x: x) and not takes_out_row(len)


def test_the_readme_function_batches_the_same_into_rows(tmp_path):
    """The README's ``preprocess`` over map -> batch, seeded crops: the same batches with rows handed over or not."""
    pytest.importorskip("tensorflow", reason="the synthetic photos are written by TensorFlow (CI's job without "
                                             "TensorFlow skips it)")
    from fastinput_bench.readme_pipeline import features
    from fastinput_bench.synthetic import synthetic_files

    def preprocess(record, out=None):
        example = fi.parse_example([record], features)
        image = fi.image.decode_random_crop_resize(example["image/encoded"][0], size=(64, 64), seed=7,
                                                   out=None if out is None else out[0])
        return image, example["image/class/label"][0]

    files = synthetic_files("images", "small", tmp_path)
    pipeline = fi.TFRecordDataset(files).map(preprocess, num_parallel_calls=2).batch(8)
    fused, plain = list(pipeline), list(pipeline.with_options(_without_out_rows()))
    assert len(fused) == len(plain) > 1
    for (images, labels), (want_images, want_labels) in zip(fused, plain):
        assert images.dtype == np.uint8 and images.shape[1:] == (64, 64, 3)
        np.testing.assert_array_equal(images, want_images)
        np.testing.assert_array_equal(labels, want_labels)


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_a_state_saved_at_every_position_resumes(deterministic, drop_remainder):
    image = Image(fail_at=13, label=False, size=0)  # scalar rows: comparable when the order is not kept
    dataset = Ints(0, 23, (5, 17)).map(image, 2, deterministic=deterministic).batch(4, drop_remainder)
    for n in range(8):
        check_resume(dataset, n, 8, deterministic)
    assert image.calls["out"] > 0
