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
from collections.abc import Callable
from typing import Any

from fastinput._engine.arguments import check_buffer_bytes, check_parallelism, fn_name, format_arg
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.positions import Position, Positioned
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.interleave import InterleaveDataset
from fastinput.readers.files import (
    LOCAL_BLOCK_SIZE,
    REMOTE_BLOCK_SIZE,
    ReadStream,
    as_path,
    check_compression_type,
    file_name_list,
    filesystem,
    is_remote,
    open_read,
)
from fastinput.readers.framing import FOOTER_SIZE, HEADER_SIZE, RecordReader, read_record_at
from fastinput.spec import STRING, TensorSpec

_OP = "TFRecordDataset"
_FRAMING = HEADER_SIZE + FOOTER_SIZE
"""Bytes of framing around each record's data: the next record starts that much after this one's data ends."""


RECORD_SPEC = TensorSpec((), STRING)
"""Every record is one scalar string."""


class TFRecordDataset(Dataset):
    """The records of one or more TFRecord files, as ``bytes``.

    ``filenames``: a file name (str or bytes, local or any fsspec URL such as
    ``s3://`` or ``gs://``), a list of them, or a Dataset of them.
    ``compression_type``: None or ``""`` (none), ``"GZIP"`` or ``"ZLIB"``.
    ``buffer_size``: bytes per read (None: 1 MiB for local files, 16 MiB for
    remote ones; 0: only what each record needs). ``num_parallel_reads``: None
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
        self.compression_type = check_compression_type(_OP, compression_type)
        self.buffer_size = None if buffer_size is None else check_buffer_bytes(_OP, "buffer_size", buffer_size)
        self.num_parallel_reads = check_parallelism(_OP, "num_parallel_reads", num_parallel_reads)
        if storage_options is not None and not isinstance(storage_options, dict):
            raise InvalidArgumentError(
                f"{_OP}: storage_options must be a dict or None, got {type(storage_options).__name__}")
        files, self._files_label = _filenames_dataset(filenames)
        super().__init__([files])
        self._open_file = FileOpener(TFRecordFileDataset, (self.compression_type, self.buffer_size, storage_options))

    def compute_element_spec(self) -> Any:
        return RECORD_SPEC

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return self._reader().make_iterator_as(self, ctx)

    def _reader(self) -> InterleaveDataset:
        """The interleave over this stage's input (made now: a rewrite may have replaced the input) that reads it:
        one file after another, or ``num_parallel_reads`` at once (AUTOTUNE: tf.data's cycle rule)."""
        parallel = self.num_parallel_reads
        cycle_length = 1 if parallel is None else parallel
        return InterleaveDataset(self.inputs[0], self._open_file, cycle_length, 1, parallel, None, label=_OP)

    def __str__(self) -> str:
        args = [self._files_label]
        if self.compression_type:
            args.append(f"compression_type={self.compression_type!r}")
        if self.buffer_size is not None:
            args.append(f"buffer_size={self.buffer_size}")
        if self.num_parallel_reads is not None:
            args.append(f"num_parallel_reads={format_arg(self.num_parallel_reads)}")
        return f"{_OP}({', '.join(args)})"


def _filenames_dataset(filenames: Any) -> tuple[Dataset, str]:
    """The file names as a Dataset of bytes, and how they read in the stage string."""
    if isinstance(filenames, Dataset):
        return filenames, str(filenames)
    accepted = "a file name, a list of file names or a Dataset of them"
    names = [path.encode("utf-8") for path in file_name_list(_OP, filenames, accepted)]
    label = repr(names[0].decode()) if len(names) == 1 else f"<{len(names)} files>"
    return Dataset.from_tensor_slices(names), label


class FileOpener:
    """An interleave's function over file names: ``reader(filename, *reader_args)``, the dataset of one file.

    Named after ``reader``, so the interleave reads ``interleave(<reader>, ...)``.
    """

    def __init__(self, reader: Callable[..., Dataset], reader_args: tuple) -> None:
        self._reader = reader
        self._args = reader_args
        self.__name__ = fn_name(reader)

    def __call__(self, filename: Any) -> Dataset:
        return self._reader(filename, *self._args)


class TFRecordFileDataset(Dataset):
    """The records of a single TFRecord file (what ``TFRecordDataset`` interleaves)."""

    traits = StageTraits("TFRecordFile", StageKind.READ)

    def __init__(self, path: str | bytes, compression_type: str | None, buffer_size: int | None,
                 storage_options: dict | None) -> None:
        super().__init__()
        self.path = as_path(path)
        self.compression_type = compression_type
        default = REMOTE_BLOCK_SIZE if is_remote(self.path) else LOCAL_BLOCK_SIZE
        self.block_size = default if buffer_size is None else buffer_size
        self.storage_options = storage_options

    def compute_element_spec(self) -> Any:
        return RECORD_SPEC

    def __str__(self) -> str:
        compression = f", compression_type={self.compression_type!r}" if self.compression_type else ""
        return f"TFRecordFile({self.path!r}{compression})"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _TFRecordFileIterator(self, ctx)


class _TFRecordFileIterator(DatasetIterator, Positioned):
    """Opens the file at the first request, hands out records in chunks, and closes it at the end or on error.

    Its state is the byte offset of the next record (of the decompressed data for a compressed file) and
    whether the file has ended; a restored iterator opens the file there.

    Positioned (uncompressed files): a record's position is its byte offset.
    """

    def __init__(self, dataset: TFRecordFileDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset
        self._stream: ReadStream | None = None
        self._reader: RecordReader | None = None
        self._done = False
        self._positions: list[Position | None] | None = None  # of the last chunk, when tracked
        self._offset = 0  # of the next record not handed out (the damaged one after an error)

    def produce_chunk(self, n: int) -> list[Any]:
        if self._done:
            raise StopIteration
        self.raise_if_cancelled()
        out: list[bytes] = []
        start = 0
        try:
            if self._reader is None:
                self._open()
            reader = self._reader  # closing the pipeline may drop it meanwhile (``_finish``)
            start = reader.offset  # read after opening: a restored reader may start inside the file
            try:
                reader.read_into(out, n)
            finally:
                self._offset = reader.offset
        except Exception as exc:
            self._finish()
            if not out:
                raise
            self._pending = exc  # the good records before the damage first, the error on the next call
            self._note_positions(start, out)
            return out
        self._note_positions(start, out)
        if not out:
            self._finish()
            raise StopIteration
        return out

    def _note_positions(self, offset: int, records: list[bytes]) -> None:
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

    def _open(self) -> None:
        ds = self._ds
        self._stream = open_read(ds.path, compression_type=ds.compression_type, block_size=ds.block_size,
                                 storage_options=ds.storage_options, remote_options=self.ctx.options.remote,
                                 cancelled=self.cancelled, offset=self._offset)
        self._reader = RecordReader(self._stream, max(ds.block_size, 1), ds.compression_type is not None,
                                    start=self._offset)

    def _finish(self) -> None:
        """After the end or an error the file yields nothing more."""
        self._done = True
        self._reader = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def own_state(self) -> dict[str, Any]:
        # With an error pending (the records before the damage handed out) the file has not ended for the
        # consumer: the state points at the damaged record, so a restore meets the error again.
        return {"offset": self._offset, "done": self._done and self._pending is None}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._offset = state["offset"]
        self._done = state["done"]

    def join_self(self) -> None:
        self._finish()
