"""Local TFRecord files read as spans of a read buffer: a mix's inputs whose records become objects only when taken.

Mixing TFRecord sources (``sample_from_datasets([TFRecordDataset([f]).repeat() ...]).batch(n)``) made each input's
records at its pull, a read buffer's worth at a time, and freed them batches later, interleaved with the other inputs'
(issue 19): malloc's bins worked harder and every record was out of the cache when taken and when freed, so 8 sources
ran at ~0.92 of one. Where every input of the fused ``mix_and_batch`` stage is ``TFRecordDataset(files)`` over local,
uncompressed files, optionally repeated, the static rewrite reads each input here instead (``RecordSpansDataset``):
its reader fills a buffer of its own from the file, checks both CRCs of the whole records in it (C,
``_records.split_spans``, the GIL released) and notes their data as (start, length) spans; the mix makes each record's
``bytes`` only as it lays out a batch, in the order of the choices, straight into the batch's array
(``_mixing.take_spans``). A batch's records are then made and freed together, as one source's are.

The elements, errors and states are the replaced input's, ``TFRecordDataset(files).repeat(count)``'s:

- the files are read one after another, each record once per epoch; ``repeat``'s epochs and its rule for ending
  ``repeat()`` (``fastinput.ops.repeat.EpochTally``) are kept;
- a damaged record (either CRC wrong, the data ending inside it) is a ``DataLossError`` in its place, after the good
  records before it, made by ``framing.RecordReader`` reading the file from there (so its message is that reader's);
  a file that cannot be opened raises what ``open_read`` raises; either ends the file, and the next one follows;
- the state (``get_state``) is the one the replaced stages save, taken where the first record not yet taken starts
  (``repeat`` > ``TFRecordDataset`` > the file's byte offset), so that a checkpoint restores with the rewrite on or
  off, and ``set_state`` takes any state of those stages.

``buffer_size`` is not used: the buffer is ``SPAN_BUFFER`` bytes (grown for a longer record), which changes no
element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fastinput import errors
from fastinput._engine.checkpoint import check_stage, decode_value, stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops.interleave import check_cycle, cycle_state, slot_state
from fastinput.ops.repeat import EpochTally, RepeatDataset
from fastinput.readers.file_records import RECORD_SPEC
from fastinput.readers.files import LOCAL_BLOCK_SIZE, ReadStream, is_remote, open_read
from fastinput.readers.framing import HEADER_SIZE, RecordReader
from fastinput.readers.tfrecord import TFRecordDataset

try:
    from fastinput.ops import _mixing
    from fastinput.readers import _records

    take_spans = _mixing.take_spans
except ImportError:  # not built: no input is read as spans (the mix reads its inputs as they are)
    _mixing = _records = take_spans = None

SPAN_BUFFER = 512 << 10
"""Bytes of each input's read buffer (a read of a local file, and the records walked at once). In the pipeline
(8 files of ~1 KB records, batches of 1,024, main thread's CPU per batch, 1,000 batches, rounds alternated in one
process, load 5-7; medians against one source's in the same rounds): 1 MiB 340, 328, 336; 512 KiB 310, 308, 325;
256 KiB 306, 322 (one source 311, 315, 329). Standalone (commit 52970ca): 256 and 512 KiB 306 and 303 against 317
for 1 MiB; 2 MiB 432 (16 MiB of buffers leave the L3)."""

MAX_SPANS = 4096
"""Records noted per walk of the buffer (its spans array: 64 KiB); a buffer of more, smaller records is walked again
from where the last walk stopped once those are taken."""


def spans_source(node: Dataset) -> RecordSpansDataset | None:
    """``node`` as an input read as spans, if it is ``TFRecordDataset(files)`` (local, uncompressed, read one file
    after another, names given as a list), optionally followed by ``repeat(count)``; else None."""
    if take_spans is None:
        return None
    count = None
    reader = node
    if type(reader) is RepeatDataset:
        count, reader = reader.count, reader.inputs[0]
    if (type(reader) is not TFRecordDataset or reader.compression_type is not None
            or reader.num_parallel_reads is not None or reader.file_names is None
            or reader.inputs[0] is not reader.file_names_dataset or any(map(is_remote, reader.file_names))):
        return None
    return RecordSpansDataset(node, reader, count)


class RecordSpansDataset(Dataset):
    """``TFRecordDataset(files)[.repeat(count)]`` (``replaced``) read as spans (see the module's docstring)."""

    traits = StageTraits("TFRecordDataset", StageKind.READ)
    """An instance takes the traits of the stage it replaces (``repeat``'s, where the reader is repeated)."""

    def __init__(self, replaced: Dataset, reader: TFRecordDataset, count: int | None) -> None:
        super().__init__()
        self.replaced = replaced
        self.reader = reader
        self.paths = list(reader.file_names)
        self.count = count
        """``repeat``'s count (-1: forever), or None where the reader is not repeated."""
        self.traits = replaced.traits

    def compute_element_spec(self) -> Any:
        return RECORD_SPEC

    def cardinality(self) -> int:
        return self.replaced.cardinality()

    def __str__(self) -> str:
        stages = [self.reader] if self.replaced is self.reader else [self.reader, self.replaced]
        return f"{' -> '.join(map(str, stages))} [read as spans]"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return RecordSpansIterator(self, ctx)


class RecordSpansIterator(DatasetIterator):
    """The records of ``RecordSpansDataset``'s files as spans of one buffer, the first ``cursors[index]`` to
    ``ends[index]`` not taken yet (the mix's arrays, ``bind``; its own until bound). ``refill`` walks on once they
    are all taken. Standalone (``get_next_chunk``) it hands out ``bytes``, as the replaced stages do."""

    def __init__(self, dataset: RecordSpansDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._ds = dataset
        self._names = [path.encode("utf-8") for path in dataset.paths]
        self.buffer = np.empty(SPAN_BUFFER, dtype=np.uint8)
        self.spans = np.zeros((MAX_SPANS, 2), dtype=np.int64)
        self._cursors, self._ends, self._index = np.zeros(1, np.int64), np.zeros(1, np.int64), 0
        self._epoch = 0
        self._tally = EpochTally()
        self._repeat_ended = False  # repeat()'s rule ended it (its state's "ended")
        self._done = dataset.count == 0  # no record follows (the last epoch, or the files, ended)
        self._file = 0  # the file in the reader's slot, or the next one to open
        self._in_slot = False
        self._stream: ReadStream | None = None
        self._base = 0  # offset in the file of buffer[0] (where the file opens, if it is not open)
        self._have = 0  # bytes read into the buffer
        self._pos = 0  # where the walk stands in the buffer: the next record not yet noted as a span
        self._failure: Exception | None = None  # raised where the walk stands, the spans before it taken first

    def bind(self, cursors: np.ndarray, ends: np.ndarray, index: int) -> None:
        """Keep the cursor and end of the spans held in ``cursors[index]`` and ``ends[index]`` (a mix's arrays,
        which ``_mixing.take_spans`` moves); what is held now moves there."""
        cursors[index], ends[index] = self._cursors[self._index], self._ends[self._index]
        self._cursors, self._ends, self._index = cursors, ends, index

    # -- producing ---------------------------------------------------------------------------------------------
    def produce_chunk(self, n: int) -> list[Any]:
        if self._cursors[self._index] == self._ends[self._index] and not self.refill():
            failure = self.take_failure()
            if failure is None:
                raise StopIteration
            raise failure
        out = np.empty(n, dtype=object)
        taken = take_spans(np.zeros(n, dtype=np.int64), [self.buffer], [self.spans],
                                   self._ends[self._index:self._index + 1],
                                   self._cursors[self._index:self._index + 1], out)
        return out[:taken].tolist()

    def refill(self) -> bool:
        """The spans held are all taken: walk on to the next records (reading the file on, opening the next file or
        epoch) until some are held (True), or the end or an error comes (False; ``take_failure`` has the error)."""
        self.raise_if_cancelled()
        index = self._index
        self._tally.elements(int(self._ends[index]))
        self._cursors[index] = self._ends[index] = 0
        while self._failure is None and not self._done:
            if not self._in_slot:
                self._next_file()
                continue
            found = self._walk()
            if found:
                self._ends[index] = found
                return True
        return False

    def take_failure(self) -> Exception | None:
        """The error where the walk stands (None at the end): handed out, it ends its file, as a damaged file
        ends the replaced reader's."""
        failure, self._failure = self._failure, None
        if failure is not None:
            self._tally.error()
            self._close_file()
        return failure

    def _next_file(self) -> None:
        """Put the next file in the slot (not opened yet), past an epoch's end where the files have run out."""
        if self._file == len(self._names):
            count = self._ds.count
            if count is None:
                self._done = True
                return
            self._epoch += 1
            self._repeat_ended = self._tally.end_epoch(forever=count == -1)
            if self._repeat_ended or self._epoch == count:
                self._done = True
                return
            self._file = 0
        self._in_slot, self._base, self._have, self._pos = True, 0, 0, 0
        self._stream = None

    def _walk(self) -> int:
        """Note the next whole records of the file in the slot as spans (their count); 0 where the file ended (the
        slot emptied) or is damaged there (``_failure``)."""
        while True:
            if self._stream is None:
                try:
                    self._open()
                except Exception as exc:  # as the replaced reader raises it, in the place of its first record
                    self._failure = exc
                    return 0
            found, pos, status, need = _records.split_spans(self.buffer[:self._have], self._pos, self.spans)
            self._pos = pos
            if found:
                return found
            if status in (_records.BAD_LENGTH_CRC, _records.BAD_DATA_CRC):
                self._failure = self._damage()
                return 0
            if self._base + pos == self._stream.size:  # the clean end of the file
                self._close_file()
                return 0
            if self._base + pos + need > self._stream.size:  # the file ends inside the record
                self._failure = self._damage()
                return 0
            self._read(need)

    def _open(self) -> None:
        self._stream = self._open_at(self._base)
        self._have, self._pos = 0, 0

    def _open_at(self, offset: int) -> ReadStream:
        """The file in the slot, opened at byte ``offset`` as the replaced reader opens it."""
        return open_read(self._ds.paths[self._file], compression_type=None, block_size=LOCAL_BLOCK_SIZE,
                         storage_options=self._ds.reader.storage_options, remote_options=self.ctx.options.remote,
                         cancelled=self.cancelled, offset=offset)

    def _read(self, need: int) -> None:
        """Read on until ``need`` bytes from the walk's position are in the buffer (the caller checked that the file
        holds them), its unwalked tail moved to the front first; a longer record grows the buffer (kept)."""
        tail = self._have - self._pos
        buffer = self.buffer if need <= len(self.buffer) else np.empty(need, dtype=np.uint8)
        buffer[:tail] = self.buffer[self._pos:self._have]
        self.buffer = buffer
        self._base += self._pos
        self._have, self._pos = tail, 0
        view = memoryview(buffer)
        while self._have < need:
            count = self._stream.readinto(view[self._have:])
            if not count:  # the file shrank since its size was taken: the walk reports the damage where it shows
                break
            self._have += count

    def _damage(self) -> Exception:
        """The ``DataLossError`` that ``framing.RecordReader`` raises for the record where the walk stands."""
        offset = self._base + self._pos
        stream = self._open_at(offset)
        try:
            RecordReader(stream, LOCAL_BLOCK_SIZE, False, start=offset).read_into([], 1)
        except errors.DataLossError as exc:
            return exc
        finally:
            stream.close()
        return errors.DataLossError(f"{self._ds.paths[self._file]}: the record at offset {offset} changed while "
                                    "it was read", path=self._ds.paths[self._file], offset=offset)

    def _close_file(self) -> None:
        self.join_self()
        self._in_slot = False
        self._file += 1

    def join_self(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    # -- saving and restoring: the replaced stages' states ----------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The replaced stages' state where the first record not taken starts."""
        cursor, end = int(self._cursors[self._index]), int(self._ends[self._index])
        if self._ds.count is None:
            return self._reader_state(cursor, end)
        tally = self._tally.counts()
        tally[0] += cursor
        tally[1] += cursor
        own = {"epoch": self._epoch, "ended": self._repeat_ended, "tally": tally}
        if self._done:
            return stage_state("repeat", own, [])
        return stage_state("repeat", own, [self._reader_state(cursor, end)])

    def _reader_state(self, cursor: int, end: int) -> dict[str, Any]:
        slot = None
        position = self._file
        if self._in_slot:
            offset = self._base + (int(self.spans[cursor, 0]) - HEADER_SIZE if cursor < end else self._pos)
            file = {"stage": "TFRecordFile", "offset": offset, "done": False, "inputs": []}
            slot, position = slot_state(self._names[self._file], file), self._file + 1
        from_names = stage_state("from_tensor_slices", {"position": position}, [])
        return stage_state(self._ds.reader.traits.op, cycle_state([slot], 0, 0, 1), [from_names])

    def set_state(self, state: dict[str, Any]) -> None:
        """Take up a state of the replaced stages (``get_state``'s, or theirs); the records of a chunk the
        replaced interleave had part-delivered are dropped again."""
        count = self._ds.count
        if count is not None:
            check_stage(state, "repeat", self.name)
            self._epoch, self._repeat_ended = state["epoch"], state["ended"]
            self._tally.restore(state["tally"])
            self._done = self._repeat_ended or self._epoch == count
            if not state["inputs"]:  # saved between two epochs (or after the last): the next one starts afresh
                self._file, self._in_slot = 0, False
                return
            state = state["inputs"][0]
        check_stage(state, self._ds.reader.traits.op, self.name, 1)
        slot = check_cycle(state, 1, self.name)[0]
        self._file, self._in_slot = state["inputs"][0]["position"], False
        if slot is not None:
            file = slot["state"]
            if decode_value(slot["element"]) != self._names[self._file - 1]:
                raise errors.InvalidArgumentError(f"set_state: {self.name}: the saved state reads another file")
            if not file["done"]:
                self._file -= 1
                self._in_slot, self._base, self._have, self._pos = True, file["offset"], 0, 0
            self._skip(slot.get("skip", 0))

    def _skip(self, count: int) -> None:
        """Drop the next ``count`` records (an error counting as one), as a restored interleave does."""
        while count > 0:
            try:
                count -= len(self.produce_chunk(count))
            except StopIteration:
                return
            except Exception:
                count -= 1
