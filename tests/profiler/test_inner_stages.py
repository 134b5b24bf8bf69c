"""The stages inside an interleave's (or flat_map's) datasets show in ``it.stats()`` and in the profiler's report.

Each dataset ``map_func`` makes is a small pipeline of its own; the stats add them up, one row per stage, below the
interleave, and the interleave's own time no longer holds theirs, so the profiler names the inner stage that
limits a pipeline (a costly ``map`` inside the datasets) instead of the interleave.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import fastinput as fi
from fastinput.profiler.analysis import analyze_summary, summary_since
from fastinput.readers.framing import frame

SLEEP = 0.002


def slow(x):
    time.sleep(SLEEP)
    return x


def by_name(stats) -> dict:
    return {s.name: s for s in stats}


@pytest.mark.parametrize("parallel_calls", [None, 2])
def test_the_datasets_stages_are_added_up_below_the_interleave(parallel_calls) -> None:
    ds = fi.Dataset.range(6).interleave(lambda i: fi.Dataset.range(i * 100, i * 100 + 10).map(slow), cycle_length=2,
                                        num_parallel_calls=parallel_calls)
    with iter(ds) as it:
        assert len(list(it)) == 60
        stats = it.stats()
    interleave, source, inner_map, inner_range = stats
    assert interleave.name.startswith("interleave(") and interleave.depth == 0 and interleave.inner_of is None
    assert (source.name, source.depth, source.inner_of) == ("range(6)", 1, None)
    # one row per stage of the datasets, every dataset's figures added up; ranges named after their element
    assert (inner_map.name, inner_map.depth, inner_map.elements) == ("map(slow)", 1, 60)
    assert (inner_range.name, inner_range.depth, inner_range.elements) == ("range(...)", 2, 60)
    assert inner_map.inner_of == inner_range.inner_of == interleave.name
    # the map's sleeps are its own work, no longer the interleave's
    assert inner_map.self_seconds >= 60 * SLEEP
    assert interleave.self_seconds < inner_map.self_seconds / 4
    # a synchronous inner stage runs on as many threads as the interleave reads datasets at once
    assert inner_map.parallelism == (parallel_calls or 1)


def test_flat_map_shows_the_stages_of_its_datasets() -> None:
    ds = fi.Dataset.range(5).flat_map(lambda x: fi.Dataset.from_tensors(x).repeat(3).batch(2))
    with iter(ds) as it:
        assert [int(v[0]) for v in it] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
        stages = by_name(it.stats())
    assert stages["batch(2)"].elements == 10 and stages["batch(2)"].depth == 1
    assert stages["repeat(3)"].elements == 15 and stages["repeat(3)"].depth == 2
    # below a repeat: the stages of its last epoch
    source = stages["from_tensors(<1 component(s), 1 element(s)>)"]
    assert source.elements == 15 and source.depth == 3 and source.inner_of == stages["batch(2)"].inner_of


def test_an_interleave_inside_the_datasets_keeps_its_own_stages() -> None:
    ds = fi.Dataset.range(3).interleave(
        lambda x: fi.Dataset.range(2).interleave(lambda y: fi.Dataset.range(4).map(slow), cycle_length=2,
                                                 num_parallel_calls=2),
        cycle_length=2, num_parallel_calls=2)
    with iter(ds) as it:
        assert len(list(it)) == 24
        stats = it.stats()
    outer, _, inner, inner_source, inner_map, _ = stats
    assert inner.inner_of == outer.name and inner_source.inner_of == outer.name
    assert inner_map.inner_of == inner.name and inner_map.depth == 2 and inner_map.elements == 24


def test_a_reader_that_interleaves_its_files_stays_one_stage(tmp_path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.tfrecord"
        path.write_bytes(b"".join(frame(b"record %d %d" % (i, j)) for j in range(4)))
        paths.append(str(path))
    with iter(fi.TFRecordDataset(paths, num_parallel_reads=2)) as it:
        assert len(list(it)) == 12
        stats = it.stats()
    assert all(s.inner_of is None for s in stats)
    assert stats[0].name.startswith("TFRecordDataset(")


def test_a_report_from_stats_names_the_pipeline_without_the_inner_stages() -> None:
    ds = fi.Dataset.range(3).interleave(lambda x: fi.Dataset.range(4).map(slow), cycle_length=2)
    with iter(ds) as it:
        assert len(list(it)) == 12
        report = fi.profiler.analyze(it.stats())
    assert report.pipeline == "range(3) -> interleave(<lambda>, cycle_length=2, block_length=1)"
    assert report.limiting_stage == "map(slow)"


def test_the_profiler_names_a_costly_map_inside_the_datasets_and_says_to_move_it() -> None:
    ds = (fi.Dataset.range(10**6)
          .interleave(lambda i: fi.Dataset.range(8).map(slow), cycle_length=2, num_parallel_calls=2)
          .prefetch(2))
    report = ds.profile(steps=150, warmup=10, print_report=False)
    assert report.limiting_stage == "map(slow)"
    inner = report.stage("map(slow)")
    assert inner.inner_of.startswith("interleave(<lambda>, cycle_length=2") and inner.parallelism == 2
    assert "of interleave(<lambda>, cycle_length=2" in report.verdict and "that read its datasets" in report.verdict
    assert report.recommendation.startswith("map(slow) runs inside each dataset of interleave(")
    assert "apply map(slow) to the interleave's output instead" in report.recommendation


def test_a_summary_taken_before_the_first_dataset_opened_is_matched_stage_by_stage() -> None:
    ds = fi.Dataset.range(4).interleave(lambda i: fi.Dataset.range(5).map(slow), cycle_length=1)
    with iter(ds) as it:
        before = it.stats_summary()  # nothing opened yet: no inner rows
        assert len(before["stages"]) == 2
        assert len(list(it)) == 20
        after = it.stats_summary()
    since = summary_since(before, after)
    names = [s["name"] for s in since["stages"]]
    assert names == [s["name"] for s in after["stages"]] == [
        "interleave(<lambda>, cycle_length=1, block_length=1)", "range(4)", "map(slow)", "range(5)"]
    assert [s["elements"] for s in since["stages"]] == [20, 4, 20, 20]
    report = analyze_summary(since, cpus=2)
    assert report.limiting_stage == "map(slow)"
    # a sequential interleave runs its datasets on the consumer's thread: the map is judged on that thread
    assert "consumer's time in next()" in report.verdict


def test_an_inner_row_renamed_between_two_summaries_is_still_matched() -> None:
    ds = fi.Dataset.range(4).interleave(lambda i: fi.Dataset.range(i * 10, i * 10 + 5), cycle_length=1)
    with iter(ds) as it:
        assert [int(next(it)) for _ in range(3)] == [0, 1, 2]
        before = it.stats_summary()  # inside the first dataset: its row is named after it
        assert len(list(it)) == 17
        after = it.stats_summary()  # four datasets added up: the row is range(...)
    assert [s["name"] for s in before["stages"]][-1] == "range(0, 5)"
    assert [s["name"] for s in after["stages"]][-1] == "range(...)"
    inner = summary_since(before, after)["stages"][-1]
    assert inner["name"] == "range(...)" and inner["elements"] == 17  # the elements since, not all 20


def test_stats_read_while_datasets_open_and_end_never_count_one_twice() -> None:
    ds = fi.Dataset.range(400).interleave(lambda i: fi.Dataset.range(3).map(lambda x: x + 1), cycle_length=4,
                                          num_parallel_calls=4).prefetch(4)
    seen: list[int] = []
    stop = threading.Event()
    with iter(ds) as it:

        def read_stats() -> None:
            while not stop.is_set():
                seen.append(by_name(it.stats())["map(<lambda>)"].elements if len(it.stats()) > 3 else 0)

        reader = threading.Thread(target=read_stats)
        reader.start()
        try:
            assert len(list(it)) == 1200
        finally:
            stop.set()
            reader.join()
        final = by_name(it.stats())["map(<lambda>)"].elements
    assert final == 1200
    # each dataset is counted once, open or ended: the total never drops, and never passes what was read
    assert all(a <= b for a, b in zip(seen, seen[1:])) and max(seen, default=0) <= 1200


def test_the_figures_survive_closing_the_iterator() -> None:
    ds = fi.Dataset.range(100).interleave(lambda i: fi.Dataset.range(50).map(lambda x: x * 2), cycle_length=2,
                                          num_parallel_calls=2)
    it = iter(ds)
    taken = [next(it) for _ in range(30)]
    it.close()
    inner = by_name(it.stats())["map(<lambda>)"]
    assert len(taken) == 30 and inner.elements >= 30
    assert np.isfinite(inner.self_seconds) and inner.buffer_occupancy >= 0
