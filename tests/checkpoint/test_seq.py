"""Checkpointing the sources and sequential ops: run N outcomes, save, run the rest; a fresh iterator of the same
pipeline restored from the (JSON round-tripped) state gives the same rest, errors in their places, and the end."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import fastinput as fi
from fastinput import errors
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.rows import RowBlocks
from fastinput.ops.batch import BatchDataset
from tests.helpers import NO_REWRITES, assert_same_run


@dataclasses.dataclass(frozen=True)
class Raised:
    """An error met in place of an element."""

    kind: str
    message: str


END = Raised("StopIteration", "the end")


def outcomes(it: fi.Iterator, limit: int | None = None) -> list[Any]:
    """The next ``limit`` outcomes (all, if None): elements, and a ``Raised`` for each error; the list ends with
    ``END`` where the iterator ended."""
    out: list[Any] = []
    while limit is None or len(out) < limit:
        try:
            out.append(next(it))
        except StopIteration:
            out.append(END)
            break
        except Exception as exc:  # errors keep their place; the pipeline goes on after them
            out.append(Raised(type(exc).__name__, str(exc)))
    return out


def assert_same_outcomes(actual: list[Any], expected: list[Any]) -> None:
    assert_same_run(actual, expected, Raised)


def saved(it: fi.Iterator) -> dict[str, Any]:
    """The iterator's state after a JSON round trip (what a checkpoint file gives back)."""
    return json.loads(json.dumps(it.get_state()))


def check_resume(dataset: fi.Dataset, n: int, options: fi.Options | None = NO_REWRITES) -> dict[str, Any]:
    """Save after ``n`` outcomes; the rest of the run and a restored fresh iterator's run are the uninterrupted
    run's rest. Returns the state."""
    if options is not None:
        dataset = dataset.with_options(options)
    with iter(dataset) as it:
        expected = outcomes(it)
    assert n <= len(expected)
    with iter(dataset) as it:
        head = outcomes(it, n)
        state = saved(it)
        assert json.loads(json.dumps(it.get_state())) == state, "get_state changed the iterator"
        rest = outcomes(it)
    assert_same_outcomes(head + rest, expected)
    with iter(dataset) as resumed:
        resumed.set_state(state)
        assert saved(resumed) == state, "a restored iterator saves what it was given"
        assert_same_outcomes(outcomes(resumed), expected[n:])
    return state


def fails_at(*bad: int) -> Callable[[Any], Any]:
    """A map function that raises for the elements in ``bad`` and passes the others through."""
    def fn(x: Any) -> Any:
        if int(x) in bad:
            raise ValueError(f"bad element {int(x)}")
        return x

    return fn


