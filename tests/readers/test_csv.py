"""fi.CsvDataset and fi.make_csv_dataset against tf.data's on the same files, and their own invariants."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError, NotFoundError
from tests.helpers import (
    ERROR,
    assert_same_elements,
    assert_same_with_errors,
    elements_and_errors,
    fi_elements,
    no_leaked_threads,
    tf_elements,
)

HEADER = ["id", "big", "price", "name", "count", "code"]
FILE_ROWS = [40, 57, 23]
NAMES = ["plain", "with, comma", 'say "hi"', "two\nlines", "", "tab\there", "ünïcode", "x" * 300]


def corpus_rows(file_index: int, first_id: int) -> list[list[str]]:
    """Rows of one file: ints, int64s, floats with gaps, quoted strings, 'NA' tokens, hex codes."""
    rng = np.random.default_rng(file_index)
    rows = []
    for i in range(FILE_ROWS[file_index]):
        row_id = first_id + i
        price = "" if i % 9 == 4 else f"{rng.uniform(-100, 100):.3f}"
        count = "NA" if i % 11 == 3 else ("" if i % 13 == 5 else str(int(rng.integers(0, 50))))
        code = f"c{int(rng.integers(0, 1 << 16)):04x}"
        rows.append([str(row_id), str(int(rng.integers(-(2**40), 2**40))), price, NAMES[(row_id * 3) % len(NAMES)],
                     count, code])
    return rows


def write_csv(path: Path, rows: list[list[str]], header: list[str] | None = HEADER, newline: str = "\n",
              compression: str = "", delimiter: str = ",") -> str:
    """Write rows (quoted where needed, like any CSV writer) and return the path."""
    import io

    text = io.StringIO()
    writer = csv.writer(text, lineterminator=newline, delimiter=delimiter)
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    data = text.getvalue().encode("utf-8")
    if compression == "GZIP":
        data = gzip.compress(data)
    elif compression == "ZLIB":
        data = zlib.compress(data)
    path.write_bytes(data)
    return str(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three CSV files with a header (the second with CRLF line ends), 120 rows in all, ids 0..119."""
    root = tmp_path_factory.mktemp("csv")
    first_id = 0
    for index, count in enumerate(FILE_ROWS):
        write_csv(root / f"part-{index}.csv", corpus_rows(index, first_id), newline="\r\n" if index == 1 else "\n")
        first_id += count
    return root


def tf_make_csv(tf, pattern, **kwargs):
    return tf_elements(tf.data.experimental.make_csv_dataset(pattern, **kwargs))


def assert_same_batches(actual: list, expected: list) -> None:
    """Same batches as tf.data's: values, dtypes, OrderedDict key order, strings as object arrays of bytes."""
    assert_same_elements(actual, expected)
    for batch, reference in zip(actual, expected):
        features, ref_features = (batch[0], reference[0]) if isinstance(batch, tuple) else (batch, reference)
        assert isinstance(features, OrderedDict) and list(features) == list(ref_features)
        for value in features.values():
            assert isinstance(value, np.ndarray)
            if value.dtype == object:
                assert all(type(v) is bytes for v in value)


# -- make_csv_dataset against tf.data -----------------------------------------------------------------------

MAKE_CSV_CASES = [
    dict(batch_size=1),
    dict(batch_size=7, label_name="id"),
    dict(batch_size=32, label_name="price", select_columns=["id", "name", "price"]),
    dict(batch_size=10, select_columns=[5, 0, 4], na_value="NA"),
    dict(batch_size=16, label_name="count", na_value="NA", column_defaults=["int32", np.int64(0), 0.0, "", 0, "none"]),
    dict(batch_size=8, header=False, column_names=["a", "b", "c", "d", "e", "f"]),
    dict(batch_size=9, num_parallel_reads=2, num_epochs=2, label_name="code"),
    dict(batch_size=5, num_parallel_reads=3),
    dict(batch_size=64, num_parallel_reads=fi.AUTOTUNE, sloppy=False),
    dict(batch_size=4, num_rows_for_inference=3, na_value="NA"),
]


