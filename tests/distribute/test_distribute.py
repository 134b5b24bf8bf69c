"""``ds.distribute(...)`` on a real local Ray cluster: both modes give the elements the pipeline gives run locally
(parallel_epochs: each worker's whole run; distributed_epoch: each element once), errors in their place, stages
after it, jobs shared by name, per-worker figures. Faults are in test_faults.py, saving in test_checkpoint.py."""

from __future__ import annotations

import collections
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError

MODES = ["parallel_epochs", "distributed_epoch"]


def double(x):
    return x * 2


def fails_on_multiples_of_7(x):
    if x % 7 == 3:
        raise ValueError(f"bad element {x}")
    return x


def values(element):
    """An element as plain, hashable Python data (numpy arrays become tuples)."""
    if isinstance(element, dict):
        return tuple(sorted((k, values(v)) for k, v in element.items()))
    if isinstance(element, tuple):
        return tuple(values(v) for v in element)
    array = np.asarray(element)
    return tuple(array.tolist()) if array.ndim else array.item()


def outcomes(dataset):
    """Every element and error a full run gives, as a multiset (going on after an error, as fastinput does)."""
    seen = collections.Counter()
    with iter(dataset) as it:
        while True:
            try:
                seen[values(next(it))] += 1
            except StopIteration:
                return seen
            except Exception as exc:
                seen[(type(exc).__name__, str(exc))] += 1


def rows(batches):
    """The rows of a run's batches, as a multiset."""
    return collections.Counter(row for batch in batches for row in values(batch))


