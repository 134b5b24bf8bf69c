"""prefetch_to_device: the CPU device paths of TensorFlow, PyTorch and JAX (CUDA runs on a GPU machine)."""

import numpy as np
import pytest

import fastinput as fi
from fastinput.structure import SparseArray
from tests.helpers import no_leaked_threads


def _batches():
    return fi.Dataset.range(50).map(
        lambda x: {"x": np.full((2, 3), x, np.float32), "id": x, "name": b"r%d" % x}).batch(8)


def test_framework_is_chosen_from_the_device():
    from fastinput.device import framework_of

    assert framework_of("/gpu:0") == framework_of("/cpu:0") == framework_of("/device:TPU:0") == "tensorflow"
    assert framework_of("cuda:1") == framework_of("cpu") == framework_of("cuda") == "torch"
    with pytest.raises(fi.errors.InvalidArgumentError, match="which framework"):
        fi.Dataset.range(3).prefetch_to_device("gpu please")


def test_tensorflow_cpu_device_keeps_order_and_values():
    import tensorflow as tf

    with no_leaked_threads(), iter(_batches().prefetch_to_device("/cpu:0", buffer_size=2)) as it:
        out = list(it)
    assert len(out) == 7
    assert all(isinstance(b["x"], tf.Tensor) and b["x"].device.endswith("CPU:0") for b in out)
    assert np.concatenate([b["id"].numpy() for b in out]).tolist() == list(range(50))
    assert out[0]["name"].numpy()[1] == b"r1"
    assert out[-1]["x"].shape == (2, 2, 3)


def test_tensorflow_sparse_becomes_sparse_tensor():
    import tensorflow as tf

    ds = fi.Dataset.from_tensors(SparseArray([[0, 1]], np.array([5], np.int64), [2, 2])).prefetch_to_device("/cpu:0")
    (value,) = list(ds)
    assert isinstance(value, tf.SparseTensor)
    assert tf.sparse.to_dense(value).numpy().tolist() == [[0, 5], [0, 0]]


def test_torch_cpu_device():
    torch = pytest.importorskip("torch")
    with no_leaked_threads(), iter(_batches().prefetch_to_device("cpu")) as it:
        out = list(it)
    assert all(isinstance(b["x"], torch.Tensor) and b["x"].device.type == "cpu" for b in out)
    assert torch.cat([b["id"] for b in out]).tolist() == list(range(50))
    assert out[0]["name"][0] == b"r0"  # bytes stay numpy (torch has no strings)


def test_jax_cpu_device():
    jax = pytest.importorskip("jax")
    device = jax.devices("cpu")[0]
    with no_leaked_threads(), iter(_batches().prefetch_to_device(device, buffer_size=3)) as it:
        out = list(it)
    assert all(isinstance(b["x"], jax.Array) and device in b["x"].devices() for b in out)
    assert np.concatenate([np.asarray(b["id"]) for b in out]).tolist() == list(range(50))


@pytest.mark.parametrize("device", ["/cpu:0", "cpu"])
def test_early_stop_joins_the_copy_thread(device):
    if device == "cpu":
        pytest.importorskip("torch")
    with no_leaked_threads():
        for i, _ in enumerate(fi.Dataset.range(10**6).batch(4).prefetch_to_device(device, buffer_size=4)):
            if i == 3:
                break


def test_copy_error_is_raised_in_place():
    ds = fi.Dataset.from_generator(lambda: iter([np.arange(2), np.array([object()], dtype=object), np.arange(3)]))
    it = iter(ds.prefetch_to_device("/cpu:0"))
    assert next(it).numpy().tolist() == [0, 1]
    with pytest.raises(Exception) as info:
        next(it)
    assert any("prefetch_to_device" in note for note in getattr(info.value, "__notes__", []))
    assert next(it).numpy().tolist() == [0, 1, 2]
    it.close()


def test_stage_string_and_bad_buffer():
    assert str(fi.Dataset.range(3).prefetch_to_device("/gpu:0")) == "prefetch_to_device('/gpu:0', buffer_size=AUTOTUNE)"
    with pytest.raises(fi.errors.InvalidArgumentError, match="buffer_size"):
        fi.Dataset.range(3).prefetch_to_device("/cpu:0", buffer_size=0)