@pytest.mark.parametrize("case", MAKE_CSV_CASES, ids=lambda case: ",".join(f"{k}={v}" for k, v in case.items()))
def test_make_csv_dataset_gives_tf_data_batches(tf, corpus, case):
    case = dict(case)
    if case.get("column_defaults"):
        case["column_defaults"] = [tf.int32 if d == "int32" else d for d in case["column_defaults"]]
    kwargs = {"shuffle": False, "num_epochs": 1, **case}
    pattern = str(corpus / "part-*.csv")
    expected = tf_make_csv(tf, pattern, **kwargs)
    actual = fi_elements(fi.make_csv_dataset(pattern, **kwargs))
    assert_same_batches(actual, expected)


def test_make_csv_dataset_repeats_forever_with_full_batches_like_tf_data(tf, corpus):
    pattern = str(corpus / "part-*.csv")
    expected = tf_elements(tf.data.experimental.make_csv_dataset(pattern, batch_size=50, shuffle=False).take(7))
    actual = fi_elements(fi.make_csv_dataset(pattern, batch_size=50, shuffle=False).take(7))
    assert_same_batches(actual, expected)
    assert all(len(features["id"]) == 50 for features in actual)


INFERENCE_COLUMNS = {
    "int32": ["+5", " -7", "", "2147483647"],
    "int64": ["1", "2147483648", "-3", "5"],
    "float32": ["1", "2.5", "", "-0.125"],
    "float64": ["1e300", "2", "0.5", "3"],
    "string": ["1", "2.5", "abc", "4"],
    "empty": ["", "", "", ""],
    "na": ["N/A", "3", "N/A", "4"],
    "late_string": ["1", "2", "3", "x"],
}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # tf.data's own inference
@pytest.mark.parametrize("na_value,num_rows", [("", 100), ("N/A", 100), ("N/A", None), ("", 3)])
def test_type_inference_is_tf_data_s(tf, tmp_path, na_value, num_rows):
    names = list(INFERENCE_COLUMNS)
    rows = [list(values) for values in zip(*INFERENCE_COLUMNS.values())]
    path = write_csv(tmp_path / "types.csv", rows, header=names)
    kwargs = dict(batch_size=4, num_epochs=1, shuffle=False, na_value=na_value, num_rows_for_inference=num_rows)
    try:
        expected = tf_make_csv(tf, path, **kwargs)
    except tf.errors.InvalidArgumentError:  # a value after the inference rows does not fit the inferred type
        with pytest.raises(InvalidArgumentError,
                           match=r"types\.csv, line 5 \(record 4\): column 7 \('late_string'\): 'x' is not"):
            fi_elements(fi.make_csv_dataset(path, **kwargs))
        return
    actual = fi_elements(fi.make_csv_dataset(path, **kwargs))
    assert_same_batches(actual, expected)
    assert {k: v.dtype for k, v in actual[0].items()} == {k: v.dtype for k, v in expected[0].items()}


# -- CsvDataset against tf.data -----------------------------------------------------------------------------

CSV_DATASET_CASES = [
    dict(record_defaults=["int32", "int64", [0.5], [""], [0], "string"], header=True, na_value="NA"),
    dict(record_defaults=[[0], [""]], header=True, select_cols=[0, 3]),
    dict(record_defaults=[0, "", [-1], "?"], header=True, exclude_cols=[1, 2], na_value="NA"),
    dict(record_defaults=[[0], np.int64(0), [0.0], [""], [""], [""]], header=True, buffer_size=64),
]


def _tf_defaults(tf, defaults):
    types = {"int32": tf.int32, "int64": tf.int64, "float32": tf.float32, "string": tf.string}
    return [types.get(d, d) if isinstance(d, str) else d for d in defaults]


