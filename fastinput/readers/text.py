"""``fi.TextLineDataset``: the lines of text files, local or remote, as ``bytes`` elements.

Same signature and semantics as ``tf.data.TextLineDataset``: a line ends at
``\\n``, which is not part of it; every ``\\r`` in a line is dropped (so CRLF
files read like LF files, as TensorFlow's line reader does); a last line
without a newline is a line; an empty file has none. Files are read one after
another, or ``num_parallel_reads`` at a time, one line from each in turn
(``file_records``). A saved position is the byte offset of the next line.
"""

from __future__ import annotations

from typing import Any

from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.readers.file_records import FileRecordsIterator, FilesReaderDataset, OneFileDataset
from fastinput.readers.files import ReadStream

_MIN_READ = 1 << 16
"""Smallest read: lines are short, and a read per line would cost a call per line."""


class LineReader:
    """The lines of a stream, read ``block_size`` bytes at a time and split with one ``bytes.split`` per read."""

    def __init__(self, stream: ReadStream, block_size: int, start: int) -> None:
        self._stream = stream
        self._block_size = max(block_size, _MIN_READ)
        self._lines: list[bytes] = []  # lines read and not yet handed out (from _next on), as in the file
        self._next = 0
        self._has_cr = False  # whether those lines hold a "\r" to drop
        self._last_unterminated = False  # the last of them is the file's last line, with no "\n" after it
        self._tail: list[bytes] = []  # the start of a line whose end has not been read yet, in the reads it came in
        self._eof = False
        self._offset = start

    @property
    def offset(self) -> int:
        """Where the next line starts in the stream."""
        return self._offset

    def read_into(self, out: list[bytes], n: int) -> None:
        """Append up to ``n`` lines to ``out``; stops early rather than read again once it has some."""
        while self._next == len(self._lines):
            if self._eof:
                return
            self._read()
        taken = self._lines[self._next:self._next + n]
        self._next += len(taken)
        ended = self._last_unterminated and self._next == len(self._lines)
        self._offset += sum(map(len, taken)) + len(taken) - ended
        out.extend([line.replace(b"\r", b"") for line in taken] if self._has_cr else taken)

    def _read(self) -> None:
        """Read the next block and split off the lines it completes (a long line's reads are joined once)."""
        data = self._stream.read(self._block_size)
        if not data:
            self._eof = True
            tail = b"".join(self._tail)
            self._lines, self._next = ([tail], 0) if tail else ([], 0)
            self._last_unterminated = bool(tail)
            self._has_cr = b"\r" in tail
            return
        if b"\n" not in data:
            self._tail.append(data)
            return
        tail = b"".join(self._tail)
        lines = (tail + data).split(b"\n") if tail else data.split(b"\n")
        self._tail = [lines.pop()]
        self._lines, self._next = lines, 0
        self._has_cr = b"\r" in data or b"\r" in tail


class TextLineFileDataset(OneFileDataset):
    """The lines of a single text file (what ``TextLineDataset`` interleaves)."""

    traits = StageTraits("TextLineFile", StageKind.READ)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return FileRecordsIterator(self, ctx)

    def splitter(self, stream: ReadStream, start: int) -> LineReader:
        return LineReader(stream, self.block_size, start)


class TextLineDataset(FilesReaderDataset):
    """The lines of one or more text files, as ``bytes`` without their line endings.

    ``filenames``: a file name (str or bytes, local or any fsspec URL such as
    ``s3://`` or ``gs://``), a list of them, or a Dataset of them.
    ``compression_type``: None or ``""`` (none), ``"GZIP"`` or ``"ZLIB"``.
    ``buffer_size``: bytes per read (None: 1 MiB for local files, 16 MiB for
    remote ones, which also read the next request ahead). ``num_parallel_reads``: None reads the files one after
    another; N reads N files at once, one line from each in turn;
    ``fi.AUTOTUNE`` as many as tf.data would. ``storage_options``: passed to
    fsspec for remote files. A line ends at ``\\n``; ``\\r`` characters are
    dropped, as tf.data drops them.

    A damaged compressed file raises ``fi.errors.DataLossError`` naming the file
    and byte, after the lines before the damage; a missing file ``NotFoundError``.

    >>> import fastinput as fi
    >>> ds = fi.TextLineDataset(["data.csv"], num_parallel_reads=2)
    >>> next(iter(ds))
    b'n,price,name'
    """

    traits = StageTraits("TextLineDataset", StageKind.READ, parallel_argument="num_parallel_reads")
    file_dataset = TextLineFileDataset

    def __init__(self, filenames: Any, compression_type: str | None = None, buffer_size: int | None = None,
                 num_parallel_reads: int | None = None, storage_options: dict | None = None) -> None:
        super().__init__(filenames, compression_type, buffer_size, num_parallel_reads, storage_options)
