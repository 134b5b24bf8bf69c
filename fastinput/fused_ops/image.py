"""Fused image preprocessing (``fi.image``): JPEG decode, crop, resize and flip in one call.

The ResNet-style pipelines' per-image work is one function call here:

- ``decode_random_crop_resize``: training, the Inception-style random crop
  (``tf.image.sample_distorted_bounding_box``), resize, random flip;
- ``decode_center_crop_resize``: evaluation, the central crop, resize;
- ``decode_crop_resize``: a given crop window (what both use).

Only the crop's rows and columns are decoded, the resize is bilinear with
half-pixel centres and no antialiasing (``tf.image.resize(..., "bilinear")``),
and the result is the same as TensorFlow's, bit for bit, for the same window
(see ``jpeg_kernel``). Each call releases the GIL for the decode, so
``map(..., num_parallel_calls=N)`` scales over cores; ``out=`` writes into a
preallocated array such as a batch row from ``map_and_batch``. Outputs are
HxWx3, uint8 or float32 (values 0..255, as ``tf.image.resize`` returns them).

>>> import fastinput as fi
>>> image = fi.image.decode_random_crop_resize(jpeg_bytes, seed=0)
>>> image.shape, image.dtype
((224, 224, 3), dtype('uint8'))
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import numpy as np

from fastinput._engine.arguments import check_int, check_number
from fastinput.errors import InvalidArgumentError
from fastinput.fused_ops import crop_window as windows
from fastinput.fused_ops import jpeg_kernel
from fastinput.spec import trace_size, tracing

Size = tuple[int, int]
_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32))
_MAX_DIMENSION = 65_535
"""JPEG's largest image side; windows and sizes beyond it cannot fit any image."""
DEFAULT_MAX_PIXELS = 89_478_485
"""The most pixels a JPEG's header may claim (and an output may have) unless ``max_pixels=`` says otherwise:
Pillow's decompression-bomb limit, about 89.5 megapixels (256 MiB as RGB). A few kilobytes of JPEG can claim
gigapixels; the header is checked before anything is decoded or allocated."""
MAX_ATTEMPTS = 1000
"""The most crops ``decode_random_crop_resize`` tries (``max_attempts``; TF's default is 100, Inception's 10)."""
_shared_rng = np.random.default_rng()
"""The generator used when no seed is given (numpy's Generator is thread-safe: it locks its bit generator)."""


def jpeg_shape(jpeg: bytes) -> tuple[int, int, int]:
    """(height, width, components) of a JPEG image from its header alone, like ``tf.io.extract_jpeg_shape``.

    >>> fi.image.jpeg_shape(jpeg_bytes)
    (375, 500, 3)
    """
    jpeg = _check_jpeg("jpeg_shape", jpeg)
    if tracing():  # a placeholder for the output spec: the size of an image depends on the data
        return trace_size(), trace_size(), 3
    return jpeg_kernel.jpeg_shape(jpeg)


