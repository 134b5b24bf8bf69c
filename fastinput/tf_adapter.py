"""Handing a fastinput pipeline to TensorFlow: ``ds.as_tf_dataset()`` and the ``input_fn`` contract.

The pipeline keeps running on fastinput's engine. TensorFlow sees a source
dataset built on the op ``tf.data.Dataset.from_generator`` itself uses
(``_GeneratorDataset``: init / next / finalize functions), so each TensorFlow
iteration opens its own fastinput iterator and closes it when TensorFlow drops
it. The element spec is read off the first element; the batch dimension is
left unknown unless the last batching stage drops the remainder.

Each element crosses in one ``tf.py_function`` call. Python there runs
holding the GIL, which the pipeline's own threads want too, and each time it
lets the GIL go (TensorFlow does for every eager op, numpy for every copy
of more than a few hundred values) it waits to get it back behind them: with
a busy pipeline, those hand-overs cost more than the work. So elements cross
packed (``_Transfer``), made ready by a thread of the pipeline's own (the
``to_tensorflow`` stage) before TensorFlow asks: a few tensors, split
again by graph ops, which run without the GIL (one after another in the
calling thread: dozens of tiny ops handed around a thread pool cost more in
wake-ups than in work). Large numeric arrays cross without a copy (DLPack).

Strings cost most: a Python ``bytes`` object per value to make, and as much
again to turn into a ``tf.string`` tensor. So when the pipeline's last real
stage can leave them packed (``make_batched_features_dataset``'s parser) and
nothing after it looks into the elements, TensorFlow iterates a copy of the
pipeline in which it does (``PackedStrings``: one blob and offsets, no Python
object per value), and graph ops cut the values out of the blob.
"""

from __future__ import annotations

import copy
import functools
import itertools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput import structure
from fastinput.arguments import AUTOTUNE, format_arg
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.iterator import DatasetIterator, IteratorContext
from fastinput.memory import aligned_copy, aligned_empty, is_aligned
from fastinput.ops.map import MapDataset
from fastinput.ops.prefetch import PrefetchDataset, PrefetchIterator, default_prefetch_buffer
from fastinput.tf_values import PackedStrings, tensor_of


def _batch_dimension(dataset: Dataset) -> tuple[str, bool, Any]:
    """("fixed" | "batched" | "padded" | "parsed", drop_remainder, shapes) for the pipeline's output; shapes
    (per leaf, without the batch dimension) only for "parsed": a map whose function declares them
    (``batch_shapes``, as ``make_batched_features_dataset``'s parser does) applied to batches."""
    node = dataset
    while node.passes_shapes_through:
        node = node._inputs[0]
    batch_shapes = getattr(getattr(node, "map_func", None), "batch_shapes", None)
    if type(node) is MapDataset and batch_shapes is not None:
        kind, drop_remainder, _ = _batch_dimension(node._inputs[0])
        if kind == "batched":
            return "parsed", drop_remainder, batch_shapes()
    if node.batching is None:
        return "fixed", False, None
    return node.batching, node.drop_remainder, None


def element_spec(element: Any, dataset: Dataset) -> Any:
    """The ``tf.TypeSpec`` nest for a pipeline whose first element is ``element``."""
    import tensorflow as tf

    kind, drop_remainder, batch_shapes = _batch_dimension(dataset)

    def leaf_spec(leaf: Any, batch_shape: Any = None) -> Any:
        if isinstance(leaf, structure.SparseArray):
            return tf.SparseTensorSpec([None] * len(leaf.dense_shape), tf.as_dtype(leaf.values.dtype) if leaf.values.dtype != object else tf.string)
        array = leaf if isinstance(leaf, PackedStrings) else np.asarray(leaf)
        dtype = tf.string if array.dtype == object or array.dtype.kind in "SU" else tf.as_dtype(array.dtype)
        shape: list[int | None] = list(array.shape)
        if kind == "padded":
            shape = [shape[0] if drop_remainder else None] + [None] * (len(shape) - 1)
        elif kind == "parsed":
            shape = [shape[0] if drop_remainder else None, *batch_shape]
        elif kind == "batched" and shape and not drop_remainder:
            shape[0] = None
        return tf.TensorSpec(shape, dtype)

    if kind == "parsed":  # shapes are tuples, which are nests too: pair each leaf with its whole shape
        shapes = structure.flatten_up_to(element, batch_shapes)
        return structure.pack_as(element, [leaf_spec(*pair) for pair in zip(structure.flatten(element), shapes)])
    return structure.map_structure(leaf_spec, element)


