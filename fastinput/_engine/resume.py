"""Restoring a stage that held part of what it pulled: drop again what it had handed on.

A sequential stage may hold items of its input it has not handed on yet (the rest of a chunk after an
error, the rows of a batch being unbatched, a zip's read-ahead). It saves no such item: it saves its input's
state from *before* the pull that brought them and how many of those units it had used
(``fastinput._engine.checkpoint``). Restored, it puts its input back there and drops that many units again:
``drop_units``.
"""

from __future__ import annotations

from typing import Any

from fastinput import errors
from fastinput._engine.iterator import DatasetIterator
from fastinput._engine.rows import ELEMENTS, Units


def drop_units(source: DatasetIterator, count: int, units: Units = ELEMENTS) -> list[Any]:
    """Pull ``count`` units (elements, or rows of row blocks) from ``source`` and drop them; returns the items
    pulled past them (the rest of a cut block), if any.

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
        count -= units.count(dropped)
        if rest:
            return rest
    return []
