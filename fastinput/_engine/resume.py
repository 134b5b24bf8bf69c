"""Restoring a stage that held part of what it pulled: drop again what it had handed on.

A sequential stage may hold items of its input it has not handed on yet (the rest of a chunk after an
error, the rows of a batch being unbatched, a zip's read-ahead). It saves no such item: it saves its input's
state from *before* the pull that brought them and how many of those units it had used
(``fastinput._engine.checkpoint``). Restored, it puts its input back there and drops that many units again:
``drop_units``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastinput import errors
from fastinput._engine.buffer import Failure
from fastinput._engine.iterator import DatasetIterator
from fastinput._engine.row_slices import RowBuffer
from fastinput._engine.rows import ELEMENTS, Units


def _failing_as_entry(get: Callable[[int], Any], n: int) -> Any:
    """``get(n)`` (an input's chunk or run), or the error it raised as a ``Failure``: an entry of its own in the
    input's place. ``StopIteration`` and a cancellation pass through."""
    try:
        return get(n)
    except (StopIteration, errors.CancelledError):
        raise
    except Exception as exc:
        return Failure(exc)


def drop_units(source: DatasetIterator, count: int, units: Units = ELEMENTS,
               seen: Callable[[list[Any]], None] | None = None) -> list[Any]:
    """Pull ``count`` units (elements, or rows of row blocks) from ``source`` and drop them, after showing them to
    ``seen`` if given (a cache records them); returns the items pulled past them (the rest of a cut block), if any.

    An error the input raises on the way takes one unit, as it took one item where it was first met (a zip's
    column holds it in its row). ``StopIteration`` passes through: the input ended sooner than when it was saved.
    """
    while count > 0:
        try:
            chunk = source.get_next_chunk(units.request(count))
        except (StopIteration, errors.CancelledError):
            raise
        except Exception:
            count -= 1
            continue
        dropped, rest = units.split(chunk, count)
        if seen is not None:
            seen(dropped)
        count -= units.count(dropped)
        if rest:
            return rest
    return []


class InputMarks:
    """Takes an input's state before each pull, for a stage that may come to hold part of what it pulled.

    An input that cannot save (``UnimplementedError``) is asked once only: pulling must not slow down, nor
    fail, in a pipeline that is never saved. The stage then cannot save while it holds such a part
    (``marked`` says so), and can whenever it holds none.
    """

    __slots__ = ("_source", "_works")

    def __init__(self, source: DatasetIterator) -> None:
        self._source = source
        self._works = True

    def take(self) -> dict[str, Any] | None:
        """The input's state now (None if it cannot save)."""
        if self._works:
            try:
                return self._source.get_state()
            except errors.UnimplementedError:
                self._works = False
        return None


def marked(source: DatasetIterator, mark: dict[str, Any] | None) -> dict[str, Any]:
    """What a stage saves for ``source`` while it holds part of a pull from it: ``mark``, the state ``InputMarks``
    took before that pull; ``UnimplementedError`` if the input could not save then."""
    if mark is None:
        source.get_state()  # raises the input's own reason, if it still cannot save
        raise errors.UnimplementedError(f"get_state: {source.name} could not save its state before the chunk its "
                                        "consumer holds part of")
    return mark


class ReadAhead:
    """Where a stage stands in inputs it holds entries of, read ahead (a zip's columns, a mix's per-input buffers).

    For each input: its state taken at a pull that found the stage holding none of its entries (a mark), and how
    many entries (elements and errors) it has pulled since. Saved (``states``), an input holding entries is that
    mark and the entries used since; one holding none is its current state. Restored (``restore``), the stage drops
    those entries again before its first pull (``catch_up``). A stage that tops its entries up before they run out
    would keep its first mark for good, and a restore would replay everything since: with ``refresh_after``, an
    input whose mark is that many entries old is ``stale``, and the stage lets its entries run out before it pulls
    again, so that the pull takes a new mark (a restore replays fewer than ``refresh_after`` plus what it held).
    """

    def __init__(self, sources: list[DatasetIterator], refresh_after: int | None = None) -> None:
        self._sources = sources
        self._marks = [InputMarks(source) for source in sources]
        self._mark: list[dict[str, Any] | None] = [None] * len(sources)
        self._pulled = [0] * len(sources)
        self._skip = [0] * len(sources)  # after a restore: entries of each input used before the save
        self._refresh_after = refresh_after

    def stale(self, index: int) -> bool:
        """Whether input ``index``'s mark is ``refresh_after`` entries old or more (see the class docstring)."""
        return self._refresh_after is not None and self._pulled[index] >= self._refresh_after

    def pull(self, index: int, held: list[Any] | Any, n: int) -> None:
        """Pull up to ``n`` entries of input ``index`` onto ``held`` (the stage's list or deque of its entries): its
        elements, or an error as a ``Failure`` entry in its place; ``StopIteration`` at the input's end."""
        self._mark_if_empty(index, held)
        chunk = _failing_as_entry(self._sources[index].get_next_chunk, n)
        if type(chunk) is Failure:
            chunk = [chunk]
        held.extend(chunk)
        self._pulled[index] += len(chunk)

    def pull_rows(self, index: int, held: RowBuffer, n: int) -> Failure | None:
        """``pull`` from an input of runs of rows (``get_next_rows``) onto its ``RowBuffer``: a run of up to ``n``
        elements; an error (a mix of rows raises one where a choice is out of range, after the rows before it) is
        returned as a ``Failure``, which comes after the rows held (a RowBuffer holds rows only)."""
        self._mark_if_empty(index, held)
        rows = _failing_as_entry(self._sources[index].get_next_rows, n)
        if type(rows) is Failure:
            self._pulled[index] += 1
            return rows
        held.extend(rows)
        self._pulled[index] += len(rows)
        return None

    def _mark_if_empty(self, index: int, held: Any) -> None:
        """Take input ``index``'s mark when the stage holds none of its entries: a pull comes next."""
        if not held:
            self._mark[index], self._pulled[index] = self._marks[index].take(), 0

    def states(self, held: list[int]) -> tuple[list[int], list[dict[str, Any]]]:
        """What to save, the stage holding ``held[i]`` entries of input ``i``: the entries to drop after each
        input's saved state, and those states."""
        skip, states = [], []
        for index, (count, source) in enumerate(zip(held, self._sources)):
            if count:
                skip.append(self._pulled[index] - count)
                states.append(marked(source, self._mark[index]))
            else:
                skip.append(self._skip[index])
                states.append(source.get_state())
        return skip, states

    def restore(self, skip: list[int]) -> None:
        self._skip = list(skip)

    def catch_up(self) -> None:
        """After a restore: drop the entries each input had given before the save."""
        if any(self._skip):
            for source, count in zip(self._sources, self._skip):
                drop_units(source, count)
            self._skip = [0] * len(self._sources)
