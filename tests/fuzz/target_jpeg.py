"""Fuzz target: the JPEG kernels behind ``fi.image`` (``fused_ops/_jpeg.c``, libjpeg-turbo).

An input is JPEG bytes and one call: ``jpeg_shape``, or a decode with a crop
window, an output size, a flip and a dtype. The bytes start as one of a few
images written by Pillow (baseline 4:2:0 and 4:4:4, grayscale, CMYK,
progressive, 1x1, one large enough to crop) and are then damaged: ``mutate``,
cut at a marker, a SOF header claiming other (huge, zero) dimensions or
component counts, or not a JPEG at all; windows and sizes run from one pixel
to past the image. A call must return an array of the asked shape and dtype
or raise a fastinput error; never crash, hang, or raise anything else.

The child's address space is capped (``MEMORY_LIMIT``) so a header that asks
for gigabytes fails the call, not the machine.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.fuzz.mutate import mutate

NAME = "jpeg"
MEMORY_LIMIT = 3 << 30
_SEEDS: list[bytes] = []
_SOF_MARKERS = (0xC0, 0xC1, 0xC2)
_EDGE_SIDES = [0, 1, 2, 8, 17, 255, 256, 4096, 65500, 65535]
_NOT_JPEG = [b"", b"\xff\xd8", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n" + bytes(40), b"GIF89a" + bytes(20), b"\xff" * 64]


def prepare() -> None:
    """Write the seed images (Pillow; the same bytes every run with the same Pillow and libjpeg)."""
    from fastinput.fused_ops import jpeg_kernel

    if jpeg_kernel._jpeg is None:  # TensorFlow's kernels instead: TensorFlow needs its address space
        global MEMORY_LIMIT
        MEMORY_LIMIT = None
    if not _SEEDS:
        _SEEDS.extend(_seed_images())


def _seed_images() -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    smooth = np.cumsum(rng.integers(0, 9, (64, 80, 3)), axis=1).astype(np.uint8)

    def save(image: Any, **options: Any) -> bytes:
        out = io.BytesIO()
        image.save(out, "JPEG", **options)
        return out.getvalue()

    rgb = Image.fromarray(smooth[:37, :53])
    return [
        save(rgb, quality=90),
        save(Image.fromarray(smooth[:16, :16]), subsampling=0),
        save(rgb.convert("L")),
        save(Image.fromarray(smooth[:24, :24]).convert("CMYK")),
        save(Image.fromarray(smooth[:40, :30]), progressive=True),
        save(Image.fromarray(smooth[:1, :1])),
        save(Image.fromarray(np.tile(smooth, (3, 3, 1))), quality=75, optimize=True),
    ]


def _sof_offset(data: bytes) -> int | None:
    for marker in _SOF_MARKERS:
        at = data.find(bytes([0xFF, marker]))
        if at >= 0 and at + 10 <= len(data):
            return at
    return None


def _damage(data: bytes, rng: np.random.Generator) -> bytes:
    kind = rng.random()
    sof = _sof_offset(data)
    if kind < 0.1 and sof is not None:  # a SOF that claims other dimensions
        out = bytearray(data)
        huge = rng.random() < 0.05
        sides = [_EDGE_SIDES[int(rng.integers(len(_EDGE_SIDES) if huge else 7))] for _ in range(2)]
        struct.pack_into(">HH", out, sof + 5, *sides)
        return bytes(out)
    if kind < 0.15 and sof is not None:  # other component counts
        out = bytearray(data)
        out[sof + 9] = [0, 1, 2, 3, 4, 5, 255][int(rng.integers(7))]
        return bytes(out)
    if kind < 0.25:  # cut at a marker
        markers = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] not in (0x00, 0xFF)]
        return data[:markers[int(rng.integers(len(markers)))] + int(rng.integers(0, 4))] if markers else data
    if kind < 0.28:
        return _NOT_JPEG[int(rng.integers(len(_NOT_JPEG)))]
    if kind < 0.9:
        return mutate(data, rng)
    return data


def _window(rng: np.random.Generator) -> tuple[int, int, int, int] | None:
    if rng.random() < 0.3:
        return None
    sides = [0, 1, 3, 16, 37, 53, 64, 200, 240, 65535]

    def pick(low: int) -> int:
        return max(low, sides[int(rng.integers(len(sides)))] + int(rng.integers(-1, 2)))

    return pick(0), pick(0), pick(1), pick(1)


def make_input(rng: np.random.Generator) -> tuple[bytes, str, dict]:
    """(JPEG bytes, the fi.image function, its keyword arguments)."""
    data = _damage(_SEEDS[int(rng.integers(len(_SEEDS)))], rng)
    size = (int(rng.integers(1, 48)), int(rng.integers(1, 48))) if rng.random() < 0.95 else (1, 257)
    dtype = "uint8" if rng.random() < 0.7 else "float32"
    op = ["jpeg_shape", "decode_crop_resize", "decode_center_crop_resize", "decode_random_crop_resize"][
        int(rng.integers(4))]
    if op == "jpeg_shape":
        kwargs: dict = {}
    elif op == "decode_crop_resize":
        kwargs = {"crop_window": _window(rng), "size": size, "flip": bool(rng.random() < 0.5), "dtype": dtype}
    elif op == "decode_center_crop_resize":
        kwargs = {"size": size, "crop_fraction": float(rng.uniform(0.01, 1.0)), "dtype": dtype}
    else:
        kwargs = {"size": size, "seed": int(rng.integers(1000)), "dtype": dtype,
                  "area_range": (float(rng.uniform(0.01, 0.5)), 1.0),
                  "fallback": "image" if rng.random() < 0.5 else "center_crop"}
    return data, op, kwargs


def from_fuzzer_bytes(data: bytes) -> tuple[bytes, str, dict]:
    """An input from a coverage-guided fuzzer's bytes: a crop and resize of a small window."""
    return data, "decode_crop_resize", {"crop_window": (1, 2, 9, 7), "size": (5, 6), "dtype": "uint8"}


def fuzzer_bytes(inp: tuple[bytes, str, dict]) -> bytes:
    """What ``from_fuzzer_bytes`` turns back into (about) this input: a seed for a coverage-guided fuzzer."""
    return inp[0]


def payload(inp: tuple[bytes, str, dict]) -> tuple[bytes, str]:
    return inp[0], ".jpg"


def check(inp: tuple[bytes, str, dict], oracle: Callable[[], None]) -> str | None:
    del oracle  # no oracle: the result's shape and the kind of error are what is checked
    import fastinput as fi
    from fastinput.errors import FastInputError

    data, op, kwargs = inp
    try:
        result = getattr(fi.image, op)(data, **kwargs)
    except FastInputError:
        return None
    except Exception as exc:  # noqa: BLE001 - which error it is, is what gets checked
        return f"{op}(**{kwargs}) raised {type(exc).__name__}: {exc}"
    if op == "jpeg_shape":
        ok = len(result) == 3 and all(isinstance(v, int) and v >= 0 for v in result)
        return None if ok else f"jpeg_shape gave {result!r}"
    want = (*kwargs["size"], 3)
    if result.shape != want or result.dtype != np.dtype(kwargs["dtype"]):
        return f"{op}(**{kwargs}) gave {result.dtype}{list(result.shape)}, want {kwargs['dtype']}{list(want)}"
    return None