SOLO_BYTES = 1 << 18
"""Numeric components at least this big (in the first element) cross alone, shared through DLPack without a
copy (image batches); smaller ones are copied into one buffer per dtype, cheaper than an output each."""


def _numeric_tensor(tf: Any, array: np.ndarray) -> Any:
    """A numeric array as a tf.Tensor, sharing its memory through DLPack where TensorFlow can take it."""
    if array.dtype.kind in "iuf" and array.size:
        if not is_aligned(array):  # TF kernels need 64-byte alignment
            array = _gathered([array], array.dtype).reshape(array.shape) if array.nbytes < SOLO_BYTES else aligned_copy(array)
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.constant(array)


def _gathered(arrays: list[Any], dtype: np.dtype) -> np.ndarray:
    """The arrays' values one after another in a new 64-byte aligned buffer.

    Copied through memoryviews, holding the GIL: numpy releases it for every
    copy of more than a few hundred values, and each release means waiting for
    it again behind the pipeline's threads.
    """
    arrays = [np.asarray(array) for array in arrays]
    for array in arrays:
        if array.dtype != dtype:
            raise TypeError(f"as_tf_dataset: a component is {array.dtype}; in the first element it was {dtype}")
    buffer = aligned_empty((sum(array.size for array in arrays),), dtype)
    view = memoryview(buffer).cast("B")
    at = 0
    for array in arrays:
        view[at:at + array.nbytes] = memoryview(np.ascontiguousarray(array)).cast("B")
        at += array.nbytes
    return buffer


def _aligned_int64(values: list[int]) -> np.ndarray:
    """``values`` in an int64 array that DLPack hands over as it is (a tf.constant costs ten times more)."""
    array = aligned_empty((len(values),), np.int64)
    array[:] = values
    return array


def _static_reshape(shape: Any) -> list[int] | None:
    """The reshape target of a flattened component if its spec says it all (-1 for the one unknown dimension);
    None if it needs the runtime shape (two or more unknown, or an unknown one next to a 0)."""
    dims = shape.as_list()
    if dims.count(None) > 1 or (None in dims and 0 in dims):
        return None
    return [-1 if d is None else d for d in dims]


