"""An ImageNet-like TFRecord set of real-looking JPEG photos, written once into a cache folder.

The files have the layout of ImageNet's TFRecords as ``build_imagenet_data.py``
writes them (``train-00000-of-00016``, one ``tf.train.Example`` per image with
``image/encoded``, ``image/format``, ``image/class/label`` in 1..1000,
``image/height``, ``image/width``, ``image/object/bbox/{xmin,ymin,xmax,ymax}``
(empty for 60% of the images, as in ImageNet), ``image/filename`` ...), and its
image mix: 300 to 500 pixels a side (long side mostly 500), JPEG quality 90,
80% 4:2:0 and 20% 4:4:4 chroma subsampling, 2% grayscale.
Each image's sharpening is tuned towards a target size drawn from 85-125 KB;
the default 2,048-image set measures mean 94 KB, median 93 KB, 83% within
80-130 KB (the smoothest photos, e.g. rocket and retina crops, stay
lower: 5th percentile 68 KB). The photographs come from ``fastinput_bench.data.photos``.

    from fastinput_bench.data.imagenet_synthetic import ensure_imagenet_synthetic
    files = ensure_imagenet_synthetic(num_images=2048, num_files=16)

The set is deterministic given ``seed``; it is written into
``$FASTINPUT_CACHE/imagenet-synthetic/`` (default ``~/.cache/fastinput``),
in a folder named after its parameters, and reused on later calls.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from fastinput.errors import InvalidArgumentError
from fastinput_bench.data.photos import CameraFinish, base_photo, encode_jpeg, to_grayscale

MIN_BYTES, MAX_BYTES = 80_000, 130_000
"""ImageNet's typical JPEG size range; each image's sharpening is tuned to land in it."""
GRAYSCALE_FRACTION = 0.02
BBOX_FRACTION = 0.4
"""About 40% of ImageNet's training images come with bounding boxes."""
NUM_CLASSES = 1000
_FORMAT_VERSION = 1
"""Part of the cache folder's name: bump it when the generator's output changes."""
_MAX_ENCODES = 4
_SPLITS = ("train", "validation")
_SIZE_SLACK = 10_000


def default_cache_dir() -> Path:
    """``imagenet-synthetic`` in the benchmarks' cache folder (``$FASTINPUT_CACHE`` or ``~/.cache/fastinput``)."""
    from fastinput_bench.synthetic import cache_root

    return cache_root(None) / "imagenet-synthetic"


def ensure_imagenet_synthetic(num_images: int = 2048, num_files: int = 16, cache_dir: str | os.PathLike | None = None,
                              seed: int = 0, split: str = "train", workers: int | None = None) -> list[str]:
    """Paths of ``num_files`` TFRecord files holding ``num_images`` examples in all, written on the first call.

    Files are written into a temporary folder and renamed into place when all
    are complete, so an interrupted run leaves nothing half-written behind and
    concurrent callers agree on one copy.
    """
    if num_images < 1 or num_files < 1:
        raise InvalidArgumentError(f"num_images and num_files must be >= 1, got {num_images} and {num_files}")
    if split not in _SPLITS:
        raise InvalidArgumentError(f"split must be 'train' or 'validation', got {split!r}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / f"{split}-n{num_images}-f{num_files}-s{seed}-v{_FORMAT_VERSION}"
    names = [f"{split}-{index:05d}-of-{num_files:05d}" for index in range(num_files)]
    if not (folder / "_manifest.json").exists():
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=root))
        try:
            _write_files(staging, names, num_images, seed, split, workers or min(os.cpu_count() or 1, num_files))
            staging.chmod(0o755)  # mkdtemp's folder is private; the cache is shared
            try:
                staging.rename(folder)
            except OSError:  # another process finished first; its copy is identical
                if not (folder / "_manifest.json").exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return [str(folder / name) for name in names]


@dataclasses.dataclass(frozen=True)
class SyntheticImage:
    """One image of the set and its annotations; boxes are rows of (ymin, xmin, ymax, xmax), relative."""

    jpeg: bytes
    height: int
    width: int
    label: int
    boxes: np.ndarray


def synthetic_image(seed: int, index: int, split: str = "train") -> SyntheticImage:
    """Image ``index`` of ``split`` made with ``seed`` (independent of every other image, so any worker can make it)."""
    rng = np.random.default_rng([seed, index] if split == "train" else [seed, index, _SPLITS.index(split)])
    height, width = _image_size(rng)
    jpeg = _jpeg_in_size_range(rng, height, width)
    label = int(rng.integers(1, NUM_CLASSES + 1))
    boxes = _random_boxes(rng) if rng.random() < BBOX_FRACTION else np.zeros((0, 4), np.float32)
    return SyntheticImage(jpeg, height, width, label, boxes)


def _images(seed: int, split: str, start: int, stop: int) -> list[SyntheticImage]:
    return [synthetic_image(seed, index, split) for index in range(start, stop)]