@pytest.mark.parametrize("case", CSV_DATASET_CASES, ids=range(len(CSV_DATASET_CASES)))
def test_csv_dataset_gives_tf_data_records(tf, corpus, case):
    files = sorted(str(p) for p in corpus.glob("part-*.csv"))
    case = dict(case, record_defaults=_tf_defaults(tf, case["record_defaults"]))
    expected = tf_elements(tf.data.experimental.CsvDataset(files, **case))
    actual = fi_elements(fi.CsvDataset(files, **case))
    assert len(actual) == sum(FILE_ROWS)
    assert_same_elements(actual, expected)
    assert all(isinstance(record, tuple) for record in actual)


def test_csv_dataset_other_delimiter_and_no_quoting_like_tf_data(tf, tmp_path):
    rows = [["1", '"quoted"', "a,b"], ["2", "x", 'say "it"'], ["3", "", "z"]]
    path = tmp_path / "pipes.csv"
    path.write_text("".join("|".join(row) + "\n" for row in rows))
    kwargs = dict(record_defaults=[tf.int32, [""], [""]], field_delim="|", use_quote_delim=False)
    expected = tf_elements(tf.data.experimental.CsvDataset(str(path), **kwargs))
    actual = fi_elements(fi.CsvDataset(str(path), **kwargs))
    assert_same_elements(actual, expected)
    assert actual[0][1] == b'"quoted"'


@pytest.mark.parametrize("compression", ["GZIP", "ZLIB"])
def test_compressed_files_like_tf_data(tf, tmp_path, compression):
    paths = [write_csv(tmp_path / f"part-{i}.csv.z", corpus_rows(i, 100 * i), compression=compression)
             for i in range(2)]
    defaults = [[0], np.int64(0), [0.0], [""], [""], [""]]
    expected = tf_elements(tf.data.experimental.CsvDataset(paths, defaults, header=True, compression_type=compression))
    assert_same_elements(fi_elements(fi.CsvDataset(paths, defaults, header=True, compression_type=compression)),
                         expected)
    kwargs = dict(batch_size=10, num_epochs=1, shuffle=False, label_name="id", compression_type=compression)
    if compression == "GZIP":  # tf.data cannot infer types from ZLIB files; fastinput can
        expected_batches = tf_make_csv(tf, paths, **kwargs)
        assert_same_batches(fi_elements(fi.make_csv_dataset(paths, **kwargs)), expected_batches)
    else:
        batches = fi_elements(fi.make_csv_dataset(paths, **kwargs))
        assert (sorted(np.concatenate([label for _, label in batches]).tolist())
                == list(range(40)) + list(range(100, 157)))


def test_reads_remote_files_like_local_ones(s3_server, corpus):
    s3_server.make_bucket("fastinput-csv")
    for path in sorted(corpus.glob("part-*.csv")):
        s3_server.upload(path, "fastinput-csv", f"data/{path.name}")
    kwargs = dict(batch_size=16, num_epochs=1, shuffle=False, label_name="id", num_parallel_reads=2)
    remote = fi.make_csv_dataset("s3://fastinput-csv/data/part-*.csv", storage_options=s3_server.storage_options,
                                 **kwargs)
    assert_same_batches(fi_elements(remote), fi_elements(fi.make_csv_dataset(str(corpus / "part-*.csv"), **kwargs)))


# -- errors ---------------------------------------------------------------------------------------------------

BAD_CSV = '1,a,1.5\n2,b\n3,c,2.5,9\n4,"d\ne",x\n\n5,,3.5\n6,f,\n7,"g""h",1\n'


def rows_and_errors(dataset) -> list:
    """Every element, and each error's type and message, in order (iterating on after errors, as tf.data allows)."""
    out = []
    it = iter(dataset)
    while len(out) < 50:
        try:
            out.append(next(it))
        except StopIteration:
            break
        except Exception as exc:
            out.append((type(exc).__name__, str(exc).splitlines()[0]))
    return out


