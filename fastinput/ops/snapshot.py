"""``ds.snapshot(path)``: the first run to the end writes the elements; later runs read them back.

As in tf.data, a snapshot lives in ``path/<fingerprint>``, the fingerprint being a digest of the input pipeline
(``fastinput._engine.fingerprint``): a changed pipeline gets a folder of its own. A pass that writes commits the
snapshot (``save``'s format, ``fastinput.ops.saved_files``) only when its input ends: a pass stopped early, or one
that met an error, leaves nothing to read, and the next pass writes again. While a snapshot is written the stage
hands the input's elements on as it writes them, in the consumer's thread.

Saved (``get_state``) it says whether it was reading or writing, and nests that pipeline's state. Restored, a
reading pass reads on from the same place; a writing pass goes on without writing (the restored pass did not see
the elements before the save, so it cannot write the whole snapshot): a later pass writes it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from fastinput import errors
from fastinput._engine.arguments import check_callable
from fastinput._engine.fingerprint import fingerprint
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops import saved_files
from fastinput.ops.load import known_spec, reading_pipeline


class SnapshotDataset(Dataset):
    traits = StageTraits("snapshot", StageKind.CACHE, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, path: Any, compression: Any, reader_func: Callable | None,
                 shard_func: Callable | None) -> None:
        super().__init__([input_dataset])
        self.path = saved_files.check_local_path("snapshot", path)
        self.compression = saved_files.check_compression("snapshot", compression)
        self.reader_func = None if reader_func is None else check_callable("snapshot", "reader_func", reader_func)
        self.shard_func = None if shard_func is None else check_callable("snapshot", "shard_func", shard_func)

    def __str__(self) -> str:
        return f"snapshot({self.path!r})"

    def cardinality(self) -> int:
        return self.inputs[0].cardinality()

    def records_when_read(self) -> bool:
        """An iterator made now writes the snapshot (none is finished) or reads it (its input is not read)."""
        return self.reader() is None

    @functools.cached_property
    def directory(self) -> str:
        """Where this pipeline's snapshot lives: ``path/<fingerprint>``."""
        return os.path.join(self.path, fingerprint(self.inputs[0]))

    def reader(self) -> Dataset | None:
        """The pipeline that reads the finished snapshot, or None if there is none yet."""
        try:
            metadata = saved_files.read_metadata(self.directory)
        except errors.NotFoundError:
            return None
        return reading_pipeline(self.directory, metadata, known_spec(self.inputs[0]), self.reader_func)

    def writer(self) -> saved_files.DatasetWriter:
        from fastinput.options import available_cpus

        return saved_files.DatasetWriter(self.directory, self.compression, self.shard_func,
                                         min(available_cpus(), 8), known_spec(self.inputs[0]))

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _SnapshotIterator(self, ctx)


class _SnapshotIterator(DatasetIterator):
    """Reads the finished snapshot, or passes its input's elements on and writes them (see the module)."""

    def __init__(self, dataset: SnapshotDataset, ctx: IteratorContext) -> None:
        reader = dataset.reader()
        self._reading = reader is not None
        source = reader if reader is not None else dataset.inputs[0]
        super().__init__(dataset, ctx, [source.make_iterator(ctx)])
        self._ds = dataset
        self._writer = None if self._reading else dataset.writer()

    def produce_chunk(self, n: int) -> list[Any]:
        try:
            chunk = self.inputs[0].get_next_chunk(n)
        except StopIteration:
            if self._writer is not None:
                self._writer, writer = None, self._writer
                writer.commit(replace=False)
            raise
        except errors.CancelledError:
            raise
        except Exception:
            self._stop_writing()  # an input with errors is never snapshotted: every pass meets them
            raise
        if self._writer is not None:
            self._writer.write(chunk)
        return chunk

    def _stop_writing(self) -> None:
        if self._writer is not None:
            self._writer, writer = None, self._writer
            writer.abandon()

    def join_self(self) -> None:
        self._stop_writing()

    def own_state(self) -> dict[str, Any]:
        return {"reading": self._reading}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._stop_writing()
        if state["reading"] == self._reading:
            return
        if state["reading"]:
            reader = self._ds.reader()
            if reader is None:
                raise errors.NotFoundError(f"set_state: {self.name}: the state was saved while reading the snapshot "
                                           f"in {self._ds.directory}, which holds none now")
            source = reader
        else:
            source = self._ds.inputs[0]
        self.inputs[0].close()
        self.inputs = [source.make_iterator(self.ctx)]
        self._reading = state["reading"]
