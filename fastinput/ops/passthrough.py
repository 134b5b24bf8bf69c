"""``ds.with_options``: a node that carries options and adds no stage of its own."""

from __future__ import annotations

from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.options import Options


class OptionsDataset(Dataset):
    traits = StageTraits("with_options", StageKind.OTHER, passes_through=True, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, options: Options) -> None:
        if not isinstance(options, Options):
            raise InvalidArgumentError(f"with_options: options must be fi.Options, got {type(options).__name__}")
        super().__init__([input_dataset])
        self._options = options

    def cardinality(self) -> int:
        return self.inputs[0].cardinality()

    def __str__(self) -> str:
        return "with_options()"

    def own_options(self) -> Options:
        return self._options

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        return self.inputs[0].make_iterator(ctx)
