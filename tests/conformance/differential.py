"""Seeded random pipelines run through tf.data and fastinput, compared element by element.

Each seed builds a small random chain (tens to hundreds of elements) of sources and ops, with errors
injected in map and filter functions, from a model of the element types that keeps every pipeline
valid for tf.data. Sources are int64 scalars and vectors, and typed ``from_tensor_slices`` of numeric and
bool arrays (every dtype of ``ROW_DTYPES``, rows of rank 0-2, now and then a dimension of size 0, tuple and
dict nests, arrays laid out non-contiguous or byte-swapped: ``pipeline.Laid``); two in five seeds start with
a *rows chain* (``Generator.rows_chain``), the stages fastinput's rows path (``fastinput._engine.row_slices``)
passes or declines: ``repeat``, a ``take``/``skip``/``shard``/``map``/``filter`` between, a
``choose_from_datasets`` over several such sources (choices out of range, inputs ending), then ``batch``.
(``sample_from_datasets`` is left out: it draws its own random numbers, so tf.data is no element-by-element
oracle for it; ``tests/conformance/sample.py`` checks it against tf.data choosing what it chose.) The generator
changed so in session 16: a seed names another pipeline than before. Since session 18 one in ten pipelines that
end in order and yield single tensors ends with ``sparse_batch`` (the pipeline before it unchanged, so a seed names
the same pipeline or that pipeline with a sparse batch after it). Order-sensitive ops stop at a shuffle or a
``deterministic=False`` stage: such a stage comes last (with element-wise maps and a repeat after it) and is
compared per epoch as multisets.

    python -m tests.conformance.differential --seeds 5000 [--start N] [--no-minimise]

prints, for each mismatching seed, the pipeline as code (minimised: steps and sizes removed while the
mismatch remains) and both outputs, then a summary grouped by the minimised pipeline's ops.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.conformance.differences import (
    SHUFFLE_REPEAT_ERRORS,
    interleave_input_errors,
    stop_iteration_at_an_input_start,
)
from tests.conformance.functions import AddConst, FailAt, First, Gen, Mod, Pair, Sum, Vec
from tests.conformance.minimise import SeedTimeout, minimise, signature, time_limit
from tests.conformance.oracle import (
    Mismatch,
    check,
)
from tests.conformance.pipeline import (
    AUTOTUNE,
    LAYOUTS,
    CacheFile,
    DatasetFn,
    Laid,
    P,
    Pipeline,
    Spec,
    element_range,
    element_tensors,
)

MAX_ELEMENTS = 200
"""Upper bound on the elements of any random pipeline (keeps a seed to milliseconds)."""

# No random pipeline makes an empty vector (``from_tensors`` of 1 to 4 numbers, ``Vec(1)``): TensorFlow 2.21's
# unbatch crashes the process (SIGSEGV) on a batch of empty vectors, e.g.
# ``tf.data.Dataset.from_tensors(np.zeros((1, 0), np.int64)).unbatch()``.


ROW_DTYPES = ("int64", "float16", "float32", "float64", "bool", "uint8", "int8", "int16", "int32", "uint32", "uint64",
              "complex64", "complex128")
"""The dtypes of the typed sources' arrays."""


@dataclasses.dataclass(frozen=True)
class LeafType:
    """One tensor of every element: its rank, whether its shape is the same in every element, its dtype, and whether
    a dimension may be 0 (TensorFlow 2.21 crashes unbatching such a tensor: the generator never does)."""

    rank: int
    fixed: bool = True
    dtype: str = "int64"
    empty: bool = False

    def batched(self, fixed: bool) -> LeafType:
        return dataclasses.replace(self, rank=self.rank + 1, fixed=self.fixed and fixed)


@dataclasses.dataclass(frozen=True)
class RowLeaf:
    """One array of a typed source: its dtype and the shape of one row."""

    dtype: str
    shape: tuple[int, ...]

    def type(self) -> LeafType:
        return LeafType(len(self.shape), dtype=self.dtype, empty=0 in self.shape)


