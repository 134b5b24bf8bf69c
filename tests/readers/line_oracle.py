"""Reading a dataset to its end or first error, in fastinput (``fi_read``: test_tfrecord's ``read_until_error``)
and in tf.data, for the text-line and fixed-length reader tests: the records, and the error (tf.data's: its class
name)."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

from tests.readers.test_tfrecord import read_until_error as fi_read  # noqa: F401  (re-exported)

COMPRESS = {"": lambda data: data, "GZIP": gzip.compress, "ZLIB": zlib.compress}


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


class Trickle:
    """A stream that hands out at most ``step`` bytes per read, so lines straddle reads everywhere."""

    path = "trickle"
    size = None  # like a compressed stream: the end is found by reading

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def read(self, n: int) -> bytes:
        out = self._data[self._pos:self._pos + min(n, self._step)]
        self._pos += len(out)
        return out
