"""``decode_random_crop_resize``'s one-call C path (``_jpeg.random_crop_resize``) against its Python path.

Without bounding boxes, the window is sampled in C from the same draws numpy's ``Generator.random`` makes
(``random((max_attempts, 4))``, then ``random()`` for the flip), step for step as
``crop_window.sample_distorted_crop``: every image, error and generator state after the call must be the
Python path's (``jpeg_kernel.random_crop_into`` made to decline), and the images TensorFlow's for the window the
Python sampler draws. Bounding boxes, ``Generator`` subclasses and aspect ratios beyond ``RATIO_RANGE`` take the
Python path.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fastinput.errors import DataLossError, InvalidArgumentError
from fastinput.fused_ops import crop_window, jpeg_kernel
from fastinput.fused_ops import image as fi_image
from tests.fused_ops.conftest import make_jpeg
from tests.fused_ops.test_image import C_KERNEL, tf_reference
from tests.fused_ops.test_jpeg_kernel_paths import assert_bit_exact

pytestmark = pytest.mark.skipif(not C_KERNEL, reason="the C JPEG kernel is not built")

SIZES = [(1, 1), (2, 3), (17, 31), (31, 17), (8, 300), (300, 8), (1, 200), (375, 500), (500, 333)]
OPTIONS = [
    {},
    {"area_range": (0.08, 1.0)},
    {"area_range": (0.5, 0.5), "aspect_ratio_range": (1e-3, 1e3)},
    {"aspect_ratio_range": (1e-3, 1e-3)},  # the ends of RATIO_RANGE: the most extreme windows the C path takes
    {"aspect_ratio_range": (1e3, 1e3), "fallback": "center_crop"},
    {"area_range": (1e-9, 1e-8)},  # windows of a pixel or none
    {"min_object_covered": 0.9},
    {"min_object_covered": 2.0, "fallback": "center_crop"},  # never covered: the central crop
    {"max_attempts": 1},
    {"max_attempts": 1000, "area_range": (0.9, 0.95), "aspect_ratio_range": (3.0, 4.0)},
    {"flip": False},
]


@pytest.fixture(scope="module")
def sized_jpegs() -> dict[tuple[int, int], bytes]:
    return {size: make_jpeg(*size, "rgb", "4:4:4", 95, seed=i) for i, size in enumerate(SIZES)}


def _python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``decode_random_crop_resize`` sample its window in Python."""
    monkeypatch.setattr(jpeg_kernel, "random_crop_into", lambda *args: False)


def _taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record what each ``random_crop_into`` call answered (True: the C path decoded the image)."""
    answers: list[bool] = []
    real = jpeg_kernel.random_crop_into

    def spy(*args):
        answers.append(real(*args))
        return answers[-1]

    monkeypatch.setattr(jpeg_kernel, "random_crop_into", spy)
    return answers


def _outcome(jpeg, rng, **options):
    """The image (or the error) and the generator's next draw after the call."""
    try:
        result = fi_image.decode_random_crop_resize(jpeg, seed=rng, **options)
    except Exception as exc:  # the same error on both paths, and the same draws before it
        result = f"{type(exc).__name__}: {exc}"
    return result, rng.random()


def _assert_same(a, b):
    (image_a, next_a), (image_b, next_b) = a, b
    if isinstance(image_a, str) or isinstance(image_b, str):
        assert image_a == image_b
    else:
        np.testing.assert_array_equal(image_a, image_b)
        assert image_a.dtype == image_b.dtype
    assert next_a == next_b  # the same draws: the generators are in the same state after


@pytest.mark.parametrize("options", OPTIONS, ids=[str(o) for o in OPTIONS])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_c_path_gives_the_python_path_image_and_draws(sized_jpegs, monkeypatch, options, dtype):
    answers = _taken(monkeypatch)
    fast = {(size, seed): _outcome(jpeg, np.random.default_rng(seed), size=(6, 5), dtype=dtype, **options)
            for size, jpeg in sized_jpegs.items() for seed in range(12)}
    assert answers and all(answers)
    _python_path(monkeypatch)
    for (size, seed), outcome in fast.items():
        _assert_same(outcome, _outcome(sized_jpegs[size], np.random.default_rng(seed), size=(6, 5), dtype=dtype,
                                       **options))


@pytest.mark.parametrize("case", ["imagenet-420", "portrait-420", "cmyk", "progressive"])
def test_c_path_images_match_tf_on_the_python_sampler_windows(tf, jpegs, monkeypatch, case):
    """The oracle: TensorFlow's decode_and_crop_jpeg + resize on the window and flip the Python sampler draws."""
    answers = _taken(monkeypatch)
    jpeg = jpegs[case]
    height, width, _ = fi_image.jpeg_shape(jpeg)
    fast, reference = np.random.default_rng(21), np.random.default_rng(21)
    out = np.empty((224, 224, 3), np.uint8)
    for _ in range(12):
        fi_image.decode_random_crop_resize(jpeg, seed=fast, out=out)
        window = crop_window.sample_distorted_crop(height, width, reference)
        flip = reference.random() < 0.5
        assert_bit_exact(out, tf_reference(tf, jpeg, window, (224, 224), flip))
    assert answers == [True] * 12


