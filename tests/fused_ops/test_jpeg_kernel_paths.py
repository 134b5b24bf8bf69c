"""The JPEG kernel's paths (``fused_ops/_jpeg.c``) against TensorFlow, bit for bit.

The kernel gathers the two pixels each output column reads straight from the decoded uint8 row
(SSE2: one vector per pixel, whose 4th lane reads the byte after the pixel, so a crop that ends at
the image's last column reads the row's padding byte), converts CMYK rows to RGB bytes first, and
blends rows vertically with a loop the compiler vectorises (an AVX2 clone where the CPU has it).
Each geometry below takes a different mix of those paths; every one must give exactly
``tf.image.resize(tf.io.decode_and_crop_jpeg(...), size, "bilinear")`` (float32), or that rounded
half to even (uint8): no tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastinput.fused_ops import crop_window
from fastinput.fused_ops import image as fi_image
from tests.fused_ops.test_image import tf_reference


def _geometry(name: str, height: int, width: int) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """(window, output size) of a named geometry on a height x width image."""
    if name == "wider than the output":  # fewer output columns than crop columns: most columns never read
        return (2, 3, height - 4, width - 5), (max(1, height // 3), max(1, width // 5))
    if name == "smaller than the output":  # upsampled both ways: each column and row read many times
        return (height // 3, width // 4, max(1, height // 6), max(1, width // 7)), (2 * height // 3, width + 9)
    if name == "taller than twice the output":  # rows between the ones the resample reads
        return (1, width // 6, height - 1, width // 2), (max(1, height // 7), 48)
    if name == "at the bottom-right edge":  # the last pixel's 4th lane reads the padding byte after the row
        return (height // 2, width // 3, height - height // 2, width - width // 3), (41, 29)
    if name == "odd output sizes":  # vector loops' tails: 3 * 53 floats per row
        return (0, 0, height, width), (37, 53)
    raise AssertionError(name)


GEOMETRIES = ["wider than the output", "smaller than the output", "taller than twice the output",
              "at the bottom-right edge", "odd output sizes"]


def assert_bit_exact(actual: np.ndarray, expected: np.ndarray) -> None:
    """``actual`` equals TF's float32 ``expected`` exactly (rounded half to even for uint8)."""
    if actual.dtype == np.uint8:
        expected = np.round(expected).astype(np.uint8)
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("case", ["imagenet-420", "odd-422", "grayscale", "cmyk", "progressive"])
@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_geometry_matches_tf_bit_for_bit(tf, jpegs, case, geometry, dtype):
    jpeg = jpegs[case]
    height, width, _ = fi_image.jpeg_shape(jpeg)
    window, size = _geometry(geometry, height, width)
    for flip in (False, True):
        actual = fi_image.decode_crop_resize(jpeg, window, size, flip=flip, dtype=dtype)
        assert_bit_exact(actual, tf_reference(tf, jpeg, window, size, flip))


@pytest.mark.parametrize("case", ["imagenet-420", "portrait-420", "cmyk"])
def test_random_training_crops_match_tf_bit_for_bit(tf, jpegs, case):
    """The windows and flips training draws (``decode_random_crop_resize``'s), into one reused output row."""
    jpeg = jpegs[case]
    height, width, _ = fi_image.jpeg_shape(jpeg)
    rng = np.random.default_rng(11)
    out = np.empty((224, 224, 3), np.uint8)
    for _ in range(16):
        window = crop_window.sample_distorted_crop(height, width, rng)
        flip = bool(rng.integers(2))
        fi_image.decode_crop_resize(jpeg, window, (224, 224), flip=flip, out=out)
        assert_bit_exact(out, tf_reference(tf, jpeg, window, (224, 224), flip))
