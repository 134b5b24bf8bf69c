"""The buffered shuffle's C kernel (``fastinput.ops._shuffle``) against its Python fallback: the same draws, every
argument checked before anything changes, no reference gained or lost; and the shuffle itself, over elements and
over TFRecord files whose positions it tracks, the same with the kernel and without it. (``tests/fuzz``'s
``shuffle`` target runs the kernel on thousands of good and bad calls in child processes.)"""

import json
import random
import sys

import pytest

import fastinput as fi
from fastinput.ops import shuffle
from fastinput.readers.framing import frame


@pytest.fixture
def kernel():
    """The C extension (the tests of its own functions skip where it is not built; CI builds it)."""
    return pytest.importorskip("fastinput.ops._shuffle")


def _draw_lists(rng, size, incoming, randoms, positions):
    lists = {"buffer": [object() for _ in range(size)], "incoming": [object() for _ in range(incoming)],
             "randoms": [rng.random() for _ in range(randoms)]}
    if positions:
        lists["positions"] = [("p", i) for i in range(size)]
        lists["incoming_positions"] = [("q", i) for i in range(incoming)]
    return lists


def _copied(lists):
    return {key: list(value) for key, value in lists.items()}


@pytest.mark.parametrize("positions", [False, True])
def test_draw_is_its_fallback(kernel, positions):
    rng = random.Random(positions)
    for _ in range(500):
        size = rng.randint(1, 12)  # small buffers: the same place is drawn twice in a run, often
        lists = _draw_lists(rng, size, rng.randint(0, 30), rng.randint(0, 30), positions)
        count = rng.randint(0, min(len(lists["incoming"]), len(lists["randoms"])))
        fallback = _copied(lists)
        out = kernel.draw(lists["buffer"], lists["incoming"], lists["randoms"], count, lists.get("positions"),
                          lists.get("incoming_positions"))
        assert out == shuffle.draw_python(fallback["buffer"], fallback["incoming"], fallback["randoms"], count,
                                          fallback.get("positions"), fallback.get("incoming_positions"))
        assert lists == fallback


@pytest.mark.parametrize("positions", [False, True])
def test_drain_is_its_fallback(kernel, positions):
    rng = random.Random(positions)
    for _ in range(500):
        lists = _draw_lists(rng, rng.randint(0, 12), 0, rng.randint(0, 30), positions)
        count = rng.randint(0, min(len(lists["buffer"]), len(lists["randoms"])))
        fallback = _copied(lists)
        out = kernel.drain(lists["buffer"], lists["randoms"], count, lists.get("positions"))
        assert out == shuffle.drain_python(fallback["buffer"], fallback["randoms"], count, fallback.get("positions"))
        assert lists == fallback


def test_a_draw_takes_the_place_its_random_number_names(kernel):
    buffer, incoming, randoms = ["a", "b", "c", "d"], ["e", "f"], [0.0, 0.99, 0.5]
    assert kernel.draw(buffer, incoming, randoms, 2) == ["c", "d"]  # from the end: 0.5 -> 2, then 0.99 -> 3
    assert (buffer, incoming, randoms) == (["a", "b", "e", "f"], [], [0.0])
    assert kernel.drain(buffer, [0.0, 0.5], 2) == ["e", "a"]  # 0.5 of 4 -> 2; 0.0 of 3 -> 0 (where "f" went)
    assert buffer == ["f", "b"]


@pytest.mark.parametrize("call, error, match", [
    (lambda k, b, i, r: k.draw(b, i, r, -1), ValueError, "negative"),
    (lambda k, b, i, r: k.draw(b, i, r, 4), ValueError, "exceeds"),
    (lambda k, b, i, r: k.draw([], i, r, 1), ValueError, "empty"),
    (lambda k, b, i, r: k.draw(b, i, r + [1.0], 1), ValueError, r"\[0, 1\)"),
    (lambda k, b, i, r: k.draw(b, i, r + [float("nan")], 1), ValueError, r"\[0, 1\)"),
    (lambda k, b, i, r: k.draw(b, i, r + [-1e-300], 1), ValueError, r"\[0, 1\)"),
    (lambda k, b, i, r: k.draw(b, i, r[:1] + [1] + r[1:], 3), TypeError, "not a float"),
    (lambda k, b, i, r: k.draw(b, tuple(i), r, 1), TypeError, "list"),
    (lambda k, b, i, r: k.draw(b, i, r, 1, [0] * len(b)), TypeError, "together"),
    (lambda k, b, i, r: k.draw(b, i, r, 1, [0], [0, 0, 0]), ValueError, "positions"),
    (lambda k, b, i, r: k.drain(b, r, len(b) + 1), ValueError, "exceeds"),
    (lambda k, b, i, r: k.drain(b, r + [2.0], 1), ValueError, r"\[0, 1\)"),
    (lambda k, b, i, r: k.drain(b, r, 1, [0]), TypeError, "positions"),
])
def test_bad_arguments_are_refused_with_nothing_changed(kernel, call, error, match):
    buffer, incoming, randoms = ["a", "b", "c"], ["d", "e", "f"], [0.1, 0.2, 0.3]
    with pytest.raises(error, match=match):
        call(kernel, buffer, incoming, randoms)
    assert (buffer, incoming, randoms) == (["a", "b", "c"], ["d", "e", "f"], [0.1, 0.2, 0.3])


