"""fi.image's fused JPEG kernels against TensorFlow's ops on the same crop windows, plus their contract.

Measured on the development machine: for the same window, the C kernel's float32
output equals ``tf.image.resize(tf.io.decode_and_crop_jpeg(...), size, "bilinear")``
bit for bit, and its uint8 output equals that rounded (ties to even) bit for bit,
on every case below. The tolerances allow float noise only (float32 within 1e-3;
uint8 off by at most 1 in under 0.1% of values), not decoding differences.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from fastinput.errors import DataLossError, FastInputError, InvalidArgumentError
from fastinput.fused_ops import crop_window, jpeg_kernel
from fastinput.fused_ops import image as fi_image
from tests.fused_ops.conftest import JPEG_CASES

C_KERNEL = jpeg_kernel._jpeg is not None


def tf_reference(tf, jpeg: bytes, window, size, flip: bool) -> np.ndarray:
    """TF's float32 result: decode (and crop) with channels=3, bilinear resize, then flip."""
    image = tf.io.decode_jpeg(jpeg, channels=3) if window is None else \
        tf.io.decode_and_crop_jpeg(jpeg, list(window), channels=3)
    resized = tf.image.resize(image, size, method="bilinear").numpy()
    return resized[:, ::-1] if flip else resized


def assert_matches_tf(actual: np.ndarray, expected: np.ndarray) -> None:
    if actual.dtype == np.float32:
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-3)
        return
    diff = np.abs(actual.astype(np.int16) - np.round(expected).astype(np.int16))
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3, f"max {diff.max()}, differing {np.mean(diff > 0):.2%}"


