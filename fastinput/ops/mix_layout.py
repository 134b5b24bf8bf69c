"""The mixing ops' layout step: the elements a run of choices names, taken from per-input lists at their cursors.

``sample_from_datasets`` / ``choose_from_datasets`` (``fastinput.ops.directed_interleave``) hold, per input, the
elements pulled ahead in a list, and a cursor: the list's first ``cursors[i]`` entries are handed out already.
``take(choices, buffers, cursors)`` hands out, in the order of ``choices``, each named input's next element, and
moves the cursors past them (None left in their places: the list's reference moves, and the element is not touched
again when the list's used front is dropped); where an input holds too few, it returns None and changes nothing (the
caller pulls more, or deals with a choice out of range). Nothing is deleted from a list here: the caller drops its
used front when it pulls more (``drop_front``), so a request costs no move of what is left. The C extension
``_mixing`` does it in one pass (a pointer copy per element); where it is not built (see ``setup.py``), numpy does the
same: a stable argsort of the choices scatters the inputs' runs into place. Given a batch's object array ``out``, a
batch of bytes is written straight into it (the fused ``sample_from_datasets -> batch``,
``fastinput.fused_ops.mix_and_batch``). Over inputs of runs of rows (``fastinput._engine.row_slices``),
``take_rows`` gathers the rows a run of choices names from per-input arrays into a batch's own, a row's bytes at a
time (``gather_rows`` in C; numpy's argsort and scatter where it is not built). The same extension draws the choices
among equal weights from a bit generator's raw bits (``draw_bits``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput._engine.memory import aligned_empty
from fastinput._engine.row_slices import RowBuffer, Rows

try:
    from fastinput.ops import _mixing
except ImportError:  # not built: take_numpy does the same, slower
    _mixing = None


def take(choices: np.ndarray, buffers: list[list[Any]], cursors: np.ndarray,
         out: np.ndarray | None = None) -> list[Any] | int | None:
    """The elements ``choices`` (int64 indices into ``buffers``) name, in their order, from each list at its cursor
    (``cursors``: int64, one per list, moved past the elements taken, which None replaces in the list). With
    ``out`` (an object array of at least ``len(choices)``: what is left of a batch), written into its first slots if
    every one is a ``bytes`` object, as ``batch`` lays out a batch of bytes, and their count returned; else a list.
    None, nothing changed, if a choice is out of range or a list holds fewer elements past its cursor than chosen."""
    if _mixing is not None:
        return _mixing.take(choices, buffers, cursors, out)
    return take_numpy(choices, buffers, cursors, out)


def drop_front(buffer: list[Any], count: int) -> None:
    """``del buffer[:count]``, the entries taken (None); in C the list keeps its room for the next pull (no
    shrinking and growing again) and None's references go at once."""
    if _mixing is not None:
        _mixing.drop_front(buffer, count)
    else:
        drop_front_numpy(buffer, count)


def drop_front_numpy(buffer: list[Any], count: int) -> None:
    """``drop_front`` where the C extension is not built."""
    del buffer[:count]


def kernels() -> tuple[Callable[..., list[Any] | int | None], Callable[[list[Any], int], None]]:
    """``take`` and ``drop_front`` themselves: the C extension's functions where it is built, else the fallbacks.
    A mix's iterator takes them once, and calls them with no Python function between it and C (a batch costs one
    or two takes and about one drop per input pull)."""
    if _mixing is not None:
        return _mixing.take, _mixing.drop_front
    return take_numpy, drop_front_numpy


