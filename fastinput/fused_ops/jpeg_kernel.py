"""The JPEG decode + crop + resize + flip kernel behind ``fi.image``: the C extension, or TensorFlow's ops.

The C extension (``fastinput.fused_ops._jpeg``, built from ``_jpeg.c`` against
libjpeg-turbo by ``pip install``) decodes only the crop's rows and columns and
resizes straight into the output without holding the GIL; it was the fastest
candidate measured (``fastinput_bench/image_kernels.py``). When it is not built
(no libjpeg-turbo headers at install time), the same functions run on
TensorFlow's ``decode_and_crop_jpeg`` + ``resize``: the same results, slower,
and a warning says so once, with how to build the extension.

Both give bit for bit what ``tf.image.resize(tf.io.decode_and_crop_jpeg(jpeg,
window, channels=3), size, "bilinear")`` gives, flipped when asked, rounded
to nearest (ties to even) for uint8.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastinput.errors import InvalidArgumentError
from fastinput.optional import tensorflow

try:
    from fastinput.fused_ops import _jpeg
except ImportError as exc:  # not built: fall back to TensorFlow's kernels
    _jpeg = None
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None

NAME = "libjpeg-turbo C extension" if _jpeg is not None else "TensorFlow ops (fallback)"
"""Which kernel runs, for benchmarks and logs."""

HOW_TO_BUILD = ("install libjpeg-turbo's headers (Debian/Ubuntu: apt-get install libjpeg62-turbo-dev or "
                "libjpeg-turbo8-dev; Fedora: libjpeg-turbo-devel; macOS: brew install jpeg-turbo), then reinstall "
                "fastinput (pip install -e . in its folder)")
"""What builds the C extension, for the messages below."""

_warned = threading.Event()


def warn_if_not_built() -> None:
    """Warn once per process, in plain words, that the fast kernel is not built and how to build it
    (``fi.image`` calls this at its first image; ``fastinput-bench images`` before it starts)."""
    if _jpeg is None and not _warned.is_set():
        _warned.set()
        warnings.warn(f"fastinput's fast JPEG kernel is not built ({_IMPORT_ERROR}), so fi.image decodes with "
                      f"TensorFlow's ops, several times slower. To build it, {HOW_TO_BUILD}.", stacklevel=3)


def jpeg_shape(jpeg: bytes) -> tuple[int, int, int]:
    """(height, width, components) from the JPEG header, without decoding the image."""
    if _jpeg is not None:
        return _jpeg.jpeg_shape(jpeg)
    warn_if_not_built()
    tf = _tensorflow()
    with _tf_errors(tf):
        return tuple(int(v) for v in tf.io.extract_jpeg_shape(jpeg).numpy())


def decode_crop_resize_into(jpeg: bytes, window: tuple[int, int, int, int] | None, out: np.ndarray,
                            flip: bool) -> None:
    """Decode ``window`` (y, x, height, width; None: the whole image) of ``jpeg``, resize it into ``out``.

    ``out`` is a C-contiguous HxWx3 uint8 or float32 array, already checked by the caller.
    """
    height, width = out.shape[:2]
    is_float = out.dtype == np.float32
    if _jpeg is not None:
        y, x, crop_height, crop_width = window if window is not None else (0, 0, 0, 0)
        _jpeg.decode_crop_resize(jpeg, out, y, x, crop_height, crop_width, height, width, flip, is_float)
        return
    warn_if_not_built()
    tf = _tensorflow()
    with _tf_errors(tf):
        if window is None:
            image = tf.io.decode_jpeg(jpeg, channels=3)
        else:
            image = tf.io.decode_and_crop_jpeg(jpeg, list(window), channels=3)
        resized = tf.image.resize(image, (height, width), method="bilinear").numpy()
    if flip:
        resized = resized[:, ::-1]
    out[...] = resized if is_float else np.round(resized)


RATIO_RANGE = (1e-3, 1e3)
"""The aspect ratios ``random_crop_into`` samples in C (``_jpeg.c``'s MIN_RATIO, MAX_RATIO): within them every
intermediate value of the sampler is exact in a double, as it is in Python's ints and floats."""
_MAX_PIXELS = 2 ** 62
"""``max_pixels`` as the C extension takes it (a C long long): no JPEG has more pixels than this (65,535^2)."""


def random_crop_options(area_range: tuple[float, float], aspect_ratio_range: tuple[float, float],
                        min_object_covered: float, max_attempts: int, fallback: str, flip: bool,
                        max_pixels: int) -> tuple | None:
    """``random_crop_into``'s options from ``decode_random_crop_resize``'s checked arguments, or None where the
    window is sampled in Python: aspect ratios beyond ``RATIO_RANGE``."""
    if not RATIO_RANGE[0] <= aspect_ratio_range[0] <= aspect_ratio_range[1] <= RATIO_RANGE[1]:
        return None
    return (*area_range, *aspect_ratio_range, min_object_covered, max_attempts, fallback == "center_crop", flip,
            min(max_pixels, _MAX_PIXELS))


def random_crop_into(jpeg: bytes, out: np.ndarray, rng: np.random.Generator, options: tuple) -> bool:
    """``decode_random_crop_resize`` without bounding boxes in one C call, ``options`` from ``random_crop_options``:
    the window sampled from ``rng`` as ``crop_window.sample_distorted_crop`` samples it, with the same draws
    (``rng.random((max_attempts, 4))``, then ``rng.random()`` for the flip), and decoded into ``out``.

    False, nothing drawn or decoded, where the caller is to sample in Python: the C extension is not built,
    ``rng`` is a subclass of ``numpy.random.Generator`` (its ``random`` may be another), or the header claims more
    than ``max_pixels`` pixels (the caller raises)."""
    if _jpeg is None or type(rng) is not np.random.Generator:
        return False
    bit_generator = rng.bit_generator
    height, width = out.shape[:2]
    return _jpeg.random_crop_resize(jpeg, out, height, width, out.dtype == np.float32, bit_generator.capsule,
                                    bit_generator.lock, options)


def _tensorflow() -> Any:
    return tensorflow(f"fi.image without fastinput's JPEG kernel (not built: to build it, {HOW_TO_BUILD})")


@contextlib.contextmanager
def _tf_errors(tf: Any) -> Iterator[None]:
    """TensorFlow's errors on bad input as fastinput's ``InvalidArgumentError``."""
    try:
        yield
    except tf.errors.OpError as exc:
        raise InvalidArgumentError(f"invalid JPEG image or crop window: {exc.message}") from exc
