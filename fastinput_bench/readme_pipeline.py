"""The image pipelines a user writes, for ``fastinput-bench images --pipeline readme`` and ``--pipeline map-batch``.

``preprocess`` is the README's per-record function, verbatim (a test pins it
to the README's code block): a one-record ``parse_example`` and a
``decode_random_crop_resize`` into the batch row when ``map_and_batch`` hands
one over (``out=``). The two pipelines around it are the ones issue 20 names:

- ``readme``: the README's ``interleave(TFRecordDataset) -> shuffle ->
  map_and_batch(preprocess, 64)``, with ``repeat()`` so that any number of
  steps can be timed and ``prefetch`` where the README has
  ``prefetch_to_device`` (``--device`` adds that).
- ``map-batch``: tf.data's habit, ``map(preprocess, AUTOTUNE) -> batch(64)``.

Both keep the README's defaults (deterministic order, the kernel's default
``max_attempts``, labels as stored) and use the benchmark's small shuffle
buffer instead of the README's 10,000, so that the three fastinput variants
and tf.data shuffle the same way and warm up as fast. They decode uint8
images, as the README does.
"""

from __future__ import annotations

from typing import Any

import fastinput as fi
from fastinput_bench.image_pipelines import SHUFFLE_BUFFER

features = {"image/encoded": fi.FixedLenFeature([], bytes), "image/class/label": fi.FixedLenFeature([], "int64")}


def preprocess(record, out=None):                      # out=: this element's row of the batch, filled in place
    example = fi.parse_example([record], features)
    image = fi.image.decode_random_crop_resize(example["image/encoded"][0], size=(224, 224),
                                               out=None if out is None else out[0])
    return image, example["image/class/label"][0]


def _records(files: list[str]) -> fi.Dataset:
    """The README's input: files listed shuffled, read interleaved, records shuffled, repeated forever."""
    return (fi.Dataset.list_files(files)
            .interleave(fi.TFRecordDataset, num_parallel_calls=fi.AUTOTUNE)
            .shuffle(SHUFFLE_BUFFER)
            .repeat())


def readme_images(files: list[str], batch_size: int, num_parallel_calls: int = fi.AUTOTUNE) -> Any:
    """The README's pipeline: ``map_and_batch(preprocess, batch_size)`` (``num_parallel_calls``: its default, or
    a fixed worker count for ``fastinput_bench.readme_threads``)."""
    return (_records(files).map_and_batch(preprocess, batch_size, num_parallel_calls=num_parallel_calls)
            .prefetch(fi.AUTOTUNE))


def map_batch_images(files: list[str], batch_size: int) -> Any:
    """tf.data's habit with the README's function: ``map(preprocess, AUTOTUNE) -> batch(batch_size)``."""
    return (_records(files).map(preprocess, num_parallel_calls=fi.AUTOTUNE).batch(batch_size)
            .prefetch(fi.AUTOTUNE))
