"""The JPEG decode + crop + resize + flip kernel behind ``fi.image``: the C extension, or TensorFlow's ops.

The C extension (``fastinput.fused_ops._jpeg``, built from ``_jpeg.c`` against
libjpeg-turbo by ``pip install``) decodes only the crop's rows and columns and
resizes straight into the output without holding the GIL; it was the fastest
candidate measured (``fastinput_bench/image_kernels.py``). When it is not built
(no libjpeg-turbo headers at install time), the same functions run on
TensorFlow's ``decode_and_crop_jpeg`` + ``resize``: the same results, slower,
and a debug log line says so once.

Both give bit for bit what ``tf.image.resize(tf.io.decode_and_crop_jpeg(jpeg,
window, channels=3), size, "bilinear")`` gives, flipped when asked, rounded
to nearest (ties to even) for uint8.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from fastinput.errors import InvalidArgumentError

logger = logging.getLogger("fastinput")

try:
    from fastinput.fused_ops import _jpeg
except ImportError as exc:  # not built: fall back to TensorFlow's kernels
    _jpeg = None
    _IMPORT_ERROR: ImportError | None = exc
else:
    _IMPORT_ERROR = None

NAME = "libjpeg-turbo C extension" if _jpeg is not None else "TensorFlow ops (fallback)"
"""Which kernel runs, for benchmarks and logs."""

_warned = False


def _note_fallback() -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.debug("fastinput.fused_ops._jpeg is not built (%s): fi.image uses TensorFlow's JPEG ops, "
                     "which are slower. Install libjpeg-turbo's headers (Debian: libjpeg62-turbo-dev) "
                     "and reinstall fastinput to build it.", _IMPORT_ERROR)


def jpeg_shape(jpeg: bytes) -> tuple[int, int, int]:
    """(height, width, components) from the JPEG header, without decoding the image."""
    if _jpeg is not None:
        return _jpeg.jpeg_shape(jpeg)
    _note_fallback()
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
    _note_fallback()
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
    import tensorflow as tf

    return tf


@contextlib.contextmanager
def _tf_errors(tf: Any) -> Iterator[None]:
    """TensorFlow's errors on bad input as fastinput's ``InvalidArgumentError``."""
    try:
        yield
    except tf.errors.OpError as exc:
        raise InvalidArgumentError(f"invalid JPEG image or crop window: {exc.message}") from exc
