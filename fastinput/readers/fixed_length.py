"""``fi.FixedLengthRecordDataset``: records of ``record_bytes`` bytes each, after a header and before a footer.

Same signature and semantics as ``tf.data.FixedLengthRecordDataset``. Each
file is ``header_bytes`` skipped, a body of whole records, ``footer_bytes``
skipped. An uncompressed file whose body is not a whole number of records
raises ``InvalidArgumentError`` before any record (tf.data does the same, from
the file's size); a compressed one, whose size is known only at its end, hands
out the whole records first and then raises ``DataLossError``. Both name the
file and the byte. Files are read one after another, or ``num_parallel_reads``
at a time (``file_records``); a saved position is the byte offset of the next record.
"""

from __future__ import annotations

from typing import Any

from fastinput._engine.arguments import check_int
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.errors import DataLossError, InvalidArgumentError
from fastinput.readers.file_records import FileRecordsIterator, FilesReaderDataset, OneFileDataset
from fastinput.readers.files import ReadStream

_OP = "FixedLengthRecordDataset"
_MIN_READ = 1 << 16
"""Smallest read: records may be a few bytes, and a read per record would cost a call per record."""


class FixedReader:
    """Records of ``record_bytes`` out of a stream opened at ``start`` (after the header), the footer held back."""

    def __init__(self, stream: ReadStream, record_bytes: int, header_bytes: int, footer_bytes: int, block_size: int,
                 start: int) -> None:
        self._stream = stream
        self._record = record_bytes
        self._header = header_bytes
        self._footer = footer_bytes
        self._block_size = max(block_size, _MIN_READ, record_bytes + footer_bytes)
        self._buf = b""  # bytes read, not yet handed out from _pos on
        self._pos = 0
        self._base = start  # stream offset of _buf[0]
        self._eof = False
        if stream.size is not None:  # known size (uncompressed): a body that is not whole records fails at once
            body = stream.size - header_bytes - footer_bytes
            if body < 0 or body % record_bytes:
                raise InvalidArgumentError(f"{stream.path}: {self._not_whole(stream.size)}")

    @property
    def offset(self) -> int:
        """Where the next record starts in the stream."""
        return self._base + self._pos

    def read_into(self, out: list[bytes], n: int) -> None:
        """Append up to ``n`` records to ``out``; stops early rather than read again once it has some."""
        size = self._record
        while True:
            pos = self._pos
            count = min(n, (len(self._buf) - pos - self._footer) // size)
            if count > 0:
                buf = self._buf
                stop = pos + count * size
                out.extend([buf[i:i + size] for i in range(pos, stop, size)])
                self._pos = stop
                return
            if self._eof:
                if len(self._buf) - pos != self._footer:
                    total = self.offset + len(self._buf) - pos
                    raise DataLossError(f"{self._stream.path}: {self._not_whole(total)}; the records before byte "
                                        f"{self.offset} were read", path=self._stream.path, offset=self.offset)
                return
            self._fill()

    def _fill(self) -> None:
        data = self._stream.read(self._block_size)
        if not data:
            self._eof = True
            return
        self._base += self._pos
        self._buf = self._buf[self._pos:] + data if self._pos < len(self._buf) else data
        self._pos = 0

    def _not_whole(self, size: int) -> str:
        return (f"excluding the header ({self._header} bytes) and footer ({self._footer} bytes), the file's "
                f"{size} bytes leave a body of {size - self._header - self._footer} bytes, which is not a whole "
                f"number of {self._record}-byte records")


class FixedLengthRecordFileDataset(OneFileDataset):
    """The records of a single file of fixed-length records (what ``FixedLengthRecordDataset`` interleaves)."""

    traits = StageTraits("FixedLengthRecordFile", StageKind.READ)

    def __init__(self, path: str | bytes, record_bytes: int, header_bytes: int, footer_bytes: int,
                 compression_type: str | None, buffer_size: int | None, storage_options: dict | None) -> None:
        super().__init__(path, compression_type, buffer_size, storage_options)
        self.record_bytes = record_bytes
        self.header_bytes = header_bytes
        self.footer_bytes = footer_bytes

    def start_offset(self) -> int:
        return self.header_bytes

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return FileRecordsIterator(self, ctx)

    def splitter(self, stream: ReadStream, start: int) -> FixedReader:
        return FixedReader(stream, self.record_bytes, self.header_bytes, self.footer_bytes, self.block_size, start)


class FixedLengthRecordDataset(FilesReaderDataset):
    """The records of one or more files of fixed-length records, as ``bytes`` of ``record_bytes`` each.

    ``header_bytes`` at the start and ``footer_bytes`` at the end of each file
    are skipped (None: 0). ``filenames``: a file name (str or bytes, local or
    any fsspec URL such as ``s3://`` or ``gs://``), a list of them, or a
    Dataset of them. ``buffer_size``: bytes per read (None: 1 MiB for local
    files, 16 MiB for remote ones, which also read the next request ahead). ``compression_type``: None or ``""``,
    ``"GZIP"`` or ``"ZLIB"``. ``num_parallel_reads``: None reads the files one
    after another; N reads N files at once, one record from each in turn.
    ``storage_options``: passed to fsspec for remote files.

    A file whose body is not a whole number of records raises
    ``InvalidArgumentError`` (uncompressed, before any record) or
    ``DataLossError`` (compressed, after its whole records), naming the file.

    >>> import fastinput as fi
    >>> ds = fi.FixedLengthRecordDataset("data.csv", record_bytes=4)  # CIFAR-10: record_bytes=3073
    >>> next(iter(ds))
    b'n,pr'
    """

    traits = StageTraits(_OP, StageKind.READ, parallel_argument="num_parallel_reads")
    file_dataset = FixedLengthRecordFileDataset

    def __init__(self, filenames: Any, record_bytes: int, header_bytes: int | None = None,
                 footer_bytes: int | None = None, buffer_size: int | None = None, compression_type: str | None = None,
                 num_parallel_reads: int | None = None, storage_options: dict | None = None) -> None:
        self.record_bytes = check_int(_OP, "record_bytes", record_bytes, minimum=1)
        self.header_bytes = 0 if header_bytes is None else check_int(_OP, "header_bytes", header_bytes, minimum=0)
        self.footer_bytes = 0 if footer_bytes is None else check_int(_OP, "footer_bytes", footer_bytes, minimum=0)
        super().__init__(filenames, compression_type, buffer_size, num_parallel_reads, storage_options)

    def file_args(self) -> tuple:
        return (self.record_bytes, self.header_bytes, self.footer_bytes, *super().file_args())

    def extra_args(self) -> list[str]:
        args = [f"record_bytes={self.record_bytes}"]
        if self.header_bytes:
            args.append(f"header_bytes={self.header_bytes}")
        if self.footer_bytes:
            args.append(f"footer_bytes={self.footer_bytes}")
        return args
