"""Real-looking photographs for benchmarks and tests, made from the photos scikit-image ships.

Each image is a random crop of one of scikit-image's photographs (astronaut,
coffee, chelsea, rocket, ...), resized to the requested size, colour-jittered,
sharpened and given a little sensor grain the way a camera pipeline would,
then JPEG-encoded. The content stays a real photograph (edges, textures and
smooth areas in natural proportions) so that JPEG decoders spend their time
the way they do on ImageNet; random-noise images would not.
"""

from __future__ import annotations

import functools
import io

import numpy as np

COLOR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry")
"""scikit-image colour photographs that ship with the package (no download)."""
GRAY_PHOTOS = ("camera", "coins", "grass", "gravel", "brick")
"""scikit-image grayscale photographs; tinted by the colour jitter when a colour image is asked for."""

SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
"""Pillow's ``subsampling`` codes by their usual names."""


@functools.cache
def source_photos() -> tuple[np.ndarray, ...]:
    """Every source photograph as an HxWx3 uint8 array (loaded once per process)."""
    import skimage.data

    photos = [getattr(skimage.data, name)() for name in COLOR_PHOTOS]
    photos.extend(skimage.data.stereo_motorcycle()[:2])
    photos.extend(np.repeat(getattr(skimage.data, name)()[..., None], 3, axis=2) for name in GRAY_PHOTOS)
    return tuple(np.ascontiguousarray(photo[..., :3]) for photo in photos)


def synthetic_photo(rng: np.random.Generator, height: int, width: int, detail: float = 1.0) -> np.ndarray:
    """A ``height`` x ``width`` x 3 uint8 photograph: a jittered crop of a random source photo, camera-finished."""
    return CameraFinish(base_photo(rng, height, width), rng)(detail)


def base_photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random crop of a random source photo, resized to ``height`` x ``width``, colour-jittered, maybe mirrored."""
    from PIL import Image

    photos = source_photos()
    source = photos[rng.integers(len(photos))]
    crop = _random_crop(rng, source, width / height)
    pixels = np.asarray(Image.fromarray(crop).resize((width, height), Image.BICUBIC), dtype=np.float32)
    pixels = _color_jitter(rng, pixels)
    if rng.random() < 0.5:
        pixels = pixels[:, ::-1]
    return np.clip(pixels, 0, 255).round().astype(np.uint8)


class CameraFinish:
    """Sharpening and luminance grain as a camera adds them, at a strength chosen per call.

    ``finish(detail)`` scales both (0: the photo unchanged). The high-pass
    layer and the grain are computed once, so the ImageNet-like generator
    can try a few strengths cheaply until the JPEG lands in ImageNet's size range.
    """

    def __init__(self, pixels: np.ndarray, rng: np.random.Generator) -> None:
        from PIL import Image, ImageFilter

        blurred = np.asarray(Image.fromarray(pixels).filter(ImageFilter.BoxBlur(1)), dtype=np.float32)
        self._pixels = pixels.astype(np.float32)
        self._high_pass = self._pixels - blurred
        self._grain = rng.standard_normal((*pixels.shape[:2], 1), dtype=np.float32)

    def __call__(self, detail: float) -> np.ndarray:
        grain = 1.5 * min(detail, 3.0)  # grain stays mild (sigma <= 4.5); sharpening does the rest
        finished = self._pixels + detail * self._high_pass + grain * self._grain
        return np.clip(finished, 0, 255).round().astype(np.uint8)


def _random_crop(rng: np.random.Generator, source: np.ndarray, aspect: float) -> np.ndarray:
    """A crop of ``source`` with the given width/height ratio, covering 50-100% of the largest such crop."""
    src_h, src_w = source.shape[:2]
    max_h = min(src_h, int(src_w / aspect))
    crop_h = max(16, int(max_h * np.sqrt(rng.uniform(0.5, 1.0))))
    crop_w = min(src_w, max(16, round(crop_h * aspect)))
    y = rng.integers(src_h - crop_h + 1)
    x = rng.integers(src_w - crop_w + 1)
    return source[y:y + crop_h, x:x + crop_w]


def _color_jitter(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    """Brightness, contrast, saturation and white-balance changes of a few tens of percent."""
    gray = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    saturation = rng.uniform(0.6, 1.4)
    pixels = gray[..., None] + (pixels - gray[..., None]) * saturation
    mean = float(gray.mean())
    pixels = (pixels - mean) * rng.uniform(0.75, 1.25) + mean * rng.uniform(0.8, 1.2)
    return pixels * rng.uniform(0.88, 1.12, size=3).astype(np.float32)


def encode_jpeg(pixels: np.ndarray, quality: int = 90, subsampling: str = "4:2:0") -> bytes:
    """JPEG bytes of an HxWx3 (RGB) or HxW (grayscale) uint8 array, encoded by Pillow (libjpeg-turbo)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, subsampling=SUBSAMPLING[subsampling])
    return buffer.getvalue()


def to_grayscale(pixels: np.ndarray) -> np.ndarray:
    """HxW uint8 luminance of an HxWx3 RGB image (ITU-R 601 weights, as JPEG uses)."""
    gray = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(gray, 0, 255).round().astype(np.uint8)