def test_no_reference_is_gained_or_lost(kernel):
    elements = [object() for _ in range(40)]
    counts = [sys.getrefcount(e) for e in elements]
    buffer, incoming = elements[:10], elements[10:]
    rng = random.Random(0)
    out = kernel.draw(buffer, incoming, [rng.random() for _ in range(30)], 30)
    out += kernel.drain(buffer, [rng.random() for _ in range(10)], 10)
    assert sorted(map(id, out)) == sorted(map(id, elements)) and buffer == incoming == []
    del out, buffer, incoming
    assert [sys.getrefcount(e) for e in elements] == counts


def _shuffle_buffer(state):
    """The buffer a shuffle's state saves (the first stage state that has one)."""
    if isinstance(state, dict):
        if "buffer" in state:
            return state["buffer"]
        state = list(state.values())
    for part in state if isinstance(state, list) else []:
        found = _shuffle_buffer(part)
        if found is not None:
            return found
    return None


def _without_kernel(monkeypatch):
    monkeypatch.setattr(shuffle, "draw", shuffle.draw_python)
    monkeypatch.setattr(shuffle, "drain", shuffle.drain_python)


@pytest.mark.parametrize("fused", [True, False])
def test_the_shuffle_is_the_same_without_the_kernel(monkeypatch, fused):
    options = fi.Options(optimization=fi.OptimizationOptions(shuffle_and_repeat_fusion=fused))

    def batches():  # new datasets each time: a dataset's next iterator would take the next seed of its sequence
        return [[batch.tolist() for batch in fi.Dataset.range(n).shuffle(buffer, seed=n + buffer).repeat(3)
                 .batch(64).with_options(options)]
                for n, buffer in [(0, 5), (1, 1), (700, 1), (700, 64), (700, 699), (700, 5000), (3000, 1024)]]

    with_kernel = batches()
    _without_kernel(monkeypatch)
    assert batches() == with_kernel


def test_positions_move_with_their_elements_and_restore(tmp_path, monkeypatch):
    """Over TFRecord files with positions tracked (a state names where each buffered record was read): the
    records, and a state saved mid-way and restored, are the same with the kernel and without it."""
    files = []
    for i in range(3):
        files.append(str(tmp_path / f"{i}.tfrecord"))
        with open(files[-1], "wb") as f:
            f.write(b"".join(frame(b"%d-%d" % (i, r)) for r in range(300)))
    options = fi.Options(checkpoint=fi.CheckpointOptions(positions=True))

    def run():
        ds = fi.TFRecordDataset(files).shuffle(200, seed=3).repeat(2).batch(32).with_options(options)
        with iter(ds) as it:
            first = [next(it).tolist() for _ in range(20)]
            state = json.loads(json.dumps(it.get_state()))
            rest = [batch.tolist() for batch in it]
        assert _shuffle_buffer(state) == [None] * 200  # positions stand for every buffered record's value
        with iter(ds) as resumed:
            resumed.set_state(state)
            assert [batch.tolist() for batch in resumed] == rest
        return first + rest

    with_kernel = run()
    written = [b"%d-%d" % (i, r) for i in range(3) for r in range(300)]
    assert sorted(r for batch in with_kernel for r in batch) == sorted(written * 2)
    _without_kernel(monkeypatch)
    assert run() == with_kernel


def test_a_finalizer_run_by_a_draw_finds_the_lists_whole(kernel):
    """A position freed by a draw may run Python (its finalizer) that looks at the lists: the kernel drops its
    references only once the draws are all made, so the finalizer sees them consistent, and cannot pull a list
    from under the loop."""
    seen = []

    class Position:
        def __del__(self):
            seen.append((len(buffer), len(incoming), len(positions)))
            buffer.clear()  # what a careless finalizer could do; the kernel is done with the lists by now

    buffer, incoming = list(range(8)), list(range(100, 108))
    positions, incoming_positions = [Position() for _ in range(8)], [None] * 8
    out = kernel.draw(buffer, incoming, [0.99, 0.5, 0.0, 0.7] * 2, 8, positions, incoming_positions)
    assert len(out) == 8 and seen
    assert seen[0] == (8, 0, 8)  # the draws made, the used incoming elements deleted, before any finalizer ran
