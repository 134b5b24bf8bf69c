"""JPEG test images for the image kernels: real photos (scikit-image's) at the sizes and encodings that matter."""

from __future__ import annotations

import io

import numpy as np
import pytest

from fastinput_bench.data.photos import encode_jpeg, synthetic_photo, to_grayscale

JPEG_CASES = {
    # name: (height, width, kind, subsampling, quality)
    "imagenet-420": (375, 500, "rgb", "4:2:0", 90),
    "odd-444": (333, 499, "rgb", "4:4:4", 90),
    "odd-422": (301, 457, "rgb", "4:2:2", 75),
    "tiny-odd": (17, 31, "rgb", "4:2:0", 90),
    "portrait-420": (500, 300, "rgb", "4:2:0", 95),
    "grayscale": (240, 321, "gray", "4:2:0", 90),
    "cmyk": (200, 260, "cmyk", "4:4:4", 90),
    "progressive": (320, 400, "progressive", "4:2:0", 85),
}


def make_jpeg(height: int, width: int, kind: str, subsampling: str, quality: int, seed: int = 0) -> bytes:
    """A photo of the given size encoded as ``kind``: rgb, gray, cmyk (Adobe, as Pillow writes it) or progressive."""
    from PIL import Image

    pixels = synthetic_photo(np.random.default_rng(seed), height, width)
    if kind == "gray":
        return encode_jpeg(to_grayscale(pixels), quality, subsampling)
    if kind == "rgb":
        return encode_jpeg(pixels, quality, subsampling)
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    if kind == "cmyk":
        image.convert("CMYK").save(buffer, "JPEG", quality=quality)
    else:
        image.save(buffer, "JPEG", quality=quality, progressive=True)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def jpegs() -> dict[str, bytes]:
    """Every case of ``JPEG_CASES`` by name."""
    return {name: make_jpeg(*case, seed=index) for index, (name, case) in enumerate(JPEG_CASES.items())}
