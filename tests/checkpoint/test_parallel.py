"""Saving and restoring the stages that work ahead: parallel map, map_and_batch, prefetch, prefetch_to_device.

Each test runs N steps, saves (through JSON), runs K more; a fresh iterator of the same pipeline restored from the
state must give the same K (deterministic) or complete the epoch with nothing lost and nothing repeated (not
deterministic). The source is a small checkpointable one defined here (an error at chosen positions, after which
it goes on), so these tests need no other stage's state.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from typing import Any

import numpy as np
import pytest

import fastinput as fi
from fastinput.extension import Dataset
from tests.checkpoint.stages import Ints


def _work(x: Any) -> Any:
    """x * 10, slow on every third element (so parallel workers finish out of order); fails on 13."""
    if x == 13:
        raise ValueError("function failed on 13")
    if x % 3 == 0:
        time.sleep(0.0005)
    return x * 10


def _slow(x: Any) -> Any:
    """``_work`` without its error."""
    return _work(x + 1000)


def _rows(outcomes: list[Any]) -> list[Any]:
    """The values, batches' rows one by one, and the errors (when not deterministic, which elements make a batch
    may change from run to run: the rows may not)."""
    rows: list[Any] = []
    for outcome in outcomes:
        value = json.loads(outcome) if isinstance(outcome, str) and outcome != "end" else outcome
        rows += value if isinstance(value, list) else [value]
    return [row for row in rows if row != "end"]


def _outcome(value: Any) -> Any:
    return json.dumps(np.asarray(value).tolist())


def steps(it: Any, count: int) -> list[Any]:
    """What up to ``count`` ``next()`` calls give: values, ``("error", message)``, and "end" (which stops)."""
    out: list[Any] = []
    for _ in range(count):
        try:
            out.append(_outcome(next(it)))
        except StopIteration:
            out.append("end")
            break
        except ValueError as exc:
            out.append(("error", str(exc)))
    return out


def saved_after(dataset: Dataset, n: int, k: int) -> tuple[list[Any], dict[str, Any], list[Any]]:
    """(the first ``n`` steps, the state then through JSON, the ``k`` steps after it)."""
    with iter(dataset) as it:
        first = steps(it, n)
        state = json.loads(json.dumps(it.get_state()))
        rest = steps(it, k)
    return first, state, rest


def resumed(dataset: Dataset, state: dict[str, Any], k: int) -> list[Any]:
    with iter(dataset) as it:
        it.set_state(state)
        return steps(it, k)


def check_resume(dataset: Dataset, n: int, k: int, deterministic: bool) -> None:
    """Deterministic: the restored iterator gives the same ``k`` steps. Otherwise: the first ``n`` steps and all the
    restored one gives make the epoch's multiset."""
    first, state, rest = saved_after(dataset, n, k)
    if deterministic:
        assert resumed(dataset, state, k) == rest
        return
    epoch = _rows(steps(iter(dataset), 10_000))
    assert collections.Counter(_rows(first + resumed(dataset, state, 10_000))) == collections.Counter(epoch)


SIZES = [0, 1, 7, 40]
FAILS = (5, 21)  # the source's errors; the map function fails on 13


