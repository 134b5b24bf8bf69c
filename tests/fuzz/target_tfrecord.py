"""Fuzz target: TFRecord files (none / GZIP / ZLIB) read by ``fi.TFRecordDataset`` and by tf.data.

An input is a file's bytes: a few records framed as TensorFlow writes them,
compressed (in one stream, or as several gzip members / zlib streams, some
empty, some with the optional gzip header fields), then perhaps damaged
before or after compression. Both libraries must give the same records, and
then both an error or both the end. Known, deliberate differences are allowed
(see ``compare``): tf.data stops at the end of the first ZLIB stream, and at
an empty gzip member, and ignores what follows, where fastinput reads on
(``gzip -d`` reads every member); and in damaged files
fastinput raises DataLossError where tf.data ends quietly (a file cut inside
a record's header, garbage after a gzip member, a compressed stream cut
between records), after the same records or more (tf.data loses the good
records it had decompressed before a decompression error).

The oracle is TensorFlow's record reader through ``tf_record_iterator``
(the reader tf.data's TFRecordDataset runs, without a dataset's 20-40 ms of
set-up per file); every tenth input is read by a TFRecordDataset too, and
the two must agree.
"""

from __future__ import annotations

import atexit
import gzip
import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput.readers.framing import frame
from tests.fuzz.mutate import mutate

NAME = "tfrecord"
MEMORY_LIMIT = None  # TensorFlow reserves more address space than any sane cap
_path = ""
_tf_datasets: dict[str, Any] = {}  # compression -> a TFRecordDataset of the scratch file, made once


def prepare() -> None:
    """Import TensorFlow (the oracle) and pick the scratch file each input is written to."""
    global _path
    import tensorflow

    import fastinput  # noqa: F401

    handle, _path = tempfile.mkstemp(suffix=".tfrecord")
    os.close(handle)
    atexit.register(os.remove, _path)  # a child killed by a crash leaves it behind: one small file per crash
    for compression in ["", "GZIP", "ZLIB"]:
        _tf_datasets[compression] = tensorflow.data.TFRecordDataset(_path, compression_type=compression)


def _gzip_member(data: bytes, rng: np.random.Generator) -> bytes:
    """One gzip member; now and then with the optional header fields (name, comment, extra, header CRC)."""
    if rng.random() < 0.7:
        return gzip.compress(data, compresslevel=int(rng.integers(0, 10)), mtime=0)
    flags = 0x08 | 0x10 | 0x04 | 0x02
    header = b"\x1f\x8b\x08" + bytes([flags]) + bytes(4) + b"\x00\xff"
    header += struct.pack("<H", 3) + b"xyz" + b"name.tfrecord\x00" + b"a comment\x00"
    header += struct.pack("<H", zlib.crc32(header) & 0xFFFF)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def _compress(data: bytes, compression: str, rng: np.random.Generator) -> bytes:
    """``data`` compressed; sometimes split over several members / streams, an empty one among them."""
    cuts = sorted(int(c) for c in rng.integers(0, len(data) + 1, int(rng.integers(0, 3))))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    if compression == "GZIP":
        return b"".join(_gzip_member(piece, rng) for piece in pieces)
    return b"".join(zlib.compress(piece, int(rng.integers(0, 10))) for piece in pieces)


Input = tuple[bytes, str, "int | None", bool]
"""(file bytes, compression type, buffer_size, damaged: whether the bytes were mutated)."""


def make_input(rng: np.random.Generator) -> Input:
    sizes = [int(rng.integers(0, 300)) if rng.random() < 0.95 else int(rng.integers(60_000, 200_000))
             for _ in range(int(rng.integers(0, 6)))]
    framed = b"".join(frame(rng.bytes(size)) for size in sizes)
    compression = ["", "GZIP", "ZLIB"][int(rng.integers(3))]
    damage = rng.random()
    if compression and damage < 0.3:
        framed = mutate(framed, rng)  # well-compressed, badly framed
    data = _compress(framed, compression, rng) if compression else framed
    if damage >= 0.3 and damage < 0.9:
        data = mutate(data, rng)
    buffer_size = [None, 1, 100, 4096][int(rng.integers(4))]
    return data, compression, buffer_size, damage < 0.9


