"""``ds.ignore_errors(log_warning=False)``: drop the elements whose production raised, and go on."""

from __future__ import annotations

import logging
from typing import Any

from fastinput._engine.arguments import check_bool
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import CancelledError

logger = logging.getLogger("fastinput")


class IgnoreErrorsDataset(Dataset):
    """Every input element but those whose production raised an error.

    What follows an error is what the input gives after it, as in tf.data: after a failed ``map`` call the next
    element; after a corrupt or truncated file (``DataLossError``) the next file, the rest of that one being
    unreadable. Closing the pipeline (``CancelledError``) is not an error of an element and still stops it.
    """

    traits = StageTraits("ignore_errors", StageKind.FILTER, passes_through=True, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, log_warning: bool = False) -> None:
        super().__init__([input_dataset])
        self.log_warning = check_bool("ignore_errors", "log_warning", log_warning)

    def __str__(self) -> str:
        return "ignore_errors(log_warning=True)" if self.log_warning else "ignore_errors()"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return _IgnoreErrorsIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _IgnoreErrorsIterator(DatasetIterator):
    """Asks its input again after each error; holds nothing, so its state is its input's (which, pointing at a
    failed element, meets the error again on restore: dropped again here)."""

    def __init__(self, dataset: IgnoreErrorsDataset, ctx: IteratorContext, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self._source = source
        self._log = dataset.log_warning

    def produce_chunk(self, n: int) -> list[Any]:
        while True:
            try:
                return self._source.get_next_chunk(n)
            except (StopIteration, CancelledError):
                raise
            except Exception as exc:
                if self._log:
                    logger.warning("%s: ignoring an error: %s: %s", self.name, type(exc).__name__, exc)

    def own_state(self) -> dict[str, Any]:
        return {}