@pytest.mark.parametrize("string_required", [False, True])
def test_bad_records_raise_at_their_place_like_tf_data(tf, tmp_path, string_required):
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV)
    defaults = [[0], tf.string if string_required else [""], [0.0]]
    expected = rows_and_errors(tf.data.experimental.CsvDataset(str(path), defaults).as_numpy_iterator())
    actual = rows_and_errors(fi.CsvDataset(str(path), defaults))
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        if isinstance(want[0], str):  # an error in both
            assert got[0] == "InvalidArgumentError"
        else:
            assert_same_elements([got], [want])
    messages = [m for kind, m in (e for e in actual if isinstance(e[0], str))]
    assert messages[:4] == [
        f"{path}, line 2 (record 2): expected 3 fields but found 2",
        f"{path}, line 3 (record 3): expected 3 fields but found 4",
        f"{path}, line 4 (record 4): column 2: 'x' is not a valid float32",
        f"{path}, line 6 (record 5): empty line; expected 3 fields",
    ]
    if string_required:
        assert messages[4] == f"{path}, line 7 (record 6): column 1: the field is required but missing (empty)"


def test_make_csv_dataset_error_names_file_line_and_column(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [["1", "2.5"], ["2", "oops"], ["3", "4"]], header=["id", "price"])
    ds = fi.make_csv_dataset(path, batch_size=2, num_epochs=1, shuffle=False, column_defaults=[0, 0.0])
    with pytest.raises(InvalidArgumentError,
                       match=r"bad\.csv, line 3 \(record 2\): column 1 \('price'\): 'oops' is not a valid float32"):
        fi_elements(ds)


def test_make_csv_dataset_ignore_errors_like_tf_data(tf, tmp_path):
    good = [[str(i), f"{i}.5", f"s{i}"] for i in range(30)]
    rows = (good[:5] + [["99", "1"], ["98", "x", "y", "z"], ["97", "nan?", "s"]] + good[5:20]
            + [[], ["96", "", ""]] + good[20:])
    path = write_csv(tmp_path / "bad.csv", rows, header=["id", "price", "name"])
    kwargs = dict(batch_size=4, num_epochs=1, shuffle=False, label_name="id", ignore_errors=True,
                  column_defaults=[tf.int32, tf.float32, [""]])
    expected = tf_make_csv(tf, path, **kwargs)
    actual = fi_elements(fi.make_csv_dataset(path, **kwargs))
    assert_same_batches(actual, expected)
    assert np.concatenate([label for _, label in actual]).tolist() == list(range(30))
    with pytest.raises(InvalidArgumentError, match=r"bad\.csv, line 7 \(record 6\): expected 3 fields but found 2"):
        fi_elements(fi.make_csv_dataset(path, **dict(kwargs, ignore_errors=False)))


@pytest.mark.parametrize("bad", [{1}, {0}, {3, 4}, {9}])
@pytest.mark.parametrize("num_epochs", [1, None])
def test_make_csv_dataset_drops_the_batch_gathered_before_a_bad_row_like_tf_data(tf, tmp_path, bad, num_epochs):
    # tf.data's batch: the error is raised at once, the rows gathered for that batch dropped, the next batch starts
    # after it
    rows = [[str(i), "oops" if i in bad else str(i)] for i in range(10)]
    path = write_csv(tmp_path / "bad.csv", rows, header=["x", "y"])
    kwargs = dict(column_defaults=[tf.int32, tf.int32], shuffle=False, num_epochs=num_epochs)
    expected = elements_and_errors(tf.data.experimental.make_csv_dataset(path, 4, **kwargs).take(8))
    actual = elements_and_errors(fi.make_csv_dataset(path, 4, **kwargs).take(8))
    assert_same_with_errors([e if e is ERROR else dict(e) for e in actual],
                            [e if e is ERROR else dict(e) for e in expected])


@pytest.mark.parametrize("contents", ["", "\n", "a,b\n", "a,b"])
def test_header_of_an_empty_file_is_an_error_at_its_place_like_tf_data(tf, tmp_path, contents):
    # tf.data: "Can't read header of file" when that file's turn comes; the next file is read after it
    empty, ok = tmp_path / "empty.csv", tmp_path / "ok.csv"
    empty.write_text(contents)
    ok.write_text("a,b\n1,2\n")
    files = [str(ok), str(empty), str(ok)]
    expected = elements_and_errors(tf.data.experimental.CsvDataset(files, [tf.int32, tf.int32], header=True))
    assert_same_with_errors(elements_and_errors(fi.CsvDataset(files, [tf.int32, tf.int32], header=True)), expected)
    if not contents:
        with pytest.raises(InvalidArgumentError, match=r"empty\.csv: cannot read the header line: the file is empty"):
            fi_elements(fi.CsvDataset(str(empty), [tf.int32, tf.int32], header=True))


