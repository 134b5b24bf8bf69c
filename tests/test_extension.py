"""The public extension point: a custom source and a custom threaded transformation, built only on
``fastinput.extension``, run like fastinput's own stages (specs, errors in place, threads joined, traits read)."""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from fastinput import extension
from fastinput.extension import (
    Channel,
    Dataset,
    DatasetIterator,
    Failure,
    StageKind,
    StageTraits,
    ThreadedIterator,
)


class Squares(Dataset):
    """Source: the squares of 0..n-1; raises at ``bad`` (then goes on), as a reader reports a bad record."""

    traits = StageTraits("squares", StageKind.IN_MEMORY)

    def __init__(self, n: int, bad: int | None = None) -> None:
        super().__init__()
        self.n, self.bad = n, bad

    def __str__(self) -> str:
        return f"squares({self.n})"

    def compute_element_spec(self):
        return fi.TensorSpec((), np.int64)

    def make_iterator(self, ctx):
        return _SquaresIterator(self, ctx)


class _SquaresIterator(DatasetIterator):
    def __init__(self, dataset: Squares, ctx) -> None:
        super().__init__(dataset, ctx)
        self.at = 0

    def produce(self):
        if self.at >= self.dataset.n:
            raise StopIteration
        self.at += 1
        if self.at - 1 == self.dataset.bad:
            raise ValueError(f"bad element {self.at - 1}")
        return np.int64((self.at - 1) ** 2)


class ReadAhead(Dataset):
    """Transformation: reads its input on a thread of its own, ``depth`` elements ahead."""

    traits = StageTraits("read_ahead", StageKind.PREFETCH, passes_through=True, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, depth: int) -> None:
        super().__init__([input_dataset])
        self.depth = depth

    def __str__(self) -> str:
        return f"read_ahead({self.depth})"

    def make_iterator(self, ctx):
        return _ReadAheadIterator(self, ctx, self.inputs[0].make_iterator(ctx))


class _ReadAheadIterator(ThreadedIterator):
    def __init__(self, dataset: ReadAhead, ctx, source: DatasetIterator) -> None:
        super().__init__(dataset, ctx, [source])
        self.source = source
        self.channel = Channel(self.name, dataset.depth, self.metrics)

    def _fill(self) -> None:
        while (room := self.channel.wait_for_room()) is not None:
            try:
                chunk = self.source.get_next_chunk(room)
            except StopIteration:
                self.channel.finish()
                return
            except fi.errors.CancelledError:
                self.channel.cancel()
                return
            except Exception as exc:
                chunk = [Failure(exc)]
            self.channel.put(chunk)

    def produce_chunk(self, n: int):
        self.start_workers(self._fill, 1)
        out = self.channel.take(n)
        if not out:
            raise StopIteration
        if type(out[0]) is Failure:
            raise out[0].exc
        return out

    def cancel_self(self) -> None:
        self.channel.cancel()


def test_the_extension_module_names_what_a_stage_needs():
    assert extension.__all__ == sorted(extension.__all__)
    assert all(hasattr(extension, name) for name in extension.__all__)


@pytest.mark.parametrize("depth", [1, 3])
def test_custom_stages_run_like_fastinputs_own(depth):
    ds = ReadAhead(Squares(10), depth).map(lambda x: x + 1, num_parallel_calls=2).batch(4)
    assert ds.element_spec == fi.TensorSpec((None,), np.int64)
    assert [b.tolist() for b in ds] == [[1, 2, 5, 10], [17, 26, 37, 50], [65, 82]]


def test_an_error_in_a_custom_source_arrives_at_its_place_naming_the_stage():
    it = iter(ReadAhead(Squares(5, bad=2), 2))
    assert [int(next(it)), int(next(it))] == [0, 1]
    with pytest.raises(ValueError, match="bad element 2") as info:
        next(it)
    assert any("squares(5)" in note for note in info.value.__notes__)
    assert [int(x) for x in it] == [9, 16]


def test_closing_early_joins_a_custom_stages_thread():
    it = iter(ReadAhead(Squares(1000), 4))
    next(it)
    it.close()  # the autouse leak guard fails the test if its thread outlives it


def test_the_profiler_reads_a_custom_stages_traits():
    with iter(ReadAhead(Squares(100), 4)) as it:
        list(it)
        kinds = {stage.name: stage.traits.kind for stage in it.stats()}
    assert kinds == {"read_ahead(4)": StageKind.PREFETCH, "squares(100)": StageKind.IN_MEMORY}


def test_an_iterator_that_produces_nothing_is_refused_when_built():
    class Nothing(Dataset):
        traits = StageTraits("nothing")

        def make_iterator(self, ctx):
            return type("NothingIterator", (DatasetIterator,), {})(self, ctx)

    with pytest.raises(TypeError, match="neither produce"):
        iter(Nothing())
