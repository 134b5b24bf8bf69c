"""``ds.save(path)`` and ``fi.Dataset.load(path)``: a dataset's elements written to a folder and read back.

The format is fastinput's own (``fastinput.ops.saved_files``); a folder tf.data's ``save`` wrote is read too
(``fastinput.ops.tf_saved``). Reading is a pipeline: the shard files read in
parallel (an interleave over them, ``chunk`` elements from each in turn, which gives the elements back in the order
they were saved), each shard's records decoded a chunk at a time (``_ShardDataset``); or, with ``reader_func``, the
pipeline that function makes from the dataset of shard datasets, as in tf.data.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

from fastinput import errors
from fastinput._engine.arguments import AUTOTUNE, check_callable
from fastinput._engine.cardinality import UNKNOWN_CARDINALITY
from fastinput._engine.checkpoint import stage_state
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.resume import InputMarks, marked
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.ops import saved_files
from fastinput.ops.element_codec import decode_chunk
from fastinput.options import available_cpus

_WRITE_BATCH = 1024  # elements handed to the writer at a time


def save_dataset(dataset: Dataset, path: Any, compression: Any, shard_func: Callable | None,
                 checkpoint_args: Any) -> None:
    """Write every element of ``dataset`` into the folder ``path``; an error on the way leaves it as it was."""
    path = saved_files.check_local_path("save", path)
    compression = saved_files.check_compression("save", compression)
    if shard_func is not None:
        check_callable("save", "shard_func", shard_func)
    if checkpoint_args is not None:
        raise errors.UnimplementedError("save: checkpoint_args (saving with tf.train.CheckpointManager so that an "
                                        "interrupted save resumes) is not supported: a save that does not finish "
                                        "leaves the folder as it was; save again")
    writer = saved_files.DatasetWriter(path, compression, shard_func, min(available_cpus(), 8),
                                       known_spec(dataset))
    write_all(dataset, writer)


def known_spec(dataset: Dataset) -> Any:
    """The dataset's element spec, or None where it cannot be learnt without running it."""
    from fastinput.spec import UnknownSpecError

    try:
        return dataset.element_spec
    except UnknownSpecError:
        return None


def write_all(dataset: Dataset, writer: saved_files.DatasetWriter) -> None:
    """Run ``dataset`` to its end into ``writer`` and commit; on any error delete what was written and raise."""
    try:
        pending: list[Any] = []
        with iter(dataset) as it:
            for element in it:
                pending.append(element)
                if len(pending) >= _WRITE_BATCH:
                    writer.write(pending)
                    pending = []
        writer.write(pending)
        writer.commit()
    except BaseException:
        writer.abandon()
        raise


class LoadDataset(Dataset):
    """The dataset saved in a folder; its input is the pipeline that reads the shard files."""

    traits = StageTraits("load", StageKind.READ)

    def __init__(self, path: Any, element_spec: Any = None, compression: Any = None,
                 reader_func: Callable[[Dataset], Dataset] | None = None, op: str = "load") -> None:
        from fastinput.ops import tf_saved
        from fastinput.spec import as_spec

        self.path = saved_files.check_local_path(op, path)
        given = None if element_spec is None else as_spec(element_spec, f"{op}: element_spec")
        if reader_func is not None:
            check_callable(op, "reader_func", reader_func)
        if tf_saved.is_tf_saved(self.path):  # a folder tf.data's save wrote
            shards, self.spec = tf_saved.tf_saved_shards(self.path, saved_files.check_compression(op, compression),
                                                         given)
            pipeline = read_shards(shards, reader_func, cycle_length=min(len(shards), available_cpus()),
                                   block_length=1)
            self.count = UNKNOWN_CARDINALITY
        else:
            metadata = saved_files.read_metadata(self.path)
            if compression is not None and saved_files.check_compression(op, compression) != metadata["compression"]:
                raise errors.InvalidArgumentError(f"{op}: {self.path} was saved with compression "
                                                  f"{metadata['compression']!r}, not {compression!r}")
            encoded = metadata["element_spec"]
            self.spec = given if given is not None or encoded is None else saved_files.decode_spec(encoded)
            pipeline = reading_pipeline(self.path, metadata, self.spec, reader_func)
            self.count = (sum(int(entry["elements"]) for entry in metadata["shards"]) if reader_func is None
                          else UNKNOWN_CARDINALITY)
        super().__init__([pipeline])
        self.op = op

    def __str__(self) -> str:
        return f"{self.op}({self.path!r})"

    def cardinality(self) -> int:
        """The saved element count (unknown through a ``reader_func`` or for a folder tf.data wrote)."""
        return self.count

    def compute_element_spec(self) -> Any:
        from fastinput.spec import UnknownSpecError

        if self.spec is None:
            raise UnknownSpecError(f"{self}: the dataset was saved without an element spec; give element_spec")
        return self.spec

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return self.inputs[0].make_iterator(ctx)


def reading_pipeline(path: str, metadata: dict[str, Any], spec: Any,
                     reader_func: Callable[[Dataset], Dataset] | None) -> Dataset:
    """The pipeline that reads the dataset saved in ``path`` (described by ``metadata``; elements of ``spec``)."""
    shards = [_ShardDataset(os.path.join(path, entry["file"]), metadata["compression"], int(entry["elements"]), spec)
              for entry in metadata["shards"]]
    return read_shards(shards, reader_func, cycle_length=len(shards), block_length=int(metadata["chunk"]))


