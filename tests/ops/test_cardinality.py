"""``ds.cardinality()`` against tf.data's: a table of pipelines, and the random pipelines of the differential tester."""

import tempfile

import numpy as np
import pytest

import fastinput as fi
from tests.conformance.differential import generate

# ``D`` is tf.data.Dataset or fi.Dataset; ``keep`` a filter predicate (an unknown count).
PIPELINES = {
    "range": lambda D, keep: D.range(7),
    "range, step": lambda D, keep: D.range(5, 0, -2),
    "range, empty": lambda D, keep: D.range(5, 10, -2),
    "from_tensor_slices": lambda D, keep: D.from_tensor_slices(np.zeros((4, 3))),
    "from_tensors": lambda D, keep: D.from_tensors(np.zeros(3)),
    "map": lambda D, keep: D.range(5).map(lambda x: x, num_parallel_calls=2),
    "filter": lambda D, keep: D.range(5).filter(keep),
    "filter, infinite": lambda D, keep: D.range(5).repeat().filter(keep),
    "batch": lambda D, keep: D.range(10).batch(3),
    "batch, drop_remainder": lambda D, keep: D.range(10).batch(3, drop_remainder=True),
    "batch, infinite": lambda D, keep: D.range(5).repeat().batch(2),
    "batch, unknown": lambda D, keep: D.range(5).filter(keep).batch(2),
    "padded_batch": lambda D, keep: D.range(5).padded_batch(2),
    "unbatch, known rows": lambda D, keep: D.range(10).batch(3, drop_remainder=True).unbatch(),
    "unbatch, unknown rows": lambda D, keep: D.range(10).batch(3).unbatch(),
    "unbatch, slices": lambda D, keep: D.from_tensor_slices(np.zeros((4, 3))).unbatch(),
    "unbatch, infinite": lambda D, keep: D.from_tensor_slices(np.zeros((4, 3))).repeat().unbatch(),
    "repeat": lambda D, keep: D.range(3).repeat(4),
    "repeat forever": lambda D, keep: D.range(3).repeat(),
    "repeat forever, empty": lambda D, keep: D.range(0).repeat(),
    "repeat zero": lambda D, keep: D.range(3).repeat(0),
    "repeat forever, unknown": lambda D, keep: D.range(5).filter(keep).repeat(),
    "repeat, unknown": lambda D, keep: D.range(5).filter(keep).repeat(2),
    "shuffle and repeat": lambda D, keep: D.range(5).shuffle(3).repeat(2),
    "take": lambda D, keep: D.range(5).take(3),
    "take all": lambda D, keep: D.range(5).take(-1),
    "take, infinite": lambda D, keep: D.range(5).repeat().take(3),
    "take all, infinite": lambda D, keep: D.range(5).repeat().take(-1),
    "take, unknown": lambda D, keep: D.range(5).filter(keep).take(0),
    "skip": lambda D, keep: D.range(5).skip(2),
    "skip all": lambda D, keep: D.range(5).skip(-1),
    "skip past the end": lambda D, keep: D.range(5).skip(9),
    "skip, infinite": lambda D, keep: D.range(5).repeat().skip(-1),
    "skip, unknown": lambda D, keep: D.range(5).filter(keep).skip(-1),
    "shard": lambda D, keep: D.range(10).shard(3, 1),
    "shard, last": lambda D, keep: D.range(10).shard(3, 2),
    "zip": lambda D, keep: D.zip((D.range(5), D.range(3).repeat())),
    "zip, unknown wins": lambda D, keep: D.zip((D.range(0), D.range(3).filter(keep))),
    "zip, all infinite": lambda D, keep: D.zip((D.range(5).repeat(), D.range(3).repeat())),
    "concatenate": lambda D, keep: D.range(5).concatenate(D.range(2)),
    "concatenate, infinite wins": lambda D, keep: D.range(5).repeat().concatenate(D.range(3).filter(keep)),
    "concatenate, unknown": lambda D, keep: D.range(5).concatenate(D.range(3).filter(keep)),
    "enumerate": lambda D, keep: D.range(5).enumerate(),
    "interleave": lambda D, keep: D.range(5).interleave(lambda x: D.range(2), cycle_length=1),
    "flat_map": lambda D, keep: D.range(5).flat_map(lambda x: D.range(2)),
    "cache": lambda D, keep: D.range(5).cache(),
    "prefetch": lambda D, keep: D.range(5).prefetch(2),
    "with_options": lambda D, keep: D.range(5).with_options(type(D.range(1).options())()),
    "map and batch": lambda D, keep: D.range(9).map(lambda x: x * 2).batch(4),
}


@pytest.mark.parametrize("case", PIPELINES)
def test_cardinality_matches_tf(tf, case):
    build = PIPELINES[case]
    expected = int(build(tf.data.Dataset, lambda x: True).cardinality())
    assert build(fi.Dataset, lambda x: True).cardinality() == expected


