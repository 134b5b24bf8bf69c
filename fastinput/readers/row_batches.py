"""What ``make_csv_dataset`` and ``make_parquet_dataset`` share after reading: shuffle, repeat, batch, prefetch.

Both read row blocks (``fastinput._engine.rows``) with the engine's interleave
and then run the same tail over rows: a shuffle buffer of rows (when asked),
``num_epochs`` repeats (None: forever, and then every batch is full), batches
packed as ``OrderedDict(column -> array)`` with the label split off, and a
prefetch. ``RowBatching`` checks those arguments once, when the pipeline is built.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any

from fastinput._engine.arguments import AUTOTUNE, check_bool, check_int, check_seed
from fastinput._engine.rows import Block, RowBlocks
from fastinput.dataset import Dataset
from fastinput.ops.batch import BatchDataset
from fastinput.ops.shuffle import ShuffleDataset


class ColumnPacker:
    """Columns of a batch to tf.data's structure: an OrderedDict of features, and the label split off."""

    def __init__(self, names: list[str], label_name: str | None) -> None:
        self.names = names
        self.label_name = label_name

    def __call__(self, columns: Block) -> Any:
        features = collections.OrderedDict(zip(self.names, columns))
        if self.label_name is None:
            return features
        return features, features.pop(self.label_name)


@dataclasses.dataclass(frozen=True)
class RowBatching:
    """The checked arguments of the shuffle -> repeat -> batch -> prefetch tail (``checked`` makes one)."""

    batch_size: int
    shuffle: bool
    num_epochs: int  # -1: forever
    shuffle_seed: int | None
    shuffle_buffer_size: int
    prefetch: int

    @classmethod
    def checked(cls, op: str, batch_size: Any, shuffle: Any, num_epochs: Any, shuffle_seed: Any,
                shuffle_buffer_size: Any, prefetch_buffer_size: Any) -> RowBatching:
        """The arguments as a one-liner takes them (``num_epochs=None``: forever; ``prefetch_buffer_size=None``:
        AUTOTUNE), checked and named by ``op`` in errors."""
        return cls(
            batch_size=check_int(op, "batch_size", batch_size, minimum=1),
            shuffle=check_bool(op, "shuffle", shuffle),
            num_epochs=-1 if num_epochs is None else check_int(op, "num_epochs", num_epochs, minimum=0, allow=(-1,)),
            shuffle_seed=check_seed(op, shuffle_seed),
            shuffle_buffer_size=check_int(op, "shuffle_buffer_size", shuffle_buffer_size, minimum=1),
            prefetch=AUTOTUNE if prefetch_buffer_size is None else check_int(
                op, "prefetch_buffer_size", prefetch_buffer_size, minimum=0, allow=(AUTOTUNE,)),
        )

    def rows(self, pack: ColumnPacker, strings: Callable[[list[Any]], list[Any]] | None = None) -> RowBlocks:
        """The units of the pipeline's stages: row blocks packed by ``pack`` (string columns made leaves by
        ``strings``, see ``RowBlocks``); with a shuffle, its input interleave hands rows on unmerged (the
        shuffle folds the interleave order into its own gathers)."""
        return RowBlocks(pack=pack, interleave_lazily=self.shuffle, strings=strings)

    def apply(self, blocks: Dataset, rows: RowBlocks) -> Dataset:
        """``blocks`` (a dataset of row blocks) shuffled, repeated, batched and prefetched."""
        if self.shuffle:
            blocks = ShuffleDataset(blocks, self.shuffle_buffer_size, self.shuffle_seed, True, rows=rows)
        if self.num_epochs != 1:
            blocks = blocks.repeat(self.num_epochs)
        return BatchDataset(blocks, self.batch_size, drop_remainder=self.num_epochs == -1,
                            rows=rows).prefetch(self.prefetch)