class _Transfer:
    """How an element's dense components cross ``tf.py_function`` as a few tensors, split again by graph ops.

    ``tensors`` (Python, holding the GIL, so it does little) packs the flat
    components into: an int64 layout (each packed component's size, then the
    shapes its spec leaves open), one buffer per numeric dtype, the large
    numeric components alone, and the strings: if the first element's string
    leaves were all ``PackedStrings``, one blob and their offsets in it (cut
    out by graph ops, without the GIL), else all values in one tensor.
    ``components`` (graph ops, traced once, run by TensorFlow without the
    GIL) unpacks them.
    """

    def __init__(self, tf: Any, specs: list[Any], first: list[Any]) -> None:
        self._tf = tf
        self._specs = specs
        groups: dict[Any, list[int]] = {}
        self._solo: list[int] = []
        self._strings: list[int] = []
        for i, (spec, component) in enumerate(zip(specs, first)):
            if spec.dtype == tf.string:
                self._strings.append(i)
            elif np.asarray(component).nbytes >= SOLO_BYTES:
                self._solo.append(i)
            else:
                groups.setdefault(spec.dtype, []).append(i)
        self._solo += [members[0] for members in groups.values() if len(members) == 1]
        self._groups = [(np.dtype(dtype.as_numpy_dtype), members) for dtype, members in groups.items() if len(members) > 1]
        self._packed = [i for _, members in self._groups for i in members] + self._strings
        self._shaped = [i for i in self._packed if _static_reshape(specs[i].shape) is None]
        self.dtypes = [tf.int64] + [tf.as_dtype(dtype) for dtype, _ in self._groups] + [specs[i].dtype for i in self._solo]
        # Strings cross as the first element's were made: packed (a blob and offsets) or as values.
        self._strings_packed = bool(self._strings) and all(type(first[i]) is PackedStrings for i in self._strings)
        if self._strings:
            self.dtypes += [tf.string, tf.int64] if self._strings_packed else [tf.string]

    def tensors(self, components: list[Any]) -> list[Any]:
        """The tensors that carry one element's flat ``components``."""
        tf = self._tf
        layout = [np.size(components[i]) for i in self._packed] + [d for i in self._shaped for d in np.shape(components[i])]
        tensors = [_numeric_tensor(tf, _aligned_int64(layout))]
        tensors += [_numeric_tensor(tf, _gathered([components[i] for i in members], dtype)) for dtype, members in self._groups]
        tensors += [_numeric_tensor(tf, np.asarray(components[i])) for i in self._solo]
        if self._strings:
            tensors += self._string_tensors([components[i] for i in self._strings])
        return tensors

    def _string_tensors(self, leaves: list[Any]) -> list[Any]:
        """[blob, offsets] (``_joined``) if strings cross packed, else [values]: all string values in one tensor."""
        tf = self._tf
        if self._strings_packed:
            blob, offsets = _joined([leaf if type(leaf) is PackedStrings else _packed(leaf) for leaf in leaves])
            return [tf.constant(blob), _numeric_tensor(tf, offsets)]
        tensors = [tensor_of(leaf) for leaf in leaves]
        if all(t is not None for t in tensors):
            values = tf.concat([t if t.shape.rank == 1 else tf.reshape(t, [-1]) for t in tensors], 0)
        else:
            flat: list[Any] = []
            for leaf in leaves:  # a list converts twice as fast as an object array
                flat += np.asarray(leaf, dtype=object).ravel().tolist()
            values = tf.constant(flat, tf.string)
        return [values]

    def components(self, tensors: list[Any]) -> list[Any]:
        """The flat components, as graph ops on the py_function's ``tensors``."""
        tf = self._tf
        layout, tensors = tensors[0], tensors[1:]
        components: list[Any] = [None] * len(self._specs)
        pieces: list[Any] = []
        at = 0
        for (_, members), flat in zip(self._groups, tensors):
            pieces += tf.split(flat, layout[at:at + len(members)], num=len(members))
            at += len(members)
        tensors = tensors[len(self._groups):]
        for i, tensor in zip(self._solo, tensors):
            components[i] = tensor
        if self._strings:
            sizes = layout[at:at + len(self._strings)]
            if self._strings_packed:
                pieces += _cut(tf, *tensors[len(self._solo):], sizes, len(self._strings))
            else:
                pieces += tf.split(tensors[len(self._solo)], sizes, num=len(self._strings))
        at = len(self._packed)
        for i, piece in zip(self._packed, pieces):
            shape = _static_reshape(self._specs[i].shape)
            if shape is None:
                rank = self._specs[i].shape.rank
                components[i] = tf.reshape(piece, layout[at:at + rank])
                at += rank
            else:
                components[i] = piece if len(shape) == 1 else tf.reshape(piece, shape)
        for tensor, spec in zip(components, self._specs):
            tensor.set_shape(spec.shape)
        return components


def _joined(leaves: list[PackedStrings]) -> tuple[bytes, np.ndarray]:
    """(blob, offsets): one blob with the leaves' values (their distinct blobs joined; none to join when they
    share one, as a parsed batch's do) and each leaf's offsets in it (``size + 1`` each), leaf after leaf."""
    base_of: dict[int, int] = {}  # where each distinct blob starts in the joined one, by id
    blobs: list[bytes] = []
    for leaf in leaves:
        if id(leaf.blob) not in base_of:
            base_of[id(leaf.blob)] = sum(map(len, blobs))
            blobs.append(leaf.blob)
    offsets = _gathered([leaf.offsets for leaf in leaves], np.dtype(np.int64))
    if len(blobs) > 1:
        at = 0
        for leaf in leaves:
            offsets[at:at + leaf.offsets.size] += base_of[id(leaf.blob)]
            at += leaf.offsets.size
    return (blobs[0] if len(blobs) == 1 else b"".join(blobs)), offsets


