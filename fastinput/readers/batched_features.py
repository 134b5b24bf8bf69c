"""``fi.make_batched_features_dataset``: batches of parsed ``tf.train.Example`` features from files, in one call.

The pipeline is tf.data's, stage for stage and in the same order, so the same
files and arguments give the same batches (with ``shuffle=False``):

    list_files(shuffle) -> interleave(reader, cycle_length=reader_num_threads, block_length=1, parallel)
    -> shuffle(shuffle_buffer_size, shuffle_seed) -> repeat(num_epochs) -> batch(batch_size)
    -> map(parse the whole batch in one kernel call, num_parallel_calls=parser_num_threads)
    -> prefetch(prefetch_buffer_size)

Parsing a whole batch of serialized records at once is what makes it fast:
the records are batched as ``bytes`` (one object array per batch) and each
batch is one ``ParseExampleV2`` kernel call (see ``fastinput.readers.example``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fastinput._engine.arguments import (
    AUTOTUNE,
    check_bool,
    check_callable,
    check_int,
    check_parallelism,
    check_seed,
)
from fastinput._engine.traits import PacksStrings
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.interleave import autotune_cycle_length
from fastinput.options import Options
from fastinput.readers.example import ExampleParser, Parsed
from fastinput.readers.file_records import FileOpener
from fastinput.readers.tfrecord import TFRecordDataset

_OP = "make_batched_features_dataset"


class BatchParser(PacksStrings):
    """The parse stage's function: a batch of serialized Examples to its features (and label, if asked)."""

    def __init__(self, parser: ExampleParser, label_key: str | None, packed_strings: bool = False) -> None:
        self._parser = parser
        self._label_key = label_key
        self._packed_strings = packed_strings
        self.__name__ = "parse_example"  # how the stage reads: map(parse_example, ...)

    def packing_strings(self) -> BatchParser:
        """This parser with string features as ``PackedStrings``: for ``as_tf_dataset``, when only TensorFlow
        sees the output (it wants the bytes, and making a Python object per value would only slow it down)."""
        return BatchParser(self._parser, self._label_key, packed_strings=True)

    def __call__(self, *batch: np.ndarray) -> Parsed | tuple[Parsed, Any]:
        # A reader of (key, value) records (tf.data allows those) batches into (keys, values): parse the values.
        features = self._parser(batch[-1], packed_strings=self._packed_strings)
        if self._label_key is None:
            return features
        return features, features.pop(self._label_key)


def _read_records(files: Dataset, reader: Callable[..., Dataset], reader_args: tuple, reader_num_threads: int,
                  deterministic: bool) -> Dataset:
    """Every file's records, ``reader_num_threads`` files at a time, one record from each in turn (tf.data's order)."""
    if reader is TFRecordDataset and len(reader_args) <= 2:
        # The default reader takes the dataset of file names itself (reader_args: compression_type, buffer_size)
        # and reads it with that same interleave, straight over each file's records.
        records = TFRecordDataset(files, *reader_args, num_parallel_reads=reader_num_threads)
        return records if deterministic else records.with_options(Options(deterministic=False))
    # tf.data: an autotuned reader count gets tf.data's autotuned cycle; a fixed one reads that many files.
    cycle_length = autotune_cycle_length(AUTOTUNE) if reader_num_threads == AUTOTUNE else reader_num_threads
    return files.interleave(FileOpener(reader, reader_args), cycle_length=cycle_length, block_length=1,
                            num_parallel_calls=reader_num_threads, deterministic=deterministic)


def make_batched_features_dataset(
    file_pattern: str | Sequence[str],
    batch_size: int,
    features: Mapping[str, Any],
    reader: Callable[..., Dataset] | None = None,
    label_key: str | None = None,
    reader_args: Sequence[Any] | None = None,
    num_epochs: int | None = None,
    shuffle: bool = True,
    shuffle_buffer_size: int = 10000,
    shuffle_seed: int | None = None,
    prefetch_buffer_size: int | None = None,
    reader_num_threads: int | None = None,
    parser_num_threads: int | None = None,
    sloppy_ordering: bool = False,
    drop_final_batch: bool = False,
) -> Dataset:
    """A Dataset of feature dicts (or ``(features, label)`` pairs) parsed from files of ``tf.train.Example``.

    Signature, defaults and order of ``tf.data.experimental.make_batched_features_dataset``:
    ``reader`` defaults to ``fi.TFRecordDataset`` and is called as
    ``reader(filename, *reader_args)``; ``num_epochs=None`` repeats forever
    (and then every batch is full, as in tf.data); ``reader_num_threads``
    (default 1) files are read at once, ``parser_num_threads`` (default 2)
    batches parsed at once; ``prefetch_buffer_size`` defaults to
    ``fi.AUTOTUNE``. ``sloppy_ordering=True`` lets stages hand out whatever
    is ready first.

    >>> import fastinput as fi, numpy as np
    >>> features = {"x": fi.FixedLenFeature([], np.float32), "y": fi.FixedLenFeature([], np.int64)}
    >>> ds = fi.make_batched_features_dataset("data/*.tfrecord", 32, features, label_key="y",
    ...                                       num_epochs=1)
    >>> features, labels = next(iter(ds))
    """
    parser = ExampleParser(features)
    batch_size = check_int(_OP, "batch_size", batch_size, minimum=1)
    if label_key is not None and label_key not in parser.features:
        raise InvalidArgumentError(
            f"{_OP}: label_key {label_key!r} must be one of the features' keys: {sorted(parser.features)}"
        )
    reader = TFRecordDataset if reader is None else reader
    check_callable(_OP, "reader", reader)
    if reader_args is not None and (isinstance(reader_args, (str, bytes)) or not isinstance(reader_args, Sequence)):
        raise InvalidArgumentError(f"{_OP}: reader_args must be a list of arguments, got {reader_args!r}")
    if num_epochs is not None:
        num_epochs = check_int(_OP, "num_epochs", num_epochs, minimum=0, allow=(-1,))
    shuffle = check_bool(_OP, "shuffle", shuffle)
    shuffle_buffer_size = check_int(_OP, "shuffle_buffer_size", shuffle_buffer_size, minimum=1)
    shuffle_seed = check_seed(_OP, shuffle_seed)
    prefetch_buffer_size = AUTOTUNE if prefetch_buffer_size is None else check_int(
        _OP, "prefetch_buffer_size", prefetch_buffer_size, minimum=0, allow=(AUTOTUNE,))
    reader_num_threads = check_parallelism(_OP, "reader_num_threads", reader_num_threads) or 1
    parser_num_threads = check_parallelism(_OP, "parser_num_threads", parser_num_threads) or 2
    deterministic = not check_bool(_OP, "sloppy_ordering", sloppy_ordering)
    drop_final_batch = check_bool(_OP, "drop_final_batch", drop_final_batch)

    files = Dataset.list_files(file_pattern, shuffle=shuffle, seed=shuffle_seed)
    dataset = _read_records(files, reader, tuple(reader_args or ()), reader_num_threads, deterministic)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer_size, shuffle_seed)
    if num_epochs != 1:
        dataset = dataset.repeat(num_epochs)
    # As in tf.data: repeating forever drops nothing (every batch is full) and keeps the batch size static.
    dataset = dataset.batch(batch_size, drop_remainder=drop_final_batch or num_epochs is None)
    dataset = dataset.map(BatchParser(parser, label_key), num_parallel_calls=parser_num_threads,
                          deterministic=None if deterministic else False)
    return dataset.prefetch(prefetch_buffer_size)