def test_errors_and_draws_are_the_python_paths(sized_jpegs, monkeypatch):
    """A bad header draws nothing; a header over max_pixels is refused before drawing (the C path declines and the
    Python path raises); a corrupt body fails after the draws, as in Python."""
    jpeg = sized_jpegs[(375, 500)]
    cases = [(b"not a jpeg", {}), (jpeg[:40], {}), (jpeg[:3000], {}), (jpeg, {"size": (8, 8), "max_pixels": 1000}),
             (bytearray(jpeg[:5000]), {}), (memoryview(jpeg)[:-9000], {"dtype": np.float32})]
    fast = [_outcome(data, np.random.default_rng(1), **options) for data, options in cases]
    assert [type(image) for image, _ in fast] == [str] * len(cases)
    assert fast[0][0].startswith(InvalidArgumentError.__name__) and fast[2][0].startswith(DataLossError.__name__)
    assert "max_pixels=1000" in fast[3][0]
    _python_path(monkeypatch)
    for outcome, (data, options) in zip(fast, cases):
        _assert_same(outcome, _outcome(data, np.random.default_rng(1), **options))


class _Counting(np.random.Generator):
    """A Generator subclass whose ``random`` counts its calls: the C path, which draws from the bit generator
    directly, must leave it to Python."""

    calls = 0

    def random(self, *args, **kwargs):
        type(self).calls += 1
        return super().random(*args, **kwargs)


def test_boxes_subclasses_and_extreme_ratios_take_the_python_path(sized_jpegs, monkeypatch):
    answers = _taken(monkeypatch)
    jpeg = sized_jpegs[(375, 500)]
    rng = _Counting(np.random.PCG64(3))
    fi_image.decode_random_crop_resize(jpeg, (8, 8), seed=rng)
    assert _Counting.calls == 2 and answers == [False]  # the window's draws and the flip's, by random()
    boxed = fi_image.decode_random_crop_resize(jpeg, (8, 8), bbox=[0.1, 0.1, 0.5, 0.6], seed=4)
    extreme = fi_image.decode_random_crop_resize(jpeg, (8, 8), aspect_ratio_range=(1e-4, 2.0), seed=4)
    assert answers == [False]  # neither asked the C path
    _python_path(monkeypatch)
    np.testing.assert_array_equal(boxed, fi_image.decode_random_crop_resize(jpeg, (8, 8), bbox=[0.1, 0.1, 0.5, 0.6],
                                                                             seed=4))
    np.testing.assert_array_equal(extreme, fi_image.decode_random_crop_resize(jpeg, (8, 8),
                                                                              aspect_ratio_range=(1e-4, 2.0), seed=4))


def _free(lock) -> bool:
    """Whether another thread can take ``lock`` (numpy's is an RLock: this thread could take it again anyway)."""
    taken = []

    def take() -> None:
        taken.append(lock.acquire(blocking=False))
        if taken[0]:
            lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    return taken[0]


def test_a_generator_shared_by_threads_is_drawn_under_its_lock(sized_jpegs):
    """Threads sharing one Generator (as ``seed=None`` shares fastinput's) draw under its lock: no draw is lost or
    made twice (the generator ends where 200 calls of 41 draws put it), and the lock is free after."""
    jpeg = sized_jpegs[(300, 8)]
    rng = np.random.default_rng(8)
    calls_per_thread, threads = 50, 4
    workers = [threading.Thread(target=lambda: [fi_image.decode_random_crop_resize(jpeg, (4, 4), seed=rng)
                                                for _ in range(calls_per_thread)]) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert _free(rng.bit_generator.lock)
    reference = np.random.default_rng(8)
    reference.random(calls_per_thread * threads * 41)
    assert rng.random() == reference.random()


def test_kernel_checks_its_arguments(sized_jpegs):
    """The C entry (reached through its wrapper module) refuses options out of range, a wrong capsule and an
    output of another size."""
    _jpeg = jpeg_kernel._jpeg
    jpeg = sized_jpegs[(17, 31)]
    bit_generator = np.random.PCG64(0)
    out = np.empty((4, 4, 3), np.uint8)
    good = (0.05, 1.0, 0.75, 4 / 3, 0.1, 10, False, True, 1000)

    def call(options=good, target=out, capsule=bit_generator.capsule):
        return _jpeg.random_crop_resize(jpeg, target, 4, 4, False, capsule, bit_generator.lock, options)

    assert call() is True
    for bad in [(0.0, 1.0), (0.5, 0.4), (0.5, 1.5)]:
        with pytest.raises(ValueError, match="out of range"):
            call((*bad, *good[2:]))
    for index, bad in [(2, 1e-4), (3, 1e4), (4, -0.1), (4, float("nan")), (5, 0), (5, 1001), (8, 0)]:
        with pytest.raises(ValueError, match="out of range"):
            call(tuple(bad if i == index else value for i, value in enumerate(good)))
    with pytest.raises(InvalidArgumentError, match="does not hold 4x4x3 uint8"):
        call(target=np.empty((4, 5, 3), np.uint8))
    with pytest.raises(InvalidArgumentError, match="does not hold 2147483647x4x3"):  # sized before any product
        _jpeg.random_crop_resize(jpeg, out, 2**31 - 1, 4, False, bit_generator.capsule, bit_generator.lock, good)
    with pytest.raises(TypeError):
        call(capsule=object())
    with pytest.raises(TypeError):
        call(good[:-1])
    assert call(good[:-1] + (100,)) is False  # 17 x 31 pixels are more than 100: declined, nothing drawn
    assert _free(bit_generator.lock)
