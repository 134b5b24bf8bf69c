"""``--device``: where each batch goes before the (infinitely fast) model takes it.

fastinput's pipeline ends in ``prefetch_to_device(device)``. The device is
given as fastinput takes it: a TensorFlow device string (``/gpu:0``,
``/cpu:0``), a PyTorch one (``cuda:0``, ``cpu``), or ``jax:N`` for the
N-th of ``jax.devices()`` (a command line cannot pass a ``jax.Device``).

tf.data's pipeline does what a tf.data user would: for a TensorFlow device
it ends in ``tf.data.experimental.prefetch_to_device``; for a PyTorch or JAX
device the consumer copies each batch there itself (tf.data has no
prefetcher for other frameworks).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastinput import structure
from fastinput.device import framework_of
from fastinput.errors import InvalidArgumentError

_JAX_DEVICE = re.compile(r"^jax(?::(\d+))?$")


def resolve_device(spec: str) -> Any:
    """The device ``prefetch_to_device`` takes for a ``--device`` string (checked here, before anything runs)."""
    match = _JAX_DEVICE.match(spec)
    if match is None:
        framework_of(spec)  # raises InvalidArgumentError naming the accepted forms
        return spec
    import jax

    devices = jax.devices()
    index = int(match.group(1) or 0)
    if index >= len(devices):
        raise InvalidArgumentError(f"--device {spec}: JAX has {len(devices)} device(s): {devices}")
    return devices[index]


def tf_data_to_device(dataset: Any, device: Any) -> tuple[Any, Callable[[Any], Any] | None]:
    """tf.data's ``dataset`` ending on ``device``, and the copy its consumer makes of each batch (or None)."""
    import tensorflow as tf

    framework = framework_of(device)
    if framework == "tensorflow":
        return dataset.apply(tf.data.experimental.prefetch_to_device(device)), None
    if framework == "torch":
        import torch

        def put(array: Any) -> Any:
            return torch.from_numpy(array).to(device, non_blocking=True)
    else:
        import jax

        def put(array: Any) -> Any:
            return jax.block_until_ready(jax.device_put(array, device))

    def leaf(tensor: Any) -> Any:
        array = tensor.numpy()
        return array if array.dtype == object else put(array)  # strings stay numpy, as in fastinput

    return dataset, lambda batch: structure.map_structure(leaf, batch)
