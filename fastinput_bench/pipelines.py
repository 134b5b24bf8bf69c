"""The workloads ``fastinput-bench`` measures: one per subcommand, each as a fastinput and a tf.data pipeline.

A ``Workload`` says what its rate counts (images, examples, rows), which
files a folder given as ``--data`` holds, and builds the two pipelines from a
``PipelineConfig``. Both pipelines repeat their data forever, so any number
of steps can be timed, and make the same calls with the same arguments in
the two libraries.

- ``images``: the ResNet-50 training pipeline (``fastinput_bench.image_pipelines``); fastinput's side in one
  of ``IMAGE_PIPELINES``: the hand-built one (``tuned``), or the README's (``readme``, ``map-batch``:
  ``fastinput_bench.readme_pipeline``).
- ``tabular``: ``make_batched_features_dataset`` on Example TFRecords, 4 reader
  threads, the features as the first Example has them (all fixed-length).
- ``csv``: ``make_csv_dataset`` on CSV files with a header, column types inferred.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from fastinput.errors import InvalidArgumentError
from fastinput_bench import image_pipelines, readme_pipeline

READER_THREADS = 4
"""Files read at once by the tabular pipelines (the setting of the reference figures in ENVIRONMENT.md)."""


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """What both pipelines of a workload are built from."""

    files: list[str]
    batch_size: int
    dtype: str = "uint8"
    """Image dtype (``images``)."""
    label: str | None = "label"
    """Label feature or column (``tabular``, ``csv``); None: none split off."""
    pipeline: str = "tuned"
    """Which of ``IMAGE_PIPELINES`` is fastinput's (``images``)."""


@dataclasses.dataclass(frozen=True)
class Workload:
    """One subcommand's pipelines and how to read their output."""

    name: str
    description: str
    unit: str
    folder_pattern: str | None
    """The glob that picks the data files in a folder given as ``--data`` (None: every visible file)."""
    default_batch_size: int
    fastinput: Callable[[PipelineConfig], Any]
    tf_data: Callable[[PipelineConfig], Any]


def example_features(files: list[str]) -> dict[str, Any]:
    """``tf.io.FixedLenFeature`` specs (fastinput takes them too) for every feature of the first Example in
    ``files``."""
    import tensorflow as tf

    import fastinput as fi

    try:
        first = next(iter(fi.TFRecordDataset(files[0])))
    except StopIteration:
        raise InvalidArgumentError(f"{files[0]}: the file holds no records") from None
    try:
        example = tf.train.Example.FromString(first)
    except Exception as exc:  # protobuf's DecodeError, whose module depends on the protobuf build
        raise InvalidArgumentError(f"{files[0]}: the first record is not a tf.train.Example") from exc
    dtypes = {"int64_list": tf.int64, "float_list": tf.float32, "bytes_list": tf.string}
    features = {}
    for key, feature in sorted(example.features.feature.items()):
        kind = feature.WhichOneof("kind")
        if kind is None:
            raise InvalidArgumentError(f"{files[0]}: feature {key!r} of the first Example has no values")
        count = len(getattr(feature, kind).value)
        features[key] = tf.io.FixedLenFeature([] if count == 1 else [count], dtypes[kind])
    return features


def _label_key(config: PipelineConfig, features: dict[str, Any]) -> str | None:
    if config.label is not None and config.label not in features:
        raise InvalidArgumentError(f"--label {config.label!r} is not a feature of {config.files[0]}; "
                                   f"its features: {', '.join(features)}")
    return config.label


def fastinput_tabular(config: PipelineConfig) -> Any:
    import fastinput as fi

    features = example_features(config.files)
    return fi.make_batched_features_dataset(config.files, config.batch_size, features,
                                            label_key=_label_key(config, features),
                                            reader_num_threads=READER_THREADS, num_epochs=None)


def tf_data_tabular(config: PipelineConfig) -> Any:
    import tensorflow as tf

    features = example_features(config.files)
    return tf.data.experimental.make_batched_features_dataset(config.files, config.batch_size, features,
                                                              label_key=_label_key(config, features),
                                                              reader_num_threads=READER_THREADS, num_epochs=None)


def fastinput_csv(config: PipelineConfig) -> Any:
    import fastinput as fi

    return fi.make_csv_dataset(config.files, config.batch_size, label_name=config.label, num_epochs=None)


def tf_data_csv(config: PipelineConfig) -> Any:
    import tensorflow as tf

    return tf.data.experimental.make_csv_dataset(config.files, config.batch_size, label_name=config.label,
                                                 num_epochs=None)


IMAGE_PIPELINES: dict[str, Callable[[PipelineConfig], Any]] = {
    "tuned": lambda c: image_pipelines.fastinput_images(c.files, c.batch_size, c.dtype),
    "readme": lambda c: readme_pipeline.readme_images(c.files, c.batch_size),
    "map-batch": lambda c: readme_pipeline.map_batch_images(c.files, c.batch_size),
}
"""fastinput's image pipelines: the hand-built one (batch the records, one map parses and decodes the batch), the
README's (``map_and_batch`` of a per-record function) and tf.data's habit (``map -> batch`` of that function)."""
USER_PIPELINES = ("readme", "map-batch")
"""The variants that run the README's own function, which decodes uint8 images only."""

WORKLOADS = {
    workload.name: workload
    for workload in (
        Workload("images", "ResNet-50 training pipeline: parse, random-crop JPEG decode, resize 224, flip, batch",
                 "images", "train-*", 64,
                 lambda c: IMAGE_PIPELINES[c.pipeline](c),
                 lambda c: image_pipelines.tf_data_images(c.files, c.batch_size, c.dtype)),
        Workload("tabular", "make_batched_features_dataset on tf.train.Example TFRecords",
                 "examples", None, 1024, fastinput_tabular, tf_data_tabular),
        Workload("csv", "make_csv_dataset on CSV files", "rows", "*.csv", 1024, fastinput_csv, tf_data_csv),
    )
}
