"""``ds.cache(filename="")``: record the elements of the first complete iteration and replay them.

In memory (``""``) the elements are kept in a list shared by every iterator
of this dataset. In a file, chunks of elements are pickled (protocol 5, so
numpy buffers are written as raw bytes) to ``filename + ".fastinput-cache"``:
written under a temporary name and renamed only when an iteration completes,
so a partial iteration never leaves a partial cache, and a complete cache
file is reused by later iterations and later runs, as tf.data's is. The file
ends with a marker holding the element count, so a file cut short anywhere,
even between two chunks, is reported as data loss, never replayed short.
"""

from __future__ import annotations

import itertools
import os
import pickle
import threading
from typing import IO, Any

from fastinput import errors
from fastinput._engine.checkpoint import check_stage, stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.resume import drop_units
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import DataLossError, InvalidArgumentError, NotFoundError

CACHE_SUFFIX = ".fastinput-cache"
_END_MARKER = "fastinput-cache-end"
_WRITE_CHUNK = 1024  # elements pickled together
_writer_ids = itertools.count()


class CacheDataset(Dataset):
    traits = StageTraits("cache", StageKind.CACHE, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, filename: str) -> None:
        super().__init__([input_dataset])
        if not isinstance(filename, (str, os.PathLike)):
            raise InvalidArgumentError(f"cache: filename must be a string, got {type(filename).__name__}")
        self.filename = os.fspath(filename)
        if self.filename:
            directory = os.path.dirname(os.path.abspath(self.filename))
            if not os.path.isdir(directory):
                raise NotFoundError(f"cache: the folder {directory!r} for the cache file does not exist")
        self._memory = _MemoryStore()  # shared with the copies static rewrites make of this node

    @property
    def path(self) -> str:
        return self.filename + CACHE_SUFFIX

    def cardinality(self) -> int:
        return self.inputs[0].cardinality()

    def records_when_read(self) -> bool:
        """An iterator made now records (no complete record yet, in memory or in the file) or replays (reads no
        input: nothing upstream is read)."""
        if self.filename:
            return not os.path.exists(self.path)
        return self._memory.elements is None

    def __str__(self) -> str:
        return f"cache({self.filename!r})"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        if self.filename:
            if os.path.exists(self.path):
                return _FileReplayIterator(self, ctx)
            return _RecordingIterator(self, ctx, _FileSink(self.path))
        elements = self._memory.elements
        if elements is not None:
            return _MemoryReplayIterator(self, ctx, elements)
        return _RecordingIterator(self, ctx, _MemorySink(self._memory))


