"""Reading a dataset to its end or first error, in fastinput and in tf.data, for the text-line and fixed-length
reader tests: the records, and the error's kind (tf.data's class name, fastinput's matching class)."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import fastinput as fi

COMPRESS = {"": lambda data: data, "GZIP": gzip.compress, "ZLIB": zlib.compress}


def fi_read(ds: fi.Dataset) -> tuple[list[bytes], BaseException | None]:
    """Every record up to the first error, and that error (None if the dataset ended cleanly)."""
    records: list[bytes] = []
    with iter(ds) as it:
        try:
            for record in it:
                records.append(record)
        except Exception as exc:
            return records, exc
    return records, None


def tf_read(make: Any) -> tuple[list[bytes], str | None]:
    """tf.data's records up to its first error, and that error's class name (None: it ended cleanly).
    ``make(tf)`` builds the tf.data dataset."""
    import tensorflow as tf

    records: list[bytes] = []
    try:
        for record in make(tf).as_numpy_iterator():
            records.append(record)
    except tf.errors.OpError as exc:
        return records, type(exc).__name__
    return records, None


def write(path: Any, data: bytes, compression: str = "") -> str:
    """``data`` written to ``path``, compressed as ``compression`` says; the path as str."""
    path.write_bytes(COMPRESS[compression](data))
    return str(path)
