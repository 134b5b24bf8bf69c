"""The ImageNet-like synthetic TFRecords (fastinput_bench.data.imagenet_synthetic) that the image benchmarks read."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastinput.errors import InvalidArgumentError
from fastinput_bench.data.imagenet_synthetic import ensure_imagenet_synthetic, synthetic_image

# The synthetic set is written with TensorFlow's TFRecordWriter: skipped without it.
pytest.importorskip("tensorflow", reason="TensorFlow is not installed")

FEATURES = {
    "image/encoded": ("fixed", "string"),
    "image/format": ("fixed", "string"),
    "image/filename": ("fixed", "string"),
    "image/class/label": ("fixed", "int64"),
    "image/height": ("fixed", "int64"),
    "image/width": ("fixed", "int64"),
    "image/object/bbox/xmin": ("var", "float32"),
    "image/object/bbox/ymin": ("var", "float32"),
    "image/object/bbox/xmax": ("var", "float32"),
    "image/object/bbox/ymax": ("var", "float32"),
}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imagenet")
    return folder, ensure_imagenet_synthetic(num_images=10, num_files=3, cache_dir=folder, seed=1, workers=1)


def parse_all(tf, files):
    spec = {key: tf.io.FixedLenFeature([], getattr(tf, dtype)) if kind == "fixed"
            else tf.io.VarLenFeature(getattr(tf, dtype)) for key, (kind, dtype) in FEATURES.items()}
    examples = []
    for record in tf.data.TFRecordDataset(files):
        parsed = tf.io.parse_single_example(record, spec)
        examples.append({key: (value.values if isinstance(value, tf.SparseTensor) else value).numpy()
                         for key, value in parsed.items()})
    return examples


def test_tensorflow_reads_the_imagenet_layout(tf, tiny_set):
    folder, files = tiny_set
    assert [f.rsplit("/", 1)[1] for f in files] == [f"train-0000{i}-of-00003" for i in range(3)]
    examples = parse_all(tf, files)
    assert len(examples) == 10
    assert len({e["image/filename"] for e in examples}) == 10
    sizes = []
    for example in examples:
        jpeg = example["image/encoded"]
        sizes.append(len(jpeg))
        assert example["image/format"] == b"JPEG"
        assert 1 <= example["image/class/label"] <= 1000
        height, width = int(example["image/height"]), int(example["image/width"])
        assert 300 <= height <= 500 and 300 <= width <= 500
        assert tuple(tf.io.decode_jpeg(jpeg, channels=3).shape) == (height, width, 3)
        boxes = [example[f"image/object/bbox/{k}"] for k in ("ymin", "xmin", "ymax", "xmax")]
        assert len({len(b) for b in boxes}) == 1
        ymin, xmin, ymax, xmax = boxes
        assert ((0 <= ymin) & (ymin < ymax) & (ymax <= 1) & (0 <= xmin) & (xmin < xmax) & (xmax <= 1)).all()
    assert 70_000 <= np.median(sizes) <= 130_000 and max(sizes) <= 140_000


def test_photos_are_photos_not_noise(tf, tiny_set):
    """Neighbouring pixels of a photo are strongly correlated; of random noise, not at all."""
    for example in parse_all(tf, tiny_set[1])[:4]:
        image = tf.io.decode_jpeg(example["image/encoded"], channels=1).numpy()[..., 0].astype(float)
        correlation = np.corrcoef(image[:, :-1].ravel(), image[:, 1:].ravel())[0, 1]
        assert correlation > 0.5


def test_cached_and_deterministic(tiny_set, tmp_path):
    folder, files = tiny_set
    stamps = [(path, os.stat(path).st_mtime_ns) for path in files]
    assert ensure_imagenet_synthetic(num_images=10, num_files=3, cache_dir=folder, seed=1) == files
    assert [(p, os.stat(p).st_mtime_ns) for p in files] == stamps
    again = ensure_imagenet_synthetic(num_images=10, num_files=3, cache_dir=tmp_path, seed=1, workers=1)
    for mine, theirs in zip(files, again):
        assert open(mine, "rb").read() == open(theirs, "rb").read()
    assert not list(tmp_path.glob(".*"))  # no staging folder left behind


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(InvalidArgumentError):
        ensure_imagenet_synthetic(num_images=0, cache_dir=tmp_path)
    with pytest.raises(InvalidArgumentError):
        ensure_imagenet_synthetic(num_images=4, num_files=1, split="test", cache_dir=tmp_path)


def test_validation_split_has_its_own_images():
    train, validation = synthetic_image(1, 0), synthetic_image(1, 0, "validation")
    assert train.jpeg != validation.jpeg
    assert synthetic_image(1, 0, "validation").jpeg == validation.jpeg