@dataclasses.dataclass(frozen=True)
class State:
    """A pipeline being generated, with what the generator knows of its elements."""

    pipeline: Pipeline
    structure: Any  # LeafType or a tuple or dict of them (nested)
    length: int  # an upper bound on the number of elements
    unbatchable: bool = False  # every leaf has rank >= 1 and all share the first dimension
    recipe: Any = None  # the RowLeaf nest of a typed source whose elements these are (for more sources like it)

    def then(self, pipeline: Pipeline, **changes: Any) -> State:
        return dataclasses.replace(self, pipeline=pipeline, **changes)


def _leaves(structure: Any) -> list[Any]:
    """The leaves in ``tf.nest``'s order (a dict's by sorted key)."""
    if isinstance(structure, dict):
        return [leaf for key in sorted(structure) for leaf in _leaves(structure[key])]
    if isinstance(structure, tuple):
        return [leaf for s in structure for leaf in _leaves(s)]
    return [structure]


def _map_leaves(structure: Any, fn: Callable[[Any], Any]) -> Any:
    if isinstance(structure, dict):
        return {key: _map_leaves(value, fn) for key, value in structure.items()}
    if isinstance(structure, tuple):
        return tuple(_map_leaves(s, fn) for s in structure)
    return fn(structure)


def _first(structure: Any) -> LeafType:
    return _leaves(structure)[0]


