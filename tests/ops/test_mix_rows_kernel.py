"""The mixing ops' gather of rows (``mix_layout.take_rows``): the C kernel ``gather_rows`` against the numpy
fallback, what it refuses (nothing written, cursors kept), and its argument checks (every size and index checked
before a byte is written)."""

import numpy as np
import pytest

from fastinput._engine.row_slices import RowBuffer, RowLayout, Rows
from fastinput.ops import mix_layout


@pytest.fixture
def kernel():
    """The C extension (the tests of its own functions skip where it is not built)."""
    return pytest.importorskip("fastinput.ops._mixing")


def _buffers(sizes, row_shape=(), dtype=np.int64, leaves=1):
    """Row buffers of ``sizes`` rows: input i's rows hold i * 1000 + their position (each leaf times its index+1)."""
    layout = RowLayout(tuple(range(leaves)) if leaves > 1 else 0, ((np.dtype(dtype), row_shape),) * leaves)
    buffers = []
    for i, size in enumerate(sizes):
        buffer = RowBuffer(layout)
        base = (i * 1000 + np.arange(size)).reshape(size, *([1] * len(row_shape)))
        buffer.extend(Rows([(np.broadcast_to(base, (size, *row_shape)) * (j + 1)).astype(dtype)
                            for j in range(leaves)], size))
        buffers.append(buffer)
    return buffers


CASES = {  # (rows held per input, row shape, dtype, leaves)
    "int64 scalars, 8 inputs": ([300] * 8, (), np.int64, 1),
    "float32 rows of 2x3": ([40, 50, 60], (2, 3), np.float32, 1),
    "uint8 scalars": ([100, 100], (), np.uint8, 1),
    "two leaves": ([70, 80, 90], (4,), np.int16, 2),
    "an empty input": ([0, 120, 50], (), np.float64, 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("cursors", ["start", "moved"])
def test_c_gather_is_the_numpy_gather(kernel, case, cursors):
    sizes, row_shape, dtype, leaves = CASES[case]
    rng = np.random.default_rng(len(sizes))
    live = [i for i, size in enumerate(sizes) if size]
    start = np.array([0 if cursors == "start" or not size else size // 3 for size in sizes], dtype=np.int64)
    choices = rng.choice(live, size=30, replace=True).astype(np.int64)
    fast_cursors, slow_cursors = start.copy(), start.copy()
    fast = mix_layout.take_rows(choices, _buffers(sizes, row_shape, dtype, leaves), fast_cursors)
    slow = mix_layout.take_rows_numpy(choices, _buffers(sizes, row_shape, dtype, leaves), slow_cursors)
    assert fast.count == slow.count == 30 and fast.owned
    for a, b in zip(fast.leaves, slow.leaves):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape == (30, *row_shape)
        assert np.array_equal(a, b)
        assert a.ctypes.data % 64 == 0
    assert np.array_equal(fast_cursors, slow_cursors)
    assert np.array_equal(fast_cursors - start, np.bincount(choices, minlength=len(sizes)))
    expected = [choice * 1000 + start[choice] + list(choices[:i]).count(choice) for i, choice in enumerate(choices)]
    assert np.array_equal(fast.leaves[0].reshape(30, -1)[:, 0], np.array(expected, dtype=dtype))


@pytest.mark.parametrize("take", [mix_layout.take_rows, mix_layout.take_rows_numpy], ids=["c", "numpy"])
@pytest.mark.parametrize("choices", [[2, 1, 2, 2, 2, 2, 2], [0, 0, 0, 0, 0, 0], [1, -1], [0, 3]])
def test_a_gather_that_cannot_serve_changes_nothing(take, choices):
    """Too few rows held (each input holds 5) or a choice out of range: None, the cursors as they were."""
    cursors = np.array([0, 0, 0], dtype=np.int64)
    assert take(np.array(choices, dtype=np.int64), _buffers([5, 5, 5]), cursors) is None
    assert not cursors.any()


def _args(**change):
    args = {"choices": np.array([0, 1, 0], dtype=np.int64),
            "sources": [np.arange(4, dtype=np.int64), np.arange(4, dtype=np.int64)],
            "cursors": np.zeros(2, dtype=np.int64), "out": np.zeros(3, dtype=np.int64), "advance": True}
    args.update(change)
    return list(args.values())


@pytest.mark.parametrize("args, error, match", [
    (_args(choices=np.array([0, 1], dtype=np.int32)), TypeError, "choices must be int64"),
    (_args(cursors=np.zeros(3, dtype=np.int64)), ValueError, "3 cursors for 2 sources"),
    (_args(cursors=np.zeros(2, dtype=np.int32)), TypeError, "cursors must be int64"),
    (_args(cursors=np.array([0, 5], dtype=np.int64)), IndexError, "cursor 5 of source 1, which holds 4"),
    (_args(cursors=np.array([-1, 0], dtype=np.int64)), IndexError, "cursor -1 of source 0"),
    (_args(out=np.zeros(4, dtype=np.int64)), ValueError, "out holds 4 rows for 3 choices"),
    (_args(out=np.zeros(3, dtype=np.int32)), ValueError, "rows of 8 bytes, out of 4"),
    (_args(out=np.zeros((3, 2), dtype=np.int64)[:, 0]), ValueError, "contiguous"),
    (_args(sources=[np.arange(4, dtype=np.int64), np.arange(8, dtype=np.int64)[::2]]), ValueError, "contiguous"),
    (_args(sources=[np.arange(4, dtype=np.int64), np.int64(3)]), TypeError, "first dimension"),
    (_args(sources=[np.arange(4, dtype=np.int64), b"12345678"]), ValueError, "source 1 has rows of 1 bytes"),
    (_args(sources=(np.arange(4),)), TypeError, "list"),
])
def test_c_gather_checks_its_arguments(kernel, args, error, match):
    with pytest.raises(error, match=match):
        kernel.gather_rows(*args)


def test_c_gather_wants_a_writable_out(kernel):
    out = np.zeros(3, dtype=np.int64)
    out.flags.writeable = False
    with pytest.raises((BufferError, ValueError, TypeError)):
        kernel.gather_rows(*_args(out=out))


def test_c_gather_moves_the_cursors_only_when_asked(kernel):
    args = _args(advance=False)
    assert kernel.gather_rows(*args) is True
    assert not args[2].any() and np.array_equal(args[3], [0, 0, 1])
    args = _args()
    assert kernel.gather_rows(*args) is True
    assert np.array_equal(args[2], [2, 1])


def test_a_mix_without_the_extension_gathers_the_same_batches(monkeypatch):
    import fastinput as fi

    def batches():
        inputs = [fi.Dataset.from_tensor_slices({"a": np.arange(i * 100, i * 100 + 40).reshape(20, 2),
                                                 "b": np.arange(20, dtype=np.float32) + i}).repeat() for i in range(3)]
        with iter(fi.Dataset.sample_from_datasets(inputs, seed=3).batch(16).take(12)) as it:
            return list(it)

    with_c = batches()
    monkeypatch.setattr(mix_layout, "_mixing", None)
    for a, b in zip(with_c, batches(), strict=True):
        assert np.array_equal(a["a"], b["a"]) and np.array_equal(a["b"], b["b"])
