"""The load phase: ``ds.prefetch_to_device(device)`` copies the next batches to an accelerator ahead of time.

A background thread takes elements from the pipeline and copies them to the
device while the current training step runs, so the step finds its batch in
device memory. Which framework is used follows from ``device``:

- TensorFlow: strings naming a TF device, ``"/gpu:0"``, ``"/cpu:0"``, ``"/device:TPU:0"``,
  ``"/job:worker/..."``; elements become ``tf.Tensor`` (``tf.SparseTensor`` for ``SparseArray``).
- PyTorch: ``"cuda"``, ``"cuda:1"``, ``"cpu"``, ``"mps"`` or a ``torch.device``; CUDA copies go from
  pinned host memory with ``non_blocking=True`` on a side stream, and the consumer's stream waits
  for that copy (an event) when the element is handed out.
- JAX: a ``jax.Device`` (``jax.devices()[0]``); copies with ``jax.device_put``, waited for on the
  background thread so the batch is resident when handed out.

Bytes leaves stay numpy object arrays for PyTorch and JAX (neither has a string type).
The framework is imported only when the pipeline is iterated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput import structure
from fastinput._engine.arguments import AUTOTUNE, check_buffer_size, format_arg
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import InvalidArgumentError
from fastinput.ops.prefetch import PrefetchIterator, default_prefetch_buffer

_TF_DEVICE = re.compile(r"^/(job:|replica:|task:|device:|(cpu|gpu|tpu)(:\d+)?$)", re.IGNORECASE)
_TORCH_DEVICE = re.compile(r"^(cpu|cuda|mps|xpu|meta)(:\d+)?$")


def framework_of(device: Any) -> str:
    """"tensorflow", "torch" or "jax" for a device argument; InvalidArgumentError if none fits."""
    if isinstance(device, str):
        if _TF_DEVICE.match(device):
            return "tensorflow"
        if _TORCH_DEVICE.match(device):
            return "torch"
    module = type(device).__module__ or ""
    if module.startswith("torch"):
        return "torch"
    if module.startswith(("jax", "jaxlib")):
        return "jax"
    raise InvalidArgumentError(
        f"prefetch_to_device: cannot tell which framework {device!r} belongs to; use a TensorFlow device string "
        "('/gpu:0', '/cpu:0'), a PyTorch device ('cuda:0', 'cpu', torch.device) or a jax.Device"
    )


def _import(name: str, extra: str) -> Any:
    try:
        return __import__(name)
    except ImportError as exc:
        raise ImportError(f"prefetch_to_device needs {name}, which is not installed: "
                          f"pip install \"fastinput[{extra}]\"") from exc


class DevicePrefetchDataset(Dataset):
    traits = StageTraits("prefetch_to_device", StageKind.PREFETCH, keeps_spec=True)

    def __init__(self, input_dataset: Dataset, device: Any, buffer_size: int) -> None:
        super().__init__([input_dataset])
        self.framework = framework_of(device)
        self.device = device
        self.buffer_size = check_buffer_size("prefetch_to_device", buffer_size, minimum=1)

    def cardinality(self) -> int:
        return self.inputs[0].cardinality()

    def __str__(self) -> str:
        return f"prefetch_to_device({str(self.device)!r}, buffer_size={format_arg(self.buffer_size)})"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        transfer, finish = _COPIERS[self.framework](self.device)
        autotuned = self.buffer_size == AUTOTUNE
        size = default_prefetch_buffer() if autotuned else self.buffer_size
        return PrefetchIterator(self, ctx, self.inputs[0].make_iterator(ctx), size, autotuned, transfer, finish)


def _tensorflow_copier(device: str) -> tuple[Callable, Callable | None]:
    import tensorflow as tf

    def to_tensor(leaf: Any) -> Any:
        if isinstance(leaf, structure.SparseArray):
            return tf.SparseTensor(tf.identity(leaf.indices), tf.identity(leaf.values), tf.identity(leaf.dense_shape))
        return tf.identity(tf.convert_to_tensor(leaf))

    def transfer(element: Any) -> Any:
        with tf.device(device):
            return structure.map_structure(to_tensor, element)

    return transfer, None


def _torch_copier(device: Any) -> tuple[Callable, Callable | None]:
    torch = _import("torch", "torch")
    device = torch.device(device)
    cuda = device.type == "cuda"
    stream = torch.cuda.Stream(device) if cuda else None

    def to_tensor(leaf: Any) -> Any:
        if isinstance(leaf, structure.SparseArray):
            return torch.sparse_coo_tensor(torch.from_numpy(leaf.indices.T.copy()), torch.from_numpy(leaf.values),
                                           tuple(leaf.dense_shape.tolist())).to(device, non_blocking=cuda)
        array = np.asarray(leaf)
        if array.dtype == object:
            return leaf
        if not array.flags.writeable or not array.flags.c_contiguous:
            array = np.ascontiguousarray(array).copy()
        tensor = torch.from_numpy(array)
        if cuda:
            return tensor.pin_memory().to(device, non_blocking=True)
        return tensor.to(device)

    if not cuda:
        return (lambda element: structure.map_structure(to_tensor, element)), None

    def transfer(element: Any) -> Any:
        with torch.cuda.stream(stream):
            copied = structure.map_structure(to_tensor, element)
            event = torch.cuda.Event()
            event.record(stream)
        return copied, event

    def finish(item: Any) -> Any:
        copied, event = item
        consumer_stream = torch.cuda.current_stream(device)
        consumer_stream.wait_event(event)
        for leaf in structure.flatten(copied):
            if isinstance(leaf, torch.Tensor):
                leaf.record_stream(consumer_stream)  # the allocator must not reuse it while the step uses it
        return copied

    return transfer, finish


def _jax_copier(device: Any) -> tuple[Callable, Callable | None]:
    jax = _import("jax", "jax")

    def to_array(leaf: Any) -> Any:
        if isinstance(leaf, structure.SparseArray):
            return structure.SparseArray(*(jax.device_put(a, device)
                                           for a in (leaf.indices, leaf.values, leaf.dense_shape)))
        array = np.asarray(leaf)
        return leaf if array.dtype == object else jax.device_put(array, device)

    def transfer(element: Any) -> Any:
        copied = structure.map_structure(to_array, element)
        return jax.block_until_ready(copied)

    return transfer, None


_COPIERS: dict[str, Callable[[Any], tuple[Callable, Callable | None]]] = {
    "tensorflow": _tensorflow_copier,
    "torch": _torch_copier,
    "jax": _jax_copier,
}