def _packed(leaf: Any) -> PackedStrings:
    """Any string leaf as PackedStrings (the rare batch that did not come packed, say one TensorFlow parsed)."""
    values = np.asarray(leaf, dtype=object).ravel().tolist()
    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values)), out=offsets[1:])
    return PackedStrings(b"".join(values), offsets)


def _cut(tf: Any, blob: Any, offsets: Any, sizes: Any, count: int) -> list[Any]:
    """Graph ops: the values of ``count`` packed leaves, ``sizes`` values each, out of ``blob`` (``_joined``).

    One op per leaf rather than one for all and a split: the outputs stay small,
    and TensorFlow's allocator gets large string buffers as fresh pages from the
    kernel each time (page faults cost more than the cutting itself)."""
    firsts = tf.cumsum(sizes + 1, exclusive=True)
    leaves = []
    for first, size in zip(tf.unstack(firsts, count), tf.unstack(sizes, count)):
        starts = offsets[first:first + size]
        leaves.append(tf.strings.substr(blob, starts, offsets[first + 1:first + size + 1] - starts))
    return leaves


def _flat_components(element: Any) -> list[Any]:
    """An element's leaves, each SparseArray as its three dense components."""
    flat = []
    for leaf in structure.flatten(element):
        if isinstance(leaf, structure.SparseArray):
            flat += [leaf.indices, leaf.values, leaf.dense_shape]
        else:
            flat.append(leaf)
    return flat


def _component_specs(spec: Any) -> list[Any]:
    """The dense TensorSpecs of ``_flat_components`` for an element of ``spec``."""
    import tensorflow as tf

    specs = []
    for leaf in structure.flatten(spec):
        if isinstance(leaf, tf.SparseTensorSpec):
            rank = leaf.shape.rank
            specs += [tf.TensorSpec([None, rank], tf.int64), tf.TensorSpec([None], leaf.dtype), tf.TensorSpec([rank], tf.int64)]
        else:
            specs.append(leaf)
    return specs


def _repack(spec: Any, components: list[Any]) -> Any:
    """The element (with tf.SparseTensor leaves) from its flat components."""
    import tensorflow as tf

    leaves, i = [], 0
    for leaf in structure.flatten(spec):
        if isinstance(leaf, tf.SparseTensorSpec):
            leaves.append(tf.SparseTensor(components[i], components[i + 1], components[i + 2]))
            i += 3
        else:
            leaves.append(components[i])
            i += 1
    return structure.pack_as(spec, leaves)


def _packing_strings(node: Dataset) -> Dataset:
    """The pipeline with its last real stage leaving strings packed, if that stage can (a map whose function
    has a ``packing_strings`` variant, as ``make_batched_features_dataset``'s parser does) and nothing after it
    looks into the elements; the pipeline itself otherwise. Its user's Dataset is never changed."""
    if node.leaves_untouched:
        source = _packing_strings(node._inputs[0])
        if source is node._inputs[0]:
            return node
        node = copy.copy(node)  # shallow, as the static rewrites do: seeds and caches stay shared
        node._inputs = (source, *node._inputs[1:])
        return node
    packing = getattr(getattr(node, "map_func", None), "packing_strings", None)
    if type(node) is not MapDataset or packing is None:
        return node
    node = copy.copy(node)
    node.map_func = packing()
    return node


class _CrossingDataset(Dataset):
    """The stage TensorFlow's iterations read from: a prefetch whose thread also packs each element into the
    tensors that cross ``tf.py_function`` (``_Transfer.tensors``, as ``prefetch_to_device`` copies on its
    thread), so that work, which holds the GIL, is done ahead of TensorFlow's call instead of inside it.
    It takes the place of the pipeline's own last ``prefetch`` (and its buffer size), if it ends with one:
    a second thread in a row would only add a hand-over per element. Profiles show it as ``to_tensorflow``."""

    passes_shapes_through = True

    def __init__(self, input_dataset: Dataset, transfer: _Transfer) -> None:
        self.buffer_size: int = AUTOTUNE
        if type(input_dataset) is PrefetchDataset and input_dataset.buffer_size != 0:
            input_dataset, self.buffer_size = input_dataset._inputs[0], input_dataset.buffer_size
        super().__init__([input_dataset])
        self._transfer = transfer

    def __str__(self) -> str:
        return f"to_tensorflow(buffer_size={format_arg(self.buffer_size)})"

    def _make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        autotuned = self.buffer_size == AUTOTUNE
        size = default_prefetch_buffer() if autotuned else self.buffer_size
        return PrefetchIterator(self, ctx, self._inputs[0]._make_iterator(ctx), size, autotuned, self._cross)

    def _cross(self, element: Any) -> list[Any]:
        return self._transfer.tensors(_flat_components(element))


