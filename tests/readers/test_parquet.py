"""fi.ParquetDataset and fi.make_parquet_dataset against pyarrow's own reading of the same files, and against
tf.data's make_csv_dataset reading the same rows from CSV."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import DataLossError, InvalidArgumentError, NotFoundError
from tests.checkpoint.test_seq import assert_same_outcomes, check_every_cut, cut_points, outcomes, saved
from tests.helpers import fastinput_threads

ROWS = [700, 0, 1300, 450]
TYPES = {"i8": np.int32, "i32": np.int32, "i64": np.int64, "f32": np.float32, "f64": np.float64, "s": object,
         "b": bool}


def table(index: int, rows: int, nulls: bool = True):
    import pyarrow as pa

    rng = np.random.default_rng(index)
    ids = np.arange(rows, dtype=np.int64) + index * 100_000
    strings = [None if nulls and i % 11 == 3 else f"r{index}-{i}" for i in range(rows)]
    return pa.table({
        "i8": pa.array(rng.integers(-128, 128, rows), pa.int8()),
        "i32": pa.array([None if nulls and i % 13 == 5 else int(v) for i, v in
                         enumerate(rng.integers(-2**31, 2**31, rows))], pa.int32()),
        "i64": pa.array(ids),  # no nulls: pyarrow prunes row groups by the statistics of null-free columns
        "f32": pa.array(rng.random(rows, dtype=np.float32)),
        "f64": pa.array(rng.standard_normal(rows)),
        "s": pa.array(strings, pa.string()),
        "b": pa.array(rng.random(rows) > 0.5),
    })


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory) -> Path:
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("parquet")
    for i, rows in enumerate(ROWS):
        pq.write_table(table(i, rows), root / f"part-{i}.parquet", row_group_size=256)
    return root


def pattern(root: Path) -> str:
    return str(root / "part-*.parquet")


def expected_columns(root: Path, columns=None, filters=None) -> dict[str, np.ndarray]:
    """pyarrow's reading of the files (sorted), in fastinput's types: nulls as 0 or b"", strings as bytes."""
    import pyarrow.parquet as pq

    files = sorted(str(p) for p in root.glob("part-*.parquet"))
    ref = pq.read_table(files, columns=columns, filters=filters)
    out = {}
    for name in ref.column_names:
        column = ref.column(name)
        if TYPES[name] is object:
            out[name] = np.array([b"" if v is None else v.encode() for v in column.to_pylist()], dtype=object)
        else:
            out[name] = np.array([0 if v is None else v for v in column.to_pylist()]).astype(TYPES[name])
    return out


def concatenated(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}


def assert_same_columns(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(actual) == list(expected)
    for name in expected:
        assert actual[name].dtype == expected[name].dtype, name
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


@pytest.mark.parametrize("num_parallel_reads", [None, 1, 3])
@pytest.mark.parametrize("batch_size", [1, 100, 256, 5000])
def test_rows_in_file_order_as_pyarrow_reads_them(parquet_dir, batch_size, num_parallel_reads):
    ds = fi.ParquetDataset(pattern(parquet_dir), batch_size=batch_size, num_parallel_reads=num_parallel_reads)
    batches = list(ds)
    assert all(isinstance(b, collections.OrderedDict) for b in batches)
    assert [len(b["i64"]) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert_same_columns(concatenated(batches), expected_columns(parquet_dir))


def test_types_and_spec(parquet_dir):
    ds = fi.ParquetDataset(pattern(parquet_dir), batch_size=64, drop_remainder=True)
    spec = ds.element_spec
    assert {name: s.dtype for name, s in spec.items()} == {name: np.dtype(t) for name, t in TYPES.items()}
    assert all(s.shape == (64,) for s in spec.values())
    batch = next(iter(ds))
    assert all(batch[name].dtype == spec[name].dtype and batch[name].shape == (64,) for name in batch)
    assert all(type(v) is bytes for v in batch["s"])
    assert sum(1 for _ in ds) == sum(ROWS) // 64


@pytest.mark.parametrize("filters", [
    [("i64", "<", 1000)],
    [("i64", ">=", 200_000), ("f64", ">", 0.0)],
    [[("i64", "<", 50)], [("s", "in", ["r3-7", "r3-8"])]],
])
def test_projection_and_filters_as_pyarrow_applies_them(parquet_dir, filters):
    columns = ["s", "i64", "f64"]
    ds = fi.ParquetDataset(pattern(parquet_dir), columns=columns, batch_size=97, filters=filters)
    assert_same_columns(concatenated(list(ds)), expected_columns(parquet_dir, columns, filters))


def test_filters_as_an_expression_and_row_groups_pruned_by_statistics(parquet_dir):
    import pyarrow.compute as pc

    ds = fi.ParquetDataset(pattern(parquet_dir), columns=["i64"], filters=pc.field("i64") < 300, batch_size=1000)
    assert_same_columns(concatenated(list(ds)), expected_columns(parquet_dir, ["i64"], [("i64", "<", 300)]))
    # Of the 12 row groups only the first file's first two may match (and the empty file's, which has no statistics).
    assert ds.source.row_groups == ((0, 0), (0, 1), (1, 0))
    nothing = fi.ParquetDataset(pattern(parquet_dir), filters=[("i64", ">", 10**9)])
    assert nothing.source.row_groups == ((1, 0),) and list(nothing) == []


def test_same_batches_as_tf_data_reading_the_rows_from_csv(parquet_dir, tmp_path):
    tf = pytest.importorskip("tensorflow", reason="compares with tf.data (CI's job without TensorFlow skips it)")

    columns = ["i8", "i32", "i64", "f32", "f64", "s"]  # CSV has no bool column type
    full = expected_columns(parquet_dir, columns)
    csv = tmp_path / "rows.csv"
    with open(csv, "w") as f:
        f.write(",".join(columns) + "\n")
        for row in zip(*(full[c] for c in columns)):
            f.write(",".join(v.decode() if isinstance(v, bytes) else repr(v.item()) for v in row) + "\n")
    tf_ds = tf.data.experimental.make_csv_dataset(
        str(csv), 128, column_defaults=[tf.int32, tf.int32, tf.int64, tf.float32, tf.float64, ""],
        label_name="i64", num_epochs=1, shuffle=False, num_parallel_reads=1)
    fi_ds = fi.make_parquet_dataset(pattern(parquet_dir), 128, columns=columns, label_name="i64", num_epochs=1,
                                    shuffle=False, num_parallel_reads=1)
    # CSV cannot tell an empty string from a missing one either: both read b"" in tf.data, as nulls do here.
    expected = list(tf_ds.as_numpy_iterator())
    actual = list(fi_ds)
    assert len(actual) == len(expected)
    for (features, label), (tf_features, tf_label) in zip(actual, expected):
        np.testing.assert_array_equal(label, tf_label)
        assert label.dtype == tf_label.dtype
        assert list(features) == list(tf_features)
        for name in features:
            assert features[name].dtype == tf_features[name].dtype, name
            np.testing.assert_array_equal(features[name], tf_features[name], err_msg=name)


@pytest.mark.parametrize("num_parallel_reads", [1, 3])
def test_make_parquet_dataset_shuffles_a_permutation_reproducibly(parquet_dir, num_parallel_reads):
    def run(seed):
        ds = fi.make_parquet_dataset(pattern(parquet_dir), 100, label_name="i32", num_epochs=2, shuffle_seed=seed,
                                     shuffle_buffer_size=500, num_parallel_reads=num_parallel_reads)
        return list(ds)

    batches = run(7)
    ids = np.concatenate([features["f64"] for features, _ in batches])
    expected = expected_columns(parquet_dir)["f64"]
    assert len(ids) == 2 * sum(ROWS)
    first, second = ids[:sum(ROWS)], ids[sum(ROWS):]
    assert sorted(first) == sorted(expected) == sorted(second)
    assert not np.array_equal(first, expected) and not np.array_equal(first, second)
    again = run(7)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(batches, again))
    assert "i32" not in batches[0][0] and batches[0][1].dtype == np.int32


def test_make_parquet_dataset_repeats_forever_with_full_batches(parquet_dir):
    ds = fi.make_parquet_dataset(pattern(parquet_dir), 1000, columns=["i64"], shuffle=False)
    with iter(ds) as it:
        sizes = [len(next(it)["i64"]) for _ in range(7)]
    assert sizes == [1000] * 7


def test_checkpoint_at_every_position(tmp_path):
    import pyarrow.parquet as pq

    for i, rows in enumerate([9, 0, 14]):
        pq.write_table(table(i, rows), tmp_path / f"part-{i}.parquet", row_group_size=4)
    check_every_cut(fi.ParquetDataset(pattern(tmp_path), columns=["i64", "s"], batch_size=3, num_parallel_reads=2))
    # A shuffle's seed sequence moves on with every iterator of a pipeline: each run builds the pipeline afresh.
    def make() -> fi.Dataset:
        return fi.make_parquet_dataset(pattern(tmp_path), 5, label_name="i64", num_epochs=2, shuffle_seed=3,
                                       shuffle_buffer_size=6, num_parallel_reads=2)

    with iter(make()) as it:
        total = len(outcomes(it))
    for steps in cut_points(total):
        with iter(make()) as it:
            outcomes(it, steps)
            state = saved(it)
            rest = outcomes(it)
        with iter(make()) as resumed:
            resumed.set_state(state)
            assert_same_outcomes(outcomes(resumed), rest)


def test_bad_arguments_and_files(parquet_dir, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pytest.raises(NotFoundError):
        fi.ParquetDataset(str(tmp_path / "none-*.parquet"))
    with pytest.raises(InvalidArgumentError, match="columns"):
        fi.ParquetDataset(pattern(parquet_dir), columns=["nope"])
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        fi.ParquetDataset(pattern(parquet_dir), batch_size=0)
    with pytest.raises(InvalidArgumentError, match="filters"):
        fi.ParquetDataset(pattern(parquet_dir), filters="i64 < 3")
    with pytest.raises(InvalidArgumentError, match="label_name"):
        fi.make_parquet_dataset(pattern(parquet_dir), 4, label_name="nope")
    pq.write_table(pa.table({"t": pa.array([1, 2], pa.timestamp("s"))}), tmp_path / "time.parquet")
    with pytest.raises(InvalidArgumentError, match="'t' has type timestamp"):
        fi.ParquetDataset(str(tmp_path / "time.parquet"))
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataLossError, match="junk.parquet"):
        fi.ParquetDataset(str(tmp_path / "junk.parquet"))


def test_damaged_row_group_raises_data_loss_naming_the_file(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "bad.parquet"
    pq.write_table(table(0, 2000, nulls=False), path, row_group_size=1000, compression="NONE")
    data = bytearray(path.read_bytes())
    data[1500:1600] = b"\xff" * 100  # inside the first row group's pages; the footer stays readable
    path.write_bytes(bytes(data))
    with iter(fi.ParquetDataset(str(path), batch_size=500, num_parallel_reads=1)) as it:
        with pytest.raises(DataLossError, match="bad.parquet"):
            while True:
                next(it)


def test_string_and_threads(parquet_dir):
    ds = fi.ParquetDataset(pattern(parquet_dir), columns=["i64"], batch_size=10, num_parallel_reads=2)
    assert str(ds) == "ParquetDataset(<4 files>, <1 columns>, batch_size=10, num_parallel_reads=2)"
    with iter(ds) as it:
        next(it)
    assert fastinput_threads() == []


@pytest.mark.slow
def test_remote_files_read_the_same_as_local_ones(store, parquet_dir):
    store.make_bucket("parquet")
    for path in sorted(parquet_dir.glob("part-*.parquet")):
        store.upload(path, "parquet", f"data/{path.name}")
    ds = fi.ParquetDataset(f"{store.scheme}://parquet/data/part-*.parquet", batch_size=300,
                           filters=[("i64", "<", 200_500)], storage_options=store.storage_options)
    assert_same_columns(concatenated(list(ds)), expected_columns(parquet_dir, None, [("i64", "<", 200_500)]))
