"""Seeded random pipelines run through tf.data and fastinput, compared element by element.

Each seed builds a small random chain (tens to hundreds of elements) of sources and ops, with errors
injected in map and filter functions, from a model of the element types that keeps every pipeline
valid for tf.data. Order-sensitive ops stop at a shuffle or a ``deterministic=False`` stage: such a
stage comes last (with element-wise maps and a repeat after it) and is compared per epoch as multisets.

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

from tests.conformance.differences import SHUFFLE_REPEAT_ERRORS, interleave_input_errors
from tests.conformance.functions import AddConst, FailAt, First, Gen, Mod, Pair, Sum, Vec
from tests.conformance.minimise import SeedTimeout, minimise, signature, time_limit
from tests.conformance.oracle import (
    Mismatch,
    check,
)
from tests.conformance.pipeline import (
    AUTOTUNE,
    CacheFile,
    DatasetFn,
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


@dataclasses.dataclass(frozen=True)
class LeafType:
    """One tensor of every element: its rank, and whether its shape is the same in every element."""

    rank: int
    fixed: bool = True


@dataclasses.dataclass(frozen=True)
class State:
    """A pipeline being generated, with what the generator knows of its elements."""

    pipeline: Pipeline
    structure: Any  # LeafType or a tuple of them (nested)
    length: int  # an upper bound on the number of elements
    unbatchable: bool = False  # every leaf has rank >= 1 and all share the first dimension

    def then(self, pipeline: Pipeline, **changes: Any) -> State:
        return dataclasses.replace(self, pipeline=pipeline, **changes)


def _leaves(structure: Any) -> list[LeafType]:
    if isinstance(structure, tuple):
        return [leaf for s in structure for leaf in _leaves(s)]
    return [structure]


def _map_leaves(structure: Any, fn: Callable[[LeafType], LeafType]) -> Any:
    if isinstance(structure, tuple):
        return tuple(_map_leaves(s, fn) for s in structure)
    return fn(structure)


def _first(structure: Any) -> LeafType:
    return _first(structure[0]) if isinstance(structure, tuple) else structure


def _tf_refuses_to_concatenate(s: State) -> bool:
    """TensorFlow 2.21 cannot concatenate a mix whose elements are not scalars (a documented difference,
    ``differences.concatenated_mix``): the generator does not build it."""
    return "choose_from_datasets" in repr(s.pipeline) and any(leaf.rank for leaf in _leaves(s.structure))


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
                            "generator"])
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

    # -- one op ---------------------------------------------------------------------------------------------------
    def step(self, s: State, depth: int) -> State:
        """``s`` with one random op appended (one that tf.data accepts for these elements)."""
        ops = self.applicable(s, depth)
        name = self.choice(ops)
        return getattr(self, f"op_{name}")(s, depth)

    def applicable(self, s: State, depth: int) -> list[str]:
        leaves = _leaves(s.structure)
        ops = ["map_add", "map_fail", "map_fail", "filter", "filter_fail", "take", "skip", "shard", "prefetch", "cache"]
        if not isinstance(s.structure, tuple):
            ops.append("map_pair")
        else:
            ops.append("map_first")
        if s.structure == LeafType(0):
            ops.append("map_vec")
        if _first(s.structure).rank >= 1:
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
            if _first(s.structure).rank == 0 and s.length * 4 <= MAX_ELEMENTS:
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
        return s.then(s.pipeline.map(Sum()), structure=LeafType(0), unbatchable=False)

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
        structure = _map_leaves(s.structure, lambda leaf: LeafType(leaf.rank + 1, leaf.fixed and drop))
        return s.then(pipeline, structure=structure, length=-(-s.length // size), unbatchable=True)

    def op_batch(self, s: State, depth: int) -> State:
        size, drop = self.rng.randint(1, 6), self.chance(0.3)
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
        structure = _map_leaves(s.structure, lambda leaf: LeafType(leaf.rank + 1, False))
        return s.then(pipeline, structure=structure, length=-(-s.length // size), unbatchable=True)

    def op_unbatch(self, s: State, depth: int) -> State:
        structure = _map_leaves(s.structure, lambda leaf: LeafType(leaf.rank - 1, leaf.fixed or leaf.rank == 1))
        leaves = _leaves(structure)
        return s.then(s.pipeline.unbatch(), structure=structure, length=min(s.length * 8, MAX_ELEMENTS),
                      unbatchable=len(leaves) == 1 and leaves[0].rank >= 1)

    def op_repeat(self, s: State, depth: int) -> State:
        count = self.choice([0, 1, 2, 2])
        return s.then(s.pipeline.repeat(count), length=s.length * count)

    def op_repeat_forever(self, s: State, depth: int) -> State:
        n = self.rng.randint(0, 2 * max(s.length, 1))
        return s.then(s.pipeline.repeat(self.choice([None, -1])).take(n), length=n)

    def variant(self, s: State) -> State:
        """A pipeline with the same element types as ``s``: ``s`` with one more step, or a fresh source."""
        kind = self.choice(["skip", "add", "take", "fail", "filter", "fresh"])
        if kind == "fresh" and s.structure == LeafType(0):
            return self.source() if self.chance(0.5) else State(P.range(self.rng.randint(0, 20)), LeafType(0), 20)
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
        if other.structure != s.structure and other.structure != LeafType(0):
            other = s.then(s.pipeline.map(AddConst(100)))
        parts = [s, other] if self.chance(0.5) else [other, s]
        zipped = P.zip_datasets(tuple(p.pipeline for p in parts))
        return State(zipped, tuple(p.structure for p in parts), min(p.length for p in parts))

    def op_concatenate(self, s: State, depth: int) -> State:
        other = self.variant(s)
        if other.structure != s.structure:
            other = s.then(s.pipeline.map(AddConst(100)))
        return s.then(s.pipeline.concatenate(other.pipeline), length=s.length + other.length)

    def op_choose(self, s: State, depth: int) -> State:
        """``choose_from_datasets`` of ``s`` and a variant of it, by choices that now and then name no input."""
        other = self.variant(s)
        if other.structure != s.structure:
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
        return State(pipeline, structure, s.length * 4, isinstance(structure, LeafType) and structure.rank >= 1)

    def op_flat_map(self, s: State, depth: int) -> State:
        template = self.template()
        structure = s.structure if template.steps[0].op == "element_tensors" else LeafType(0)
        return State(s.pipeline.flat_map(DatasetFn(template)), structure, s.length * 4,
                     isinstance(structure, LeafType) and structure.rank >= 1)

    # -- the unordered tail -----------------------------------------------------------------------------------
    def tail(self, s: State) -> tuple[Pipeline, str]:
        """A shuffle or a ``deterministic=False`` stage, element-wise maps, maybe a repeat; and the compare mode."""
        kind = self.choice(["shuffle", "shuffle", "map", "interleave"])
        if kind == "shuffle":
            pipeline = s.pipeline.shuffle(self.choice([1, 2, 4, 16, 100]), seed=self.rng.randint(0, 99),
                                          reshuffle_each_iteration=self.chance(0.7))
        elif kind == "map" or _first(s.structure).rank != 0:
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
        s = self.source()
        for _ in range(self.rng.randint(1, 6)):
            s = self.step(s, depth)
        if self.chance(0.25):
            return self.tail(s)
        return s.pipeline, "exact"


def generate(seed: int) -> tuple[Pipeline, str]:
    """The random pipeline of ``seed`` and how its outputs are compared."""
    return Generator(seed).pipeline()


# -- running many seeds ----------------------------------------------------------------------------------


def check_seed(seed: int) -> Mismatch | None:
    """The mismatch of one seed's pipeline, or None.

    tf.data runs with its shuffle-and-repeat fusion off: fastinput raises an error met while filling the next
    epoch's shuffle buffer where tf.data does without that fusion. A pipeline with an interleave that still
    differs is compared with tf.data reading each interleave's input through a prefetch, where it delivers
    every input error as fastinput does. Both are documented differences (``differences``).
    """
    pipeline, mode = generate(seed)
    mismatch = check(pipeline, mode, SHUFFLE_REPEAT_ERRORS)
    if mismatch is not None and "interleave" in repr(pipeline) and "!" in repr(mismatch.expected):
        # the documented difference, or still a mismatch
        return check(pipeline, mode, interleave_input_errors(pipeline))
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
