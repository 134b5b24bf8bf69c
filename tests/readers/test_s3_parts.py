"""S3 ranges read in the parts the response body arrived in (``s3_ranges``), against moto's server.

The parts must make up exactly the bytes asked for; ``RemoteFile`` hands them
out as they are (``read_parts``) or joined (``read``); records that straddle
parts come out whole, in tf.data's order; an object's older version is read
where the URL names it; and nothing (threads, connections) outlives a reader.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import fastinput as fi
from fastinput.readers.framing import frame
from fastinput.readers.remote import RemoteFile
from fastinput.readers.s3_ranges import read_range_parts
from tests.helpers import wait_for_fastinput_threads

DATA = np.random.default_rng(11).bytes(3_000_000)
"""An object of about 3 MB: a MiB range of it comes off the socket in several parts."""

RECORDS = [np.random.default_rng(12).bytes(size) for size in [90_000, 140_000, 0, 7, 300_000, 51_000] * 12]
"""About 7 MB of records around the size of a part, so that most parts cut one."""


@pytest.fixture(scope="module")
def objects(s3_server, tmp_path_factory) -> dict[str, str]:
    """The test objects in moto: "data" (DATA) and "records" (RECORDS as a TFRecord file); name -> URL."""
    root = tmp_path_factory.mktemp("s3parts")
    (root / "data").write_bytes(DATA)
    (root / "records").write_bytes(b"".join(frame(r) for r in RECORDS))
    s3_server.make_bucket("parts")
    return {name: s3_server.upload(root / name, "parts", name) for name in ("data", "records")}


def test_a_range_comes_in_parts_that_make_up_its_bytes(s3_server, objects):
    fs = s3_server.filesystem()
    future = asyncio.run_coroutine_threadsafe(read_range_parts(fs, "parts/data", 100, 2_500_100), fs.loop)
    parts = future.result(timeout=30)
    assert len(parts) > 1 and all(parts)
    assert b"".join(parts) == DATA[100:2_500_100]


def test_remote_file_hands_out_parts_as_they_came_or_joined(s3_server, objects):
    fs = s3_server.filesystem()
    remote = RemoteFile(fs, "parts/data", objects["data"], 1 << 20, None)
    try:
        got = remote.read_parts(1000)  # at most 1000 bytes: the first part, cut there if it is longer
        assert 0 < sum(map(len, got)) <= 1000
        calls, parts = 0, list(got)
        while len(parts) < 8:  # the rest of the first MiB's response, and the next: as the parts came
            new = remote.read_parts(1 << 20)
            assert 0 < sum(map(len, new)) <= 1 << 20 and all(new)
            calls, parts = calls + 1, parts + new
        assert len(parts) > calls + 1  # several parts a call: they are not joined
        joined = remote.read(300_000)  # as one bytes object
        assert 0 < len(joined) <= 300_000
        rest = []
        while more := remote.read_parts(1 << 20):
            rest += more
        assert b"".join(parts) + joined + b"".join(rest) == DATA
    finally:
        remote.close()


@pytest.mark.parametrize("num_parallel_reads", [None, 3])
def test_records_cut_by_parts_read_as_tf_data_reads_them(s3_server, objects, tmp_path, num_parallel_reads, tf):
    local = tmp_path / "records.tfrecord"
    local.write_bytes(b"".join(frame(r) for r in RECORDS))
    expected = list(tf.data.TFRecordDataset([str(local)] * 3, num_parallel_reads=num_parallel_reads)
                    .as_numpy_iterator())
    ds = fi.TFRecordDataset([objects["records"]] * 3, num_parallel_reads=num_parallel_reads,
                            storage_options=s3_server.storage_options)
    assert list(ds) == expected
    assert not wait_for_fastinput_threads()


def test_closing_mid_file_leaves_no_thread_or_open_connection(s3_server, objects):
    """Each close abandons the range read ahead mid-body: its connection must be closed, not left open (a leak
    would add one connection to the server per close)."""
    psutil = pytest.importorskip("psutil", reason="psutil comes with the [test] extra (not [test-core])")
    port = int(s3_server.endpoint.rsplit(":", 1)[1])

    def connections() -> int:
        return sum(1 for c in psutil.Process().net_connections("tcp")
                   if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED)

    for _ in range(6):
        with iter(fi.TFRecordDataset(objects["records"], buffer_size=1 << 20,
                                     storage_options=s3_server.storage_options)) as it:
            assert next(it) == RECORDS[0]  # the next range is on its way
        assert not wait_for_fastinput_threads()
    assert connections() <= 3  # the idle ones the pool keeps


def test_an_older_version_is_read_where_the_url_names_it(s3_server, tmp_path):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    s3_server.make_bucket("versions")
    client.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
    old = client.put_object(Bucket="versions", Key="r.tfrecord", Body=frame(b"old"))["VersionId"]
    client.put_object(Bucket="versions", Key="r.tfrecord", Body=frame(b"new") + frame(b"newer"))
    options = {**s3_server.storage_options, "version_aware": True}
    assert list(fi.TFRecordDataset(f"s3://versions/r.tfrecord?versionId={old}", storage_options=options)) == [b"old"]
    assert list(fi.TFRecordDataset("s3://versions/r.tfrecord", storage_options=options)) == [b"new", b"newer"]