@pytest.mark.parametrize("default", [np.array(5), np.array(5, np.int32), np.array(2.5), np.array(b"x"), np.array("x"),
                                     np.array([5]), np.float64(2.5), [5], [], 5, "x"], ids=repr)
def test_record_defaults_of_every_form_work_like_tf_data(tf, tmp_path, default):
    # A scalar (a 0-d array too) or a one-element list is the default, of its dtype; [] makes the column required.
    # tf.data 2.21 takes numpy defaults (and the ints 1, 2, 3, 7, 9) for dtypes, as it compares each default with its
    # list of DTypes using ==; it is given them as tensors here, which it documents.
    path = write_csv(tmp_path / "d.csv", [["1", "2"], ["", "3"]], header=None)
    tf_default = tf.constant(default) if isinstance(default, (np.ndarray, np.generic)) else default
    expected = elements_and_errors(tf.data.experimental.CsvDataset(path, [tf_default, tf.int32]))
    assert_same_with_errors(elements_and_errors(fi.CsvDataset(path, [default, tf.int32])), expected)


def test_record_default_that_is_not_one_value_names_its_column():
    with pytest.raises(InvalidArgumentError,
                       match="record default 1 must be a dtype, a scalar or a list of at most one"):
        fi.CsvDataset("x.csv", [np.int32, np.zeros((2, 2))])


def test_missing_files_and_bad_arguments(tmp_path, corpus):
    with pytest.raises(NotFoundError):
        fi.make_csv_dataset(str(tmp_path / "nothing-*.csv"), batch_size=2)
    with pytest.raises(NotFoundError, match="missing.csv"):
        fi_elements(fi.CsvDataset(str(tmp_path / "missing.csv"), [[0]]))
    pattern = str(corpus / "part-*.csv")
    bad_calls = [
        lambda: fi.CsvDataset(pattern, [[0]], compression_type="BZIP2"),
        lambda: fi.make_csv_dataset(pattern, batch_size=2, compression_type="zip"),
        lambda: fi.make_csv_dataset(pattern, batch_size=0),
        lambda: fi.make_csv_dataset(pattern, batch_size=2, field_delim=";;"),
        lambda: fi.make_csv_dataset(pattern, batch_size=2, label_name="nope"),
        lambda: fi.make_csv_dataset(pattern, batch_size=2, select_columns=["id", 0]),
        lambda: fi.make_csv_dataset(pattern, batch_size=2, select_columns=["id"], column_defaults=[0, 0]),
        lambda: fi.make_csv_dataset(pattern, batch_size=2, header=False),
        lambda: fi.make_csv_dataset(pattern, batch_size=2, column_defaults=[0, True, 0, 0, 0, 0]),
        lambda: fi.CsvDataset(pattern, [[0], [0]], select_cols=[1, 0]),
        lambda: fi.CsvDataset(pattern, [[0]], select_cols=[0], exclude_cols=[1]),
        lambda: fi.CsvDataset(pattern, [np.complex64]),
        lambda: fi.CsvDataset(pattern, [[1, 2]]),
    ]
    for call in bad_calls:
        with pytest.raises(InvalidArgumentError):
            call()


# -- shuffling -----------------------------------------------------------------------------------------------


def epoch_ids(batches: list, rows_per_epoch: int) -> list[list[int]]:
    ids = np.concatenate([features["id"] for features in batches]).tolist()
    return [ids[i:i + rows_per_epoch] for i in range(0, len(ids), rows_per_epoch)]


