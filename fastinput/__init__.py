"""fastinput: high-throughput input pipelines for machine learning, in the style of tf.data.

>>> import fastinput as fi
>>> [int(x) for x in fi.Dataset.range(5).map(lambda x: x * x, num_parallel_calls=fi.AUTOTUNE)]
[0, 1, 4, 9, 16]

Importing fastinput is cheap: TensorFlow, pyarrow, s3fs and gcsfs are imported
only by the code that needs them.
"""

from fastinput import errors, extension, profiler
from fastinput._engine.arguments import AUTOTUNE
from fastinput._engine.cardinality import INFINITE_CARDINALITY, UNKNOWN_CARDINALITY
from fastinput._engine.iterator import Iterator
from fastinput.dataset import Dataset
from fastinput.options import AutotuneOptions, CheckpointOptions, OptimizationOptions, Options, RemoteOptions
from fastinput.readers.batched_features import make_batched_features_dataset
from fastinput.readers.csv import CsvDataset, make_csv_dataset
from fastinput.readers.example import parse_example
from fastinput.readers.features import FixedLenFeature, FixedLenSequenceFeature, VarLenFeature
from fastinput.readers.fixed_length import FixedLengthRecordDataset
from fastinput.readers.parquet import ParquetDataset, make_parquet_dataset
from fastinput.readers.sql import SqlDataset
from fastinput.readers.text import TextLineDataset
from fastinput.readers.tfrecord import TFRecordDataset
from fastinput.spec import DatasetSpec, RaggedSpec, SparseSpec, TensorSpec
from fastinput.structure import RaggedArray, SparseArray
from fastinput.tf_adapter import tf_input_fn
from fastinput.tf_values import PackedStrings

__version__ = "0.1.0"


def __getattr__(name: str):
    """``fi.image`` (the fused JPEG kernels) and ``fi.InputCheckpoint`` (a Keras callback) are imported on first
    use, keeping ``import fastinput`` light; then kept as module attributes, so a per-element ``fi.image.…`` call
    pays no import lookup."""
    import importlib

    if name == "image":
        value = importlib.import_module("fastinput.fused_ops.image")
    elif name == "InputCheckpoint":
        value = importlib.import_module("fastinput.tf_checkpoint").InputCheckpoint
    else:
        raise AttributeError(f"module 'fastinput' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = [
    "AUTOTUNE",
    "AutotuneOptions",
    "CheckpointOptions",
    "CsvDataset",
    "Dataset",
    "DatasetSpec",
    "FixedLenFeature",
    "FixedLenSequenceFeature",
    "FixedLengthRecordDataset",
    "INFINITE_CARDINALITY",
    "InputCheckpoint",
    "Iterator",
    "OptimizationOptions",
    "Options",
    "PackedStrings",
    "ParquetDataset",
    "RaggedArray",
    "RaggedSpec",
    "RemoteOptions",
    "SparseArray",
    "SparseSpec",
    "SqlDataset",
    "TFRecordDataset",
    "TensorSpec",
    "TextLineDataset",
    "UNKNOWN_CARDINALITY",
    "VarLenFeature",
    "errors",
    "extension",
    "image",
    "make_batched_features_dataset",
    "make_csv_dataset",
    "make_parquet_dataset",
    "parse_example",
    "profiler",
    "tf_input_fn",
]
