"""What the readers of record files share: ``TFRecordDataset``, ``TextLineDataset``, ``FixedLengthRecordDataset``.

Each is a stage of its own over a Dataset of file names that runs an interleave
over them (``FileOpener`` opens each file as a one-file dataset): files one
after another (``num_parallel_reads=None``), or ``num_parallel_reads`` at a time
on worker threads, one record from each in turn, which is tf.data's order. So
the three take the same file arguments (names, lists, Datasets of names, fsspec
URLs), compression, buffer sizes and ``storage_options``, and show as
themselves (``TextLineDataset('a.txt')``) in stats, errors and traces.

A one-file iterator (``FileRecordsIterator``) opens its file at the first
request, has a ``Splitter`` cut the stream into records, hands out records in
chunks and closes the file at its end or at an error; its state is the byte
offset of the next record (of the decompressed data for a compressed file),
where a restored iterator opens the file again.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Protocol

from fastinput._engine.arguments import check_buffer_bytes, check_parallelism, fn_name, format_arg
from fastinput._engine.iterator import DatasetIterator, IteratorContext
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
    is_remote,
    open_read,
)
from fastinput.spec import STRING, TensorSpec

RECORD_SPEC = TensorSpec((), STRING)
"""Every record is one scalar string."""

_READERS: weakref.WeakKeyDictionary[FilesReaderDataset, tuple[Dataset, InterleaveDataset]] = \
    weakref.WeakKeyDictionary()
"""Each reader stage's interleave (``FilesReaderDataset._reader``), with the input it was made over."""


class FilesReaderDataset(Dataset):
    """The base of a reader over files: checks the shared arguments and reads the files with an interleave.

    A subclass sets ``traits`` (whose ``op`` names the reader) and ``file_dataset``, the one-file Dataset class,
    called as ``file_dataset(filename, *self.file_args())``.
    """

    traits = StageTraits("FilesReader", StageKind.READ, parallel_argument="num_parallel_reads")  # subclasses: their own
    file_dataset: Callable[..., Dataset]

    def __init__(self, filenames: Any, compression_type: str | None, buffer_size: int | None,
                 num_parallel_reads: int | None, storage_options: dict | None) -> None:
        op = self.traits.op
        self.compression_type = check_compression_type(op, compression_type)
        self.buffer_size = None if buffer_size is None else check_buffer_bytes(op, "buffer_size", buffer_size)
        self.num_parallel_reads = check_parallelism(op, "num_parallel_reads", num_parallel_reads)
        if storage_options is not None and not isinstance(storage_options, dict):
            raise InvalidArgumentError(
                f"{op}: storage_options must be a dict or None, got {type(storage_options).__name__}")
        self.storage_options = storage_options
        files, self._files_label, self.file_names = _filenames_dataset(op, filenames)
        self.file_names_dataset = files
        """The Dataset of names this stage made from ``file_names`` (the names, where given as such: a rewrite may
        read those files itself, ``fastinput.readers.record_spans``, while this is still the stage's input)."""
        super().__init__([files])

    def file_args(self) -> tuple:
        """The arguments after the file name that ``file_dataset`` takes."""
        return (self.compression_type, self.buffer_size, self.storage_options)

    def extra_args(self) -> list[str]:
        """The reader's own arguments as its string shows them (after the files, before the shared ones)."""
        return []

    def compute_element_spec(self) -> Any:
        return RECORD_SPEC

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return self._reader().make_iterator_as(self, ctx)

    def _reader(self) -> InterleaveDataset:
        """The interleave over this stage's input that reads it: one file after another, or ``num_parallel_reads``
        at once (AUTOTUNE: tf.data's cycle rule). Made at the first iterator over the input the stage has then (a
        rewrite may have replaced it), and kept: a ``repeat`` over the reader makes an iterator per epoch, and
        mixing sources of one file each (``sample_from_datasets``) opened one per 4 batches of 1,024 1 KB records,
        a third of each opening's cost in making this node. Kept apart from the stage's attributes, which describe
        the pipeline (``snapshot``'s fingerprint digests them)."""
        made = _READERS.get(self)
        if made is None or made[0] is not self.inputs[0]:
            parallel = self.num_parallel_reads
            cycle_length = 1 if parallel is None else parallel
            opener = FileOpener(self.file_dataset, self.file_args())
            made = _READERS[self] = self.inputs[0], InterleaveDataset(self.inputs[0], opener, cycle_length, 1,
                                                                      parallel, None, label=self.traits.op)
        return made[1]

    def __str__(self) -> str:
        args = [self._files_label, *self.extra_args()]
        if self.compression_type:
            args.append(f"compression_type={self.compression_type!r}")
        if self.buffer_size is not None:
            args.append(f"buffer_size={self.buffer_size}")
        if self.num_parallel_reads is not None:
            args.append(f"num_parallel_reads={format_arg(self.num_parallel_reads)}")
        return f"{self.traits.op}({', '.join(args)})"