def cut_points(total: int) -> list[int]:
    """Where to save in a run of ``total`` outcomes (``END`` the last): everywhere in a short run; else before the
    first, early, in the middle, before the last and after it (before ``END`` was met)."""
    last = total - 1
    if total <= 40:
        return list(range(total))
    return sorted({0, min(1, last), min(3, last), last // 2, max(last - 1, 0), last})


def count_outcomes(dataset: fi.Dataset) -> int:
    with iter(dataset.with_options(NO_REWRITES)) as it:
        return len(outcomes(it))


def check_every_cut(dataset: fi.Dataset) -> None:
    for n in cut_points(count_outcomes(dataset)):
        check_resume(dataset, n)


# -- sources -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 7, 300])
def test_range(size):
    check_every_cut(fi.Dataset.range(size))
    check_every_cut(fi.Dataset.range(size, -5, -3))


@pytest.mark.parametrize("size", [0, 1, 9, 200])
def test_from_tensor_slices(size):
    check_every_cut(fi.Dataset.from_tensor_slices({"a": np.arange(size), "b": np.arange(size) * 0.5}))
    check_every_cut(fi.Dataset.from_tensor_slices(np.arange(size * 3).reshape(size, 3)))


def test_from_tensors():
    check_every_cut(fi.Dataset.from_tensors((np.arange(3), b"x")))


def generator_dataset(size: int, bad: tuple[int, ...] = ()) -> fi.Dataset:
    def gen():
        for i in range(size):
            if i in bad:
                raise ValueError(f"generator fails at {i}")
            yield i

    return fi.Dataset.from_generator(gen, output_signature=fi.TensorSpec((), np.int64))


@pytest.mark.parametrize("size", [0, 1, 10])
def test_from_generator(size):
    check_every_cut(generator_dataset(size))


def test_from_generator_error_ends_it():
    check_every_cut(generator_dataset(10, bad=(4,)))


def test_from_generator_conversion_error():
    ds = fi.Dataset.from_generator(lambda: iter([1, 2, "x", 4, 5]), output_signature=fi.TensorSpec((), np.int64))
    check_every_cut(ds)
    check_every_cut(ds.batch(2))


def test_from_generator_pending_error_in_a_chunk():
    # batch pulls chunks: the generator's error is met after two elements of a chunk and waits for the next call
    check_every_cut(generator_dataset(10, bad=(5,)).batch(3))
    check_every_cut(generator_dataset(10, bad=(5,)).batch(3).unbatch())


def test_from_generator_that_is_not_restartable():
    shared = iter(range(6))  # 4 taken before the save, 2 left: fewer than the restore skips
    ds = fi.Dataset.from_generator(lambda: shared, output_signature=fi.TensorSpec((), np.int64))
    with iter(ds) as it:
        outcomes(it, 4)
        state = saved(it)
    with iter(ds) as resumed:
        resumed.set_state(state)
        with pytest.raises(errors.InvalidArgumentError, match="same sequence on every call"):
            next(resumed)


def test_state_is_positions():
    with iter(fi.Dataset.range(10)) as it:
        outcomes(it, 3)
        assert it.get_state()["root"] == {"stage": "range", "position": 3, "inputs": []}


def test_restoring_into_another_pipeline_names_the_stage():
    with iter(fi.Dataset.range(10)) as it:
        state = it.get_state()
    with iter(fi.Dataset.range(10).take(3)) as other, pytest.raises(errors.InvalidArgumentError, match="take"):
        other.set_state(state)


# -- batch and unbatch -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 10, 33])
@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("drop_remainder", [False, True])
@pytest.mark.parametrize("num_parallel_calls,deterministic", [(None, None), (2, False)])  # accepted, run in order
def test_batch(size, batch_size, drop_remainder, num_parallel_calls, deterministic):
    check_every_cut(fi.Dataset.range(size).batch(batch_size, drop_remainder=drop_remainder,
                                                 num_parallel_calls=num_parallel_calls, deterministic=deterministic))


def test_batch_with_errors():
    failing = fi.Dataset.range(20).map(fails_at(3, 9, 10))
    check_every_cut(failing.batch(4))  # no rewrites: tf.data's batch rule, the batch dropped at an error
    check_every_cut(generator_dataset(10, bad=(6,)).batch(4))


def test_padded_batch():
    ds = fi.Dataset.range(1, 12).map(lambda x: np.arange(x)).padded_batch(3, padded_shapes=[None])
    check_every_cut(ds)


@pytest.mark.parametrize("batch_size", [2, 5])
def test_unbatch(batch_size):
    check_every_cut(fi.Dataset.range(23).batch(batch_size).unbatch())
    check_every_cut(fi.Dataset.range(23).batch(batch_size).unbatch().batch(3))


def test_unbatch_with_errors():
    check_every_cut(fi.Dataset.range(20).batch(3).map(lambda b: b[:2] if b[0] == 6 else b).map(
        lambda b: np.stack([b, b]) if b[0] == 12 else b).unbatch())


def row_blocks(sizes: list[int]) -> fi.Dataset:
    """Row blocks (tuples of equally long columns) of the given sizes, rows numbered 0, 1, ... across them."""
    def gen():
        start = 0
        for size in sizes:
            yield (np.arange(start, start + size), np.arange(start, start + size) * 0.5)
            start += size

    return fi.Dataset.from_generator(gen, output_signature=(fi.TensorSpec((None,), np.int64),
                                                            fi.TensorSpec((None,), np.float64)))


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batch_over_row_blocks(batch_size):
    for drop_remainder in (False, True):
        check_every_cut(BatchDataset(row_blocks([5, 0, 2, 9, 4]), batch_size, drop_remainder, rows=RowBlocks()))


# -- map and filter --------------------------------------------------------------------------------------------


def even_but_fails_at(*bad: int) -> Callable[[Any], bool]:
    def predicate(x: Any) -> bool:
        if int(x) in bad:
            raise ValueError(f"predicate fails at {int(x)}")
        return int(x) % 2 == 0

    return predicate


@pytest.mark.parametrize("size", [0, 1, 17])
def test_map(size):
    check_every_cut(fi.Dataset.range(size).map(lambda x: x * 2))
    check_every_cut(fi.Dataset.range(size).map(lambda x: x * 2).batch(4))


@pytest.mark.parametrize("consumer", ["next", "batch", "unbatch"])
def test_map_with_errors(consumer):
    ds = fi.Dataset.range(30).map(fails_at(0, 4, 5, 11, 29))
    if consumer == "batch":  # pulls chunks: a chunk that met an error is held back
        ds = ds.batch(3)
    elif consumer == "unbatch":  # one element at a time, after a chunked map
        ds = ds.batch(3).unbatch()
    check_every_cut(ds)


@pytest.mark.parametrize("size", [0, 1, 25])
def test_filter(size):
    check_every_cut(fi.Dataset.range(size).filter(lambda x: x % 3 == 0))
    check_every_cut(fi.Dataset.range(size).filter(lambda x: x % 3 == 0).batch(2))


@pytest.mark.parametrize("bad", [(0,), (3, 4), (7, 19), (24,)])
def test_filter_with_errors(bad):
    ds = fi.Dataset.range(25).filter(even_but_fails_at(*bad))
    check_every_cut(ds)
    check_every_cut(ds.batch(3))  # chunks: the kept elements before an error go out, the error waits
    check_every_cut(ds.batch(3).unbatch())


def test_map_over_a_chunk_held_by_map():
    # the outer map's chunk comes from the inner one's held chunk: both rewind
    ds = fi.Dataset.range(20).map(fails_at(6)).map(fails_at(8)).batch(5)
    check_every_cut(ds)


def skips(state: Any, stage: str) -> list[int]:
    """The ``skip`` of every ``stage`` in a saved state."""
    found = [state["skip"]] if state.get("stage") == stage else []
    return found + [skip for child in state.get("inputs", []) for skip in skips(child, stage)]


@pytest.mark.parametrize("held_by", ["map", "filter"])
def test_a_chunk_held_after_an_error_between_two_calls(held_by):
    # batch(3) over filter pulls chunks; the error of the stage below comes after kept elements and waits in it
    if held_by == "map":
        ds = fi.Dataset.range(30).map(fails_at(4, 13)).filter(lambda x: True).batch(3)
    else:
        ds = fi.Dataset.range(30).filter(even_but_fails_at(9, 16)).map(lambda x: x).batch(3)
    check_every_cut(ds)
    with iter(ds.with_options(NO_REWRITES)) as it:
        held = [skip for _ in range(8) if outcomes(it, 1) for skip in skips(it.get_state()["root"], held_by)]
    assert any(held), "no state saved while a chunk was held"


# -- take, skip, shard, concatenate, repeat, with_options ------------------------------------------------------


@pytest.mark.parametrize("count", [0, 3, 12, -1])
def test_take_and_skip(count):
    check_every_cut(fi.Dataset.range(10).take(count))
    check_every_cut(fi.Dataset.range(10).skip(count))
    check_every_cut(fi.Dataset.range(10).map(fails_at(1, 5)).skip(count))
    check_every_cut(fi.Dataset.range(10).map(fails_at(1, 5)).take(count))


@pytest.mark.parametrize("num_shards,index", [(1, 0), (3, 0), (3, 2), (4, 1)])
def test_shard(num_shards, index):
    check_every_cut(fi.Dataset.range(20).shard(num_shards, index))
    check_every_cut(fi.Dataset.range(20).map(fails_at(2, 3, 9)).shard(num_shards, index))
    check_every_cut(fi.Dataset.range(20).shard(num_shards, index).batch(2))


def test_concatenate():
    check_every_cut(fi.Dataset.range(5).concatenate(fi.Dataset.range(10, 14)))
    check_every_cut(fi.Dataset.range(0).concatenate(fi.Dataset.range(3)))
    check_every_cut(fi.Dataset.range(3).concatenate(fi.Dataset.range(0)))
    check_every_cut(fi.Dataset.range(8).map(fails_at(2)).concatenate(fi.Dataset.range(8).map(fails_at(6))).batch(3))


@pytest.mark.parametrize("count", [0, 1, 3])
def test_repeat(count):
    check_every_cut(fi.Dataset.range(4).repeat(count))
    check_every_cut(fi.Dataset.range(5).batch(2).repeat(count).unbatch())
    check_every_cut(fi.Dataset.range(6).map(fails_at(0, 5)).repeat(count).batch(4))


def test_repeat_forever():
    check_every_cut(fi.Dataset.range(3).repeat().take(11))
    check_every_cut(fi.Dataset.range(0).repeat())
    check_every_cut(fi.Dataset.range(3).map(fails_at(0, 1, 2)).repeat())  # tf.data's rule: errors only, it ends


@pytest.mark.parametrize("make", [lambda: fi.Dataset.range(3).repeat(2), lambda: fi.Dataset.range(3).repeat().take(4),
                                  lambda: fi.Dataset.range(4).batch(3).unbatch().repeat(2)])
def test_saved_after_the_end(make):
    ds = make()
    with iter(ds) as it:
        assert outcomes(it)[-1] == END
        state = saved(it)
    with iter(ds) as resumed:
        resumed.set_state(state)
        assert outcomes(resumed) == [END]


def test_with_options_adds_no_stage():
    ds = fi.Dataset.range(6).with_options(fi.Options(deterministic=True)).map(lambda x: x + 1)
    check_every_cut(ds)
    with iter(ds.with_options(NO_REWRITES)) as it:
        assert [stage["stage"] for stage in [it.get_state()["root"], it.get_state()["root"]["inputs"][0]]] == [
            "map", "range"]


# -- zip -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [(5, 5), (3, 8), (8, 3), (0, 4), (6, 7, 5)])
def test_zip(sizes):
    datasets = [fi.Dataset.range(size).map(lambda x, k=k: x * 10 + k) for k, size in enumerate(sizes)]
    check_every_cut(fi.Dataset.zip(tuple(datasets)))
    check_every_cut(fi.Dataset.zip(tuple(datasets)).batch(2))


def test_zip_with_errors_and_read_ahead():
    # the first input's chunk sets how many rows a call reads: batch(4) reads ahead, errors wait in the queues
    a = fi.Dataset.range(12).map(fails_at(2, 7))
    b = fi.Dataset.range(100, 111).filter(even_but_fails_at(104, 109))
    ds = fi.Dataset.zip({"a": a, "b": b})
    check_every_cut(ds)
    check_every_cut(ds.batch(4))
    check_every_cut(fi.Dataset.zip((fi.Dataset.range(9).batch(4).unbatch(), fi.Dataset.range(3).repeat())).batch(5))
    # the second input's error comes behind two of its elements in one read: the row after it is read too
    ahead = fi.Dataset.zip((fi.Dataset.range(12), fi.Dataset.range(100, 112).map(fails_at(102)))).batch(4)
    check_every_cut(ahead)
    with iter(ahead.with_options(NO_REWRITES)) as it:
        assert isinstance(outcomes(it, 1)[0], Raised)  # batch drops rows 0 and 1 at the error of row 2
        assert it.get_state()["root"]["inputs"][0]["skip"] == [3, 3], "a row read ahead is saved as positions"


# -- cache -----------------------------------------------------------------------------------------------------


def cached(filename: str) -> fi.Dataset:
    """A new cache dataset (as a new process would build it): its memory cache is empty."""
    return fi.Dataset.range(30).map(fails_at(7)).cache(filename)


@pytest.fixture(params=["memory", "file"])
def cache_name(request, tmp_path):
    return "" if request.param == "memory" else str(tmp_path / "cache")


@pytest.mark.parametrize("n", [0, 1, 8, 20, 30])
def test_cache_saved_while_recording_restored_into_a_new_recording(cache_name, n):
    with iter(cached(cache_name).with_options(NO_REWRITES)) as it:
        expected = outcomes(it)
    if cache_name:  # a file cache is complete now: the next pipeline would replay it
        os.remove(cache_name + ".fastinput-cache")
    interrupted = cached(cache_name)
    with iter(interrupted) as it:
        outcomes(it, n)
        state = saved(it)
    assert state["root"]["inputs"] == [], "a cache saves what its pass handed out, not its input's position"
    fresh = cached(cache_name)  # the interrupted pass recorded nothing that lasts
    with iter(fresh) as resumed:
        resumed.set_state(state)
        assert_same_outcomes(outcomes(resumed), expected[n:])
    # the restored pass read its input again from the start: the cache it leaves is whole (errors are not cached)
    with iter(fresh) as replay:
        assert_same_outcomes(outcomes(replay), [x for x in expected if not isinstance(x, Raised)] + [END])


def test_cache_saved_while_recording_restored_into_a_replay(cache_name):
    """The record is complete by the time the state is restored (here the saved pass went on to the end; in a
    pipeline a parallel stage after the cache may read the input to its end before the state is saved): the restored
    pass goes on as the saved one would have, with the input's errors after the save point, which a record leaves
    out (it reads the input again; a replay skipping the 11 elements handed out lost the error at 20)."""
    ds = fi.Dataset.range(30).map(fails_at(7, 20)).cache(cache_name)
    with iter(ds) as it:
        outcomes(it, 12)  # 0-6, the error, 8-11
        state = saved(it)
        rest = outcomes(it)  # the pass ends: the cache is complete
    assert any(isinstance(x, Raised) for x in rest)
    with iter(ds) as resumed:
        resumed.set_state(state)
        assert_same_outcomes(outcomes(resumed), rest)
    with iter(ds) as resumed:  # saved again while it reads the input again: restored so too
        resumed.set_state(state)
        head = outcomes(resumed, 10)
        again = saved(resumed)
    with iter(ds) as twice:
        twice.set_state(again)
        assert_same_outcomes(head + outcomes(twice), rest)


def test_cache_saved_after_its_recording_ended_restored_where_no_cache_is_complete(cache_name):
    """The recording pass read its input to the end (the record complete) but the epoch had not ended when the state
    was saved: restored in a fresh process (no memory record), the next epoch replays, without the input's errors,
    as it does uninterrupted; it recorded again, errors and all (checkpoint conformance, seed 1013 of session 16)."""
    def build():  # the shuffle has seen its input end when it hands out the batch: restored, it pulls no more
        return cached(cache_name).batch(100).shuffle(4, seed=1).repeat(2)

    with iter(build()) as it:
        outcomes(it, 2)  # the error, then the batch of 8-29: the pass has read its input to the end
        state = saved(it)
        rest = outcomes(it)
    assert [len(batch) for batch in rest[:-1]] == [29]
    if cache_name:
        os.remove(cache_name + ".fastinput-cache")
    with iter(build()) as resumed:
        resumed.set_state(state)
        assert_same_outcomes(outcomes(resumed), rest)


def test_cache_saved_while_replaying_restored_where_no_cache_is_complete(cache_name):
    """A fresh process has no complete cache: the restored pass records the input first (its errors left out, as
    the replay it continues has none), then replays from the saved position."""
    for n in (0, 5, 12, 28):
        ds = cached(cache_name)
        with iter(ds) as it:
            outcomes(it)  # the first pass: the cache is complete
        with iter(ds) as it:
            outcomes(it, n)
            state = saved(it)
            replayed_rest = outcomes(it)
        assert state["root"]["replaying"]
        if cache_name:
            os.remove(cache_name + ".fastinput-cache")
        with iter(cached(cache_name)) as resumed:
            resumed.set_state(state)
            assert_same_outcomes(outcomes(resumed), replayed_rest)


def test_cache_replay(cache_name):
    ds = cached(cache_name)
    with iter(ds) as it:
        outcomes(it)
    check_every_cut(ds)
    check_every_cut(ds.batch(4))


def test_cache_file_replay_skips_across_chunks(tmp_path):
    ds = fi.Dataset.range(2500).cache(str(tmp_path / "cache"))  # written 1024 elements a chunk
    with iter(ds) as it:
        outcomes(it)
    for n in (1023, 1024, 2049, 2500):
        check_resume(ds, n)


# -- list_files, and the example of Iterator.get_state without its shuffle ----------------------------------------


@pytest.fixture
def files(tmp_path):
    for i in range(7):
        (tmp_path / f"part-{i}.txt").write_bytes(b"x")
    return str(tmp_path / "part-*.txt")


def test_list_files_in_order(files):
    check_every_cut(fi.Dataset.list_files(files, shuffle=False))
    check_every_cut(fi.Dataset.list_files(files, shuffle=False).repeat(2).batch(3))


def test_list_files_shuffled(files):
    """Shuffled names: a new iteration reshuffles (as in tf.data), so the restored run is compared with the rest of
    the run it was saved from."""
    for dataset in (fi.Dataset.list_files(files, seed=3), fi.Dataset.list_files(files, seed=3).repeat(3)):
        for n in range(count_outcomes(dataset) + 1):
            with iter(dataset) as it:
                outcomes(it, n)
                state = saved(it)
                rest = outcomes(it)
            with iter(dataset) as resumed:
                resumed.set_state(state)
                assert_same_outcomes(outcomes(resumed), rest)


def test_range_batch_resumes_as_the_docstring_says():
    ds = fi.Dataset.range(10).batch(3)
    it = iter(ds)
    first = next(it).tolist()
    state = it.get_state()
    rest = [b.tolist() for b in it]
    resumed = iter(ds)
    resumed.set_state(state)
    assert first == [0, 1, 2] and [b.tolist() for b in resumed] == rest == [[3, 4, 5], [6, 7, 8], [9]]


# -- saved between two chunk requests (as a parallel stage, a shuffle or a prefetch saves its input) ------------


def chunk_outcomes(stage: DatasetIterator, n: int, calls: int | None = None) -> list[Any]:
    """The outcomes of ``calls`` requests ``get_next_chunk(n)`` (all, if None) to a running stage, flattened."""
    out: list[Any] = []
    while calls is None or calls > 0:
        calls = None if calls is None else calls - 1
        try:
            out.extend(stage.get_next_chunk(n))
        except StopIteration:
            out.append(END)
            break
        except Exception as exc:
            out.append(Raised(type(exc).__name__, str(exc)))
    return out


def stage_tree(dataset: fi.Dataset) -> DatasetIterator:
    return dataset.make_iterator(IteratorContext(NO_REWRITES))


@pytest.mark.parametrize("name,dataset", [
    ("generator", generator_dataset(20, bad=(7,))),
    ("map", fi.Dataset.range(20).map(fails_at(3, 4, 12))),
    ("filter", fi.Dataset.range(30).filter(even_but_fails_at(5, 6, 17))),
    ("zip", fi.Dataset.zip((fi.Dataset.range(20).map(fails_at(6)), fi.Dataset.range(20).map(fails_at(2, 13))))),
    ("unbatch", fi.Dataset.range(20).batch(3).unbatch()),
    ("skip", fi.Dataset.range(20).map(fails_at(1, 7)).skip(4)),
    ("shard", fi.Dataset.range(30).map(fails_at(3, 4, 8)).shard(3, 1)),
])
@pytest.mark.parametrize("n", [1, 4, 7])
def test_saved_between_chunk_requests(name, dataset, n):
    root = stage_tree(dataset)
    expected = chunk_outcomes(root, n)
    root.close()
    for calls in range(len(expected)):
        root = stage_tree(dataset)
        head = chunk_outcomes(root, n, calls)
        if head[-1:] == [END]:
            root.close()
            break
        state = json.loads(json.dumps(root.get_state()))
        root.close()
        resumed = stage_tree(dataset)
        resumed.set_state(state)
        assert_same_outcomes(head + chunk_outcomes(resumed, n), expected)
        resumed.close()