def read_shards(shards: list[Dataset], reader_func: Callable[[Dataset], Dataset] | None, cycle_length: int,
                block_length: int) -> Dataset:
    """``reader_func`` of the dataset of ``shards``; by default, the shards interleaved ``block_length`` elements at
    a time from ``cycle_length`` of them, read in parallel."""
    if reader_func is not None:
        result = reader_func(_ShardsDataset(shards))
        if not isinstance(result, Dataset):
            raise errors.InvalidArgumentError(f"load: reader_func must return a Dataset, got {type(result).__name__}")
        return result

    def shard(index: Any) -> Dataset:
        return shards[int(index)]

    return Dataset.range(len(shards)).interleave(shard, cycle_length=max(1, cycle_length), block_length=block_length,
                                                 num_parallel_calls=AUTOTUNE if len(shards) > 1 else None)


class _ShardsDataset(Dataset):
    """The shard datasets themselves, one element each: what tf.data hands a ``reader_func``."""

    traits = StageTraits("shard_datasets", StageKind.IN_MEMORY)

    def __init__(self, shards: list[Dataset]) -> None:
        super().__init__()
        self.shards = shards

    def __str__(self) -> str:
        return f"shard_datasets(<{len(self.shards)} shards>)"

    def compute_element_spec(self) -> Any:
        from fastinput.spec import UnknownSpecError

        raise UnknownSpecError(f"{self}: its elements are datasets")

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _ShardsIterator(self, ctx)


class _ShardsIterator(DatasetIterator):
    def __init__(self, dataset: _ShardsDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx)
        self._shards = dataset.shards
        self._next = 0

    def produce_chunk(self, n: int) -> list[Any]:
        if self._next >= len(self._shards):
            raise StopIteration
        out = self._shards[self._next:self._next + n]
        self._next += len(out)
        return out

    def own_state(self) -> dict[str, Any]:
        return {"next": self._next}

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._next = state["next"]


class _ShardDataset(Dataset):
    """The elements of one shard file: its records (TFRecord framing, CRCs checked) decoded a chunk at a time."""

    traits = StageTraits("saved_shard", StageKind.READ)

    def __init__(self, path: str, compression: str | None, elements: int, spec: Any) -> None:
        from fastinput.readers.tfrecord import TFRecordDataset

        super().__init__([TFRecordDataset([path], compression_type=compression)])
        self.path = path
        self.elements = elements
        self.spec = spec

    def __str__(self) -> str:
        return f"saved_shard({os.path.basename(self.path)!r})"

    def compute_element_spec(self) -> Any:
        from fastinput.spec import UnknownSpecError

        if self.spec is None:
            raise UnknownSpecError(f"{self}: the dataset was saved without an element spec")
        return self.spec

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _ShardIterator(self, ctx)


class _ShardIterator(DatasetIterator):
    """Hands out the current record's elements; saved, it keeps its input's state before that record and how many
    of its elements it handed out (restored, it reads the record again and drops those)."""

    def __init__(self, dataset: _ShardDataset, ctx: IteratorContext) -> None:
        super().__init__(dataset, ctx, [dataset.inputs[0].make_iterator(ctx)])
        self._ds = dataset
        self._rows: list[Any] = []  # the current record's elements not handed out yet
        self._record_size = 0  # elements in the current record
        self._before = 0  # elements in the records before it
        self._marks = InputMarks(self.inputs[0])
        self._mark: dict[str, Any] | None = None  # the input's state before the current record
        self._drop = 0  # after a restore: elements of the next record handed out before the save

    def produce_chunk(self, n: int) -> list[Any]:
        while not self._rows:
            self._next_record()
        out = self._rows[:n]
        del self._rows[:n]
        return out

    def _next_record(self) -> None:
        self._before += self._record_size
        self._record_size = 0
        mark = self._marks.take()
        try:
            record = self.inputs[0].get_next()
        except StopIteration:
            if self._before != self._ds.elements:
                raise errors.DataLossError(
                    f"saved dataset file {self._ds.path} holds {self._before} elements where the dataset's metadata "
                    f"says {self._ds.elements}: the file is cut short or was replaced", path=self._ds.path) from None
            raise
        try:
            rows = decode_chunk(record)
        except (ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
            raise errors.DataLossError(f"saved dataset file {self._ds.path}: the record after element {self._before} "
                                       f"is not a chunk of saved elements ({exc})", path=self._ds.path) from None
        self._mark, self._record_size = mark, len(rows)
        self._rows, self._drop = rows[self._drop:], 0

    def get_state(self) -> dict[str, Any]:
        if self._rows:  # part of the current record is handed out: read it again from before it
            own = {"before": self._before, "drop": self._record_size - len(self._rows)}
            return stage_state(self.op, own, [marked(self.inputs[0], self._mark)])
        own = {"before": self._before + self._record_size, "drop": self._drop}
        return stage_state(self.op, own, [self.inputs[0].get_state()])

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._before, self._drop = state["before"], state["drop"]