def _same(a: Any, b: Any) -> bool:
    """Whether two structures are alike (dicts whatever their key order, as tf.data sees them)."""
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and sorted(a) == sorted(b) and all(
            _same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def _int_scalar(leaf: LeafType) -> bool:
    """An int64 scalar: what ``range(x % k)`` and ``Vec`` take."""
    return leaf == LeafType(0)


def _ranges_over(structure: Any) -> bool:
    """Whether ``element_range``'s ``range(x % k)`` takes these elements: ``x``, their first component (first of
    the first, in tuples; a dict has none), is an int64 scalar."""
    while isinstance(structure, tuple):
        structure = structure[0]
    return isinstance(structure, LeafType) and _int_scalar(structure)


def _summable(leaf: LeafType) -> bool:
    """Whether ``Sum`` gives both libraries' sum: not of bools (TensorFlow has none) nor float16 (TensorFlow adds
    them in float16 one by one, numpy pairwise: whole values past 2048 round apart)."""
    return leaf.dtype not in ("bool", "float16")


def _modular(leaf: LeafType) -> bool:
    """Whether ``Mod`` takes it (a sum, as ``Sum``, and its floormod: not of complex numbers)."""
    return _summable(leaf) and not leaf.dtype.startswith("complex")


def _mix_type(a: Any, b: Any) -> Any:
    """The structure of a mix of the rows of recipes ``a`` and ``b`` (alike but for some row shapes)."""
    if isinstance(a, dict):
        return {key: _mix_type(a[key], b[key]) for key in a}
    if isinstance(a, tuple):
        return tuple(map(_mix_type, a, b))
    return dataclasses.replace(a.type(), fixed=a.shape == b.shape, empty=0 in a.shape + b.shape)


def _merged(a: Any, b: Any) -> Any:
    """The structure of a mix of elements of structures ``a`` and ``b`` (nested alike)."""
    if isinstance(a, dict):
        return {key: _merged(a[key], b[key]) for key in a}
    if isinstance(a, tuple):
        return tuple(map(_merged, a, b))
    return dataclasses.replace(a, fixed=a.fixed and b.fixed, empty=a.empty or b.empty)


def _unbatchable(structure: Any) -> bool:
    """Every leaf has a first dimension to split (all alike), and none a dimension of size 0."""
    leaves = _leaves(structure)
    return all(leaf.rank >= 1 and not leaf.empty for leaf in leaves)


def _tf_refuses_to_concatenate(s: State) -> bool:
    """TensorFlow 2.21 cannot concatenate a mix whose elements are not scalars (a documented difference,
    ``differences.concatenated_mix``): the generator does not build it."""
    code = repr(s.pipeline)
    mixed = "choose_from_datasets" in code or "sample_from_datasets" in code  # the sample checker's tf.data chooses
    return mixed and any(leaf.rank for leaf in _leaves(s.structure))


class Generator:
    """Random pipelines for one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def choice(self, options: list[Any]) -> Any:
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def npc(self) -> Any:
        return self.choice([None, None, 1, 2, 3, AUTOTUNE])

    def fail_values(self) -> tuple[int, ...]:
        return tuple(sorted(self.rng.sample(range(-5, 30), self.choice([1, 1, 2, 3]))))

    # -- sources ---------------------------------------------------------------------------------------------
    def source(self) -> State:
        n = self.rng.randint(0, 25)
        kind = self.choice(["range", "range", "range_step", "slices", "slices_2d", "slices_tuple", "tensors",
                            "generator", "typed", "typed"])
        if kind == "typed":
            return self.typed_source(self.recipe(), n)
        scalar = LeafType(0)
        if kind == "range":
            return State(P.range(n), scalar, n)
        if kind == "range_step":
            start, step = self.rng.randint(-5, 5), self.choice([1, 2, 3, -1])
            stop = start + step * n
            return State(P.range(start, stop, step), scalar, n)
        if kind == "slices":
            return State(P.from_tensor_slices(np.arange(n, dtype=np.int64) * 3 - 5), scalar, n)
        if kind == "slices_2d":
            k = self.rng.randint(1, 3)
            return State(P.from_tensor_slices(np.arange(n * k, dtype=np.int64).reshape(n, k)), LeafType(1), n, True)
        if kind == "slices_tuple":
            a = np.arange(n, dtype=np.int64)
            return State(P.from_tensor_slices((a, a * 10)), (scalar, scalar), n)
        if kind == "tensors":  # never an empty vector: TensorFlow 2.21 crashes unbatching (n, 0) tensors
            k = self.rng.randint(1, 4)
            return State(P.from_tensors(np.arange(k, dtype=np.int64)), LeafType(1), 1, True)
        fail_at = self.rng.randint(0, n) if self.chance(0.3) and n else None
        return State(P.from_generator(Gen(n, fail_at=fail_at), Spec((), "int64")), scalar, n)

    def row_leaf(self) -> RowLeaf:
        """A dtype and a row shape of rank 0 to 2 (a dimension of size 0 now and then)."""
        rank = self.choice([0, 0, 1, 1, 2])
        return RowLeaf(self.choice(ROW_DTYPES), tuple(0 if self.chance(0.08) else self.rng.randint(1, 3)
                                                     for _ in range(rank)))

    def recipe(self) -> Any:
        """The arrays of a typed source: one, a tuple (maybe nested) or a dict (keys in any order) of ``RowLeaf``."""
        kind = self.choice(["leaf", "leaf", "tuple", "dict"])
        if kind == "leaf":
            return self.row_leaf()
        if kind == "tuple":
            parts = [self.row_leaf() for _ in range(self.rng.randint(1, 3))]
            if self.chance(0.3):
                parts.append((self.row_leaf(), self.row_leaf()))
            # not a 1-tuple: tf.data hands its one component to a function as a bare tensor, so a function returning
            # its argument (``FailAt``) changes the structure, which fastinput's declared output (its input's) keeps
            return tuple(parts) if len(parts) > 1 else parts[0]
        keys = self.rng.sample(["a", "b", "c", "d"], self.rng.randint(1, 3))
        return {key: self.row_leaf() if self.chance(0.8) else (self.row_leaf(), self.row_leaf()) for key in keys}

    def row_array(self, leaf: RowLeaf, n: int) -> Any:
        """``n`` rows of ``leaf``: small whole values (so sums stay exact in float16 and a modulo means the same in
        both libraries), maybe laid out otherwise (``Laid``)."""
        size = n * int(np.prod(leaf.shape, dtype=np.int64))
        base = (np.arange(size, dtype=np.int64) * self.choice([1, 3, 7]) + self.rng.randint(0, 9)) % 23 - 5
        kind = np.dtype(leaf.dtype).kind
        if kind == "b":
            values = base % 3 == 0
        elif kind == "u":
            values = base + 5
        elif kind == "c":
            values = base + 1j * (base % 4)
        else:
            values = base
        array = values.astype(leaf.dtype).reshape(n, *leaf.shape)
        return Laid(array, self.choice(LAYOUTS)) if self.chance(0.25) and size else array

    def typed_source(self, recipe: Any, n: int, reorder: bool = False) -> State:
        """``from_tensor_slices`` of ``n`` rows of ``recipe``'s arrays (a dict's keys shuffled if ``reorder``)."""
        def arrays(nest: Any) -> Any:
            if isinstance(nest, dict):
                keys = list(nest)
                if reorder:
                    self.rng.shuffle(keys)
                return {key: arrays(nest[key]) for key in keys}
            if isinstance(nest, tuple):
                return tuple(arrays(part) for part in nest)
            return self.row_array(nest, n)

        structure = _map_leaves(recipe, RowLeaf.type)
        firsts = {leaf.shape[:1] for leaf in _leaves(recipe)}
        return State(P.from_tensor_slices(arrays(recipe)), structure, n,
                     unbatchable=len(firsts) == 1 and _unbatchable(structure), recipe=recipe)

    # -- the rows path: typed sources, repeat, a mix, batch ------------------------------------------------------
    def rows_chain(self) -> State:
        """A typed source and the stages the rows path passes (``repeat``, ``choose_from_datasets``, ``batch``) or
        declines (a ``take``, ``skip``, ``shard``, ``map`` or ``filter`` between them), mostly ending in a batch."""
        s = self.typed_source(self.recipe(), self.rng.randint(0, 25))
        if self.chance(0.4):
            s = self.repeat_rows(s)
        if self.chance(0.25):
            s = self.step_from(s, ["take", "skip", "shard", "map_add", "map_fail", "filter", "prefetch"])
        if self.chance(0.5):
            s = self.mix_rows(s)
        if self.chance(0.25) and s.length * 2 <= MAX_ELEMENTS:
            s = self.repeat_rows(s)
        if self.chance(0.75) and all(leaf.fixed for leaf in _leaves(s.structure)):
            s = self.op_batch(s, 0, size=self.rng.randint(1, 9))
        return s

    def step_from(self, s: State, names: list[str]) -> State:
        """One of the ops ``names`` that tf.data accepts for ``s``'s elements."""
        ops = [name for name in names if name in self.applicable(s, 2)]
        return getattr(self, f"op_{self.choice(ops)}")(s, 2) if ops else s

    def repeat_rows(self, s: State) -> State:
        """``repeat(k)``, k > 1, or ``repeat()`` cut by a take: epochs end inside the batches after it."""
        if self.chance(0.3):
            n = self.rng.randint(0, 3 * max(s.length, 1))
            return s.then(s.pipeline.repeat().take(n), length=n)
        count = self.choice([2, 3])
        return s.then(s.pipeline.repeat(count), length=s.length * count)

    def mix_rows(self, s: State) -> State:
        """``choose_from_datasets`` over ``s`` and 1-2 typed sources like it (another length; a dict's keys in
        another order; now and then a row shape of its own, so the rows do not pack alike; maybe a step the rows
        path declines), by choices that now and then name no input; inputs end before the choices do."""
        inputs, structure, unbatchable = [s], s.structure, s.unbatchable
        for _ in range(self.rng.randint(1, 2)):
            recipe = s.recipe
            if recipe is None or not _same(s.structure, _map_leaves(recipe, RowLeaf.type)):
                other = s.then(s.pipeline.map(AddConst(100)))
            else:
                if self.chance(0.15):
                    recipe = _map_leaves(recipe, lambda leaf: RowLeaf(leaf.dtype, leaf.shape[:-1] + (4,))
                                         if leaf.shape and self.chance(0.5) else leaf)
                    structure, unbatchable = _merged(structure, _mix_type(s.recipe, recipe)), False
                other = self.typed_source(recipe, self.rng.randint(0, 25), reorder=self.chance(0.3))
                if self.chance(0.3) and other.length * 2 <= MAX_ELEMENTS:
                    other = self.repeat_rows(other)
                if self.chance(0.2):
                    other = self.step_from(other, ["take", "skip", "map_add"])
            inputs.append(other)
            unbatchable = unbatchable and other.unbatchable
        n = self.rng.randint(0, 40)
        k = len(inputs)
        choices = [self.choice([-1, k]) if self.chance(0.03) else self.rng.randrange(k) for _ in range(n)]
        selector = P.from_tensor_slices(np.array(choices, np.int64))
        pipeline = P.choose_from_datasets(tuple(i.pipeline for i in inputs), selector,
                                          stop_on_empty_dataset=self.chance(0.5))
        return State(pipeline, structure, n, unbatchable=unbatchable, recipe=s.recipe)

    # -- one op ---------------------------------------------------------------------------------------------------
    def step(self, s: State, depth: int) -> State:
        """``s`` with one random op appended (one that tf.data accepts for these elements)."""
        ops = self.applicable(s, depth)
        name = self.choice(ops)
        return getattr(self, f"op_{name}")(s, depth)

    def applicable(self, s: State, depth: int) -> list[str]:
        leaves = _leaves(s.structure)
        first = _first(s.structure)
        ops = ["map_add", "map_fail", "map_fail", "filter_fail", "take", "skip", "shard", "prefetch", "cache"]
        if _modular(first):
            ops.append("filter")
        if isinstance(s.structure, LeafType) and s.structure.dtype != "bool":
            ops.append("map_pair")
        elif isinstance(s.structure, tuple):
            ops.append("map_first")
        if _int_scalar(s.structure):
            ops.append("map_vec")
        if first.rank >= 1 and _summable(first):
            ops.append("map_sum")
        if all(leaf.fixed for leaf in leaves) and s.length <= MAX_ELEMENTS:
            ops += ["batch", "batch", "map_and_batch"]
        ops.append("padded_batch")
        if s.unbatchable:
            ops += ["unbatch", "unbatch"]
        if s.length * 2 <= MAX_ELEMENTS:
            ops += ["repeat", "repeat_forever"]
        if depth < 2:
            ops += ["zip", "enumerate", "choose"]
            if not _tf_refuses_to_concatenate(s):
                ops.append("concatenate")
            if _ranges_over(s.structure) and s.length * 4 <= MAX_ELEMENTS:
                ops += ["interleave", "interleave", "flat_map"]
        return ops

    def op_map_add(self, s: State, depth: int) -> State:
        return s.then(s.pipeline.map(AddConst(self.rng.randint(-3, 10)), num_parallel_calls=self.npc()))

    def op_map_fail(self, s: State, depth: int) -> State:
        exc = "stop" if self.chance(0.1) else "value"
        return s.then(s.pipeline.map(FailAt(*self.fail_values(), exc=exc), num_parallel_calls=self.npc()))

    def op_map_pair(self, s: State, depth: int) -> State:
        return s.then(s.pipeline.map(Pair(), num_parallel_calls=self.npc()), structure=(s.structure, s.structure))

    def op_map_first(self, s: State, depth: int) -> State:
        return s.then(s.pipeline.map(First()), structure=s.structure[0])

    def op_map_vec(self, s: State, depth: int) -> State:
        return s.then(s.pipeline.map(Vec(1), num_parallel_calls=self.npc()), structure=LeafType(1, fixed=False),
                      unbatchable=True)

    def op_map_sum(self, s: State, depth: int) -> State:
        return s.then(s.pipeline.map(Sum()), structure=LeafType(0, dtype=_first(s.structure).dtype), unbatchable=False)

    def op_filter(self, s: State, depth: int) -> State:
        k = self.choice([2, 3, 5])
        return s.then(s.pipeline.filter(Mod(k, self.rng.randint(0, k - 1))))

    def op_filter_fail(self, s: State, depth: int) -> State:
        return s.then(s.pipeline.filter(FailAt(*self.fail_values(), predicate=True)))

    def op_take(self, s: State, depth: int) -> State:
        n = self.choice([-1, 0, 1, 2, 3, 5, 8, 13, 30])
        return s.then(s.pipeline.take(n), length=s.length if n < 0 else min(n, s.length))

    def op_skip(self, s: State, depth: int) -> State:
        return s.then(s.pipeline.skip(self.choice([-1, 0, 1, 2, 3, 5, 8])))

    def op_shard(self, s: State, depth: int) -> State:
        n = self.choice([1, 2, 3, 4])
        return s.then(s.pipeline.shard(n, self.rng.randint(0, n - 1)))

    def op_prefetch(self, s: State, depth: int) -> State:
        return s.then(s.pipeline.prefetch(self.choice([1, 2, 5, AUTOTUNE])))

    def op_cache(self, s: State, depth: int) -> State:
        cached = s.pipeline.cache(self.choice(["", CacheFile(f"c{depth}")]))
        if s.length * 2 <= MAX_ELEMENTS and self.chance(0.6):
            return s.then(cached.repeat(2), length=s.length * 2)
        return s.then(cached)

    def _batched(self, s: State, pipeline: Pipeline, size: int, drop: bool) -> State:
        structure = _map_leaves(s.structure, lambda leaf: leaf.batched(drop))
        return s.then(pipeline, structure=structure, length=-(-s.length // size), unbatchable=_unbatchable(structure))

    def op_batch(self, s: State, depth: int, size: int | None = None) -> State:
        size, drop = size or self.rng.randint(1, 6), self.chance(0.3)
        return self._batched(s, s.pipeline.batch(size, drop_remainder=drop), size, drop)

    def op_map_and_batch(self, s: State, depth: int) -> State:
        size, drop = self.rng.randint(1, 6), self.chance(0.3)
        fn = FailAt(*self.fail_values()) if self.chance(0.5) else AddConst(1)
        pipeline = s.pipeline.map_and_batch(fn, size, num_parallel_calls=self.choice([1, 2, AUTOTUNE]),
                                            drop_remainder=drop)
        return self._batched(s, pipeline, size, drop)

    def op_padded_batch(self, s: State, depth: int) -> State:
        size, drop = self.rng.randint(1, 5), self.chance(0.3)
        pipeline = s.pipeline.padded_batch(size, drop_remainder=drop)
        structure = _map_leaves(s.structure, lambda leaf: dataclasses.replace(leaf.batched(False), fixed=False))
        return s.then(pipeline, structure=structure, length=-(-s.length // size), unbatchable=_unbatchable(structure))

    def op_unbatch(self, s: State, depth: int) -> State:
        structure = _map_leaves(s.structure, lambda leaf: dataclasses.replace(
            leaf, rank=leaf.rank - 1, fixed=leaf.fixed or leaf.rank == 1))
        leaves = _leaves(structure)
        return s.then(s.pipeline.unbatch(), structure=structure, length=min(s.length * 8, MAX_ELEMENTS),
                      unbatchable=len(leaves) == 1 and _unbatchable(structure))

    def op_repeat(self, s: State, depth: int) -> State:
        count = self.choice([0, 1, 2, 2])
        return s.then(s.pipeline.repeat(count), length=s.length * count)

    def op_repeat_forever(self, s: State, depth: int) -> State:
        n = self.rng.randint(0, 2 * max(s.length, 1))
        return s.then(s.pipeline.repeat(self.choice([None, -1])).take(n), length=n)

    def variant(self, s: State) -> State:
        """A pipeline with the same element types as ``s``: ``s`` with one more step, or a fresh source."""
        kind = self.choice(["skip", "add", "take", "fail", "filter", "fresh"])
        if kind == "fresh" and s.recipe is not None and _same(s.structure, _map_leaves(s.recipe, RowLeaf.type)):
            return self.typed_source(s.recipe, self.rng.randint(0, 20), reorder=self.chance(0.3))
        if kind == "fresh" and s.structure == LeafType(0):
            return self.source() if self.chance(0.5) else State(P.range(self.rng.randint(0, 20)), LeafType(0), 20)
        if kind == "filter" and not _modular(_first(s.structure)):
            kind = "skip"
        if kind == "skip":
            return s.then(s.pipeline.skip(self.rng.randint(1, 3)))
        if kind == "take":
            return s.then(s.pipeline.take(self.rng.randint(0, 10)))
        if kind == "fail":
            return s.then(s.pipeline.map(FailAt(*self.fail_values()), num_parallel_calls=self.npc()))
        if kind == "filter":
            return s.then(s.pipeline.filter(Mod(2, self.rng.randint(0, 1))))
        return s.then(s.pipeline.map(AddConst(100)))

    def op_zip(self, s: State, depth: int) -> State:
        other = self.variant(s)
        if not _same(other.structure, s.structure) and other.structure != LeafType(0):
            other = s.then(s.pipeline.map(AddConst(100)))
        parts = [s, other] if self.chance(0.5) else [other, s]
        zipped = P.zip_datasets(tuple(p.pipeline for p in parts))
        return State(zipped, tuple(p.structure for p in parts), min(p.length for p in parts))

    def op_concatenate(self, s: State, depth: int) -> State:
        other = self.variant(s)
        if not _same(other.structure, s.structure):
            other = s.then(s.pipeline.map(AddConst(100)))
        return s.then(s.pipeline.concatenate(other.pipeline), length=s.length + other.length)

    def op_choose(self, s: State, depth: int) -> State:
        """``choose_from_datasets`` of ``s`` and a variant of it, by choices that now and then name no input."""
        other = self.variant(s)
        if not _same(other.structure, s.structure):
            other = s.then(s.pipeline.map(AddConst(100)))
        n = self.rng.randint(0, 30)
        choices = [self.choice([-1, 2]) if self.chance(0.03) else self.choice([0, 1]) for _ in range(n)]
        selector = P.from_tensor_slices(np.array(choices, np.int64))
        stop = self.chance(0.5)
        pipeline = P.choose_from_datasets((s.pipeline, other.pipeline), selector, stop_on_empty_dataset=stop)
        return s.then(pipeline, length=n)

    def op_enumerate(self, s: State, depth: int) -> State:
        start = self.choice([0, 0, 5])
        return State(s.pipeline.enumerate(start) if start else s.pipeline.enumerate(), (LeafType(0), s.structure),
                     s.length)

    def template(self) -> Pipeline:
        if self.chance(0.25):
            return element_tensors().repeat(self.rng.randint(1, 3))
        template = element_range(self.rng.randint(1, 5))
        if self.chance(0.3):
            template = template.map(FailAt(*self.fail_values()))
        if self.chance(0.2):
            template = template.map(AddConst(self.rng.randint(1, 5)))
        return template

    def op_interleave(self, s: State, depth: int) -> State:
        template = self.template()
        structure = s.structure if template.steps[0].op == "element_tensors" else LeafType(0)
        kwargs: dict[str, Any] = {"cycle_length": self.choice([1, 2, 3, 4]), "block_length": self.choice([1, 1, 2, 3])}
        if self.chance(0.5):
            kwargs["num_parallel_calls"] = self.choice([1, 2, AUTOTUNE])
        pipeline = s.pipeline.interleave(DatasetFn(template), **kwargs)
        return State(pipeline, structure, s.length * 4, isinstance(structure, LeafType) and _unbatchable(structure))

    def op_flat_map(self, s: State, depth: int) -> State:
        template = self.template()
        structure = s.structure if template.steps[0].op == "element_tensors" else LeafType(0)
        return State(s.pipeline.flat_map(DatasetFn(template)), structure, s.length * 4,
                     isinstance(structure, LeafType) and _unbatchable(structure))

    # -- the unordered tail -----------------------------------------------------------------------------------
    def tail(self, s: State) -> tuple[Pipeline, str]:
        """A shuffle or a ``deterministic=False`` stage, element-wise maps, maybe a repeat; and the compare mode."""
        kind = self.choice(["shuffle", "shuffle", "map", "interleave"])
        if kind == "shuffle":
            pipeline = s.pipeline.shuffle(self.choice([1, 2, 4, 16, 100]), seed=self.rng.randint(0, 99),
                                          reshuffle_each_iteration=self.chance(0.7))
        elif kind == "map" or not _ranges_over(s.structure):
            fn = FailAt(*self.fail_values()) if self.chance(0.5) else AddConst(2)
            pipeline = s.pipeline.map(fn, num_parallel_calls=self.choice([2, 3, AUTOTUNE]), deterministic=False)
        else:
            pipeline = s.pipeline.interleave(DatasetFn(self.template()), cycle_length=self.choice([2, 3]),
                                             num_parallel_calls=self.choice([2, AUTOTUNE]), deterministic=False)
        if self.chance(0.3):
            pipeline = pipeline.map(AddConst(1), num_parallel_calls=self.npc())
        epochs = 1
        if s.length * 3 <= MAX_ELEMENTS and self.chance(0.5):
            epochs = self.choice([2, 3])
            pipeline = pipeline.repeat(epochs)
        return pipeline, (f"shuffle:{epochs}" if kind == "shuffle" else "multiset")

    def pipeline(self, depth: int = 0) -> tuple[Pipeline, str]:
        rows = self.chance(0.4)
        s = self.rows_chain() if rows else self.source()
        for _ in range(self.rng.randint(0 if rows else 1, 4 if rows else 6)):
            s = self.step(s, depth)
        if self.chance(0.25):
            return self.tail(s)
        if isinstance(s.structure, LeafType) and self.chance(0.1):
            return self.sparse_batch(s).pipeline, "exact"
        return s.pipeline, "exact"

    def sparse_batch(self, s: State) -> State:
        """``sparse_batch`` as the last step (its elements are sparse: no op of the generator takes them): each
        dimension of the row shape unknown (the batch's largest) or a size some elements may exceed (an error in
        both libraries, at that element)."""
        row_shape = [None if self.chance(0.7) else self.choice([1, 2, 3, 5]) for _ in range(s.structure.rank)]
        return s.then(s.pipeline.sparse_batch(self.choice([1, 2, 3, 5]), row_shape),
                      length=s.length, unbatchable=False)


def generate(seed: int) -> tuple[Pipeline, str]:
    """The random pipeline of ``seed`` and how its outputs are compared."""
    return Generator(seed).pipeline()


# -- running many seeds ----------------------------------------------------------------------------------


def check_seed(seed: int) -> Mismatch | None:
    """The mismatch of one seed's pipeline, or None.

    tf.data runs with its shuffle-and-repeat fusion off: fastinput raises an error met while filling the next
    epoch's shuffle buffer where tf.data does without that fusion. A pipeline with an interleave that still
    differs is compared with tf.data reading each interleave's input through a prefetch, where it delivers
    every input error as fastinput does; one with a ``StopIteration`` and a zip or enumerate, with tf.data reading
    each zip's inputs through a prefetch (``stop_iteration_at_an_input_start``). All are documented differences
    (``differences``).
    """
    pipeline, mode = generate(seed)
    mismatch = check(pipeline, mode, SHUFFLE_REPEAT_ERRORS)
    if mismatch is not None and "interleave" in repr(pipeline) and "!" in repr(mismatch.expected):
        # the documented difference, or still a mismatch
        return check(pipeline, mode, interleave_input_errors(pipeline))
    code = repr(pipeline)
    if mismatch is not None and "exc='stop'" in code and ("enumerate" in code or "zip" in code):
        return check(pipeline, mode, stop_iteration_at_an_input_start(pipeline))
    return mismatch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1000, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--only", type=lambda text: [int(x) for x in text.split(",")], default=None,
                        help="a comma-separated list of seeds to run instead")
    parser.add_argument("--no-minimise", action="store_true", help="print the pipelines as generated")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds a seed may take before it counts as a hang")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)

    check(P.range(1))  # import TensorFlow and fastinput before the first seed's time limit starts
    groups: dict[str, list[int]] = collections.defaultdict(list)
    examples: dict[str, Mismatch] = {}
    started = time.monotonic()
    seeds = args.only if args.only is not None else range(args.start, args.start + args.seeds)
    for seed in seeds:
        try:
            with time_limit(args.timeout):
                mismatch = check_seed(seed)
        except SeedTimeout:
            pipeline, _ = generate(seed)
            print(f"--- seed {seed}: HANG (over {args.timeout} s)\npipeline: {pipeline!r}\n", flush=True)
            groups["HANG"].append(seed)
            continue
        if mismatch is None:
            continue
        if not args.no_minimise:
            mismatch = minimise(mismatch, timeout=args.timeout)
        key = signature(mismatch)
        groups[key].append(seed)
        examples.setdefault(key, mismatch)
        if not args.quiet:
            print(f"--- seed {seed} [{key}]\n{mismatch}\n", flush=True)
    elapsed = time.monotonic() - started
    failing = sum(len(seeds) for seeds in groups.values())
    print(f"=== {len(seeds)} seeds in {elapsed:.0f} s: {failing} mismatching, {len(groups)} groups")
    for key, seeds in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        print(f"\n[{len(seeds)} seeds, e.g. {seeds[:8]}] {key}")
        if key in examples:
            print(examples[key])
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
