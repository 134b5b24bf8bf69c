"""Positions: where an element came from, so that a buffer can save that instead of the element, and read it again.

A shuffle buffer of 10,000 images saved as values is gigabytes; saved as (file, byte offset) pairs it is a few
hundred kilobytes. A stage that can say where each element it hands out came from, and read elements again
from those places, is ``Positioned``:

- ``track_positions()``: from now on, record the position of every element handed out (called before the first
  element); returns False where the stage cannot (a compressed file has no byte offset to seek to);
- ``take_positions()``: the positions of the elements the last ``get_next_chunk`` / ``get_next`` call handed out,
  in order, None for an element whose place is not known (the stage may hand out some of each);
- ``reread(positions)``: the elements at those positions, read again (on a fresh iterator: no state of its own
  is used or changed).

A position is a tuple of JSON scalars. A reader's is its own place (a TFRecord file: the record's byte offset);
a stage that reads from several inner datasets (interleave) prefixes the key of the inner dataset
(``element_key`` of the input element it was made from) to the inner dataset's position, and rereads by making
that dataset again. So a record of ``interleave(TFRecordDataset)`` is ``(outer key, inner key, offset)``.

``encode_positions`` / ``decode_positions`` store a list of positions compactly: the distinct prefixes once, then
a prefix number and a last item per position.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from fastinput._engine.checkpoint import decode_value, encode_value

Position = tuple[Any, ...]
"""Where one element came from: JSON scalars (strings and integers), outermost stage first."""


class Positioned(ABC):
    """A stage that can say where each element it hands out came from and read elements again from there."""

    @abstractmethod
    def track_positions(self) -> bool:
        """Record positions from now on (idempotent); False if this stage cannot (``take_positions`` gives Nones)."""

    @abstractmethod
    def take_positions(self) -> list[Position | None]:
        """The positions of the elements the last ``get_next_chunk`` handed out, in order (None: not known)."""

    @abstractmethod
    def reread(self, positions: list[Position]) -> list[Any]:
        """The elements at ``positions`` (all known), read again, in the same order."""


def tracks_positions(stage: Any) -> bool:
    """Whether ``stage`` is ``Positioned`` and now records positions (``track_positions`` called)."""
    return isinstance(stage, Positioned) and stage.track_positions()


def element_key(element: Any) -> str:
    """A string that names an input element exactly (the prefix of positions read from the dataset it opens)."""
    return json.dumps(encode_value(element), separators=(",", ":"))


def element_of_key(key: str) -> Any:
    """The element ``element_key`` named."""
    return decode_value(json.loads(key))


def reread_grouped(positions: list[Position], read_group: Callable[[Any, list[Position]], list[Any]]) -> list[Any]:
    """Elements at ``positions``, read one group of equal first items at a time: ``read_group(first, rests)`` reads
    the elements at the rests of the positions in one group (in that order); they come back in ``positions``' order."""
    groups: dict[Any, list[int]] = {}
    for index, position in enumerate(positions):
        groups.setdefault(position[0], []).append(index)
    out: list[Any] = [None] * len(positions)
    for first, indices in groups.items():
        for index, element in zip(indices, read_group(first, [positions[i][1:] for i in indices]), strict=True):
            out[index] = element
    return out


def with_key(key: Any, positions: list[Position | None]) -> list[Position | None]:
    """Inner positions prefixed by the key of the dataset they are in (all None where ``key`` is None)."""
    if key is None:
        return [None] * len(positions)
    prefix = (key,)
    return [None if position is None else prefix + position for position in positions]


def encode_positions(positions: list[Position | None]) -> dict[str, list[Any]]:
    """Positions (None where unknown) as a compact JSON-able dict: distinct prefixes once."""
    prefixes: dict[tuple[Any, ...], int] = {}
    numbers: list[int] = []
    lasts: list[Any] = []
    for position in positions:
        if position is None:
            numbers.append(-1)
            lasts.append(None)
            continue
        numbers.append(prefixes.setdefault(tuple(position[:-1]), len(prefixes)))
        lasts.append(position[-1])
    return {"prefixes": [list(prefix) for prefix in prefixes], "prefix": numbers, "last": lasts}


def decode_positions(encoded: dict[str, list[Any]]) -> list[Position | None]:
    """The positions ``encode_positions`` encoded."""
    prefixes = [tuple(prefix) for prefix in encoded["prefixes"]]
    pairs = zip(encoded["prefix"], encoded["last"], strict=True)
    return [None if number < 0 else (*prefixes[number], last) for number, last in pairs]
