"""``fi.TFRecordDataset``: the records of TFRecord files, local or remote, as ``bytes`` elements.

Same signature and semantics as ``tf.data.TFRecordDataset``: files are read
one after another (``num_parallel_reads=None``), or ``num_parallel_reads`` at a
time by a parallel interleave (cycle_length=N, block_length=1, deterministic
order unless the pipeline's options say otherwise), which gives exactly
tf.data's order. ``TFRecordDataset`` is a stage of its own that runs an
interleave over its files (``FileOpener`` opens each), so it shows as
``TFRecordDataset(...)`` in stats, errors and traces. Each file is read in large blocks and split by
``framing.RecordReader``; both CRCs of every record are checked.
"""

from __future__ import annotations

import itertools
from typing import Any

from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.positions import Position, Positioned
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.readers.file_records import FileRecordsIterator, FilesReaderDataset, OneFileDataset
from fastinput.readers.files import ReadStream, filesystem
from fastinput.readers.framing import FOOTER_SIZE, HEADER_SIZE, RecordReader, read_record_at

_FRAMING = HEADER_SIZE + FOOTER_SIZE
"""Bytes of framing around each record's data: the next record starts that much after this one's data ends."""


class TFRecordFileDataset(OneFileDataset):
    """The records of a single TFRecord file (what ``TFRecordDataset`` interleaves)."""

    traits = StageTraits("TFRecordFile", StageKind.READ)

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _TFRecordFileIterator(self, ctx)

    def splitter(self, stream: ReadStream, start: int) -> RecordReader:
        return RecordReader(stream, max(self.block_size, 1), self.compression_type is not None, start=start)


class _TFRecordFileIterator(FileRecordsIterator, Positioned):
    """A TFRecord file's records (``FileRecordsIterator``), Positioned where the file is uncompressed: a record's
    position is its byte offset."""

    def __init__(self, dataset: TFRecordFileDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._positions: list[Position | None] | None = None  # of the last chunk, when tracked

    def note_chunk(self, offset: int, records: list[bytes]) -> None:
        if self._positions is not None:
            ends = itertools.accumulate((len(record) + _FRAMING for record in records), initial=offset)
            self._positions = [(start,) for start in itertools.islice(ends, len(records))]

    def track_positions(self) -> bool:
        if self._ds.compression_type is None and self._positions is None:
            self._positions = []
        return self._positions is not None

    def take_positions(self) -> list[Position | None]:
        return self._positions or []

    def reread(self, positions: list[Position]) -> list[Any]:
        ds = self._ds
        fs, fs_path = filesystem(ds.path, ds.storage_options)
        records: dict[int, bytes] = {}
        with fs.open(fs_path, "rb") as file:
            for offset in sorted({offset for (offset,) in positions}):  # front to back: reads ahead help
                records[offset] = read_record_at(file, offset, ds.path)
        return [records[offset] for (offset,) in positions]


class TFRecordDataset(FilesReaderDataset):
    """The records of one or more TFRecord files, as ``bytes``.

    ``filenames``: a file name (str or bytes, local or any fsspec URL such as
    ``s3://`` or ``gs://``), a list of them, or a Dataset of them.
    ``compression_type``: None or ``""`` (none), ``"GZIP"`` or ``"ZLIB"``.
    ``buffer_size``: bytes per read (None: 1 MiB for local files, 16 MiB for
    remote ones, which also read the next request ahead; 0: only what each record needs). ``num_parallel_reads``: None
    reads the files one after another; N reads N files at once on worker
    threads, interleaving their records one at a time; ``fi.AUTOTUNE`` reads as
    many as tf.data would (a third of the cores, rounded up) with tuned
    parallelism. ``storage_options``: passed to fsspec for remote files
    (``{"client_kwargs": {"endpoint_url": ...}}`` for s3fs, say).

    Corrupt or truncated files raise ``fi.errors.DataLossError`` naming the file
    and byte offset, after every good record before the damage.

    >>> import fastinput as fi
    >>> ds = fi.TFRecordDataset(["a.tfrecord", "b.tfrecord"], num_parallel_reads=2)
    >>> first = next(iter(ds))
    """

    traits = StageTraits("TFRecordDataset", StageKind.READ, parallel_argument="num_parallel_reads")

    def __init__(self, filenames: Any, compression_type: str | None = None, buffer_size: int | None = None,
                 num_parallel_reads: int | None = None, storage_options: dict | None = None) -> None:
        super().__init__(filenames, compression_type, buffer_size, num_parallel_reads, storage_options)

    file_dataset = TFRecordFileDataset