def _filenames_dataset(op: str, filenames: Any) -> tuple[Dataset, str, list[str] | None]:
    """The file names as a Dataset of bytes, how they read in the stage string, and the names (None where they are
    given as a Dataset)."""
    if isinstance(filenames, Dataset):
        return filenames, str(filenames), None
    accepted = "a file name, a list of file names or a Dataset of them"
    paths = file_name_list(op, filenames, accepted)
    names = [path.encode("utf-8") for path in paths]
    label = repr(paths[0]) if len(paths) == 1 else f"<{len(paths)} files>"
    return Dataset.from_tensor_slices(names), label, paths


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


class OneFileDataset(Dataset):
    """The records of a single file (what a ``FilesReaderDataset`` interleaves); a subclass says how to split."""

    traits = StageTraits("OneFile", StageKind.READ)  # subclasses declare their own

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
        return f"{self.traits.op}({self.path!r}{compression})"

    def start_offset(self) -> int:
        """Where the first record starts in the (decompressed) data."""
        return 0

    def splitter(self, stream: ReadStream, start: int) -> Splitter:
        """What cuts ``stream``, opened at byte ``start``, into records."""
        raise NotImplementedError


class Splitter(Protocol):
    """Cuts a stream into records (``framing.RecordReader``, ``text.LineReader``, ``fixed_length.FixedReader``)."""

    @property
    def offset(self) -> int:
        """Where the next record starts in the stream (the damaged one, after an error)."""

    def read_into(self, out: list[bytes], n: int) -> None:
        """Append up to ``n`` records to ``out`` (none at the end); on damage raise after the good ones before it."""


class FileRecordsIterator(DatasetIterator):
    """Opens the file at the first request, hands out records in chunks, and closes it at the end or on error.

    Its state is the byte offset of the next record (of the decompressed data for a compressed file) and
    whether the file has ended; a restored iterator opens the file there.
    """

    replays_pending_error = True  # own_state stands before a kept error

    def __init__(self, dataset: OneFileDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset
        self._stream: ReadStream | None = None
        self._splitter: Splitter | None = None
        self._done = False
        self._offset = dataset.start_offset()  # of the next record not handed out (the damaged one after an error)

    def produce_chunk(self, n: int) -> list[Any]:
        if self._done:
            raise StopIteration
        self.raise_if_cancelled()
        out: list[bytes] = []
        start = self._offset
        try:
            if self._splitter is None:
                self._open()
            splitter = self._splitter  # closing the pipeline may drop it meanwhile (``_finish``)
            try:
                splitter.read_into(out, n)
            finally:
                self._offset = splitter.offset
        except Exception as exc:
            self._finish()
            if not out:
                raise
            self._pending = exc  # the good records before the damage first, the error on the next call
            self.note_chunk(start, out)
            return out
        self.note_chunk(start, out)
        if not out:
            self._finish()
            raise StopIteration
        return out

    def note_chunk(self, offset: int, records: list[bytes]) -> None:
        """Called with each chunk handed out and the offset it started at (for a subclass that tracks positions)."""

    def _open(self) -> None:
        ds = self._ds
        self._stream = open_read(ds.path, compression_type=ds.compression_type, block_size=ds.block_size,
                                 storage_options=ds.storage_options, remote_options=self.ctx.options.remote,
                                 cancelled=self.cancelled, offset=self._offset)
        self._splitter = ds.splitter(self._stream, self._offset)

    def _finish(self) -> None:
        """After the end or an error the file yields nothing more."""
        self._done = True
        self._splitter = None
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
