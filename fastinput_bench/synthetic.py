"""``--synthetic``: the data sets each subcommand runs on when given no data, written once into a cache folder.

- ``images``: ImageNet-like TFRecords of real-looking JPEG photos (``fastinput_bench.data.imagenet_synthetic``);
- ``tabular``: Criteo-like ``tf.train.Example`` TFRecords, 13 int64 + 26 string features and a label
  (``fastinput_bench.batched_features``);
- ``csv``: the same Criteo-like columns as CSV files (``fastinput_bench.csv_read``).

The cache folder is ``--cache-dir``, else ``$FASTINPUT_CACHE``, else
``~/.cache/fastinput``; each generator names its folder after its parameters
and reuses it on later runs. ``default`` sizes suit a 2-core machine (the
set is read several times over during a run; what is measured is the
pipeline, not the disk), ``small`` ones are for tests.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.util
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class SyntheticSize:
    """How big each synthetic set is: images and their files, rows (Examples or CSV lines) and their files."""

    images: int
    image_files: int
    rows: int
    row_files: int


SIZES = {
    "default": SyntheticSize(images=2048, image_files=8, rows=409_600, row_files=8),
    "small": SyntheticSize(images=48, image_files=2, rows=4096, row_files=2),
}


_PHOTO_PACKAGES = {"scikit-image": "skimage", "pillow": "PIL"}
"""What ``fastinput_bench.data.photos`` imports (in worker processes, where a missing package reads badly)."""


def cache_root(cache_dir: str | None) -> Path:
    """Where synthetic sets live: ``cache_dir``, ``$FASTINPUT_CACHE`` or ``~/.cache/fastinput``."""
    root = (cache_dir or os.environ.get("FASTINPUT_CACHE")
            or os.path.join(os.path.expanduser("~"), ".cache", "fastinput"))
    return Path(root)


def synthetic_files(subcommand: str, size: str, root: Path) -> list[str]:
    """The files of ``subcommand``'s synthetic set of ``size``, written under ``root`` if not there yet."""
    sizes = SIZES[size]
    if subcommand == "images":
        from fastinput_bench.data.imagenet_synthetic import ensure_imagenet_synthetic

        missing = [name for name, module in _PHOTO_PACKAGES.items() if importlib.util.find_spec(module) is None]
        if missing:
            raise ImportError(f"the synthetic image set is made from scikit-image's sample photos and needs "
                              f"{' and '.join(missing)}: pip install {' '.join(missing)}")

        return ensure_imagenet_synthetic(sizes.images, sizes.image_files, cache_dir=root / "imagenet-synthetic")
    if subcommand == "tabular":
        from fastinput_bench.batched_features import criteo_tfrecords

        return sorted(glob.glob(criteo_tfrecords(sizes.rows, sizes.row_files, root=str(root / "criteo-tfrecord"))))
    if subcommand == "csv":
        from fastinput_bench.csv_read import criteo_csv_files

        return sorted(glob.glob(criteo_csv_files(sizes.rows, sizes.row_files, root=str(root / "criteo-csv"))))
    raise ValueError(f"no synthetic set for {subcommand!r}")