def from_fuzzer_bytes(data: bytes) -> Input:
    """An input from a coverage-guided fuzzer's bytes: the first picks compression and buffer size."""
    if not data:
        return b"", "", None, True
    return data[1:], ["", "GZIP", "ZLIB"][data[0] % 3], [None, 1, 100, 4096][data[0] // 3 % 4], True


def fuzzer_bytes(inp: Input) -> bytes:
    """What ``from_fuzzer_bytes`` turns back into (about) this input: a seed for a coverage-guided fuzzer."""
    return bytes([["", "GZIP", "ZLIB"].index(inp[1])]) + inp[0]


def payload(inp: Input) -> tuple[bytes, str]:
    return inp[0], {"": ".tfrecord", "GZIP": ".tfrecord.gz", "ZLIB": ".tfrecord.zlib"}[inp[1]]


def _fastinput_read(compression: str, buffer_size: int | None) -> tuple[list[bytes], BaseException | None]:
    import fastinput as fi

    records: list[bytes] = []
    try:
        with iter(fi.TFRecordDataset(_path, compression_type=compression, buffer_size=buffer_size)) as it:
            for record in it:
                records.append(record)
    except Exception as exc:  # noqa: BLE001 - which error it is, is what gets checked
        return records, exc
    return records, None


def _tf_read(compression: str, with_dataset: bool) -> tuple[list[bytes], BaseException | None]:
    """TensorFlow's records and error: read by its record reader, or (``with_dataset``) by a TFRecordDataset."""
    import tensorflow as tf

    records: list[bytes] = []
    if with_dataset:
        reader = (element.numpy() for element in _tf_datasets[compression])
    else:
        reader = tf.compat.v1.io.tf_record_iterator(_path, tf.io.TFRecordOptions(compression_type=compression))
    try:
        for record in reader:
            records.append(record)
    except tf.errors.OpError as exc:
        return records, exc
    return records, None


def check(inp: Input, oracle: Callable[[], None]) -> str | None:
    data, compression, buffer_size, damaged = inp
    with open(_path, "wb") as f:
        f.write(data)
    records, error = _fastinput_read(compression, buffer_size)
    from fastinput.errors import FastInputError

    if error is not None and not isinstance(error, FastInputError):
        return f"fastinput raised {type(error).__name__}: {error}"
    if error is not None and _path not in str(error):
        return f"fastinput's error does not name the file: {error}"
    oracle()
    tf_records, tf_error = _tf_read(compression, with_dataset=False)
    if zlib.crc32(data) % 10 == 0:
        dataset_records, dataset_error = _tf_read(compression, with_dataset=True)
        if dataset_records != tf_records or type(dataset_error) is not type(tf_error):
            return (f"the oracle disagrees with itself: tf_record_iterator {len(tf_records)} records, then "
                    f"{_outcome(tf_error)}; TFRecordDataset {len(dataset_records)}, then {_outcome(dataset_error)}")
    return compare(data, compression, damaged, records, error, tf_records, tf_error)


def compare(data: bytes, compression: str, damaged: bool, records: list[bytes], error: Any,
            tf_records: list[bytes], tf_error: Any) -> str | None:
    """None if fastinput's outcome is tf.data's, or differs only where fastinput deliberately does."""
    from fastinput.errors import DataLossError

    if records == tf_records and (error is None) == (tf_error is None):
        return None
    if records[:len(tf_records)] == tf_records:
        if _tensorflow_stops_early(data, compression):
            return None  # tf.data ignores whatever follows the first ZLIB stream, or an empty gzip member
        if damaged and isinstance(error, DataLossError):
            return None  # stricter: DataLossError where tf.data ends quietly, after every good record
    first_difference = next((i for i, (a, b) in enumerate(zip(records, tf_records)) if a != b),
                            min(len(records), len(tf_records)))
    return (f"fastinput: {len(records)} records, then {_outcome(error)}; tf.data: {len(tf_records)} records, "
            f"then {_outcome(tf_error)}; first difference at record {first_difference}")


def _tensorflow_stops_early(data: bytes, compression: str) -> bool:
    """Whether bytes follow the first ZLIB stream, or an empty gzip member, in ``data``: tf.data stops there."""
    if not compression:
        return False
    while data:
        inflater = zlib.decompressobj(31 if compression == "GZIP" else 15)
        try:
            out = inflater.decompress(data)
        except zlib.error:
            return False
        data = inflater.unused_data
        if not inflater.eof or (data and (compression == "ZLIB" or not out)):
            return inflater.eof
    return False


def _outcome(error: Any) -> str:
    return "the end" if error is None else f"{type(error).__name__}: {str(error)[:300]}"