def test_shuffle_is_reproducible_and_each_epoch_a_permutation(corpus):
    pattern, total = str(corpus / "part-*.csv"), sum(FILE_ROWS)

    def run(seed):
        return fi_elements(fi.make_csv_dataset(pattern, batch_size=13, num_epochs=3, shuffle_seed=seed,
                                               shuffle_buffer_size=50, num_parallel_reads=2))

    first, again, other = run(7), run(7), run(8)
    assert_same_elements(first, again)
    for features in first:  # every row's fields stay together through interleave, shuffle and batch
        assert features["name"].tolist() == [NAMES[(i * 3) % len(NAMES)].encode() for i in features["id"]]
    epochs = epoch_ids(first, total)
    assert len(epochs) == 3 and all(sorted(epoch) == list(range(total)) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) == 3 and epochs[0] != list(range(total))
    assert epoch_ids(other, total)[0] != epochs[0]


@pytest.mark.parametrize("buffer_size", [1, 5, 64])
def test_shuffle_buffer_draws_from_the_next_buffer_size_rows(tmp_path, buffer_size):
    rows = [[str(i), str(i * 2)] for i in range(500)]
    path = write_csv(tmp_path / "ids.csv", rows, header=["id", "x"])
    batches = fi_elements(fi.make_csv_dataset(path, batch_size=32, num_epochs=1, shuffle_buffer_size=buffer_size,
                                              shuffle_seed=3))
    ids = epoch_ids(batches, 500)[0]
    assert sorted(ids) == list(range(500))
    assert all(row_id < k + buffer_size for k, row_id in enumerate(ids))
    assert (ids == list(range(500))) == (buffer_size == 1)
    for features in batches:
        np.testing.assert_array_equal(features["x"], features["id"] * 2)  # columns stay aligned


@pytest.mark.parametrize("shuffle", [False, True], ids=["strings as numpy", "strings as arrow"])
@pytest.mark.parametrize("width,rounds", [(2, 1), (3, 5), (4, 1000)])
def test_row_interleave_is_the_same_for_number_and_string_columns(tmp_path, width, rounds, shuffle):
    """Files read side by side alternate row by row, and a string column stays aligned with a number column,
    whether strings are numpy arrays (rows go straight to batches) or Arrow arrays (rows are shuffled; a buffer of
    one keeps their order, while the files are listed in shuffled order)."""
    numbers = [np.arange(rounds) + 10_000 * j for j in range(width)]
    files = [write_csv(tmp_path / f"part-{j}.csv", [[str(v), f"v{v}"] for v in column], header=["n", "s"])
             for j, column in enumerate(numbers)]
    ds = fi.make_csv_dataset(files, batch_size=width * rounds, num_parallel_reads=width, shuffle=shuffle,
                             shuffle_buffer_size=1, shuffle_seed=3, num_epochs=1)
    [batch] = fi_elements(ds)
    file_order = [int(n) // 10_000 for n in batch["n"][:width]]
    assert sorted(file_order) == list(range(width)) and (file_order == sorted(file_order) or shuffle)
    assert batch["n"].tolist() == [int(numbers[j][r]) for r in range(rounds) for j in file_order]
    assert batch["s"].tolist() == [f"v{v}".encode() for v in batch["n"].tolist()]


# -- threads and imports -------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_parallel_reads", [1, 3])
def test_no_threads_left_behind(corpus, tmp_path, num_parallel_reads):
    pattern = str(corpus / "part-*.csv")
    with no_leaked_threads():
        assert len(fi_elements(fi.make_csv_dataset(pattern, batch_size=8, num_epochs=1,
                                                   num_parallel_reads=num_parallel_reads))) == 15
    with no_leaked_threads():  # stopped early, with readers still running ahead
        with iter(fi.make_csv_dataset(pattern, batch_size=2, num_parallel_reads=num_parallel_reads)) as it:
            next(it)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3\n")
    with no_leaked_threads(), pytest.raises(InvalidArgumentError):
        fi_elements(fi.make_csv_dataset(str(bad), batch_size=1, num_epochs=1, num_parallel_reads=num_parallel_reads))


def test_import_does_not_load_pyarrow():
    code = "import sys, fastinput; print('pyarrow' in sys.modules, hasattr(fastinput, 'make_csv_dataset'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
