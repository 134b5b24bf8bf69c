"""Crop windows for image preprocessing: TF's distorted bounding box sampler and the central crop.

``sample_distorted_crop`` is ``tf.image.sample_distorted_bounding_box`` with
``use_image_if_no_bounding_boxes=True``, rewritten from TensorFlow's kernel
(``sample_distorted_bounding_box_op.cc``) step for step, including its
rounding and its quirks (the crop's top-left corner is drawn from
``[0, height - crop_height)``, so a crop narrower or shorter than the image
never touches its right or bottom edge). Only the random numbers differ: they
come from a ``numpy.random.Generator`` instead of TF's Philox stream, so the
windows follow the same distribution, not the same sequence.

Windows are ``(y, x, height, width)`` in pixels, the order of
``tf.io.decode_and_crop_jpeg``'s ``crop_window``.

``_jpeg.c`` (``sample_window``) repeats ``sample_distorted_crop`` in C for the
case without boxes, so that ``fi.image.decode_random_crop_resize`` samples and
decodes in one call; a change here is made there too
(``tests/fused_ops/test_random_crop_kernel.py`` compares the two).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fastinput.errors import InvalidArgumentError

Window = tuple[int, int, int, int]

_FALLBACKS = ("image", "center_crop")


def check_range(op: str, name: str, value: Any, *, upper: float | None = None) -> tuple[float, float]:
    """``value`` as a (low, high) pair of finite floats with 0 < low <= high (<= ``upper``)."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{op}: {name} must be a pair of numbers (low, high), got {value!r}") from None
    if not (0 < low <= high and math.isfinite(high)) or (upper is not None and high > upper):
        bound = f" <= {upper}" if upper is not None else ""
        raise InvalidArgumentError(f"{op}: {name} must be finite numbers with 0 < low <= high{bound}, got {value!r}")
    return low, high


def check_boxes(op: str, bbox: Any) -> np.ndarray | None:
    """Bounding boxes as an (N, 4) float32 array of relative (ymin, xmin, ymax, xmax), as TF takes them.

    Accepts TF's ``[1, N, 4]`` layout, an ``(N, 4)`` or a single ``(4,)`` box; ``None`` means none (and stays None,
    as ``sample_distorted_crop`` takes it).
    """
    if bbox is None:
        return None
    boxes = np.asarray(bbox, dtype=np.float32)
    if boxes.ndim == 3 and boxes.shape[0] == 1:
        boxes = boxes[0]
    boxes = boxes.reshape(1, 4) if boxes.shape == (4,) else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InvalidArgumentError(f"{op}: bbox must have shape (N, 4), (1, N, 4) or (4,), got {np.shape(bbox)}")
    if boxes.size and not ((boxes >= 0) & (boxes <= 1)).all():
        raise InvalidArgumentError(f"{op}: bounding box coordinates must be in [0, 1], got {boxes.tolist()}")
    return boxes


def check_fallback(op: str, fallback: Any) -> str:
    if fallback not in _FALLBACKS:
        raise InvalidArgumentError(f"{op}: fallback must be one of {_FALLBACKS}, got {fallback!r}")
    return fallback


def sample_distorted_crop(height: int, width: int, rng: np.random.Generator, *,
                          area_range: tuple[float, float] = (0.05, 1.0),
                          aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3),
                          min_object_covered: float = 0.1, boxes: np.ndarray | None = None,
                          max_attempts: int = 10, fallback: str = "image",
                          crop_fraction: float = 0.875) -> Window:
    """A random crop window of a ``height`` x ``width`` image, as ``tf.image.sample_distorted_bounding_box``.

    Up to ``max_attempts`` times: draw an aspect ratio, then a crop of that
    ratio whose area is in ``area_range`` (as a fraction of the image), and
    keep it if it covers at least ``min_object_covered`` of one of ``boxes``
    (relative (ymin, xmin, ymax, xmax) rows; none: the whole image). When no
    attempt succeeds: the whole image (``fallback="image"``, TF's behaviour),
    or the central crop of ``crop_fraction`` of the shorter side
    (``fallback="center_crop"``, what the TPU ResNet preprocessing does).

    >>> sample_distorted_crop(375, 500, np.random.default_rng(0))
    (8, 5, 167, 187)
    """
    image_boxes = _pixel_boxes(boxes, height, width)
    uniforms = rng.random((max_attempts, 4)).tolist()  # one call: aspect, height, y, x per attempt
    low_ratio, high_ratio = aspect_ratio_range
    for u_ratio, u_height, u_y, u_x in uniforms:
        aspect = u_ratio * (high_ratio - low_ratio) + low_ratio
        crop = _random_crop(width, height, area_range, aspect, u_height, u_y, u_x)
        if crop is not None and _covers_an_object(crop, min_object_covered, image_boxes):
            return crop
    if fallback == "center_crop":
        return center_crop_window(height, width, crop_fraction)
    return 0, 0, height, width


