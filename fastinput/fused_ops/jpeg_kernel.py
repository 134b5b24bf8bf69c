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


def _tensorflow() -> Any:
    return tensorflow(f"fi.image without fastinput's JPEG kernel (not built: to build it, {HOW_TO_BUILD})")


@contextlib.contextmanager
def _tf_errors(tf: Any) -> Iterator[None]:
    """TensorFlow's errors on bad input as fastinput's ``InvalidArgumentError``."""
    try:
        yield
    except tf.errors.OpError as exc:
        raise InvalidArgumentError(f"invalid JPEG image or crop window: {exc.message}") from exc
