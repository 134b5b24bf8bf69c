"""Static rewrites applied to a pipeline description when it is iterated.

- no-op stages (``take(-1)``, ``skip(0)``, ``repeat(1)``, ``shard(1, 0)``) are removed first, as
  tf.data's ``noop_elimination`` does, so that the fusions below see through them;
- ``map -> batch`` becomes ``map_and_batch`` (outputs written into the batch, no stacking copy); a function with
  an ``out=None`` parameter gets its batch row as ``out=`` (``map_and_batch_out``), so it writes no fresh array;
- consecutive ``map``s with the same parallelism and determinism fuse into one map of the composed function;
- ``shuffle -> repeat`` becomes one stage that fills the next epoch's buffer while the last one drains;
- ``sample_from_datasets`` or ``choose_from_datasets`` -> ``batch`` becomes one stage that lays out whole batches
  (inputs that are TFRecord readers of local files read as spans, their records made as each batch is laid out).

Each rewrite gives exactly the elements the original gives (the tests check
this), and the new node's string says what it was fused from. Each can be
switched off with ``fi.Options(optimization=fi.OptimizationOptions(...=False))``.
The rewrite builds a new description; the user's Dataset is never changed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from fastinput.dataset import Dataset
from fastinput.fused_ops.map_and_batch import MapAndBatchDataset, takes_out_row
from fastinput.fused_ops.mix_and_batch import MixAndBatchDataset
from fastinput.ops.batch import BatchDataset
from fastinput.ops.directed_interleave import DirectedInterleaveDataset
from fastinput.ops.map import MapDataset, call_on_element, normalize_output
from fastinput.ops.noops import is_noop
from fastinput.ops.repeat import RepeatDataset
from fastinput.ops.shuffle import ShuffleAndRepeatDataset, ShuffleDataset
from fastinput.options import Options
from fastinput.readers.record_spans import spans_source


def optimize(dataset: Dataset, options: Options) -> Dataset:
    """The description with every enabled rewrite applied, bottom-up."""
    opt = options.optimization.resolved()
    rules = []
    if opt.noop_elimination:
        rules.append(_eliminate_noop)
    if opt.map_fusion:
        rules.append(_fuse_maps)
    if opt.map_and_batch_fusion:
        rules.append(functools.partial(_fuse_map_and_batch, rows_as_out=opt.map_and_batch_out))
    if opt.shuffle_and_repeat_fusion:
        rules.append(_fuse_shuffle_and_repeat)
    if opt.mix_and_batch_fusion:
        rules.append(_fuse_mix_and_batch)
    return _rewrite(dataset, rules) if rules else dataset


def _rewrite(node: Dataset, rules: list[Callable[[Dataset], Dataset | None]]) -> Dataset:
    inputs = tuple(_rewrite(child, rules) for child in node.inputs)
    if any(new is not old for new, old in zip(inputs, node.inputs)):
        node = copy.copy(node)  # shallow: seed sequences and caches stay shared with the user's node
        node.inputs = inputs
    for rule in rules:
        replaced = rule(node)
        if replaced is not None:
            return _rewrite(replaced, rules) if replaced is not node else node
    return node


def _eliminate_noop(node: Dataset) -> Dataset | None:
    return node.inputs[0] if is_noop(node) else None


def _fuse_maps(node: Dataset) -> Dataset | None:
    if type(node) is not MapDataset or type(node.inputs[0]) is not MapDataset:
        return None
    inner = node.inputs[0]
    if ((inner.num_parallel_calls, inner.deterministic, inner.in_processes)
            != (node.num_parallel_calls, node.deterministic, node.in_processes)):
        return None
    first, second = inner.checked_func(), node.map_func  # the fused map checks the second's declaration

    def composed(*args: Any) -> Any:
        # the first output becomes an element (lists to tuples, Python numbers to numpy) before it is unpacked
        return call_on_element(second, normalize_output(first(*args)))

    return MapDataset(inner.inputs[0], composed, node.num_parallel_calls, node.deterministic,
                      label=f"{inner.label} -> {node.label}", output_signature=node.output_signature,
                      workers=_workers(node))


def _workers(node: MapDataset) -> str:
    return "process" if node.in_processes else "thread"


def _fuse_map_and_batch(node: Dataset, rows_as_out: bool) -> Dataset | None:
    """``map -> batch`` as one ``map_and_batch``; ``rows_as_out``: hand a function with ``out=None`` its row."""
    if type(node) is not BatchDataset or type(node.inputs[0]) is not MapDataset:
        return None
    mapped = node.inputs[0]
    use_out = rows_as_out and takes_out_row(mapped.map_func)
    fused = MapAndBatchDataset(mapped.inputs[0], mapped.map_func, node.batch_size, mapped.num_parallel_calls,
                               node.drop_remainder, mapped.deterministic, label=mapped.label, use_out=use_out,
                               output_signature=mapped.output_signature, workers=_workers(mapped))
    fused.rewritten_from = f"{mapped} -> {node}"
    fused.traits = dataclasses.replace(fused.traits, stands_for=str(mapped))  # reports name the user's map
    return fused


def _fuse_shuffle_and_repeat(node: Dataset) -> Dataset | None:
    if type(node) is not RepeatDataset or type(node.inputs[0]) is not ShuffleDataset:
        return None
    return ShuffleAndRepeatDataset(node.inputs[0], node.count)


def _fuse_mix_and_batch(node: Dataset) -> Dataset | None:
    """``batch`` over a mix as one stage; where every input is a TFRecord reader of local files, they are read as
    spans (``fastinput.readers.record_spans``)."""
    if type(node) is not BatchDataset or node.rows is not None or not isinstance(node.inputs[0],
                                                                                DirectedInterleaveDataset):
        return None
    mix = node.inputs[0]
    # the mix's inputs as rewritten (``datasets`` still holds the user's: a repeat(1) there is gone here, as it is
    # from the unfused pipeline, whose states the span readers' must be)
    spans = [spans_source(dataset) for dataset in mix.inputs[:len(mix.datasets)]]
    if all(spans):
        mix = copy.copy(mix)
        mix.datasets = tuple(spans)
        mix.inputs = (*spans, *mix.inputs[len(spans):])  # the dataset of choices, if any, last
    return MixAndBatchDataset(mix, node)