def center_crop_window(height: int, width: int, crop_fraction: float = 0.875) -> Window:
    """The square central crop of ``crop_fraction`` of the shorter side (ResNet evaluation).

    The formula of the reference ResNet preprocessing (``tensorflow/tpu``
    ``resnet_preprocessing._decode_and_center_crop``, where ``crop_fraction``
    is 224 / (224 + 32)): side ``int(crop_fraction * min(height, width))``,
    offsets ``((height - side) + 1) // 2`` and ``((width - side) + 1) // 2``.

    >>> center_crop_window(375, 500)
    (24, 86, 328, 328)
    """
    side = max(1, int(np.float32(crop_fraction) * np.float32(min(height, width))))
    return (height - side + 1) // 2, (width - side + 1) // 2, side, side


def _pixel_boxes(boxes: np.ndarray | None, height: int, width: int) -> list[Window]:
    """Relative boxes as integer (xmin, ymin, xmax, ymax) rectangles; the whole image when there are none."""
    if boxes is None or len(boxes) == 0:
        return [(0, 0, width, height)]
    rows = boxes.astype(np.float32) * np.array([height, width, height, width], np.float32)
    return [(int(xmin), int(ymin), int(xmax), int(ymax)) for ymin, xmin, ymax, xmax in rows.tolist()]


def _random_crop(width: int, height: int, area_range: tuple[float, float], aspect: float,
                 u_height: float, u_y: float, u_x: float) -> Window | None:
    """TF's ``GenerateRandomCrop``: a crop of ratio ``aspect`` and area in range, or None if none fits."""
    min_area = area_range[0] * width * height
    max_area = area_range[1] * width * height
    crop_height = round(math.sqrt(min_area / aspect))  # round(): ties to even, as lrintf
    max_height = round(math.sqrt(max_area / aspect))
    if round(max_height * aspect) > width:
        # The largest max_height with round(max_height * aspect) <= width.
        max_height = int((width + 0.5 - 1e-7) / aspect)
        if round(max_height * aspect) > width:
            max_height -= 1
    max_height = min(max_height, height)
    crop_height = min(crop_height, max_height)
    if crop_height < max_height:
        crop_height += int(u_height * (max_height - crop_height + 1))
    crop_width = round(crop_height * aspect)
    area = crop_width * crop_height
    if area < min_area:  # absorb rounding: one row bigger, then one smaller
        crop_height += 1
        crop_width = round(crop_height * aspect)
        area = crop_width * crop_height
    if area > max_area:
        crop_height -= 1
        crop_width = round(crop_height * aspect)
        area = crop_width * crop_height
    if not (min_area <= area <= max_area and 0 < crop_width <= width and 0 < crop_height <= height):
        return None
    y = int(u_y * (height - crop_height)) if crop_height < height else 0
    x = int(u_x * (width - crop_width)) if crop_width < width else 0
    return y, x, crop_height, crop_width


def _covers_an_object(crop: Window, min_object_covered: float, boxes: list[Window]) -> bool:
    """TF's ``SatisfiesOverlapConstraints``: the crop covers enough of at least one box of area >= 1."""
    y, x, crop_height, crop_width = crop
    if crop_height * crop_width < 1:
        return False
    for xmin, ymin, xmax, ymax in boxes:
        box_area = (xmax - xmin) * (ymax - ymin)
        if box_area < 1:
            continue
        overlap_w = min(x + crop_width, xmax) - max(x, xmin)
        overlap_h = min(y + crop_height, ymax) - max(y, ymin)
        overlap = overlap_w * overlap_h if overlap_w >= 0 and overlap_h >= 0 else 0
        if overlap / box_area >= min_object_covered:
            return True
    return False
