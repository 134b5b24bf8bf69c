"""``fi.ParquetDataset`` and ``fi.make_parquet_dataset``: batches of Parquet rows as dicts of numpy arrays.

tf.data has no Parquet reader; these follow ``make_csv_dataset``'s shape so a
pipeline moves from CSV to Parquet by changing one call. Row groups are the unit
of parallel reading: the files' row groups (``parquet_files``: projection to
``columns``, row groups ruled out by ``filters`` skipped using their
statistics, the rest filtered row by row) are read ``num_parallel_reads`` at a
time by the engine's interleave, and rows travel as blocks of columns
(``fastinput._engine.rows``) through shuffle and batch: a batch costs a few numpy
or arrow calls per column. Both are checkpointable: a state is the row groups
read and the rows taken from those being read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastinput._engine.arguments import AUTOTUNE, check_int, check_parallelism, format_arg
from fastinput._engine.rows import RowBlocks
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.batch import BatchDataset
from fastinput.ops.interleave import InterleaveDataset
from fastinput.options import available_cpus
from fastinput.readers.parquet_files import ParquetSource, RowGroupOpener, find_row_groups
from fastinput.readers.row_batches import ColumnPacker, RowBatching

DEFAULT_BATCH_SIZE = 1024

_WHOLE_ROW_GROUPS = 1 << 62
"""An interleave block longer than any row group: each row group is read whole in its turn, so rows keep file order."""


STRING_TYPES = ("bytes", "packed")


def _strings(op: str, string_type: Any) -> Callable[[list[Any]], list[Any]] | None:
    """What a batch's string columns become: None (object arrays of ``bytes``), or
    ``PackedStrings.from_arrow_columns`` (all of them at once)."""
    from fastinput.tf_values import PackedStrings

    if not isinstance(string_type, str) or string_type not in STRING_TYPES:
        raise InvalidArgumentError(f"{op}: string_type must be one of {list(STRING_TYPES)}, got {string_type!r}")
    return PackedStrings.from_arrow_columns if string_type == "packed" else None


def _row_groups(source: ParquetSource, shuffle: bool = False, seed: int | None = None) -> Dataset:
    """The (file index, row group id) pairs to read, as a Dataset; shuffled (with ``seed``) when asked."""
    import numpy as np

    pairs = np.array(source.row_groups, dtype=np.int64).reshape(-1, 2)
    groups = Dataset.from_tensor_slices((pairs[:, 0], pairs[:, 1]))
    return groups.shuffle(max(len(pairs), 1), seed=seed) if shuffle else groups


def _reader(op: str, source: ParquetSource, groups: Dataset, num_parallel_reads: Any, block_length: int,
            rows: RowBlocks) -> InterleaveDataset:
    """The interleave that reads the row groups ``num_parallel_reads`` at a time (AUTOTUNE: the cores, tuned)."""
    reads = check_parallelism(op, "num_parallel_reads", AUTOTUNE if num_parallel_reads is None else num_parallel_reads)
    cycle_length = available_cpus() if reads == AUTOTUNE else reads
    return InterleaveDataset(groups, RowGroupOpener(source), cycle_length, block_length, reads, True,
                             label="ParquetRowGroup", rows=rows)


class ParquetDataset(BatchDataset):
    """Batches of the rows of Parquet files, in file order, as ``OrderedDict(column -> numpy array)``.

    ``file_pattern``: a glob or file name (local, ``s3://``, ``gs://``, any
    fsspec URL), or a list of them; files are read in sorted order, each
    row group whole, ``num_parallel_reads`` row groups at a time (None: as
    many as there are cores). ``columns``: the columns to read (None: all).
    ``filters``: pyarrow's predicate (a list of ``(column, op, value)``
    tuples, a list of such lists for OR, or a ``pyarrow.compute`` expression):
    row groups whose statistics rule it out are not read, and the rest are
    filtered row by row. Types are ``make_csv_dataset``'s: int32 / int64,
    float32 / float64, bool, and object arrays of ``bytes`` for strings; nulls
    read as 0 or ``b""``. ``string_type``: ``"bytes"`` (those object arrays:
    one Python object per value, made as each batch is cut) or ``"packed"``:
    each string column of a batch is a ``fi.PackedStrings``, the values in
    one byte blob with offsets, no Python object per value (several times
    faster to deliver; ``as_tf_dataset`` hands it to TensorFlow as tf.string
    without making any; ``np.asarray(column)`` gives the object array, and
    ``column[k]`` one value). ``storage_options``: passed to fsspec; remote row groups are
    read by pyarrow through the fsspec filesystem, so the client's own timeouts and
    retries (set in ``storage_options``) apply, not ``fi.RemoteOptions``.

    >>> import fastinput as fi
    >>> ds = fi.ParquetDataset("data/*.parquet", columns=["x", "label"], batch_size=4096,
    ...                        filters=[("label", ">=", 0)])
    >>> batch = next(iter(ds))
    """

    # The stage itself cuts batches on the consumer's thread (its row groups are read in parallel by the
    # interleave below it, which stats show as its input): the profiler's advice for a batch is the one that fits.
    traits = StageTraits("ParquetDataset", StageKind.BATCH)

    def __init__(self, file_pattern: str | Sequence[str], columns: Sequence[str] | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, filters: Any = None, storage_options: dict | None = None,
                 num_parallel_reads: int | None = None, drop_remainder: bool = False,
                 string_type: str = "bytes") -> None:
        op = "ParquetDataset"
        check_int(op, "batch_size", batch_size, minimum=1)
        strings = _strings(op, string_type)
        self.source = find_row_groups(op, file_pattern, columns, filters, storage_options)
        self.num_parallel_reads = num_parallel_reads
        self.string_type = string_type
        rows = RowBlocks(pack=ColumnPacker(list(self.source.columns), None), strings=strings)
        reader = _reader(op, self.source, _row_groups(self.source), num_parallel_reads, _WHOLE_ROW_GROUPS, rows)
        super().__init__(reader, batch_size, drop_remainder, rows=rows)

    def __str__(self) -> str:
        files = self.source.urls
        args = [repr(files[0]) if len(files) == 1 else f"<{len(files)} files>",
                f"<{len(self.source.columns)} columns>", f"batch_size={self.batch_size}"]
        if self.source.filter is not None:
            args.append(f"filters={self.source.filter}")
        if self.num_parallel_reads is not None:
            args.append(f"num_parallel_reads={format_arg(self.num_parallel_reads)}")
        if self.drop_remainder:
            args.append("drop_remainder=True")
        if self.string_type != "bytes":
            args.append(f"string_type={self.string_type!r}")
        return f"ParquetDataset({', '.join(args)})"


def make_parquet_dataset(
    file_pattern: str | Sequence[str],
    batch_size: int,
    columns: Sequence[str] | None = None,
    label_name: str | None = None,
    filters: Any = None,
    num_epochs: int | None = None,
    shuffle: bool = True,
    shuffle_buffer_size: int = 10000,
    shuffle_seed: int | None = None,
    prefetch_buffer_size: int | None = None,
    num_parallel_reads: int | None = None,
    storage_options: dict | None = None,
    string_type: str = "bytes",
) -> Dataset:
    """Batches of Parquet rows as ``(OrderedDict(column -> array), label_array)`` (the dict alone without
    ``label_name``): ``make_csv_dataset`` for Parquet.

    As ``make_csv_dataset`` does with files, the row groups are shuffled (with
    ``shuffle``), read ``num_parallel_reads`` at a time (None: as many as there
    are cores) one row from each in turn, rows shuffled in a buffer of
    ``shuffle_buffer_size``, repeated ``num_epochs`` times (None: forever, and
    every batch is full), batched and prefetched. ``columns``, ``filters`` and
    ``string_type`` as in ``fi.ParquetDataset``; the types are
    ``make_csv_dataset``'s, or with ``string_type="packed"`` string columns
    are ``fi.PackedStrings`` (no Python object per value).

    >>> import fastinput as fi
    >>> ds = fi.make_parquet_dataset("data/*.parquet", batch_size=1024, label_name="label", num_epochs=1)
    >>> features, label = next(iter(ds))
    """
    op = "make_parquet_dataset"
    batching = RowBatching.checked(op, batch_size, shuffle, num_epochs, shuffle_seed, shuffle_buffer_size,
                                   prefetch_buffer_size)
    strings = _strings(op, string_type)
    source = find_row_groups(op, file_pattern, columns, filters, storage_options)
    if label_name is not None and label_name not in source.columns:
        raise InvalidArgumentError(f"{op}: label_name {label_name!r} is not one of the columns {list(source.columns)}")
    rows = batching.rows(ColumnPacker(list(source.columns), label_name), strings)
    groups = _row_groups(source, batching.shuffle, batching.shuffle_seed)
    return batching.apply(_reader(op, source, groups, num_parallel_reads, 1, rows), rows)
