"""fi.make_batched_features_dataset against tf.data.experimental.make_batched_features_dataset on the same files."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError, NotFoundError
from tests.helpers import assert_same_elements, fi_elements, no_leaked_threads, tf_elements

FILE_SIZES = [23, 40, 0, 17, 31]
"""Examples per file (one file is empty); 111 in all, ids 0..110 in file order."""
TOTAL = sum(FILE_SIZES)


def write_examples(tf, path: Path, ids: range, compression: str = "") -> None:
    """Examples with every kind of feature, built from their ``id``, written with TensorFlow's writer."""
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type=compression)) as writer:
        for k in ids:
            proto = tf.train.Example()
            feature = proto.features.feature
            feature["id"].int64_list.value.append(k)
            feature["label"].int64_list.value.append(k % 3)
            feature["x"].float_list.value.extend([k * 0.5, -k])
            feature["s"].bytes_list.value.append(f"s{k}".encode())
            feature["v"].int64_list.value.extend(range(k % 4))
            feature["seq"].int64_list.value.extend([k] * (k % 3))
            writer.write(proto.SerializeToString())


@pytest.fixture(scope="module")
def files(tf, tmp_path_factory) -> dict[str, str]:
    """Glob patterns of the corpus: uncompressed ("plain") and GZIP copies of the same Examples."""
    root = tmp_path_factory.mktemp("examples")
    start = 0
    for index, size in enumerate(FILE_SIZES):
        ids = range(start, start + size)
        write_examples(tf, root / f"part-{index}.tfrecord", ids)
        write_examples(tf, root / f"part-{index}.tfrecord.gz", ids, "GZIP")
        start += size
    return {"plain": str(root / "part-*.tfrecord"), "gzip": str(root / "part-*.tfrecord.gz")}


def fi_features() -> dict:
    return {
        "id": fi.FixedLenFeature([], np.int64),
        "label": fi.FixedLenFeature([], np.int64),
        "x": fi.FixedLenFeature([2], np.float32),
        "s": fi.FixedLenFeature([], bytes),
        "v": fi.VarLenFeature(np.int64),
        "seq": fi.FixedLenSequenceFeature([], np.int64, allow_missing=True),
        "absent": fi.FixedLenFeature([], np.int64, default_value=-1),
    }


