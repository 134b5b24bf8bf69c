"""SqlDataset against tf.data's experimental.SqlDataset on the same SQLite database: every output type over values
of every SQLite storage class (the conversions are SQLite's own in both), the first statement only, element specs
and cardinality, errors (a query that does not compile, a column count off, a missing file, bad arguments), and
checkpoints at every row."""

import os
import sqlite3

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import InvalidArgumentError, NotFoundError
from tests.checkpoint.test_seq import check_every_cut
from tests.helpers import assert_same_with_errors, elements_and_errors, fi_outcomes

VALUES = ["3.7", "1e5", "  12abc", "-", "", b"12", b"\xff\xfe", 9.99e18, 9.3e18, -1e300, None, 2**63 - 1, -2**63,
          2**40, 2**31, 2**31 + 5, -1, 0.5, -0.5, 1.0, 100.0, 1e300, float("inf"), "abc", "0x10", "+5", " -7 ",
          "\u0661", 3.14159265358979, 1e-7, 123456789012345678, "b\u00e9"]
"""Text, blobs, reals, integers and NULL, each converted by every output type."""

TYPES = ["string", "int64", "int32", "int8", "int16", "uint8", "uint16", "bool", "float64"]


@pytest.fixture
def database(tmp_path):
    path = str(tmp_path / "values.db")
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (i INTEGER, v)")
        connection.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(VALUES)))
        connection.execute("CREATE TABLE big (i INTEGER, s TEXT)")
        connection.executemany("INSERT INTO big VALUES (?, ?)", [(i, f"row {i}") for i in range(2500)])
    connection.close()
    return path


def dtypes(lib, names):
    if lib == "tf":
        import tensorflow as tf

        return tuple(getattr(tf, name) for name in names)
    return tuple(object if name == "string" else getattr(np, name if name != "bool" else "bool_") for name in names)


def both(tf, database, query, names):
    """(fastinput's, tf.data's) datasets of ``query`` with the output types ``names`` (a tuple; a str: a scalar)."""
    def make(lib):
        types = dtypes(lib, [names] if isinstance(names, str) else names)
        reader = fi.SqlDataset if lib == "fi" else tf.data.experimental.SqlDataset
        return reader("sqlite", database, query, types[0] if isinstance(names, str) else types)

    return make("fi"), make("tf")


def test_every_type_converts_every_value_like_tf(tf, database):
    query = "SELECT " + ", ".join(["v"] * len(TYPES)) + " FROM t ORDER BY i"
    fi_ds, tf_ds = both(tf, database, query, TYPES)
    fi_rows, tf_rows = elements_and_errors(fi_ds), elements_and_errors(tf_ds)
    assert len(fi_rows) == len(VALUES)
    assert_same_with_errors(fi_rows, tf_rows)


@pytest.mark.parametrize("name", TYPES)
def test_a_scalar_output_type_and_the_spec_like_tf(tf, database, name):
    fi_ds, tf_ds = both(tf, database, "SELECT v FROM t ORDER BY i", name)
    assert_same_with_errors(elements_and_errors(fi_ds), elements_and_errors(tf_ds))
    spec = fi_ds.element_spec
    assert spec.shape == () and tf_ds.element_spec.shape == ()
    assert spec.dtype == (np.dtype(object) if name == "string" else tf_ds.element_spec.dtype.as_numpy_dtype)
    assert fi_ds.cardinality() == int(tf_ds.cardinality()) == fi.UNKNOWN_CARDINALITY


@pytest.mark.parametrize("query", [
    "SELECT i, s FROM big ORDER BY i",  # more rows than one fetch
    "SELECT i, s FROM big WHERE i % 7 = 3 ORDER BY i DESC; SELECT 1, 2",  # the first statement only
    "SELECT i, s FROM big WHERE i < 5 -- a comment at the end",
    "WITH r AS (SELECT i, s FROM big WHERE i < 9) SELECT i, s FROM r ORDER BY i",
    "SELECT i, s FROM big WHERE i < 0",  # no rows
])
def test_queries_like_tf(tf, database, query):
    fi_ds, tf_ds = both(tf, database, query, ("int64", "string"))
    assert_same_with_errors(elements_and_errors(fi_ds), elements_and_errors(tf_ds))


@pytest.mark.parametrize("query,match", [
    ("SELECT nope FROM t", "no such column: nope"),
    ("SELEKT 1", "syntax error"),
    ("SELECT i FROM t", r"number of columns in the query \(1\) must match the number of elements in output_types "
                        r"\(2\)"),
    ("INSERT INTO t VALUES (99, 1)", r"number of columns in the query \(0\)"),
])
def test_a_bad_query_raises_once_then_ends(tf, database, query, match):
    fi_ds, tf_ds = both(tf, database, query, ("int64", "int64"))
    with pytest.raises(InvalidArgumentError, match=match):
        next(iter(fi_ds))
    assert fi_outcomes(fi_ds) == ["error", "end"]  # tf.data raises at every call (listed in the README)
    with pytest.raises(tf.errors.OpError):
        next(iter(tf_ds))
    assert len(elements_and_errors(fi.SqlDataset("sqlite", database, "SELECT i FROM t", np.int64))) == len(VALUES)


def test_a_missing_database_is_not_found_and_not_made(tmp_path):
    path = str(tmp_path / "missing.db")
    with pytest.raises(NotFoundError, match="missing.db"):
        next(iter(fi.SqlDataset("sqlite", path, "SELECT 1", np.int64)))
    assert not os.path.exists(path)


def test_resumes_at_every_row(database):
    check_every_cut(fi.SqlDataset("sqlite", database, "SELECT i, s FROM big WHERE i < 40 ORDER BY i",
                                  (np.int64, object)))


def test_a_path_with_uri_characters(tmp_path):
    folder = tmp_path / "a?b#c%d"
    folder.mkdir()
    path = str(folder / "x.db")
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (v)")
        connection.execute("INSERT INTO t VALUES (7)")
    connection.close()
    assert [int(x) for x in fi.SqlDataset("sqlite", path, "SELECT v FROM t", np.int64)] == [7]


@pytest.mark.parametrize("args,match", [
    (("mysql", "x.db", "SELECT 1", np.int64), "the database type, 'mysql', is not supported"),
    (("sqlite", "x.db", "", np.int64), "query must be a non-empty string"),
    (("sqlite", "x.db", "SELECT 1", np.float32), "each of output_types must be one of"),
    (("sqlite", "x.db", "SELECT 1", "string"), "each of output_types must be one of"),
    (("sqlite", "x.db", "SELECT 1", ()), "output_types names no column"),
])
def test_arguments_are_checked(args, match):
    with pytest.raises(InvalidArgumentError, match=match):
        fi.SqlDataset(*args)