def draw_bits(bit_generator: np.random.BitGenerator, shift: np.uint32, n: int) -> np.ndarray:
    """``n`` (even) indices from ``n // 2`` raw 64-bit outputs of ``bit_generator``: each output's low, then high
    32 bits, shifted right by ``shift`` (``fastinput.ops.choices``'s draws among equal weights); in C, one call
    instead of numpy's five."""
    if _mixing is not None:
        index = np.empty(n, dtype=np.int64)
        _mixing.draw_bits(bit_generator.capsule, int(shift), index)
        return index
    return (bit_generator.random_raw(n // 2).view(np.uint32) >> shift).astype(np.int64)


def take_rows(choices: np.ndarray, buffers: list[RowBuffer], cursors: np.ndarray,
              out: np.ndarray | None = None) -> Rows | None:
    """``take`` over inputs that hand on runs of rows (``fastinput._engine.row_slices``): the rows ``choices`` name,
    gathered leaf by leaf into fresh aligned arrays (``out`` is not used). None, nothing changed, where ``take``
    returns None. In C, a copy of each row's bytes straight into place; else ``take_rows_numpy``."""
    if _mixing is None:
        return take_rows_numpy(choices, buffers, cursors)
    leaves = []
    last = len(buffers[0].leaves) - 1
    for i, first in enumerate(buffers[0].leaves):
        leaf = aligned_empty((len(choices), *first.shape[1:]), first.dtype)
        if not _mixing.gather_rows(choices, [buffer.leaves[i] for buffer in buffers], cursors, leaf, i == last):
            return None  # (only ever at the first leaf: the others hold as many rows)
        leaves.append(leaf)
    return Rows(leaves, len(choices), owned=True)


def take_rows_numpy(choices: np.ndarray, buffers: list[RowBuffer], cursors: np.ndarray) -> Rows | None:
    """``take_rows`` in numpy: each input's run concatenated, then scattered to where the stably sorted choices
    list them."""
    count = len(buffers)
    if len(choices) and (choices.min() < 0 or choices.max() >= count):
        return None
    counts = np.bincount(choices, minlength=count)
    held = np.fromiter(map(len, buffers), dtype=np.int64, count=count) - cursors
    if (counts > held).any():
        return None
    starts = cursors.tolist()
    cursors += counts
    order = np.argsort(choices.astype(np.int8 if count <= 127 else np.int32), kind="stable")  # 8 bits: a radix sort
    leaves = []
    for i, first in enumerate(buffers[0].leaves):
        runs = [buffer.leaves[i][start:start + int(n)] for buffer, start, n in zip(buffers, starts, counts)]
        leaf = aligned_empty((len(choices), *first.shape[1:]), first.dtype)
        leaf[order] = np.concatenate(runs)
        leaves.append(leaf)
    return Rows(leaves, len(choices), owned=True)


def take_numpy(choices: np.ndarray, buffers: list[list[Any]], cursors: np.ndarray,
               out: np.ndarray | None = None) -> list[Any] | int | None:
    """``take`` in numpy: the runs each input gives, scattered to where the stably sorted choices list them."""
    if len(choices) and (choices.min() < 0 or choices.max() >= len(buffers)):
        return None
    counts = np.bincount(choices, minlength=len(buffers))
    held = np.fromiter(map(len, buffers), dtype=np.int64, count=len(buffers)) - cursors
    if (counts > held).any():
        return None
    runs = []
    for index in np.flatnonzero(counts).tolist():
        buffer, start, stop = buffers[index], int(cursors[index]), int(cursors[index] + counts[index])
        runs.append(buffer[start:stop])
        buffer[start:stop] = [None] * (stop - start)
    cursors += counts
    if len(runs) <= 1:
        elements = runs[0] if runs else []
    else:
        flat = np.fromiter(itertools.chain.from_iterable(runs), dtype=object, count=len(choices))
        elements = np.empty(len(choices), dtype=object)
        narrow = choices.astype(np.int8 if len(buffers) <= 127 else np.int32)  # 8 bits: a radix sort
        elements[np.argsort(narrow, kind="stable")] = flat
        elements = elements.tolist()
    if out is not None and all(type(element) is bytes for element in elements):
        out[:len(elements)] = elements
        return len(elements)
    return elements