def tf_features(tf) -> dict:
    return {
        "id": tf.io.FixedLenFeature([], tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "x": tf.io.FixedLenFeature([2], tf.float32),
        "s": tf.io.FixedLenFeature([], tf.string),
        "v": tf.io.VarLenFeature(tf.int64),
        "seq": tf.io.FixedLenSequenceFeature([], tf.int64, allow_missing=True),
        "absent": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    }


def both(tf, pattern, batch_size: int, take: int | None = None, **kwargs) -> tuple[list, list]:
    """The batches of fastinput's and tf.data's pipelines with the same arguments (the first ``take`` if given)."""
    ours = fi.make_batched_features_dataset(pattern, batch_size, fi_features(), **kwargs)
    theirs = tf.data.experimental.make_batched_features_dataset(pattern, batch_size, tf_features(tf), **kwargs)
    if take is not None:
        ours, theirs = ours.take(take), theirs.take(take)
    return fi_elements(ours), tf_elements(theirs)


def ids_of(batches: list) -> list[int]:
    return [int(i) for batch in batches for i in (batch[0] if isinstance(batch, tuple) else batch)["id"]]


@pytest.mark.parametrize("batch_size, reader_num_threads, label_key, drop_final_batch, num_epochs", [
    (1, 1, None, False, 1),
    (7, 1, "label", False, 1),
    (7, 3, None, True, 1),
    (16, 4, "label", False, 2),
    (16, 2, None, True, 2),
    (32, fi.AUTOTUNE, "label", False, 1),
    (200, 3, "label", False, 1),
    (200, 3, None, True, 1),
])
def test_same_batches_as_tf_data(tf, files, batch_size, reader_num_threads, label_key, drop_final_batch, num_epochs):
    ours, theirs = both(tf, files["plain"], batch_size, label_key=label_key, num_epochs=num_epochs, shuffle=False,
                        reader_num_threads=reader_num_threads, drop_final_batch=drop_final_batch)
    assert_same_elements(ours, theirs)
    expected = TOTAL * num_epochs
    if drop_final_batch:
        expected -= expected % batch_size
    assert len(ids_of(ours)) == expected
    if label_key:
        features, label = ours[0]
        assert "label" not in features and label.tolist() == [i % 3 for i in features["id"].tolist()]


def test_forever_repeats_with_full_batches_like_tf_data(tf, files):
    ours, theirs = both(tf, files["plain"], 25, take=12, shuffle=False, reader_num_threads=2, parser_num_threads=3)
    assert_same_elements(ours, theirs)
    assert {len(batch["id"]) for batch in ours} == {25}


def test_list_of_patterns_and_parser_threads(tf, files):
    patterns = [files["plain"].replace("*", "[01]"), files["plain"].replace("*", "[34]")]
    ours, theirs = both(tf, patterns, 10, num_epochs=1, shuffle=False, reader_num_threads=2,
                        parser_num_threads=fi.AUTOTUNE, prefetch_buffer_size=1)
    assert_same_elements(ours, theirs)


@pytest.mark.parametrize("reader_num_threads", [1, 3])
def test_custom_reader_same_batches_as_tf_data(tf, files, reader_num_threads):
    kwargs = dict(num_epochs=1, shuffle=False, reader_num_threads=reader_num_threads, label_key="label")
    ours = fi.make_batched_features_dataset(files["gzip"], 6, fi_features(),
                                            reader=lambda f, c: fi.TFRecordDataset(f, c), reader_args=["GZIP"],
                                            **kwargs)
    theirs = tf.data.experimental.make_batched_features_dataset(
        files["gzip"], 6, tf_features(tf), reader=lambda f, c: tf.data.TFRecordDataset(f, c), reader_args=["GZIP"],
        **kwargs)
    assert "interleave(<lambda>, cycle_length=" in repr(ours)
    assert_same_elements(fi_elements(ours), tf_elements(theirs))


def test_reader_and_reader_args(tf, files):
    expected = fi_elements(fi.make_batched_features_dataset(files["plain"], 9, fi_features(), num_epochs=1,
                                                            shuffle=False))
    gzip = fi.make_batched_features_dataset(files["gzip"], 9, fi_features(), reader=fi.TFRecordDataset,
                                            reader_args=["GZIP"], num_epochs=1, shuffle=False)
    assert_same_elements(fi_elements(gzip), expected)

    def keyed_reader(filename: bytes) -> fi.Dataset:  # (key, value) records: the values are parsed
        return fi.TFRecordDataset(filename).map(lambda record: (b"key", record))

    keyed = fi.make_batched_features_dataset(files["plain"], 9, fi_features(), reader=keyed_reader, num_epochs=1,
                                             shuffle=False)
    assert_same_elements(fi_elements(keyed), expected)


def test_sloppy_ordering_gives_the_same_examples(files):
    ds = fi.make_batched_features_dataset(files["plain"], 8, fi_features(), num_epochs=1, shuffle=False,
                                          reader_num_threads=4, parser_num_threads=3, sloppy_ordering=True)
    assert sorted(ids_of(fi_elements(ds))) == list(range(TOTAL))


def test_shuffle_with_seed_is_reproducible_and_each_epoch_is_a_permutation(files):
    def run(seed: int) -> list[int]:
        ds = fi.make_batched_features_dataset(files["plain"], 10, fi_features(), num_epochs=2, shuffle=True,
                                              shuffle_seed=seed, shuffle_buffer_size=30, reader_num_threads=2)
        return ids_of(fi_elements(ds))

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert sorted(first[:TOTAL]) == sorted(first[TOTAL:]) == list(range(TOTAL))
    assert first[:TOTAL] != list(range(TOTAL)) and first[:TOTAL] != first[TOTAL:]


def test_stages_read_like_the_calls(files):
    ds = fi.make_batched_features_dataset(files["plain"], 4, fi_features(), label_key="label", num_epochs=1,
                                          reader_num_threads=2, shuffle=False)
    description = repr(ds)
    for stage in ("TFRecordDataset(", "num_parallel_reads=2)", "batch(4)", "map(parse_example, num_parallel_calls=2)",
                  "prefetch(AUTOTUNE)"):
        assert stage in description
    assert "shuffle" not in description and "repeat" not in description


# -- errors and stopping ---------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"label_key": "nope"}, "label_key 'nope' must be one of"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"reader": "TFRecordDataset"}, "reader must be callable"),
    ({"reader_args": "GZIP"}, "reader_args must be a list"),
    ({"reader_num_threads": 0}, "reader_num_threads must be >= 1"),
    ({"parser_num_threads": -5}, "parser_num_threads must be >= 1"),
    ({"num_epochs": -2}, "num_epochs must be >= 0"),
    ({"shuffle_buffer_size": 0}, "shuffle_buffer_size must be >= 1"),
    ({"prefetch_buffer_size": -3}, "prefetch_buffer_size must be >= 0"),
    ({"sloppy_ordering": None}, "sloppy_ordering must be True or False"),
    ({"features": {}}, "non-empty dict"),
])
def test_bad_arguments_are_refused_when_built(files, kwargs, message):
    args = {"file_pattern": files["plain"], "batch_size": 4, "features": fi_features(), **kwargs}
    with pytest.raises(InvalidArgumentError, match=message):
        fi.make_batched_features_dataset(**args)


def test_no_matching_files(tmp_path):
    with pytest.raises(NotFoundError):
        fi.make_batched_features_dataset(str(tmp_path / "*.tfrecord"), 4, fi_features())


def test_missing_required_feature_fails_at_its_batch_naming_it(files):
    features = {**fi_features(), "needed": fi.FixedLenFeature([], np.int64)}
    ds = fi.make_batched_features_dataset(files["plain"], 8, features, num_epochs=1, shuffle=False)
    with no_leaked_threads():
        with iter(ds) as it, pytest.raises(InvalidArgumentError, match="feature 'needed'.*required"):
            next(it)


def test_records_that_are_not_examples_fail_in_place(tf, tmp_path, files):
    bad = tmp_path / "bad.tfrecord"
    with tf.io.TFRecordWriter(str(bad)) as writer:
        writer.write(b"\xff\xfe definitely not a proto")
    good = sorted(Path(files["plain"]).parent.glob("part-0.tfrecord"))[0]
    ds = fi.make_batched_features_dataset([str(good), str(bad)], 23, fi_features(), num_epochs=1, shuffle=False)
    with no_leaked_threads():
        with iter(ds) as it:
            assert ids_of([next(it)]) == list(range(23))  # file 0's batch comes first, whole
            with pytest.raises(InvalidArgumentError, match="parse_example"):
                next(it)


@pytest.mark.parametrize("consume", [0, 1, 3, None])
def test_no_threads_left_after_early_close_or_the_end(files, consume):
    ds = fi.make_batched_features_dataset(files["plain"], 5, fi_features(), num_epochs=3, reader_num_threads=3,
                                          parser_num_threads=2)
    with no_leaked_threads():
        it = iter(ds)
        counts = collections.Counter()
        for _ in it:
            counts["batches"] += 1
            if consume is not None and counts["batches"] >= consume:
                break
        it.close()
    if consume is None:
        assert counts["batches"] == -(-TOTAL * 3 // 5)
