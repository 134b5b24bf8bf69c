"""Handing a fastinput pipeline to TensorFlow: ``ds.as_tf_dataset()`` and the ``input_fn`` contract.

The pipeline keeps running on fastinput's engine. TensorFlow sees a source
dataset built on the op ``tf.data.Dataset.from_generator`` itself uses
(``_GeneratorDataset``: init / next / finalize functions), so each TensorFlow
iteration opens its own fastinput iterator and closes it when TensorFlow drops
it. Its element spec is the pipeline's ``element_spec``, known without
running anything.

No Python runs in TensorFlow's threads per element: Python there would hold
the GIL, which the pipeline's own threads want too, and every wait for it
lands on TensorFlow's critical path (it also makes a TensorFlow-side prefetch
deadlock when TensorFlow destroys an iterator while holding the GIL). Each
iteration has a feed (``tf_feed.Feed``): a thread that packs each element into a few
tensors (``_Transfer``: one buffer per numeric dtype, large arrays shared
through DLPack without a copy, strings) and enqueues them in a TensorFlow
queue. TensorFlow dequeues in C++ and splits the tensors again with graph ops
that run without the GIL, one after another in the calling thread (dozens of
tiny ops handed around a thread pool cost more in wake-ups than in work).

Strings cost most: a Python ``bytes`` object per value to make, and as much
again to turn into a ``tf.string`` tensor. So when the pipeline's last real
stage can leave them packed (``make_batched_features_dataset``'s parser) and
nothing after it looks into the elements, TensorFlow iterates a copy of the
pipeline in which it does (``PackedStrings``: one blob and offsets, no Python
object per value), and where it packs them anyway (Parquet's
``string_type="packed"``), the pipeline itself; the blob crosses as uint8
through DLPack, and graph ops cut the values out of it; where every string
leaf holds as many values (a batch of scalar features), fastinput's native
op (``fastinput.tf_ops``, built on first use) does, without the graph ops'
temporaries.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput import structure, tf_ops
from fastinput._engine.arguments import AUTOTUNE
from fastinput._engine.memory import ALIGNMENT, aligned_copy, aligned_empty, is_aligned
from fastinput._engine.traits import PacksStrings
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.batch import BatchDataset
from fastinput.ops.map import MapDataset
from fastinput.ops.prefetch import PrefetchDataset, default_prefetch_buffer
from fastinput.optional import tensorflow
from fastinput.spec import STRING, RaggedSpec, SparseSpec
from fastinput.tf_feed import Feed, finalize
from fastinput.tf_values import PackedStrings, tensor_of


def tf_element_spec(spec: Any) -> Any:
    """A fastinput spec nest (``Dataset.element_spec``) as TensorFlow's: ``tf.TensorSpec`` / ``tf.SparseTensorSpec``
    / ``tf.RaggedTensorSpec``."""
    tf = tensorflow("as_tf_dataset")

    def convert(leaf: Any) -> Any:
        dtype = tf.string if leaf.dtype == STRING else tf.as_dtype(leaf.dtype)
        if isinstance(leaf, SparseSpec):
            return tf.SparseTensorSpec(leaf.shape, dtype)
        if isinstance(leaf, RaggedSpec):
            return tf.RaggedTensorSpec(leaf.shape, dtype, ragged_rank=1,
                                       row_splits_dtype=tf.as_dtype(leaf.row_splits_dtype))
        return tf.TensorSpec(leaf.shape, dtype)

    return structure.map_structure(convert, spec)


SOLO_BYTES = 1 << 18
"""Numeric components at least this big cross alone, shared through DLPack without a copy (image batches);
smaller ones are copied into one buffer per dtype, cheaper than an output each."""

SOLO_ROW_BYTES = 1 << 12
"""A component whose spec leaves a dimension open (a batch's) crosses alone if the rest of it is this big: a
batch of a few dozen such rows reaches ``SOLO_BYTES``."""


def _crosses_alone(shape: Any, dtype: np.dtype) -> bool:
    """Whether a numeric component of this static shape crosses alone (see ``SOLO_BYTES``)."""
    dims = shape.as_list()
    known = math.prod(d for d in dims if d is not None) * dtype.itemsize
    return known >= (SOLO_BYTES if None not in dims else SOLO_ROW_BYTES)


def _numeric_tensor(tf: Any, array: np.ndarray) -> Any:
    """A numeric array as a tf.Tensor, sharing its memory through DLPack where TensorFlow can take it."""
    if array.dtype.kind in "iuf" and array.size:
        if not is_aligned(array):  # TF kernels need 64-byte alignment
            small = array.nbytes < SOLO_BYTES
            array = gathered([array], array.dtype).reshape(array.shape) if small else aligned_copy(array)
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    return tf.constant(array)


def gathered(arrays: list[Any], dtype: np.dtype) -> np.ndarray:
    """The arrays' values one after another in a 64-byte aligned buffer: theirs, if they already lie so (the
    native Example parser's outputs of one dtype do), else a new one.

    Copied through memoryviews, holding the GIL: numpy releases it for every
    copy of more than a few hundred values, and each release means waiting for
    it again behind the pipeline's threads.
    """
    arrays = [_of_dtype(array, dtype) for array in arrays]
    adjacent = _adjacent(arrays)
    if adjacent is not None:
        return adjacent
    buffer = aligned_empty((sum(array.size for array in arrays),), dtype)
    if not buffer.size:
        return buffer
    view = memoryview(buffer).cast("B")
    at = 0
    for array in arrays:
        if array.size:  # a memoryview of an array with a 0 in its shape cannot be cast (TypeError)
            view[at:at + array.nbytes] = memoryview(np.ascontiguousarray(array)).cast("B")
            at += array.nbytes
    return buffer


def _adjacent(arrays: list[np.ndarray]) -> np.ndarray | None:
    """The arrays as one flat array without a copy, if they are C-contiguous views of one buffer lying one after
    another from a 64-byte aligned start, as writable as DLPack needs; else None."""
    first = arrays[0]
    owner = first.base
    start = at = first.ctypes.data
    if owner is None or start % ALIGNMENT:
        return None
    for array in arrays:
        if (array.base is not owner or not array.flags.c_contiguous or not array.flags.writeable
                or array.ctypes.data != at):
            return None
        at += array.nbytes
    # Within the owner's memory: every array is a view of it, and they follow each other without gaps.
    return np.lib.stride_tricks.as_strided(first, shape=((at - start) // first.itemsize,), strides=(first.itemsize,),
                                           writeable=True)


def _of_dtype(component: Any, dtype: np.dtype) -> np.ndarray:
    """``component`` as an array, if it has the dtype the element spec gives its place (the queue's dtypes are
    fixed: a wrong one would fail the enqueue, far from the cause); else TypeError, reported in its place."""
    array = np.asarray(component)
    if array.dtype != dtype:
        raise TypeError(f"as_tf_dataset: a component is {array.dtype}; the element spec says {dtype}")
    return array


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
    """How an element's dense components cross into TensorFlow as a few tensors, split again by graph ops.

    ``tensors`` (Python, holding the GIL, so it does little) checks the flat
    components against their specs and packs them into: an int64 layout
    (each packed component's size, then the shapes its spec leaves open), one
    buffer per numeric dtype, the large numeric components alone, and the
    strings: if the pipeline leaves them packed (``strings_packed``), one
    blob and their offsets in it (cut out by graph ops, without the GIL),
    else all values in one tensor. ``components`` (graph ops, traced once,
    run by TensorFlow without the GIL) unpacks them. Which component crosses
    how follows from the element spec alone.
    """

    def __init__(self, tf: Any, specs: list[Any], strings_packed: bool) -> None:
        self._tf = tf
        self._specs = specs
        self._shapes = [tuple(spec.shape.as_list()) for spec in specs]
        groups: dict[Any, list[int]] = {}
        self._solo: list[int] = []
        self._strings: list[int] = []
        for i, spec in enumerate(specs):
            if spec.dtype == tf.string:
                self._strings.append(i)
            elif _crosses_alone(spec.shape, np.dtype(spec.dtype.as_numpy_dtype)):
                self._solo.append(i)
            else:
                groups.setdefault(spec.dtype, []).append(i)
        self._solo += [members[0] for members in groups.values() if len(members) == 1]
        self._groups = [(np.dtype(dtype.as_numpy_dtype), members)
                        for dtype, members in groups.items() if len(members) > 1]
        self._solo_dtypes = [(i, np.dtype(specs[i].dtype.as_numpy_dtype)) for i in self._solo]
        self._packed = [i for _, members in self._groups for i in members] + self._strings
        self._shaped = [i for i in self._packed if _static_reshape(specs[i].shape) is None]
        self.dtypes = ([tf.int64] + [tf.as_dtype(dtype) for dtype, _ in self._groups]
                       + [specs[i].dtype for i in self._solo])
        # Strings cross as the pipeline makes them: packed (a blob and offsets) or as values.
        self._strings_packed = bool(self._strings) and strings_packed
        self._string_size = _common_size([specs[i].shape for i in self._strings])
        # The native op cuts strings of one common size; graph ops do it otherwise, or until it is built.
        self._cut_op = (tf_ops.cut_strings(tf) if self._strings_packed and self._string_size is not None
                        else None)
        if self._strings:
            self.dtypes += [tf.uint8, tf.int64] if self._strings_packed else [tf.string]
        self.placeholders = [tf.zeros([0], dtype) for dtype in self.dtypes]
        """Tensors of the right dtypes that stand in for an element that failed (never unpacked)."""

    def tensors(self, components: list[Any]) -> list[Any]:
        """The tensors that carry one element's flat ``components``; InvalidArgumentError if one does not fit
        its spec (TensorFlow relies on the spec)."""
        tf = self._tf
        shapes = [component.shape if hasattr(component, "shape") else np.shape(component) for component in components]
        for i, (actual, shape) in enumerate(zip(shapes, self._shapes)):
            if actual != shape and (len(actual) != len(shape)  # equal: the common case, a fully static spec
                                    or any(s is not None and s != d for s, d in zip(shape, actual))):
                raise InvalidArgumentError(
                    f"as_tf_dataset: component {i} has shape {list(actual)}, which does not fit the element spec "
                    f"{list(shape)} (declare the output of a map whose shapes depend on its values with "
                    "output_signature=)")
        layout = [math.prod(shapes[i]) for i in self._packed] + [d for i in self._shaped for d in shapes[i]]
        tensors = [_numeric_tensor(tf, _aligned_int64(layout))]
        tensors += [_numeric_tensor(tf, gathered([components[i] for i in members], dtype))
                    for dtype, members in self._groups]
        tensors += [_numeric_tensor(tf, _of_dtype(components[i], dtype)) for i, dtype in self._solo_dtypes]
        if self._strings:
            tensors += self._string_tensors([components[i] for i in self._strings])
        return tensors

    def _string_tensors(self, leaves: list[Any]) -> list[Any]:
        """[blob, offsets] (``joined_strings``) if strings cross packed, else [values]: all string values in one
        tensor."""
        tf = self._tf
        if self._strings_packed:  # a batch that came unpacked (say, one TensorFlow's parser took) is packed here
            packed = [leaf if type(leaf) is PackedStrings else PackedStrings.of(leaf) for leaf in leaves]
            blob, offsets = joined_strings(packed)
            return [_byte_tensor(tf, blob), _numeric_tensor(tf, offsets)]
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
        """The flat components, as graph ops on the dequeued ``tensors``."""
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
                blob, offsets = tensors[len(self._solo):]
                if self._cut_op is not None:
                    pieces += self._cut_op(blob, offsets, count=len(self._strings), size=self._string_size)
                else:
                    pieces += _cut(tf, blob, offsets, sizes, len(self._strings), self._string_size)
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


def _byte_tensor(tf: Any, blob: Any) -> Any:
    """A blob (bytes or a uint8 array) as a uint8 tensor, through DLPack without a copy where it is a writable
    array (the parser's; numpy shares no read-only buffer through DLPack). Unaligned is fine: the only op that
    reads it, ``serialize_tensor`` in ``_cut``, copies it byte by byte."""
    array = np.frombuffer(blob, np.uint8)
    if not array.flags.writeable:
        array = array.copy()
    return tf.experimental.dlpack.from_dlpack(array.__dlpack__()) if array.size else tf.zeros([0], tf.uint8)


def joined_strings(leaves: list[PackedStrings]) -> tuple[Any, np.ndarray]:
    """(blob, offsets): one blob with the leaves' values (their distinct blobs joined; none to join when they
    share one, as a parsed batch's do) and each leaf's offsets in it (``size + 1`` each), leaf after leaf."""
    base_of: dict[int, int] = {}  # where each distinct blob starts in the joined one, by id
    blobs: list[bytes] = []
    for leaf in leaves:
        if id(leaf.blob) not in base_of:
            base_of[id(leaf.blob)] = sum(map(len, blobs))
            blobs.append(leaf.blob)
    offsets = gathered([leaf.offsets for leaf in leaves], np.dtype(np.int64))
    if len(blobs) > 1:
        at = 0
        for leaf in leaves:
            offsets[at:at + leaf.offsets.size] += base_of[id(leaf.blob)]
            at += leaf.offsets.size
    return (blobs[0] if len(blobs) == 1 else np.concatenate([np.frombuffer(b, np.uint8) for b in blobs])), offsets


def _common_size(shapes: list[Any]) -> int | None:
    """The number of values every one of ``shapes`` holds, if their specs say it and it is the same for all (a
    batch's scalar string features: ``[batch_size]`` each); else None."""
    sizes = {None if None in dims else math.prod(dims) for dims in (shape.as_list() for shape in shapes)}
    return sizes.pop() if len(sizes) == 1 else None


def _cut(tf: Any, blob: Any, offsets: Any, sizes: Any, count: int, size: int | None) -> list[Any]:
    """Graph ops: the values of ``count`` packed leaves, ``sizes`` values each, out of ``blob`` (``joined_strings``);
    ``size``: the one number of values each leaf has, where the element spec says so. Used where the native op of
    ``fastinput.tf_ops`` is not (leaves of different sizes; no compiler; FASTINPUT_TF_OPS=off; before it is built).

    ``blob`` crosses as uint8 (DLPack shares it; a ``tf.string`` would be a
    copy made holding the GIL). ``serialize_tensor`` turns it into a string
    without the GIL: a TensorProto whose last field is the blob's bytes, so
    the values sit at the offsets shifted by the proto's header length.

    With a common ``size``, the offsets are a ``[count, size + 1]`` matrix:
    one ``substr`` cuts every value into a ``[count, size]`` tensor, and
    ``unstack`` hands out its rows (sharing its buffer where a row is 64-byte
    aligned, as 24-byte ``tstring``s are in rows of a multiple of 8). A few
    ops in all, where the general way takes four a leaf: on the tabular
    benchmark's batches (26 string features of 1024 values), measured apart
    from the pipeline, the unpacking's CPU went from 0.55-0.8 to 0.5-0.55 ms.

    Otherwise one op per leaf rather than one for all and a split: a split
    of strings copies the values, and TensorFlow's allocator gets large string
    buffers as fresh pages from the kernel each time."""
    text = tf.io.serialize_tensor(blob)
    offsets += tf.cast(tf.strings.length(text), tf.int64) - tf.size(blob, out_type=tf.int64)
    if size is not None:
        bounds = tf.reshape(offsets, [count, size + 1])
        starts = bounds[:, :-1]
        return tf.unstack(tf.strings.substr(text, starts, bounds[:, 1:] - starts), count)
    firsts = tf.cumsum(sizes + 1, exclusive=True)
    leaves = []
    for first, values in zip(tf.unstack(firsts, count), tf.unstack(sizes, count)):
        starts = offsets[first:first + values]
        leaves.append(tf.strings.substr(text, starts, offsets[first + 1:first + values + 1] - starts))
    return leaves


def _flat_components(element: Any) -> list[Any]:
    """An element's leaves, each SparseArray as its three dense components, each RaggedArray as its two."""
    flat = []
    for leaf in structure.flatten(element):
        if isinstance(leaf, structure.SparseArray):
            flat += [leaf.indices, leaf.values, leaf.dense_shape]
        elif isinstance(leaf, structure.RaggedArray):
            flat += [leaf.values, leaf.row_splits]
        else:
            flat.append(leaf)
    return flat


def _component_specs(spec: Any) -> list[Any]:
    """The dense TensorSpecs of ``_flat_components`` for an element of ``spec``."""
    tf = tensorflow("as_tf_dataset")

    specs = []
    for leaf in structure.flatten(spec):
        if isinstance(leaf, tf.SparseTensorSpec):
            rank = leaf.shape.rank
            specs += [tf.TensorSpec([None, rank], tf.int64), tf.TensorSpec([None], leaf.dtype),
                      tf.TensorSpec([rank], tf.int64)]
        elif isinstance(leaf, tf.RaggedTensorSpec):  # values, row splits (one more than the rows)
            rows = leaf.shape[0]
            specs += [tf.TensorSpec([None, *leaf.shape[2:]], leaf.dtype),
                      tf.TensorSpec([None if rows is None else rows + 1], leaf.row_splits_dtype)]
        else:
            specs.append(leaf)
    return specs


def _repack(spec: Any, components: list[Any]) -> Any:
    """The element (with tf.SparseTensor and tf.RaggedTensor leaves) from its flat components."""
    tf = tensorflow("as_tf_dataset")

    leaves, i = [], 0
    for leaf in structure.flatten(spec):
        if isinstance(leaf, tf.SparseTensorSpec):
            sparse = tf.SparseTensor(components[i], components[i + 1], components[i + 2])
            sparse.set_shape(leaf.shape)  # the dense shape's known dimensions (a dense_shape tensor has none)
            leaves.append(sparse)
            i += 3
        elif isinstance(leaf, tf.RaggedTensorSpec):
            leaves.append(tf.RaggedTensor.from_row_splits(components[i], components[i + 1], validate=False))
            i += 2
        else:
            leaves.append(components[i])
            i += 1
    return structure.pack_as(spec, leaves)


def with_strings_packed(node: Dataset) -> Dataset:
    """The pipeline with its last real stage leaving strings packed, if that stage can (a map whose function
    is ``PacksStrings``, as ``make_batched_features_dataset``'s parser is) and nothing after it looks into the
    elements (every later stage ``passes_through``); the pipeline itself otherwise. Its user's Dataset is never
    changed."""
    if node.traits.passes_through:
        source = with_strings_packed(node.inputs[0])
        if source is node.inputs[0]:
            return node
        node = copy.copy(node)  # shallow, as the static rewrites do: seeds and caches stay shared
        node.inputs = (source, *node.inputs[1:])
        return node
    if type(node) is not MapDataset or not isinstance(node.map_func, PacksStrings):
        return node
    node = copy.copy(node)
    node.map_func = node.map_func.packing_strings()
    return node


def yields_packed_strings(node: Dataset) -> bool:
    """Whether the pipeline's last real stage makes its string leaves ``PackedStrings`` itself: a batch over row
    blocks whose strings are packed (``fi.ParquetDataset(..., string_type="packed")`` and its one-liner)."""
    while node.traits.passes_through:
        node = node.inputs[0]
    return isinstance(node, BatchDataset) and node.rows is not None and node.rows.strings is not None


class _Iterations:
    """Opens a feed for each TensorFlow iteration (TensorFlow passes [id, queue handle] around)."""

    def __init__(self, tf: Any, dataset: Dataset, transfer: _Transfer) -> None:
        self._tf = tf
        self._transfer = transfer
        self.dtypes = [*transfer.dtypes, tf.string]
        """What each queued element holds: the crossing tensors' dtypes, then the error message (``Feed``)."""
        # The queue is the last buffer: the pipeline's own last prefetch would only add a hand-over per element.
        self._capacity = default_prefetch_buffer()
        if type(dataset) is PrefetchDataset and dataset.buffer_size != 0:
            if dataset.buffer_size != AUTOTUNE:
                self._capacity = dataset.buffer_size
            dataset = dataset.inputs[0]
        self._dataset = dataset
        self._ids = itertools.count()

    def open(self) -> list[Any]:
        """[id, queue handle] of a new iteration."""
        transfer = self._transfer
        feed = Feed(self._tf, iter(self._dataset), lambda element: transfer.tensors(_flat_components(element)),
                    transfer.placeholders, self.dtypes, self._capacity)
        return [self._tf.constant(next(self._ids), self._tf.int64), feed.queue]


def _component_specs_checked(spec: Any) -> list[Any]:
    """``_component_specs`` of a TensorFlow spec nest whose every rank is known (the transfer needs them)."""
    specs = _component_specs(spec)
    for i, component in enumerate(specs):
        if component.shape.rank is None:
            raise InvalidArgumentError(
                f"as_tf_dataset: component {i} of the element spec has an unknown rank ({component}); declare "
                "its shape (output_signature= on from_generator or map)")
    return specs


def as_tf_dataset(dataset: Dataset) -> Any:
    """``dataset`` as a ``tf.data.Dataset`` whose elements fastinput produces, with ``dataset.element_spec``
    as its element spec (nothing runs before TensorFlow iterates it).

    TensorFlow's iterations take elements from a queue without running Python, so TensorFlow-side
    ``prefetch`` and autotuning work on it as on any tf.data dataset.
    """
    tf = tensorflow("as_tf_dataset")
    from tensorflow.python.data.ops.from_generator_op import _GeneratorDataset
    from tensorflow.python.data.ops.map_op import _MapDataset

    spec = tf_element_spec(dataset.element_spec)
    packing = with_strings_packed(dataset)  # what TensorFlow iterates: the user's Dataset is not changed
    transfer = _Transfer(tf, _component_specs_checked(spec),
                         strings_packed=packing is not dataset or yields_packed_strings(dataset))
    iterations = _Iterations(tf, packing, transfer)
    dtypes = iterations.dtypes

    def next_fn(key: Any, queue: Any) -> Any:
        *tensors, error = tf.raw_ops.QueueDequeueV2(handle=queue, component_types=dtypes)  # closed: the end
        check = tf.debugging.Assert(tf.equal(tf.strings.length(error), 0), [error])
        with tf.control_dependencies([check]):
            return tuple(tf.identity(tensor) for tensor in tensors)

    def source(dummy: Any) -> Any:
        return _GeneratorDataset(
            dummy,
            lambda _: tuple(tf.py_function(iterations.open, [], [tf.int64, tf.resource])),
            next_fn,
            lambda key, queue: finalize(tf, queue),
            tuple(tf.TensorSpec(None, dtype) for dtype in transfer.dtypes),
        )

    def unpack(*tensors: Any) -> Any:
        return _repack(spec, transfer.components(list(tensors)))

    crossed = tf.data.Dataset.from_tensors(0).flat_map(source)
    # The unpacking ops of one element run one after another in one thread (no inter-op parallelism): dozens of
    # tiny ops handed around a thread pool cost more in wake-ups than they do in work. Which thread: TensorFlow's
    # default map_parallelization rewrites this map into a ParallelMap (its function is stateless), so a tf.data
    # worker unpacks while the consumer runs its step (seen in perf: ParallelMapDatasetOp's CallFunction).
    return _MapDataset(crossed, unpack, use_inter_op_parallelism=False)


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
            raise InvalidArgumentError(f"tf_input_fn: {input_fn.__name__} must return a fastinput Dataset, "
                                       f"got {type(dataset).__name__}")
        return dataset.as_tf_dataset()

    return wrapped