class _MemoryStore:
    """The elements of the first complete iteration (None until one completes)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.elements: list[Any] | None = None


class _MemorySink:
    def __init__(self, store: _MemoryStore) -> None:
        self._store = store
        self._elements: list[Any] = []

    def write(self, chunk: list[Any]) -> None:
        self._elements.extend(chunk)

    def commit(self) -> None:
        with self._store.lock:
            if self._store.elements is None:
                self._store.elements = self._elements

    def discard(self) -> None:
        self._elements = []


class _FileSink:
    def __init__(self, path: str) -> None:
        self._path = path
        self._tmp = f"{path}.tmp-{os.getpid()}-{next(_writer_ids)}"
        self._file: IO[bytes] | None = open(self._tmp, "wb")
        self._pending: list[Any] = []
        self._count = 0

    def write(self, chunk: list[Any]) -> None:
        self._pending.extend(chunk)
        if len(self._pending) >= _WRITE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._file is not None and self._pending:
            pickle.dump(self._pending, self._file, protocol=5)
            self._count += len(self._pending)
            self._pending = []

    def commit(self) -> None:
        if self._file is not None:
            self._flush()
            pickle.dump((_END_MARKER, self._count), self._file, protocol=5)
            self._file.close()
            self._file = None
            os.replace(self._tmp, self._path)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            os.unlink(self._tmp)


class _PassIterator(DatasetIterator):
    """What the cache's iterators share: the state of a pass, whichever iterator makes it.

    A state counts what this pass handed out (``elements``; ``errors``, met only while recording), never the
    input's position: the restored pipeline may replay a cache that was still being recorded when the state was
    saved, or record one (the recorded part is gone with the old process). A recording iterator restored restarts
    the pass: it reads the input again from its start, recording what it drops, so that the cache it leaves is
    whole (restoring costs reading those elements again). A replay skips that many elements of the cache.
    """

    def get_state(self) -> dict[str, Any]:
        return stage_state(self.op, self.own_state(), [])

    def set_state(self, state: dict[str, Any]) -> None:
        check_stage(state, self.op, self.name, 0)
        self.restore_own_state(state)


class _RecordingIterator(_PassIterator):
    """Passes the input through and records it; the record is kept only if the input is read to the end."""

    def __init__(self, dataset: CacheDataset, ctx: IteratorContext, sink: _MemorySink | _FileSink) -> None:
        super().__init__(dataset, ctx, [dataset.inputs[0].make_iterator(ctx)])
        self._sink = sink
        self._finished = False
        self._elements = 0
        self._errors = 0
        self._restart = 0  # after a restore: the input's outcomes to read (and record) again before handing any on
        self._replay: _PassIterator | None = None  # after restoring a replay's state: the replay, once recorded

    def produce_chunk(self, n: int) -> list[Any]:
        if self._replay is not None:
            return self._replay.get_next_chunk(n)
        if self._finished:
            raise StopIteration
        try:
            if self._restart:
                restart, self._restart = self._restart, 0
                drop_units(self.inputs[0], restart, seen=self._sink.write)
            chunk = self.inputs[0].get_next_chunk(n)
        except StopIteration:
            if not self._finished:
                self._finished = True
                self._sink.commit()
            raise
        except errors.CancelledError:
            raise
        except Exception:
            self._errors += 1
            raise
        self._sink.write(chunk)
        self._elements += len(chunk)
        return chunk

    def own_state(self) -> dict[str, Any]:
        if self._replay is not None:
            return self._replay.own_state()
        return {"elements": self._elements, "errors": self._errors, "replaying": False, "finished": self._finished}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        if state.get("replaying"):
            self._replay_from(state)
            return
        self._elements, self._errors = state["elements"], state["errors"]
        if state.get("finished"):  # the saved pass had read its input to the end: its record was complete, and
            self._record_all()  # the next pass replays it (in a fresh process, the memory record is gone)
            return
        self._restart = self._elements + self._errors

    def _replay_from(self, state: dict[str, Any]) -> None:
        """The saved pass replayed a complete cache that this process does not have: record the whole input now
        (its errors dropped, as a replay has none), then replay from the saved position."""
        self._record_all()
        self._replay = self.dataset.make_iterator(self.ctx)
        self._replay.restore_own_state(state)
        self.inputs.append(self._replay)  # closed with this stage

    def _record_all(self) -> None:
        """Record the whole input now (its errors dropped, as a replay has none) and keep the record."""
        source = self.inputs[0]
        while True:
            try:
                self._sink.write(source.get_next_chunk(1024))
            except StopIteration:
                break
            except errors.CancelledError:
                raise
            except Exception:  # an error of the first pass: a replay leaves it out
                continue
        self._finished = True
        self._sink.commit()

    def join_self(self) -> None:
        if not self._finished:
            self._sink.discard()


class _NoSink:
    """Where a pass that reads the input again over a complete record writes: nowhere."""

    def write(self, chunk: list[Any]) -> None:
        pass

    def commit(self) -> None:
        pass

    def discard(self) -> None:
        pass


class _ReplayIterator(_PassIterator):
    """A pass over a complete record (``replay_chunk``, ``replay_state``, ``restore_replay``).

    Restored from the state of a recording pass, it reads the input again instead (a ``_RecordingIterator`` that
    writes nowhere, restarted as a restored recording pass is), so that it goes on as that pass would have: with
    the input's errors, which a record leaves out. The record can be complete where the saved pass was still
    recording: a parallel stage after the cache may have read the input to its end before the state was saved
    (a replay there lost the input's errors after the save point: checkpoint conformance, seed 75 of session 16).
    """

    _again: _RecordingIterator | None = None

    def produce_chunk(self, n: int) -> list[Any]:
        if self._again is not None:
            return self._again.get_next_chunk(n)
        return self.replay_chunk(n)

    def own_state(self) -> dict[str, Any]:
        return self._again.own_state() if self._again is not None else self.replay_state()

    def restore_own_state(self, state: dict[str, Any]) -> None:
        if state.get("replaying", True) or state.get("finished"):  # a finished pass: at the record's end
            self.restore_replay(state)
            return
        again = _RecordingIterator(self.dataset, self.ctx, _NoSink())
        again.restore_own_state(state)
        self._again = again
        self.inputs.append(again)  # closed with this stage

    def replay_chunk(self, n: int) -> list[Any]:
        raise NotImplementedError

    def replay_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def restore_replay(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class _MemoryReplayIterator(_ReplayIterator):
    def __init__(self, dataset: CacheDataset, ctx: IteratorContext, elements: list[Any]) -> None:
        super().__init__(dataset, ctx)
        self._elements = elements
        self._position = 0

    def replay_state(self) -> dict[str, Any]:
        return {"elements": self._position, "errors": 0, "replaying": True}

    def restore_replay(self, state: dict[str, Any]) -> None:
        self._position = state["elements"]

    def replay_chunk(self, n: int) -> list[Any]:
        start = self._position
        if start >= len(self._elements):
            raise StopIteration
        self._position = min(start + n, len(self._elements))
        return self._elements[start:self._position]


class _FileReplayIterator(_ReplayIterator):
    def __init__(self, dataset: CacheDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._path = dataset.path
        self._file: IO[bytes] | None = None
        self._chunk: list[Any] = []
        self._count = 0  # elements loaded
        self._ended = False
        self._skip = 0  # after a restore: elements to skip

    def _load_chunk(self) -> None:
        if self._file is None:
            self._file = open(self._path, "rb")
        offset = self._file.tell()
        try:
            loaded = pickle.load(self._file)
        except EOFError:
            raise DataLossError(f"cache file {self._path} is truncated at byte {offset} (no end marker)",
                                path=self._path, offset=offset) from None
        except (pickle.UnpicklingError, ValueError, TypeError) as exc:
            raise DataLossError(f"cache file {self._path} is corrupt at byte {offset}: {exc}",
                                path=self._path, offset=offset) from exc
        if isinstance(loaded, tuple) and loaded[:1] == (_END_MARKER,):
            if loaded[1] != self._count:
                raise DataLossError(
                    f"cache file {self._path} holds {self._count} elements, its end marker says {loaded[1]}",
                    path=self._path, offset=offset)
            self._ended = True
            return
        self._chunk = loaded
        self._count += len(loaded)

    def replay_chunk(self, n: int) -> list[Any]:
        while self._skip and not self._ended:
            if not self._chunk:
                self._load_chunk()
            skipped = min(self._skip, len(self._chunk))
            self._chunk, self._skip = self._chunk[skipped:], self._skip - skipped
        while not self._chunk:
            if self._ended:
                raise StopIteration
            self._load_chunk()
        out, self._chunk = self._chunk[:n], self._chunk[n:]
        return out

    def replay_state(self) -> dict[str, Any]:
        return {"elements": self._count - len(self._chunk) + self._skip, "errors": 0, "replaying": True}

    def restore_replay(self, state: dict[str, Any]) -> None:
        self._skip = state["elements"]

    def join_self(self) -> None:
        if self._file is not None:
            self._file.close()