def test_map_and_batch_counts_batches():
    assert fi.Dataset.range(9).map_and_batch(lambda x: x, 4).cardinality() == 3
    assert fi.Dataset.range(9).map_and_batch(lambda x: x, 4, drop_remainder=True).cardinality() == 2


def test_the_constants_are_tf_datas(tf):
    assert fi.INFINITE_CARDINALITY == tf.data.INFINITE_CARDINALITY
    assert fi.UNKNOWN_CARDINALITY == tf.data.UNKNOWN_CARDINALITY


def test_generators_are_unknown():
    assert fi.Dataset.from_generator(lambda: iter([1])).cardinality() == fi.UNKNOWN_CARDINALITY


def test_readers_and_one_liners_count_like_tf(tf, tmp_path):
    for i in range(3):
        (tmp_path / f"f{i}.csv").write_text("a,b\n1,2\n3,4\n")
        with tf.io.TFRecordWriter(str(tmp_path / f"t{i}.tfrecord")) as writer:
            writer.write(tf.train.Example().SerializeToString())
    csv, records = str(tmp_path / "*.csv"), str(tmp_path / "*.tfrecord")
    features = {"a": tf.io.FixedLenFeature([], tf.int64, default_value=0)}
    pairs = [
        (fi.Dataset.list_files(csv), tf.data.Dataset.list_files(csv)),
        (fi.Dataset.list_files(csv, shuffle=False), tf.data.Dataset.list_files(csv, shuffle=False)),
        (fi.make_csv_dataset(csv, 2), tf.data.experimental.make_csv_dataset(csv, 2)),
        (fi.make_csv_dataset(csv, 2, num_epochs=1), tf.data.experimental.make_csv_dataset(csv, 2, num_epochs=1)),
        (fi.make_batched_features_dataset(records, 2, features),
         tf.data.experimental.make_batched_features_dataset(records, 2, features)),
        (fi.CsvDataset(str(tmp_path / "f0.csv"), [0, 0], header=True),
         tf.data.experimental.CsvDataset(str(tmp_path / "f0.csv"), [0, 0], header=True)),
        (fi.TFRecordDataset(str(tmp_path / "t0.tfrecord")), tf.data.TFRecordDataset(str(tmp_path / "t0.tfrecord"))),
    ]
    assert [ds.cardinality() for ds, _ in pairs] == [int(tf_ds.cardinality()) for _, tf_ds in pairs]


@pytest.mark.parametrize("seeds", [range(0, 150), range(150, 300)], ids=lambda s: f"seeds{s.start}-{s.stop - 1}")
def test_random_pipelines_count_like_tf(seeds):
    pytest.importorskip("tensorflow", reason="compares with tf.data (CI's job without TensorFlow skips it)")
    failures = []
    for seed in seeds:
        pipeline, _ = generate(seed)
        with tempfile.TemporaryDirectory() as workdir:
            try:
                expected = int(pipeline.build("tf", workdir).cardinality())
            except Exception:  # some random pipelines have an argument tf.data refuses: fastinput must too
                with pytest.raises(fi.errors.FastInputError):
                    pipeline.build("fi", workdir)
                continue
            actual = pipeline.build("fi", workdir).cardinality()
        if actual != expected:
            failures.append(f"seed {seed}: {pipeline!r}: tf.data {expected}, fastinput {actual}")
    assert not failures, "\n".join(failures)


def test_the_mixing_and_saving_ops_count_as_tf_data(tmp_path) -> None:
    tf = pytest.importorskip("tensorflow", reason="compares with tf.data (CI's job without TensorFlow skips it)")

    def both(build):
        return int(build(tf.data.Dataset, str(tmp_path / "tf")).cardinality()), int(
            build(fi.Dataset, str(tmp_path / "fi")).cardinality())

    cases = [
        lambda D, _: D.sample_from_datasets([D.range(3), D.range(5)]),
        lambda D, _: D.sample_from_datasets([D.range(3).repeat(), D.range(5).repeat()], stop_on_empty_dataset=True),
        lambda D, _: D.choose_from_datasets([D.range(3).repeat(), D.range(5).repeat()], D.range(2).repeat(3)),
        lambda D, _: D.choose_from_datasets([D.range(3), D.range(5).repeat()], D.range(2)),
        lambda D, path: D.range(10).snapshot(path),
    ]
    for build in cases:
        tf_count, fi_count = both(build)
        assert fi_count == tf_count
    tf.data.Dataset.range(7).save(str(tmp_path / "tf-saved"))
    fi.Dataset.range(7).save(str(tmp_path / "fi-saved"))
    assert int(tf.data.Dataset.load(str(tmp_path / "tf-saved")).cardinality()) == 7
    assert fi.Dataset.load(str(tmp_path / "fi-saved")).cardinality() == 7