PIPELINES = {
    "range-map-batch": lambda: fi.Dataset.range(60).map(double).batch(4),
    "slices-of-a-dict": lambda: fi.Dataset.from_tensor_slices({"a": np.arange(40), "b": np.arange(40.0) / 2}),
    "shuffle-filter": lambda: fi.Dataset.range(50).shuffle(8, seed=3).filter(lambda x: x % 3 != 0),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_a_run_gives_what_the_local_run_gives(ray_cluster, mode: str, name: str) -> None:
    pipeline = PIPELINES[name]()
    local = outcomes(pipeline)
    if name == "range-map-batch" and mode == "distributed_epoch":  # batches are cut per worker: compare rows
        assert rows(fi.Dataset.range(60).map(double).batch(4).distribute(2, mode)) == rows(pipeline)
        return
    got = outcomes(pipeline.distribute(2, processing_mode=mode))
    expected = local if mode == "distributed_epoch" else collections.Counter({k: 2 * v for k, v in local.items()})
    assert got == expected


@pytest.mark.parametrize("mode", MODES)
def test_tfrecord_files_as_tf_data_reads_them(ray_cluster, tf, tfrecord_files, mode: str) -> None:
    oracle = collections.Counter(tf.data.TFRecordDataset(tfrecord_files).as_numpy_iterator())
    by_list_files = fi.Dataset.list_files(tfrecord_files, seed=1).interleave(fi.TFRecordDataset, cycle_length=2)
    by_reader = fi.TFRecordDataset(tfrecord_files, num_parallel_reads=2)
    copies = 2 if mode == "parallel_epochs" else 1
    for pipeline in (by_list_files, by_reader):
        got = collections.Counter(pipeline.distribute(2, processing_mode=mode))
        assert got == collections.Counter({record: copies * n for record, n in oracle.items()})


@pytest.mark.parametrize("mode", MODES)
def test_errors_arrive_in_their_place_and_the_run_goes_on(ray_cluster, mode: str) -> None:
    pipeline = fi.Dataset.range(40).map(fails_on_multiples_of_7)
    local = outcomes(pipeline)
    assert ("ValueError", "bad element 10") in local  # the error keeps its kind and message
    got = outcomes(pipeline.distribute(2, processing_mode=mode))
    assert got == (local if mode == "distributed_epoch" else collections.Counter({k: 2 * v for k, v in local.items()}))


def test_in_distributed_epoch_each_worker_gives_its_splits_in_order(ray_cluster) -> None:
    with iter(fi.Dataset.range(200).distribute(1, processing_mode="distributed_epoch")) as it:
        assert [int(x) for x in it] == list(range(200))  # one worker: the splits in order, each in order


def test_stages_after_it_run_locally(ray_cluster) -> None:
    ds = fi.Dataset.range(30).distribute(2, "distributed_epoch").map(lambda x: x + 1).batch(5).unbatch()
    assert sorted(int(x) for x in ds) == list(range(1, 31))
    assert ds.element_spec == fi.Dataset.range(30).element_spec


def test_as_tf_dataset(ray_cluster, tf) -> None:
    ds = fi.Dataset.range(12).map(double).distribute(2, "distributed_epoch").as_tf_dataset()
    assert sorted(int(x) for x in ds) == [2 * i for i in range(12)]


def test_consumers_of_a_named_job_get_disjoint_shares(ray_cluster) -> None:
    ds = fi.Dataset.range(3000).distribute(2, "distributed_epoch", job_name="test-shared")  # chunks of 256 at most
    first, second = iter(ds), iter(ds)
    shares: list[list[int]] = [[], []]
    with first, second:
        open_ = [first, second]
        while open_:
            for consumer in list(open_):
                try:
                    shares[consumer is second].append(int(next(consumer)))
                except StopIteration:
                    open_.remove(consumer)
    assert shares[0] and shares[1]
    assert not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == list(range(3000))


def test_a_named_job_refuses_a_consumer_of_another_pipeline(ray_cluster) -> None:
    running = iter(fi.Dataset.range(10).distribute(1, job_name="test-other"))
    with running:
        next(running)
        with pytest.raises(InvalidArgumentError, match="job 'test-other' runs"):
            next(iter(fi.Dataset.range(11).distribute(1, job_name="test-other")))


def test_stats_show_each_worker_and_the_consumers_wait(ray_cluster) -> None:
    with iter(fi.Dataset.range(64).map(double).distribute(2, "distributed_epoch")) as it:
        assert sum(1 for _ in it) == 64
        stages = it.stats()
        summary = it.stats_summary()
    consumer, *workers = stages
    assert consumer.name == "distribute(num_workers=2, processing_mode='distributed_epoch')"
    assert [w.name for w in workers] == [f"worker {i} of {consumer.name}" for i in range(2)]
    assert sum(w.elements for w in workers) == consumer.elements == 64
    assert all(w.self_seconds >= 0 and w.parallel for w in workers)
    assert consumer.wait_seconds > 0  # the first chunk cannot be there before the workers start
    assert [s["name"] for s in summary["stages"]] == [s.name for s in stages]


def test_the_profiler_sees_the_workers(ray_cluster, tmp_path) -> None:
    path = tmp_path / "trace.json"
    with fi.profiler.trace(str(path)):
        with iter(fi.Dataset.range(20).distribute(2, "parallel_epochs")) as it:
            assert sum(1 for _ in it) == 40
    report = fi.profiler.analyze(str(path))
    assert "worker 1 of distribute" in str(report) or "worker 1 of distribute" in path.read_text()


def test_import_fastinput_imports_no_ray() -> None:
    code = ("import sys, fastinput as fi; fi.Dataset.range(3).distribute(2, 'distributed_epoch'); "
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"num_workers": 0}, "num_workers"),
    ({"num_workers": 2, "processing_mode": "dynamic"}, "processing_mode must be one of"),
    ({"num_workers": 2, "worker_resources": {"cpus": 1}}, r"unknown option\(s\) \['cpus'\]"),
    ({"num_workers": 2, "worker_resources": 4}, "worker_resources must be a dict"),
    ({"num_workers": 2, "address": 5}, "address must be"),
    ({"num_workers": 2, "job_name": ""}, "job_name must be"),
])
def test_arguments_are_checked_when_built(kwargs, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        fi.Dataset.range(3).distribute(**kwargs)


def test_a_pipeline_that_cannot_be_pickled_fails_at_the_call() -> None:
    lock = threading.Lock()

    def locked(x):
        with lock:
            return x

    with pytest.raises(InvalidArgumentError, match=r"stage map\(locked\) cannot be pickled \(TypeError: .*lock"):
        fi.Dataset.range(3).batch(2).map(locked).prefetch(1).distribute(2)


@pytest.mark.parametrize(("pipeline", "message"), [
    (lambda: fi.Dataset.from_generator(lambda: iter([1]), output_signature=fi.TensorSpec((), np.int64)),
     r"source from_generator\(<lambda>\) cannot be split .* use processing_mode='parallel_epochs'"),
    (lambda: fi.Dataset.from_tensors(np.arange(3)).map(double), r"source from_tensors\(.*\) cannot be split"),
    (lambda: fi.Dataset.zip(fi.Dataset.range(3), fi.Dataset.range(3)), "reads 2 inputs, so the pipeline has no one"),
    (lambda: fi.Dataset.range(3).repeat(2), r"repeats its source \(repeat\(2\)\).*after distribute"),
])
def test_a_source_that_cannot_be_split_is_refused_in_distributed_epoch(pipeline, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        pipeline().distribute(2, processing_mode="distributed_epoch")
    pipeline().distribute(2, processing_mode="parallel_epochs")  # runs whole on each worker: fine


def test_its_string_and_spec() -> None:
    upstream = fi.Dataset.range(5).map(lambda x: (x, x * 1.5))
    ds = upstream.distribute(3, "distributed_epoch", job_name="j")
    assert str(ds) == "distribute(num_workers=3, processing_mode='distributed_epoch', job_name='j')"
    assert ds.element_spec == upstream.element_spec


def test_files_are_handed_out_one_at_a_time_and_positions_in_ranges(tfrecord_files) -> None:
    from fastinput.distribute.splits import SPLITS_PER_WORKER, plan_splits

    for files in (fi.Dataset.list_files(tfrecord_files).interleave(fi.TFRecordDataset),
                  fi.TFRecordDataset(tfrecord_files).map(bytes.upper)):
        plan = plan_splits(files, 4)
        assert (plan.size, plan.count) == (1, len(tfrecord_files))
    plan = plan_splits(fi.Dataset.range(1000).map(double).batch(8), 2)
    assert plan.size == 1000 // (2 * SPLITS_PER_WORKER) + 1 and plan.bounds(plan.count - 1)[1] == 1000
    assert plan_splits(fi.Dataset.range(0), 2).count == 0


@pytest.mark.parametrize("mode", MODES)
def test_an_empty_pipeline_gives_nothing(ray_cluster, mode: str) -> None:
    assert list(fi.Dataset.range(0).map(double).distribute(2, mode)) == []


def test_a_pipeline_the_workers_cannot_rebuild_is_a_clear_error(ray_cluster, tmp_path, monkeypatch) -> None:
    (tmp_path / "only_on_the_trainer.py").write_text("def same(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # this process only: the workers cannot import it
    from only_on_the_trainer import same

    with pytest.raises(InvalidArgumentError, match=r"worker 0 cannot rebuild the pipeline \(ModuleNotFoundError: "
                                                   r"No module named 'only_on_the_trainer'\)"):
        list(fi.Dataset.range(5).map(same).distribute(1))
