"""Options merging and the nested-structure helpers."""

import collections
import dataclasses

import numpy as np
import pytest

import fastinput as fi
from fastinput import structure


def test_options_are_frozen_and_keyword_only():
    options = fi.Options(deterministic=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.deterministic = True
    with pytest.raises(TypeError):
        fi.Options(False)


def test_later_options_win_field_by_field():
    ds = (fi.Dataset.range(3)
          .with_options(fi.Options(deterministic=False, autotune=fi.AutotuneOptions(cpu_budget=2)))
          .with_options(fi.Options(autotune=fi.AutotuneOptions(ram_budget=10))))
    options = ds.options()
    assert options.deterministic is False
    assert options.autotune.cpu_budget == 2 and options.autotune.ram_budget == 10


def test_resolved_options_fill_every_default_and_keep_what_is_set():
    resolved = fi.Options().resolved()
    assert resolved.deterministic is True and resolved.autotune.enabled is True
    assert resolved.optimization == fi.OptimizationOptions(map_and_batch_fusion=True, map_and_batch_out=True,
                                                           map_fusion=True, noop_elimination=True,
                                                           shuffle_and_repeat_fusion=True, mix_and_batch_fusion=True)
    assert resolved.remote == fi.RemoteOptions(read_timeout=60.0, read_retries=2)
    assert resolved.autotune.ram_budget is None  # whether the user set a budget changes what the engine does
    assert resolved.resolved() == resolved
    autotune = fi.AutotuneOptions(enabled=False, cpu_budget=3, ram_budget=1 << 20)
    chosen = fi.Options(deterministic=False, autotune=autotune,
                        optimization=fi.OptimizationOptions(map_fusion=False),
                        remote=fi.RemoteOptions(read_timeout=5, read_retries=0))
    resolved = chosen.resolved()
    assert resolved.deterministic is False and resolved.autotune == chosen.autotune.resolved() == chosen.autotune
    assert resolved.optimization == fi.OptimizationOptions(map_and_batch_fusion=True, map_and_batch_out=True,
                                                           map_fusion=False, noop_elimination=True,
                                                           shuffle_and_repeat_fusion=True, mix_and_batch_fusion=True)
    assert resolved.remote == fi.RemoteOptions(read_timeout=5.0, read_retries=0)
    assert (chosen.autotune.cpu_cores(), chosen.autotune.ram_bytes()) == (3, 1 << 20)
    unset = fi.AutotuneOptions(cpu_budget=0)  # 0, like None, means the default
    assert unset.cpu_cores() >= 1 and unset.ram_bytes() > 0


def test_options_from_both_zip_inputs_apply():
    a = fi.Dataset.range(2).with_options(fi.Options(deterministic=False))
    b = fi.Dataset.range(2)
    assert fi.Dataset.zip(a, b).options().deterministic is False


def test_with_options_rejects_other_types():
    with pytest.raises(fi.errors.InvalidArgumentError, match="fi.Options"):
        fi.Dataset.range(3).with_options({"deterministic": False})


Point = collections.namedtuple("Point", "x y")


@pytest.mark.parametrize("nest", [
    np.int64(3),
    (1, (2, 3)),
    {"b": 1, "a": [2, {"c": 3}]},
    Point(1, {"z": 2}),
])
def test_flatten_then_pack_is_identity(nest):
    assert structure.pack_as(nest, structure.flatten(nest)) == nest


def test_flatten_sorts_dict_keys_like_tf_nest():
    assert structure.flatten({"b": 1, "a": 2}) == [2, 1]


def test_sparse_array_to_dense_and_equality():
    s = fi.SparseArray([[0, 1], [1, 0]], np.array([5, 6]), [2, 3])
    assert s.to_dense().tolist() == [[0, 5, 0], [6, 0, 0]]
    assert s == fi.SparseArray(np.array([[0, 1], [1, 0]]), [5, 6], np.array([2, 3]))
    assert s.shape == (2, 3) and s.dtype == np.int64
    strings = fi.SparseArray([[1]], np.array([b"x"], dtype=object), [3])
    assert strings.to_dense().tolist() == [b"", b"x", b""]


def test_errors_are_builtins_too():
    assert issubclass(fi.errors.InvalidArgumentError, ValueError)
    assert issubclass(fi.errors.NotFoundError, FileNotFoundError)
    assert issubclass(fi.errors.DataLossError, OSError)
    err = fi.errors.DataLossError("bad", path="f", offset=12)
    assert (err.path, err.offset) == ("f", 12)


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, fastinput; print(any(m in sys.modules for m in ('tensorflow', 'pyarrow', 's3fs', 'gcsfs')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