def _write_files(folder: Path, names: list[str], num_images: int, seed: int, split: str, workers: int) -> None:
    """Make the images on ``workers`` processes (the work holds the GIL), write the files from this one."""
    import tensorflow as tf

    bounds = np.linspace(0, num_images, len(names) + 1).astype(int).tolist()
    ranges = [(seed, split, bounds[index], bounds[index + 1]) for index in range(len(names))]
    sizes = []
    with contextlib.ExitStack() as stack:
        if workers > 1:  # spawn: forking a process that may have TensorFlow's threads running is not safe
            pool = stack.enter_context(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")))
            per_file = pool.map(_images, *zip(*ranges))
        else:
            per_file = (_images(*args) for args in ranges)
        for name, (_, _, start, _), images in zip(names, ranges, per_file):
            with tf.io.TFRecordWriter(str(folder / name)) as writer:
                for index, image in enumerate(images, start):
                    writer.write(_example(tf, index, image).SerializeToString())
                    sizes.append(len(image.jpeg))
    manifest = {"files": names, "num_images": num_images, "seed": seed, "format_version": _FORMAT_VERSION,
                "jpeg_bytes": {"mean": float(np.mean(sizes)), "min": int(np.min(sizes)), "max": int(np.max(sizes))}}
    (folder / "_manifest.json").write_text(json.dumps(manifest, indent=2))


def _example(tf: Any, index: int, image: SyntheticImage) -> Any:
    """The ``tf.train.Example`` of one image, with the features ``build_imagenet_data.py`` writes."""

    def int64(*values: int) -> Any:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    def floats(values: np.ndarray) -> Any:
        return tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))

    def raw(value: bytes) -> Any:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    feature = {
        "image/encoded": raw(image.jpeg),
        "image/format": raw(b"JPEG"),
        "image/filename": raw(f"synthetic_{index:08d}.JPEG".encode()),
        "image/height": int64(image.height),
        "image/width": int64(image.width),
        "image/colorspace": raw(b"RGB"),
        "image/channels": int64(3),
        "image/class/label": int64(image.label),
        "image/class/synset": raw(f"n{image.label:08d}".encode()),
        "image/class/text": raw(f"synthetic class {image.label}".encode()),
        "image/object/bbox/label": int64(*[image.label] * len(image.boxes)),
    }
    for column, key in enumerate(("ymin", "xmin", "ymax", "xmax")):
        feature[f"image/object/bbox/{key}"] = floats(image.boxes[:, column])
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _image_size(rng: np.random.Generator) -> tuple[int, int]:
    """(height, width) in ImageNet's mix: long side mostly 500, common aspect ratios, each side 300..500."""
    long_side = 500 if rng.random() < 0.6 else int(rng.integers(400, 501))
    aspect = float(rng.choice([4 / 3, 3 / 2, 1.0, 5 / 4, 16 / 9]))
    short_side = int(np.clip(round(long_side / aspect), 300, long_side))
    return (short_side, long_side) if rng.random() < 0.75 else (long_side, short_side)


def _jpeg_in_size_range(rng: np.random.Generator, height: int, width: int) -> bytes:
    """A photo's JPEG, with sharpening tuned (secant steps on the byte size) to land near a target size."""
    grayscale = rng.random() < GRAYSCALE_FRACTION
    subsampling = "4:2:0" if rng.random() < 0.8 else "4:4:4"
    target = rng.uniform(MIN_BYTES + 5_000, MAX_BYTES - 5_000)
    finish = CameraFinish(base_photo(rng, height, width), rng)

    def encode(detail: float) -> bytes:
        pixels = finish(detail)
        return encode_jpeg(to_grayscale(pixels) if grayscale else pixels, quality=90, subsampling=subsampling)

    detail, jpeg = 2.0, encode(2.0)
    previous: tuple[float, int] | None = None
    for _ in range(_MAX_ENCODES - 1):
        if abs(len(jpeg) - target) <= _SIZE_SLACK:
            break
        slope = 11_000.0  # bytes per unit of detail, typical near detail 2
        if previous is not None and previous[0] != detail:
            slope = max(2_000.0, (len(jpeg) - previous[1]) / (detail - previous[0]))
        previous = (detail, len(jpeg))
        detail = float(np.clip(detail + (target - len(jpeg)) / slope, 0.0, 10.0))
        jpeg = encode(detail)
    return jpeg


def _random_boxes(rng: np.random.Generator) -> np.ndarray:
    """1 to 3 boxes as rows of (ymin, xmin, ymax, xmax), relative coordinates, each 10-90% of a side."""
    count = int(rng.integers(1, 4))
    sizes = rng.uniform(0.1, 0.9, size=(count, 2))
    starts = rng.uniform(0.0, 1.0, size=(count, 2)) * (1.0 - sizes)
    return np.concatenate([starts, starts + sizes], axis=1).astype(np.float32)