class _OpenIterators:
    """The fastinput iterators of live TensorFlow iterations, by id (TensorFlow passes the id around)."""

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._open: dict[int, Any] = {}

    def open(self) -> np.int64:
        with self._lock:
            key = next(self._ids)
            self._open[key] = iter(self._dataset)
        return np.int64(key)

    def get(self, key: Any) -> Any:
        return self._open[int(key)]

    def close(self, key: Any) -> np.int64:
        with self._lock:
            it = self._open.pop(int(key), None)
        if it is not None:
            it.close()
        return np.int64(0)


def as_tf_dataset(dataset: Dataset) -> Any:
    """``dataset`` as a ``tf.data.Dataset`` whose elements fastinput produces.

    Prefetch in fastinput (``ds.prefetch`` / ``prefetch_to_device``), not on the returned dataset:
    TensorFlow-side prefetching is switched off, see below.
    """
    import tensorflow as tf
    from tensorflow.python.data.ops.from_generator_op import _GeneratorDataset
    from tensorflow.python.data.ops.map_op import _MapDataset

    dataset = _packing_strings(dataset)  # what TensorFlow iterates: the user's Dataset is not changed
    with iter(dataset) as probe:
        try:
            first = next(probe)
        except StopIteration:
            raise InvalidArgumentError(f"as_tf_dataset: the pipeline {dataset!r} is empty; no element spec can be read") from None
    spec = element_spec(first, dataset)
    transfer = _Transfer(tf, _component_specs(spec), _flat_components(first))
    iterators = _OpenIterators(_CrossingDataset(dataset, transfer))

    def next_tensors(key: Any) -> list[Any]:
        return next(iterators.get(key))  # StopIteration ends the TensorFlow iteration

    def next_fn(key: Any) -> Any:
        return tuple(tf.py_function(next_tensors, [key], transfer.dtypes))

    def source(dummy: Any) -> Any:
        return _GeneratorDataset(
            dummy,
            lambda _: tf.numpy_function(iterators.open, [], tf.int64),
            next_fn,
            lambda key: tf.numpy_function(iterators.close, [key], tf.int64),
            tuple(tf.TensorSpec(None, dtype) for dtype in transfer.dtypes),
        )

    def unpack(*tensors: Any) -> Any:
        return _repack(spec, transfer.components(list(tensors)))

    # No TensorFlow-side prefetch or autotuning: a TF thread running next_tensors when TensorFlow destroys
    # the iterator (which it does holding the GIL) would deadlock, since fastinput's threads need the GIL to
    # finish that element. fastinput's own prefetch already overlaps the pipeline with the step.
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.inject_prefetch = False
    crossed = tf.data.Dataset.from_tensors(0).flat_map(source)
    # The unpacking ops run one after another in the calling thread (no inter-op parallelism): dozens of tiny
    # ops handed around a thread pool cost more in wake-ups than they do in work.
    return _MapDataset(crossed, unpack, use_inter_op_parallelism=False).with_options(options)


def tf_input_fn(input_fn: Callable[..., Dataset]) -> Callable[..., Any]:
    """Wrap an ``input_fn`` that returns a fastinput pipeline so it returns a ``tf.data.Dataset``.

    For ``strategy.distribute_datasets_from_function(fi.tf_input_fn(input_fn))``:
    ``input_fn(input_context)`` shards with ``ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)``
    and batches with ``ctx.get_per_replica_batch_size(global_batch_size)``, as with tf.data.
    """

    @functools.wraps(input_fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        dataset = input_fn(*args, **kwargs)
        if not isinstance(dataset, Dataset):
            raise InvalidArgumentError(f"tf_input_fn: {input_fn.__name__} must return a fastinput Dataset, got {type(dataset).__name__}")
        return dataset.as_tf_dataset()

    return wrapped
