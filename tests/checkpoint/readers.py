"""The reader rows of the checkpoint conformance table: pipelines over TFRecord and CSV files written into the
case's working folder (the same files whichever process builds the pipeline first)."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable

import numpy as np

import fastinput as fi
from fastinput.readers.framing import frame
from tests.protobuf_wire import entry, feature, int64_list, wire_example

FILES, RECORDS = 3, 17


def _write(path: str, data: bytes) -> str:
    if not os.path.exists(path):
        with open(f"{path}.tmp", "wb") as f:
            f.write(data)
        os.replace(f"{path}.tmp", path)
    return path


def tfrecords(workdir: str, compression: str = "") -> list[str]:
    """``FILES`` TFRecord files of ``RECORDS`` records each (``b"f<file>-r<record>"``, of varying lengths)."""
    paths = []
    for i in range(FILES):
        data = b"".join(frame(f"f{i}-r{j}".encode() * (j % 4 + 1)) for j in range(RECORDS))
        suffix = ".gz" if compression == "GZIP" else ""
        paths.append(_write(os.path.join(workdir, f"part-{i}.tfrecord{suffix}"),
                            gzip.compress(data) if compression == "GZIP" else data))
    return paths


def examples(workdir: str) -> str:
    """``FILES`` TFRecord files of ``tf.train.Example`` records with int64 features ``x`` and ``label``; the glob."""
    for i in range(FILES):
        records = [wire_example(entry("x", feature("int64", int64_list([i * 100 + j]))),
                                entry("label", feature("int64", int64_list([j % 3])))) for j in range(RECORDS)]
        _write(os.path.join(workdir, f"examples-{i}.tfrecord"), b"".join(map(frame, records)))
    return os.path.join(workdir, "examples-*.tfrecord")


def csvs(workdir: str) -> list[str]:
    """``FILES`` CSV files with a header and ``RECORDS`` rows of ``a`` (int), ``b`` (float), ``c`` (string)."""
    return [_write(os.path.join(workdir, f"part-{i}.csv"),
                   ("a,b,c\n" + "".join(f"{i * 100 + j},{j / 4},s{j}\n" for j in range(RECORDS))).encode())
            for i in range(FILES)]


def texts(workdir: str) -> list[str]:
    """``FILES`` text files of ``RECORDS`` lines each (CRLF endings, the last line unterminated)."""
    return [_write(os.path.join(workdir, f"part-{i}.txt"), "\r\n".join(f"f{i}-l{j}" for j in range(RECORDS)).encode())
            for i in range(FILES)]


def parquets(workdir: str) -> str:
    """``FILES`` Parquet files of ``RECORDS`` rows of ``a`` (int64) and ``c`` (string), row groups of 5; the glob."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for i in range(FILES):
        path = os.path.join(workdir, f"part-{i}.parquet")
        if not os.path.exists(path):
            rows = pa.table({"a": [i * 100 + j for j in range(RECORDS)], "c": [f"s{j}" for j in range(RECORDS)]})
            pq.write_table(rows, f"{path}.tmp", row_group_size=5)
            os.replace(f"{path}.tmp", path)
    return os.path.join(workdir, "part-*.parquet")


def _length(record: bytes) -> np.ndarray:
    return np.int64(len(record))


BUILDERS: dict[str, Callable[[str], fi.Dataset]] = {
    "TFRecordDataset": lambda d: fi.TFRecordDataset(tfrecords(d)),
    "TFRecordDataset_gzip": lambda d: fi.TFRecordDataset(tfrecords(d, "GZIP"), compression_type="GZIP"),
    "TFRecordDataset_parallel_reads": lambda d: fi.TFRecordDataset(tfrecords(d), num_parallel_reads=2),
    "list_files": lambda d: fi.Dataset.list_files(tfrecords(d), shuffle=True, seed=3),
    "interleave_TFRecordDataset": lambda d: (fi.Dataset.from_tensor_slices(tfrecords(d))
                                             .interleave(fi.TFRecordDataset, cycle_length=2, block_length=3,
                                                         num_parallel_calls=2)),
    "image_pipeline_shape": lambda d: (fi.Dataset.list_files(tfrecords(d), seed=1)
                                       .interleave(fi.TFRecordDataset, num_parallel_calls=fi.AUTOTUNE)
                                       .shuffle(20, seed=2)
                                       .map_and_batch(_length, 4)
                                       .prefetch(fi.AUTOTUNE)),
    "TextLineDataset": lambda d: fi.TextLineDataset(texts(d), num_parallel_reads=2),
    "FixedLengthRecordDataset": lambda d: fi.FixedLengthRecordDataset(texts(d), 2, header_bytes=1, footer_bytes=1),
    "ParquetDataset": lambda d: fi.ParquetDataset(parquets(d), batch_size=4, num_parallel_reads=2),
    "make_parquet_dataset": lambda d: fi.make_parquet_dataset(parquets(d), 4, label_name="a", num_epochs=2,
                                                              shuffle_seed=5, shuffle_buffer_size=10),
    "CsvDataset": lambda d: fi.CsvDataset(csvs(d), [0, 0.0, ""], header=True),
    "make_csv_dataset": lambda d: fi.make_csv_dataset(csvs(d), 4, num_epochs=2, shuffle_seed=5,
                                                      shuffle_buffer_size=10),
    "make_csv_dataset_in_order": lambda d: fi.make_csv_dataset(csvs(d), 5, num_epochs=1, shuffle=False),
    "make_batched_features_dataset": lambda d: fi.make_batched_features_dataset(
        examples(d), 4, {"x": fi.FixedLenFeature([], np.int64), "label": fi.FixedLenFeature([], np.int64)},
        label_key="label", num_epochs=1, shuffle_seed=7, shuffle_buffer_size=10),
    "with_options": lambda d: fi.Dataset.range(12).with_options(fi.Options(deterministic=True)),
}
"""Rows of the op table that a ``Pipeline`` description cannot say: the name, and the pipeline made in a folder."""
