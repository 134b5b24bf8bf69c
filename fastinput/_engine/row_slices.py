"""Row slices: a run of consecutive elements of an in-memory source handed on as arrays, one per leaf.

A ``from_tensor_slices`` element is one row of each of the source's arrays. Made one at a time, a row is a numpy
scalar (or a row view) per leaf, and ``batch`` stacks 1,024 of them back into arrays: ~70 us a batch of int64
scalars, the whole cost of ``from_tensor_slices(x).repeat().batch(1024)``. A dataset whose iterators can hand on
whole runs instead says so with a ``RowLayout`` (``Dataset.row_layout``); its iterators then answer
``get_next_rows(n)``: a ``Rows`` of 1 to ``n`` elements, counted as elements everywhere (metrics, saved states,
restores), so a state saved on this path restores on the element path and the other way round.

The promise a row layout makes: the dataset's iterators raise no error but ``StopIteration`` (at their end) and, in
a mix, the error of a choice out of range, after the runs before it (a stage holding runs read ahead keeps it in its
place: ``ReadAhead.pull_rows``; ``batch`` drops the runs it gathered, as at any error), every
leaf is a numeric or bool numpy array in native byte order (strings, objects, ragged and sparse leaves stay on the
element path), and ``rows_to_elements`` of a run gives exactly the elements ``get_next_chunk`` would have given.
``batch`` (``fastinput.ops.batch``) joins runs into a batch with one copy per leaf (``join``) and the mixing ops
(``fastinput.ops.directed_interleave``, ``fastinput.fused_ops.mix_and_batch``) gather a batch from per-input
buffers of runs (``RowBuffer``, ``fastinput.ops.mix_layout.take_rows``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine.memory import aligned_empty

ROW_KINDS = frozenset("biufc")
"""dtype kinds a row layout takes: bools and numbers (a batch of them is the rows' bytes, whatever their order)."""


@dataclasses.dataclass(frozen=True)
class RowLayout:
    """How a dataset's runs of rows pack into its elements (and batches): ``template`` is the elements' nest (its
    leaves are only places: ``structure.pack_as``); ``leaves`` each leaf's dtype and the shape of one row."""

    template: Any = dataclasses.field(repr=False)
    leaves: tuple[tuple[np.dtype, tuple[int, ...]], ...]

    def pack(self, leaves: list[Any]) -> Any:
        """One element or batch from its leaves, in the elements' nest."""
        return structure.pack_as(self.template, leaves)

    def matches(self, other: RowLayout) -> bool:
        """Whether runs of ``other`` pack into the same elements as these: the same nest (dict keys in the same
        order, the same tuple types), leaf dtypes and row shapes; a mix gathers rows only from inputs that do."""
        def shape(nest: Any) -> str:
            return repr(structure.map_structure(lambda _: 0, nest))

        return self.leaves == other.leaves and shape(self.template) == shape(other.template)


def layout_of(template: Any, leaves: list[Any]) -> RowLayout | None:
    """The row layout of a source slicing ``leaves`` (the flattened ``template``) along their first dimension; None
    where a leaf must stay on the element path (see the module's docstring) or there is none."""
    if not leaves or not all(type(leaf) is np.ndarray and leaf.dtype.kind in ROW_KINDS and leaf.dtype.isnative
                             and leaf.ndim >= 1 for leaf in leaves):
        return None
    return RowLayout(template, tuple((leaf.dtype, leaf.shape[1:]) for leaf in leaves))


class Rows:
    """``count`` consecutive elements as one array per leaf (their rows along the first dimension). ``owned``: the
    arrays are fresh and aligned (a gather's), so a batch of exactly these rows may be them; else they may be views
    of a source's arrays, which a batch copies."""

    __slots__ = ("leaves", "count", "owned")

    def __init__(self, leaves: list[np.ndarray], count: int, owned: bool = False) -> None:
        self.leaves = leaves
        self.count = count
        self.owned = owned

    def __len__(self) -> int:
        """Elements held: what ``get_next_chunk``'s list of them would be long."""
        return self.count


def rows_to_elements(rows: Rows, layout: RowLayout) -> list[Any]:
    """The elements of a run, as the element path makes them: numpy scalars (0-d rows) or row views, in the nest."""
    if len(rows.leaves) == 1 and not structure.is_nested(layout.template):
        return list(rows.leaves[0])
    columns = [list(leaf) for leaf in rows.leaves]
    return [layout.pack(list(row)) for row in zip(*columns)]


def gather(pull: Callable[[int], Rows], size: int) -> list[Rows]:
    """Runs from ``pull(k)`` (``k``: the rows still wanted) until they hold ``size`` rows or the input ends
    (``StopIteration`` if it gave none); an error passes through, the runs gathered dropped, as ``batch`` drops the
    elements it gathered. Asked for no more than wanted, the input is never cut: nothing is carried over."""
    pieces: list[Rows] = []
    count = 0
    while count < size:
        try:
            rows = pull(size - count)
        except StopIteration:
            if not count:
                raise
            break
        pieces.append(rows)
        count += rows.count
    return pieces


def batch_of_rows(pull: Callable[[int], Rows], size: int, drop_remainder: bool, layout: RowLayout) -> Any:
    """One batch of ``size`` rows from ``pull`` (``gather``), joined and packed in the elements' nest: fewer at the
    input's end, or ``StopIteration`` there with ``drop_remainder`` (``batch``'s rules)."""
    pieces = gather(pull, size)
    if drop_remainder and sum(map(len, pieces)) < size:
        raise StopIteration
    return layout.pack(join(pieces))


def join(pieces: list[Rows]) -> list[np.ndarray]:
    """The leaves of ``pieces`` end to end, as fresh aligned arrays (a batch's own, not views of a source)."""
    if len(pieces) == 1 and pieces[0].owned:
        return pieces[0].leaves
    count = sum([piece.count for piece in pieces])
    out = []
    for i, first in enumerate(pieces[0].leaves):
        leaf = aligned_empty((count, *first.shape[1:]), first.dtype)
        if len(pieces) == 1:
            np.copyto(leaf, first)
        else:
            np.concatenate([piece.leaves[i] for piece in pieces], out=leaf)
        out.append(leaf)
    return out


class RowBuffer:
    """An input's rows pulled ahead by a mix: one array per leaf (empty ones of the layout's at first; a source's
    views until a second run is added, then one concatenation of what is left and the new run), always C-contiguous
    (``gather_rows`` copies a row's bytes at a time: a run of a Fortran-ordered or strided source array is copied
    when it comes). Its length counts rows, as a list of elements would."""

    __slots__ = ("leaves", "count")

    def __init__(self, layout: RowLayout) -> None:
        self.leaves = [np.empty((0, *shape), dtype) for dtype, shape in layout.leaves]
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def extend(self, rows: Rows) -> None:
        """Add a run after the rows held."""
        if not self.count:
            self.leaves = [leaf if leaf.flags.c_contiguous else np.ascontiguousarray(leaf) for leaf in rows.leaves]
        else:  # into C-ordered arrays: left to itself, a concatenation of a row held (C- and Fortran-contiguous at
            # once) and a run of a Fortran-ordered source is Fortran-ordered (differential seed 20591)
            self.leaves = [np.concatenate([held, new], out=np.empty((len(held) + len(new), *held.shape[1:]),
                                                                    held.dtype))
                           for held, new in zip(self.leaves, rows.leaves)]
        self.count += rows.count

    def drop_front(self, count: int) -> None:
        """Forget the first ``count`` rows (handed out already)."""
        if count:
            self.leaves = [leaf[count:] for leaf in self.leaves]
            self.count -= count

    def row_nbytes(self) -> int:
        """Bytes of one row, all leaves (a mix sizes its pulls by it)."""
        return sum(leaf.itemsize * int(np.prod(leaf.shape[1:], dtype=np.int64)) for leaf in self.leaves)