def edge_windows(height: int, width: int) -> list[tuple[int, int, int, int] | None]:
    """The whole image, corners and edge strips, an unaligned interior window and single pixels."""
    h2, w2 = max(1, height // 2), max(1, width // 2)
    return [
        None,
        (0, 0, height, width),
        (height - h2, width - w2, h2, w2),         # bottom-right corner
        (0, width - 1, height, 1),                 # rightmost column
        (height - 1, 0, 1, width),                 # bottom row
        (min(3, height - 1), min(5, width - 1), max(1, height - 7), max(1, width // 3)),  # not on an iMCU edge
        (height // 2, width // 2, 1, 1),           # one pixel
    ]


@pytest.mark.parametrize("case", JPEG_CASES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_matches_tf_on_edge_windows(tf, jpegs, case, dtype):
    jpeg = jpegs[case]
    height, width, _ = fi_image.jpeg_shape(jpeg)
    for index, window in enumerate(edge_windows(height, width)):
        for size, flip in (((224, 224), index % 2 == 1), ((37, 301), index % 2 == 0), ((1, 1), False)):
            actual = fi_image.decode_crop_resize(jpeg, window, size, flip=flip, dtype=dtype)
            assert actual.shape == (*size, 3) and actual.dtype == dtype
            assert_matches_tf(actual, tf_reference(tf, jpeg, window, size, flip))


@pytest.mark.parametrize("case", ["imagenet-420", "odd-444", "grayscale", "cmyk", "progressive"])
def test_matches_tf_on_random_windows(tf, jpegs, case):
    jpeg = jpegs[case]
    height, width, _ = fi_image.jpeg_shape(jpeg)
    rng = np.random.default_rng(7)
    for _ in range(12):
        window = crop_window.sample_distorted_crop(height, width, rng)
        flip = bool(rng.integers(2))
        actual = fi_image.decode_crop_resize(jpeg, window, (224, 224), flip=flip)
        assert_matches_tf(actual, tf_reference(tf, jpeg, window, (224, 224), flip))


@pytest.mark.parametrize("case", ["imagenet-420", "portrait-420", "tiny-odd", "grayscale"])
@pytest.mark.parametrize("crop_fraction", [0.875, 0.5, 1.0])
def test_center_crop_matches_tf_reference_preprocessing(tf, jpegs, case, crop_fraction):
    """The TPU ResNet eval crop, written with TF ops, against decode_center_crop_resize."""
    jpeg = jpegs[case]
    shape = tf.io.extract_jpeg_shape(jpeg)
    side = tf.cast(crop_fraction * tf.cast(tf.minimum(shape[0], shape[1]), tf.float32), tf.int32)
    window = tf.stack([(shape[0] - side + 1) // 2, (shape[1] - side + 1) // 2, side, side]).numpy()
    actual = fi_image.decode_center_crop_resize(jpeg, (64, 96), crop_fraction=crop_fraction, dtype=np.float32)
    assert_matches_tf(actual, tf_reference(tf, jpeg, window, (64, 96), False))


def test_grayscale_and_cmyk_decode_to_rgb(jpegs):
    gray = fi_image.decode_crop_resize(jpegs["grayscale"], None, (50, 60))
    np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    cmyk = fi_image.decode_crop_resize(jpegs["cmyk"], None, (50, 60))
    assert cmyk.shape == (50, 60, 3) and cmyk.std() > 10  # a photo, not a blank


def test_random_crop_is_the_sampled_window_then_the_drawn_flip(jpegs):
    """decode_random_crop_resize = sample_distorted_crop + one uniform draw for the flip + decode_crop_resize."""
    jpeg = jpegs["imagenet-420"]
    flips = 0
    for seed in range(40):
        actual = fi_image.decode_random_crop_resize(jpeg, seed=seed)
        rng = np.random.default_rng(seed)
        window = crop_window.sample_distorted_crop(375, 500, rng)
        flip = rng.random() < 0.5
        flips += flip
        np.testing.assert_array_equal(actual, fi_image.decode_crop_resize(jpeg, window, flip=flip))
    assert 10 <= flips <= 30
    unflipped = fi_image.decode_random_crop_resize(jpeg, seed=3, flip=False)
    window = crop_window.sample_distorted_crop(375, 500, np.random.default_rng(3))
    np.testing.assert_array_equal(unflipped, fi_image.decode_crop_resize(jpeg, window))


def test_seed_reproduces_and_generators_advance(jpegs):
    jpeg = jpegs["odd-444"]
    first = fi_image.decode_random_crop_resize(jpeg, (96, 96), seed=11)
    np.testing.assert_array_equal(first, fi_image.decode_random_crop_resize(jpeg, (96, 96), seed=11))
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    sequence_a = [fi_image.decode_random_crop_resize(jpeg, (32, 32), seed=rng_a) for _ in range(4)]
    sequence_b = [fi_image.decode_random_crop_resize(jpeg, (32, 32), seed=rng_b) for _ in range(4)]
    for a, b in zip(sequence_a, sequence_b):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(sequence_a[0], other) for other in sequence_a[1:])


def test_bbox_steers_the_crop(jpegs):
    """With a small box in the top-left corner and min_object_covered=1, every crop contains it."""
    jpeg = jpegs["imagenet-420"]
    box = [[0.0, 0.0, 0.2, 0.2]]
    for seed in range(20):
        rng = np.random.default_rng(seed)
        y, x, h, w = crop_window.sample_distorted_crop(375, 500, rng, min_object_covered=1.0,
                                                       boxes=crop_window.check_boxes("t", box), max_attempts=50)
        assert y == 0 and x == 0 and h >= 75 and w >= 100
    out = fi_image.decode_random_crop_resize(jpeg, bbox=[box], min_object_covered=1.0, seed=0)
    assert out.shape == (224, 224, 3)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_out_writes_into_a_batch_row(jpegs, dtype):
    jpeg = jpegs["imagenet-420"]
    batch = np.zeros((3, 64, 80, 3), dtype)
    result = fi_image.decode_random_crop_resize(jpeg, (64, 80), dtype=dtype, seed=4, out=batch[1])
    assert np.shares_memory(result, batch) and result.base is batch
    np.testing.assert_array_equal(batch[1], fi_image.decode_random_crop_resize(jpeg, (64, 80), dtype=dtype, seed=4))
    assert not batch[0].any() and not batch[2].any()
    center = fi_image.decode_center_crop_resize(jpeg, (64, 80), dtype=dtype, out=batch[2])
    assert center.base is batch and batch[2].any()


def test_float32_output_is_tf_scale(jpegs):
    as_float = fi_image.decode_crop_resize(jpegs["odd-422"], (10, 20, 200, 300), (50, 50), dtype=np.float32)
    as_uint8 = fi_image.decode_crop_resize(jpegs["odd-422"], (10, 20, 200, 300), (50, 50))
    assert as_float.dtype == np.float32 and 0 <= as_float.min() and as_float.max() <= 255 and as_float.max() > 1
    np.testing.assert_array_equal(np.round(as_float).astype(np.uint8), as_uint8)


def test_threads_give_the_same_results_as_one(jpegs):
    items = []
    for index, jpeg in enumerate(jpegs.values()):
        height, width, _ = fi_image.jpeg_shape(jpeg)
        rng = np.random.default_rng(index)
        items += [(jpeg, crop_window.sample_distorted_crop(height, width, rng), bool(rng.integers(2)))
                  for _ in range(6)]
    expected = [fi_image.decode_crop_resize(jpeg, window, (96, 128), flip=flip) for jpeg, window, flip in items]
    results: dict[int, list[np.ndarray]] = {}

    def work(thread: int) -> None:
        results[thread] = [None] * len(items)
        for _ in range(3):
            for i in np.roll(np.arange(len(items)), 7 * thread):  # each thread in its own order
                jpeg, window, flip = items[i]
                results[thread][i] = fi_image.decode_crop_resize(jpeg, window, (96, 128), flip=flip)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for per_thread in results.values():
        for actual, wanted in zip(per_thread, expected):
            np.testing.assert_array_equal(actual, wanted)


def test_not_a_jpeg_raises_invalid_argument():
    for data in (b"", b"definitely not a jpeg" * 10, b"\x89PNG\r\n\x1a\n" + bytes(100)):
        with pytest.raises(InvalidArgumentError):
            fi_image.decode_crop_resize(data)
        with pytest.raises(InvalidArgumentError):
            fi_image.jpeg_shape(data)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.999])
def test_truncated_jpeg_raises(jpegs, keep):
    jpeg = jpegs["imagenet-420"]
    truncated = jpeg[:int(len(jpeg) * keep)]
    expected = DataLossError if C_KERNEL else InvalidArgumentError
    with pytest.raises(expected) as info:
        fi_image.decode_crop_resize(truncated)
    if C_KERNEL:
        assert "truncated" in str(info.value) and 0 < info.value.offset <= len(truncated)


def test_truncated_header_raises(jpegs):
    with pytest.raises((DataLossError, InvalidArgumentError)):
        fi_image.jpeg_shape(jpegs["imagenet-420"][:100])


def test_corrupt_jpegs_never_crash(jpegs):
    """Damaged bytes anywhere: either an image (libjpeg recovers, as TF does) or a fastinput error."""
    jpeg = bytearray(jpegs["odd-444"])
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(60):
        damaged = bytearray(jpeg)
        start = int(rng.integers(2, len(jpeg) - 64))
        damaged[start:start + int(rng.integers(1, 64))] = rng.bytes(64)[: int(rng.integers(1, 64))]
        try:
            fi_image.decode_random_crop_resize(bytes(damaged), (32, 32), seed=0)
            outcomes.add("decoded")
        except FastInputError:
            outcomes.add("error")
    assert outcomes  # reaching here means no crash; both outcomes are allowed


def test_window_outside_the_image_raises(jpegs):
    with pytest.raises(InvalidArgumentError, match="crop window"):
        fi_image.decode_crop_resize(jpegs["tiny-odd"], (10, 0, 8, 5))
    with pytest.raises(InvalidArgumentError):
        fi_image.decode_crop_resize(jpegs["tiny-odd"], (0, 0, 0, 5))


@pytest.mark.parametrize("call, message", [
    (lambda j: fi_image.decode_crop_resize(j, size=(0, 10)), "size"),
    (lambda j: fi_image.decode_crop_resize(j, size=224), "size"),
    (lambda j: fi_image.decode_crop_resize(j, dtype=np.float64), "dtype"),
    (lambda j: fi_image.decode_crop_resize(j, out=np.zeros((224, 224, 3), np.float32)), "out"),
    (lambda j: fi_image.decode_crop_resize(j, out=np.zeros((224, 224, 4), np.uint8)), "out"),
    (lambda j: fi_image.decode_crop_resize(j, out=np.zeros((224, 448, 3), np.uint8)[:, ::2]), "contiguous"),
    (lambda j: fi_image.decode_crop_resize(j, flip=1), "flip"),
    (lambda j: fi_image.decode_crop_resize("a string"), "bytes"),
    (lambda j: fi_image.decode_random_crop_resize(j, area_range=(0, 1)), "area_range"),
    (lambda j: fi_image.decode_random_crop_resize(j, area_range=(0.5, 1.5)), "area_range"),
    (lambda j: fi_image.decode_random_crop_resize(j, aspect_ratio_range=(2, 1)), "aspect_ratio_range"),
    (lambda j: fi_image.decode_random_crop_resize(j, min_object_covered=-1), "min_object_covered"),
    (lambda j: fi_image.decode_random_crop_resize(j, bbox=[[0.1, 0.2, 0.3]]), "bbox"),
    (lambda j: fi_image.decode_random_crop_resize(j, bbox=[[0.1, 0.2, 0.3, 1.5]]), "bounding box"),
    (lambda j: fi_image.decode_random_crop_resize(j, seed=-1), "seed"),
    (lambda j: fi_image.decode_random_crop_resize(j, max_attempts=0), "max_attempts"),
    (lambda j: fi_image.decode_random_crop_resize(j, fallback="nope"), "fallback"),
    (lambda j: fi_image.decode_center_crop_resize(j, crop_fraction=0), "crop_fraction"),
])
def test_bad_arguments_raise_invalid_argument(jpegs, call, message):
    with pytest.raises(InvalidArgumentError, match=message):
        call(jpegs["tiny-odd"])


def test_tensorflow_fallback_gives_the_same_results(tf, jpegs, monkeypatch):
    """Without the C extension the same calls run on TF's ops, warn once (in plain words, with how to build the
    extension), and agree."""
    jpeg = jpegs["odd-444"]
    windows = [None, (10, 20, 200, 300)]
    native = [fi_image.decode_crop_resize(jpeg, w, (64, 64), flip=True) for w in windows]
    monkeypatch.setattr(jpeg_kernel, "_jpeg", None)
    monkeypatch.setattr(jpeg_kernel, "_warned", threading.Event())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fallback = [fi_image.decode_crop_resize(jpeg, w, (64, 64), flip=True) for w in windows]
        assert fi_image.jpeg_shape(jpeg) == (333, 499, 3)
        with pytest.raises(InvalidArgumentError):
            fi_image.decode_crop_resize(b"not a jpeg")
    for a, b in zip(native, fallback):
        np.testing.assert_array_equal(a, b)
    notices = [str(w.message) for w in caught if "JPEG kernel is not built" in str(w.message)]
    assert len(notices) == 1 and "libjpeg62-turbo-dev" in notices[0] and "reinstall fastinput" in notices[0]


@pytest.mark.skipif(not Path("/usr/include/jpeglib.h").exists(), reason="libjpeg-turbo headers not installed")
def test_c_extension_is_built_where_libjpeg_turbo_is_installed():
    """Where the headers are, the install must have built the extension (a silent fallback would be slow)."""
    assert C_KERNEL, f"fastinput.fused_ops._jpeg failed to import: {jpeg_kernel._IMPORT_ERROR}"