def _cuts(size: int) -> list[int]:
    """Steps to save after: before the first element, early, in the middle, at the end (and past it)."""
    steps_in_epoch = size + 1  # every position gives one step (an error too); then "end"
    return sorted({0, 1, steps_in_epoch // 2, steps_in_epoch - 1, steps_in_epoch})


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("parallelism", [1, 3])
@pytest.mark.parametrize("size", SIZES)
def test_parallel_map(size: int, parallelism: int, deterministic: bool) -> None:
    dataset = Ints(0, size, FAILS).map(_work, num_parallel_calls=parallelism, deterministic=deterministic)
    for n in _cuts(size):
        check_resume(dataset, n, 12, deterministic)


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("parallelism", [None, 1, 3])
@pytest.mark.parametrize("drop_remainder", [False, True])
@pytest.mark.parametrize("size", SIZES)
def test_map_and_batch(size: int, drop_remainder: bool, parallelism: int | None, deterministic: bool) -> None:
    dataset = Ints(0, size, FAILS).map_and_batch(_work, 4, num_parallel_calls=parallelism,
                                                   drop_remainder=drop_remainder, deterministic=deterministic)
    for n in sorted({0, 1, 3, size // 4 + 1, size // 4 + 2}):
        check_resume(dataset, n, 5, deterministic)


@pytest.mark.parametrize("buffer_size", [1, 3, fi.AUTOTUNE])
@pytest.mark.parametrize("size", SIZES)
def test_prefetch(size: int, buffer_size: int) -> None:
    dataset = Ints(0, size, FAILS).prefetch(buffer_size)
    for n in _cuts(size):
        check_resume(dataset, n, 12, True)


def test_prefetch_to_device_saves_positions_not_tensors() -> None:
    torch = pytest.importorskip("torch")
    dataset = Ints(0, 30, FAILS).map_and_batch(_work, 4, num_parallel_calls=2).prefetch_to_device("cpu", 2)
    with iter(dataset) as it:
        assert isinstance(next(it), torch.Tensor)
        state = json.loads(json.dumps(it.get_state()))
        rest = [b.tolist() if isinstance(b, torch.Tensor) else b for b in steps(it, 10)]
    assert state["root"]["stage"] == "prefetch_to_device" and state["root"]["skip"] == []
    assert resumed(dataset, state, 10) == rest


@pytest.mark.parametrize("deterministic", [True, False])
def test_stacked_stages_and_a_state_saved_at_every_step(deterministic: bool) -> None:
    """Parallel stages over parallel stages: each saves the state its input had when it pulled."""
    dataset = (Ints(0, 60, FAILS).map(_work, num_parallel_calls=3, deterministic=deterministic)
               .prefetch(2).map(lambda x: x + 1, num_parallel_calls=2, deterministic=deterministic).prefetch(3))
    dataset = dataset.with_options(fi.Options(optimization=fi.OptimizationOptions(map_fusion=False)))
    epoch = [step for step in steps(iter(dataset), 10_000) if step != "end"]
    with iter(dataset) as it:
        states, taken = [], []
        while (step := steps(it, 1)) != ["end"]:
            taken += step
            states.append((len(taken), json.loads(json.dumps(it.get_state()))))
    for n, state in states[::7]:
        rest = [step for step in resumed(dataset, state, 10_000) if step != "end"]
        if deterministic:
            assert taken[:n] + rest == epoch
        else:
            assert collections.Counter(taken[:n] + rest) == collections.Counter(epoch)


def test_rewritten_pipeline_restores_into_the_same_rewrite() -> None:
    """map -> map -> batch is fused into map_and_batch: its state restores into the same rewritten pipeline, and
    into the pipeline without the rewrites it is refused, naming the stage that differs."""
    plain = Ints(0, 40).map(_work, num_parallel_calls=2).map(lambda x: x - 1, num_parallel_calls=2).batch(3)
    check_resume(plain, 4, 6, True)
    _, state, _ = saved_after(plain, 4, 0)
    assert state["root"]["stage"] == "map_and_batch"
    unfused = plain.with_options(fi.Options(optimization=fi.OptimizationOptions(
        map_fusion=False, map_and_batch_fusion=False)))
    with iter(unfused) as it, pytest.raises(fi.errors.InvalidArgumentError, match="differs"):
        it.set_state(state)


@pytest.mark.parametrize("deterministic", [True, False])
def test_saving_while_parallelism_and_buffers_change(deterministic: bool) -> None:
    """Another thread turns every knob while the consumer runs and saves. (No errors here: which elements a batch
    that meets one drops depends on the order, when not deterministic.)"""
    dataset = (Ints(0, 200).map(_slow, num_parallel_calls=4, deterministic=deterministic)
               .map_and_batch(lambda x: x + 1, 3, num_parallel_calls=2, deterministic=deterministic).prefetch(2))
    epoch = [step for step in steps(iter(dataset), 10_000) if step != "end"]
    stop = threading.Event()
    saves = []
    with iter(dataset) as it:
        knobs = it.knobs()

        def turn() -> None:
            rng = np.random.default_rng(0)
            while not stop.is_set():
                knob = knobs[rng.integers(len(knobs))]
                knob.set(int(rng.integers(1, 6)))
                time.sleep(0.001)

        turner = threading.Thread(target=turn)
        turner.start()
        try:
            taken: list[Any] = []
            while (step := steps(it, 1)) != ["end"]:
                taken += step
                if len(taken) % 5 == 0:
                    saves.append((len(taken), json.loads(json.dumps(it.get_state()))))
        finally:
            stop.set()
            turner.join()
    for n, state in saves[::3]:
        rest = [step for step in resumed(dataset, state, 10_000) if step != "end"]
        if deterministic:
            assert taken[:n] + rest == epoch
        else:
            assert collections.Counter(_rows(taken[:n] + rest)) == collections.Counter(_rows(epoch))


def test_saving_while_the_autotuner_runs() -> None:
    """AUTOTUNE stages under the running tuner: states saved along the way restore exactly."""
    dataset = Ints(0, 300).map(_work, num_parallel_calls=fi.AUTOTUNE).prefetch(fi.AUTOTUNE)
    expected = [_outcome(x * 10) for x in range(300) if x != 13]
    with iter(dataset) as it:
        taken, saves = [], []
        while (step := steps(it, 1)) != ["end"]:
            taken += step
            time.sleep(0.002)
            if len(taken) % 40 == 0:
                saves.append((len(taken), json.loads(json.dumps(it.get_state()))))
    taken = [step for step in taken if not isinstance(step, tuple)]
    assert taken == expected
    for n, state in saves:
        rest = [step for step in resumed(dataset, state, 10_000) if step != "end"]
        assert [s for s in rest if not isinstance(s, tuple)] == expected[n - (n > 13):]


def test_a_restored_stage_starts_no_thread_before_its_first_element() -> None:
    dataset = Ints(0, 20).map(_work, num_parallel_calls=3).prefetch(2)
    _, state, rest = saved_after(dataset, 6, 4)
    before = set(threading.enumerate())
    with iter(dataset) as it:
        it.set_state(state)
        assert set(threading.enumerate()) - before == set()
        assert json.loads(json.dumps(it.get_state()))["root"] == state["root"]  # saved again before it starts
        assert steps(it, 4) == rest


def test_an_input_that_cannot_save_is_reported_when_the_state_is_asked_for() -> None:
    with iter(Ints(0, 10, saves=False).map(lambda x: x, num_parallel_calls=2).prefetch(2)) as it:
        assert int(next(it)) == 0  # the pipeline runs on
        with pytest.raises(fi.errors.UnimplementedError, match="could not save"):
            it.get_state()
        assert [int(x) for x in it] == list(range(1, 10))


def test_a_damaged_state_is_refused() -> None:
    dataset = Ints(0, 10).map(_work, num_parallel_calls=2)
    _, state, _ = saved_after(dataset, 3, 0)
    state["root"]["skip"] = [[2, 1], [0, 1]]
    with iter(dataset) as it, pytest.raises(fi.errors.InvalidArgumentError, match="damaged"):
        it.set_state(state)


def test_a_stage_knows_whether_its_input_restores_in_order() -> None:
    """``restores_in_order`` is False from a ``deterministic=False`` stage up; a stage above one hands out in order
    and saves no partial work (so its state needs no position of that input's), yet loses and repeats nothing."""
    dataset = (Ints(0, 50).map(_slow, num_parallel_calls=3, deterministic=False)
               .map(lambda x: x + 1, num_parallel_calls=2, deterministic=False).prefetch(2))
    dataset = dataset.with_options(fi.Options(optimization=fi.OptimizationOptions(map_fusion=False)))
    with iter(dataset) as it:
        stages = [stage for _, stage in it._root.walk()]
        assert [stage.restores_in_order() for stage in stages] == [False, False, False, True]
        first = steps(it, 7)
        state = json.loads(json.dumps(it.get_state()))
    assert state["root"]["skip"] == [] and state["root"]["inputs"][0]["skip"] == []
    epoch = steps(iter(dataset), 100)
    assert collections.Counter(first + resumed(dataset, state, 100)) == collections.Counter(epoch)


def _with_sequential_stages(deterministic: bool, *, unbatch: bool) -> Dataset:
    dataset = (fi.Dataset.range(45).repeat(2).filter(lambda x: x % 7 != 3)
               .map(_slow, num_parallel_calls=3, deterministic=deterministic).prefetch(2)
               .map(lambda x: x + 1, num_parallel_calls=2, deterministic=deterministic).batch(4))
    return (dataset.unbatch() if unbatch else dataset).prefetch(3)


@pytest.mark.parametrize("deterministic", [True, False])
def test_with_the_sequential_stages(deterministic: bool) -> None:
    """range, repeat, filter, batch (fused with the map before it), unbatch around the parallel stages."""
    dataset = _with_sequential_stages(deterministic, unbatch=deterministic)
    for n in (0, 5, 37, 80):
        check_resume(dataset, n, 20, deterministic)


def test_unbatch_below_a_non_deterministic_stage() -> None:
    for n in (5, 37, 80):
        check_resume(_with_sequential_stages(False, unbatch=True), n, 20, False)