def decode_crop_resize(jpeg: bytes, crop_window: tuple[int, int, int, int] | None = None,
                       size: Size = (224, 224), flip: bool = False, dtype: Any = np.uint8,
                       out: np.ndarray | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``crop_window`` = (y, x, height, width) of a JPEG (None: all of it), resize to ``size``, maybe flip.

    Equals ``tf.image.resize(tf.io.decode_and_crop_jpeg(jpeg, crop_window, channels=3), size, "bilinear")``
    (mirrored left-right when ``flip``; rounded to nearest for uint8). An image whose header claims more
    than ``max_pixels`` pixels is refused before it is decoded (see ``DEFAULT_MAX_PIXELS``).

    >>> fi.image.decode_crop_resize(jpeg_bytes, (10, 20, 300, 400), (128, 128)).shape
    (128, 128, 3)
    """
    op = "decode_crop_resize"
    jpeg = _check_jpeg(op, jpeg)
    if crop_window is not None:
        crop_window = _check_window(op, crop_window)
    max_pixels = _check_max_pixels(op, max_pixels)
    out = _output(op, size, dtype, out, max_pixels)
    flip = _check_flag(op, "flip", flip)
    if tracing():  # placeholder bytes: the output's spec is all that is wanted
        return out
    _image_shape(op, jpeg, max_pixels)
    jpeg_kernel.decode_crop_resize_into(jpeg, crop_window, out, flip)
    return out


def decode_random_crop_resize(jpeg: bytes, size: Size = (224, 224), area_range: tuple[float, float] = (0.05, 1.0),
                              aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3),
                              min_object_covered: float = 0.1, bbox: Any = None, flip: bool = True,
                              dtype: Any = np.uint8, seed: int | np.random.Generator | None = None,
                              out: np.ndarray | None = None, *, max_attempts: int = 10,
                              fallback: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """ResNet training preprocessing: a random Inception-style crop of a JPEG, resized, flipped half the time.

    The window is sampled as ``tf.image.sample_distorted_bounding_box`` does
    (``use_image_if_no_bounding_boxes=True``; see ``crop_window``) from the
    size in the JPEG header, then only that window is decoded. ``bbox``:
    boxes of relative (ymin, xmin, ymax, xmax), TF's ``[1, N, 4]`` or ``(N, 4)``.
    When no attempt fits: the whole image (``fallback="image"``, as TF and the
    Keras ResNet preprocessing) or the 0.875 central crop (``"center_crop"``,
    as the TPU ResNet preprocessing). ``seed``: an int (same crop and flip
    every call) or a ``numpy.random.Generator``. ``max_attempts``: at most ``MAX_ATTEMPTS``;
    ``max_pixels``: see ``decode_crop_resize``.

    >>> fi.image.decode_random_crop_resize(jpeg_bytes, seed=0).shape
    (224, 224, 3)
    """
    op = "decode_random_crop_resize"
    jpeg = _check_jpeg(op, jpeg)
    (area_range, aspect_ratio_range, min_object_covered, max_attempts, fallback, flip, max_pixels,
     kernel_options) = _checked(_random_crop_options, area_range, aspect_ratio_range, min_object_covered,
                                max_attempts, fallback, flip, max_pixels)
    boxes = windows.check_boxes(op, bbox)
    out = _output(op, size, dtype, out, max_pixels)
    rng = _generator(op, seed)
    if tracing():  # placeholder bytes: the output's spec is all that is wanted
        return out
    if boxes is None and kernel_options is not None and jpeg_kernel.random_crop_into(jpeg, out, rng, kernel_options):
        return out  # sampled and decoded in one C call, the same draws and window as below

    height, width = _image_shape(op, jpeg, max_pixels)
    window = windows.sample_distorted_crop(
        height, width, rng, area_range=area_range, aspect_ratio_range=aspect_ratio_range,
        min_object_covered=min_object_covered, boxes=boxes, max_attempts=max_attempts, fallback=fallback)
    flip = flip and rng.random() < 0.5
    jpeg_kernel.decode_crop_resize_into(jpeg, window, out, flip)
    return out


def decode_center_crop_resize(jpeg: bytes, size: Size = (224, 224), crop_fraction: float = 0.875,
                              dtype: Any = np.uint8, out: np.ndarray | None = None, *,
                              max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """ResNet evaluation preprocessing: the central square crop of ``crop_fraction`` of the shorter side, resized.

    The window follows the reference ResNet preprocessing (see
    ``crop_window.center_crop_window``); 0.875 = 224 / 256 is the usual
    "resize to 256, crop 224" done as one crop and one resize. ``max_pixels``: see ``decode_crop_resize``.

    >>> fi.image.decode_center_crop_resize(jpeg_bytes).shape
    (224, 224, 3)
    """
    op = "decode_center_crop_resize"
    jpeg = _check_jpeg(op, jpeg)
    if not isinstance(crop_fraction, numbers.Real) or not 0 < crop_fraction <= 1:
        raise InvalidArgumentError(f"{op}: crop_fraction must be a number in (0, 1], got {crop_fraction!r}")
    max_pixels = _check_max_pixels(op, max_pixels)
    out = _output(op, size, dtype, out, max_pixels)
    if tracing():  # placeholder bytes: the output's spec is all that is wanted
        return out
    height, width = _image_shape(op, jpeg, max_pixels)
    jpeg_kernel.decode_crop_resize_into(jpeg, windows.center_crop_window(height, width, crop_fraction), out, False)
    return out


def _checked(check: Any, *args: Any) -> Any:
    """``check(*args)``, cached: a pipeline passes the same arguments with every image, and checking them costs
    several microseconds a call. ``check`` is an ``lru_cache``; unhashable arguments (a list) are checked anew."""
    try:
        return check(*args)
    except TypeError:  # unhashable: not cacheable (the checks themselves raise InvalidArgumentError)
        return check.__wrapped__(*args)


@functools.lru_cache(maxsize=64, typed=True)
def _random_crop_options(area_range: Any, aspect_ratio_range: Any, min_object_covered: Any, max_attempts: Any,
                         fallback: Any, flip: Any, max_pixels: Any) -> tuple:
    """``decode_random_crop_resize``'s arguments but the JPEG, ``bbox``, ``size``, ``dtype``, ``seed`` and ``out``,
    checked (through ``_checked``), and the C kernel's options made of them (``jpeg_kernel.random_crop_options``)."""
    op = "decode_random_crop_resize"
    checked = (windows.check_range(op, "area_range", area_range, upper=1.0),
               windows.check_range(op, "aspect_ratio_range", aspect_ratio_range),
               check_number(op, "min_object_covered", min_object_covered, minimum=0.0),
               check_int(op, "max_attempts", max_attempts, minimum=1, maximum=MAX_ATTEMPTS),
               windows.check_fallback(op, fallback), _check_flag(op, "flip", flip), _check_max_pixels(op, max_pixels))
    return (*checked, jpeg_kernel.random_crop_options(*checked))


def _check_jpeg(op: str, jpeg: Any) -> Any:
    """Bytes-like JPEG data; a 0-d numpy array (one parsed ``tf.string`` value) is unwrapped."""
    if isinstance(jpeg, np.ndarray) and jpeg.ndim == 0:
        jpeg = jpeg.item()
    if not isinstance(jpeg, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(f"{op}: jpeg must be bytes, got {type(jpeg).__name__}")
    return jpeg


def _check_window(op: str, window: Any) -> tuple[int, int, int, int]:
    try:
        values = tuple(int(v) for v in window)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 4 or min(values[:2]) < 0 or min(values[2:]) < 1 or max(values) > _MAX_DIMENSION:
        raise InvalidArgumentError(f"{op}: crop_window must be (y, x, height, width) with y, x >= 0, "
                                   f"height, width >= 1 and all <= {_MAX_DIMENSION}, got {window!r}")
    return values  # type: ignore[return-value]


def _check_max_pixels(op: str, max_pixels: Any) -> int:
    return check_int(op, "max_pixels", max_pixels, minimum=1)


def _image_shape(op: str, jpeg: Any, max_pixels: int) -> tuple[int, int]:
    """(height, width) from the JPEG header, refused when it claims more than ``max_pixels`` (a decompression bomb)."""
    height, width, _ = jpeg_kernel.jpeg_shape(jpeg)
    if height * width > max_pixels:
        raise InvalidArgumentError(
            f"{op}: the JPEG header claims {height}x{width} = {height * width} pixels, more than max_pixels="
            f"{max_pixels} (a guard against decompression bombs; pass a larger max_pixels to decode it)")
    return height, width


def _check_flag(op: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(f"{op}: {name} must be True or False, got {value!r}")
    return bool(value)


def _output(op: str, size: Any, dtype: Any, out: np.ndarray | None, max_pixels: int) -> np.ndarray:
    """``out`` checked against ``size`` and ``dtype``, or a new array of that shape and type."""
    height, width, dtype = _checked(_output_type, op, size, dtype, max_pixels)
    if out is None:
        return np.empty((height, width, 3), dtype)
    if not isinstance(out, np.ndarray) or out.shape != (height, width, 3) or out.dtype != dtype:
        raise InvalidArgumentError(f"{op}: out must be a numpy array of shape {(height, width, 3)} and dtype "
                                   f"{dtype}, got {getattr(out, 'shape', None)} {getattr(out, 'dtype', type(out))}")
    if not (out.flags.c_contiguous and out.flags.writeable):
        raise InvalidArgumentError(f"{op}: out must be C-contiguous and writeable (e.g. one row of a C-contiguous "
                                   "batch array)")
    return out


@functools.lru_cache(maxsize=64, typed=True)
def _output_type(op: str, size: Any, dtype: Any, max_pixels: int) -> tuple[int, int, np.dtype]:
    """``(height, width, dtype)`` of an output, ``size`` and ``dtype`` checked (through ``_checked``)."""
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError, OverflowError):
        height = width = 0
    if not (1 <= height <= _MAX_DIMENSION and 1 <= width <= _MAX_DIMENSION) or height * width > max_pixels:
        raise InvalidArgumentError(f"{op}: size must be (height, width), each in [1, {_MAX_DIMENSION}] and at most "
                                   f"max_pixels={max_pixels} pixels in all, got {size!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype not in _DTYPES:
        raise InvalidArgumentError(f"{op}: dtype must be uint8 or float32, got {dtype!r}")
    return height, width, dtype


def _generator(op: str, seed: Any) -> np.random.Generator:
    if seed is None:
        return _shared_rng
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise InvalidArgumentError(f"{op}: seed must be None, an integer >= 0 or a numpy.random.Generator, got {seed!r}")
