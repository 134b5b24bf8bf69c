"""Remote reads under injected faults: S3 (moto's server) and GCS (the emulator), each behind a fault proxy.

Every case counts the records delivered against the records written: a
transient fault (a 5xx answer, a connection reset or a truncated body mid-file,
a slow answer, the server gone for a moment) must cost nothing; a persistent one
must end in ``UnavailableError`` (``DataLossError`` for responses that are
always short) naming the URL, after exactly the records before the failed
range, within the configured time limit. The proxy's log of ranges shows
fastinput resuming at the first byte not yet read. ``pytest.mark.timeout``
turns a hang into a failure.
"""

from __future__ import annotations

import csv
import http.server
import re
import threading
import time

import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import DataLossError, InvalidArgumentError, UnavailableError
from fastinput.readers.framing import frame
from tests.fault_proxy import Fault, FaultProxy
from tests.helpers import wait_for_fastinput_threads
from tests.servers import Store

BLOCK = 1 << 20
"""The readers' buffer_size: one ranged request per MiB, so a fault can hit the middle of a file."""

RECORDS = [np.random.default_rng(7).bytes(size) for size in [0, 1, 70_000, 300_000] * 10 + [5] * 20]
"""About 3.7 MB: four ranged requests, with records straddling every request boundary."""

CSV_ROWS = [(i, f"name-{i}", i * 0.5) for i in range(150_000)]
"""About 3.3 MB of CSV."""

FAST = fi.Options(remote=fi.RemoteOptions(read_timeout=2, read_retries=2))
"""fastinput's limits for transient faults: 2 s per request, two retries."""
SHORT = fi.Options(remote=fi.RemoteOptions(read_timeout=1, read_retries=1))
"""fastinput's limits for persistent faults: 1 s per request, one retry (the error comes in a few seconds)."""


def through(store: Store, proxy: FaultProxy) -> dict:
    """``store``'s storage_options pointed at the proxy, with the client library's retries kept short."""
    options = dict(store.storage_options)
    if store.scheme == "s3":
        options["client_kwargs"] = {**options["client_kwargs"], "endpoint_url": proxy.endpoint}
        options["config_kwargs"] = {"retries": {"max_attempts": 2, "mode": "standard"}, "connect_timeout": 2,
                                    "read_timeout": 2}
    else:
        options["endpoint_url"] = proxy.endpoint
    return options


@pytest.fixture(scope="module")
def uploaded(store, tmp_path_factory) -> dict[str, str]:
    """The test files in ``store``: "plain" and "gzip" TFRecord files of RECORDS, and a CSV file of CSV_ROWS."""
    import gzip

    root = tmp_path_factory.mktemp("faults")
    data = b"".join(frame(r) for r in RECORDS)
    (root / "plain.tfrecord").write_bytes(data)
    (root / "gzip.tfrecord").write_bytes(gzip.compress(data, compresslevel=1))
    with open(root / "rows.csv", "w", newline="") as f:
        csv.writer(f).writerows([("id", "name", "value"), *CSV_ROWS])
    store.make_bucket("faults")
    return {name: store.upload(root / file, "faults", file)
            for name, file in [("plain", "plain.tfrecord"), ("gzip", "gzip.tfrecord"), ("csv", "rows.csv")]}


@pytest.fixture
def proxy(store) -> FaultProxy:
    with FaultProxy(store.endpoint) as p:
        yield p


def read_all(ds: fi.Dataset, options: fi.Options = FAST) -> tuple[list, BaseException | None]:
    """Every element up to the first error, and that error (None after a clean end)."""
    out: list = []
    try:
        with iter(ds.with_options(options)) as it:
            for element in it:
                out.append(element)
    except Exception as exc:
        return out, exc
    return out, None


def records(url: str, store: Store, proxy: FaultProxy, **kwargs) -> fi.Dataset:
    return fi.TFRecordDataset(url, buffer_size=BLOCK, storage_options=through(store, proxy), **kwargs)


def assert_resumed_in_place(proxy: FaultProxy) -> None:
    """Each range was asked for again only right after a fault on it, and the ranges go forward, none skipped."""
    starts = [int(r.removeprefix("bytes=").split("-")[0]) for r in proxy.ranges]
    assert starts == sorted(starts), proxy.ranges
    distinct = sorted(set(proxy.ranges), key=proxy.ranges.index)
    ends = [int(r.split("-")[1]) for r in distinct]
    assert [int(r.removeprefix("bytes=").split("-")[0]) for r in distinct[1:]] == [e + 1 for e in ends[:-1]]


# -- transient faults: every record, once ----------------------------------------------------------------------

TRANSIENT = {
    "503": Fault("status", status=503),
    "reset mid-body": Fault("reset", fraction=0.5),
    "truncated body": Fault("truncate", fraction=0.3),
    "short response": Fault("short", fraction=0.5),
    "empty response": Fault("short", fraction=0.0),
    "slow answer": Fault("stall", seconds=0.5),
    "answer past the time limit": Fault("stall", seconds=4.0),
    "server gone for a moment": Fault("down", seconds=0.5),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_a_transient_fault_mid_file_loses_and_repeats_nothing(store, uploaded, proxy, fault):
    proxy.schedule([None, fault])  # the second ranged read: after the first MiB's records were handed out
    got, error = read_all(records(uploaded["plain"], store, proxy))
    assert error is None
    assert got == RECORDS
    assert proxy.faults == [fault.kind]
    assert_resumed_in_place(proxy)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_faults_on_several_requests_in_a_row(store, uploaded, proxy):
    proxy.schedule([Fault("status", status=500), None, Fault("reset"), Fault("short", fraction=0.1), None,
                    Fault("truncate")])
    got, error = read_all(records(uploaded["plain"], store, proxy))
    assert (error, got) == (None, RECORDS)
    assert len(proxy.faults) == 4
    assert_resumed_in_place(proxy)


@pytest.mark.timeout(60)
def test_gzip_stream_resumes_mid_member(store, uploaded, proxy):
    proxy.schedule([None, Fault("reset", fraction=0.7)])
    got, error = read_all(records(uploaded["gzip"], store, proxy, compression_type="GZIP"))
    assert (error, got) == (None, RECORDS)
    assert proxy.faults == ["reset"]


@pytest.mark.timeout(60)
def test_parallel_reads_of_several_files(store, uploaded, proxy):
    proxy.schedule([None, Fault("status"), None, Fault("reset")])
    got, error = read_all(records([uploaded["plain"], uploaded["plain"]], store, proxy, num_parallel_reads=2))
    assert error is None
    assert got == [r for pair in zip(RECORDS, RECORDS) for r in pair]
    assert len(proxy.faults) == 2


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_csv_rows_survive_faults(store, uploaded, proxy):
    ds = fi.CsvDataset(uploaded["csv"], [0, "", 0.0], header=True, buffer_size=BLOCK,
                       storage_options=through(store, proxy)).batch(10_000)
    proxy.schedule([None, Fault("reset", fraction=0.4), Fault("status")])
    batches, error = read_all(ds)
    assert error is None
    ids, names, _ = (np.concatenate(column).tolist() for column in zip(*batches))
    assert ids == [row[0] for row in CSV_ROWS]
    assert names == [row[1].encode() for row in CSV_ROWS]
    assert proxy.faults == ["reset", "status"]


# -- read-ahead: the next range is on its way while a block is split -------------------------------------------

def first_block_records() -> int:
    """How many of RECORDS lie whole in the first BLOCK bytes of the file."""
    ends = np.cumsum([len(frame(r)) for r in RECORDS])
    return int(np.searchsorted(ends, BLOCK, side="right"))


@pytest.mark.timeout(60)
def test_the_next_range_is_asked_for_before_its_records_are_needed(store, uploaded, proxy):
    proxy.schedule([])
    with iter(records(uploaded["plain"], store, proxy).with_options(FAST)) as it:
        assert next(it) == RECORDS[0]  # one record of the first block taken: the second block is on its way
        deadline = time.monotonic() + 10
        while len(proxy.ranges) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.ranges[:2] == [f"bytes=0-{BLOCK - 1}", f"bytes={BLOCK}-{2 * BLOCK - 1}"]
        assert [next(it) for _ in range(first_block_records() - 1)] == RECORDS[1:first_block_records()]
    assert not wait_for_fastinput_threads()


@pytest.mark.timeout(60)
def test_a_failed_read_ahead_is_asked_for_again_with_the_full_retries(store, uploaded, proxy):
    """The read-ahead is one try more, not one of the retries: with none allowed, a fault on it costs nothing."""
    proxy.schedule([None, Fault("short", fraction=0.5)])  # the client libraries retry 5xx answers by themselves
    no_retries = fi.Options(remote=fi.RemoteOptions(read_timeout=2, read_retries=0))
    got, error = read_all(records(uploaded["plain"], store, proxy), no_retries)
    assert (error, got) == (None, RECORDS)
    assert proxy.faults == ["short"]
    assert_resumed_in_place(proxy)


# -- persistent faults: a clear error naming the URL, after exactly the records before it -----------------------

PERSISTENT = {
    "503 from then on": (Fault("status", status=503), UnavailableError, "503|ServiceUnavailable|Errno 16"),
    "server gone for good": (Fault("down", seconds=None), UnavailableError, "onnect"),
    "no answer": (Fault("stall", seconds=20.0), UnavailableError, "no complete answer within 1 s"),
    "short responses": (Fault("short", fraction=0.5), DataLossError, "524288 bytes came for the 1048576 asked for"),
}
"""Each persistent fault, the error it must end in, and what the message says of the cause (or that the time
limit cut the client library's own retries short: gcsfs retries 5xx answers for half a minute by itself)."""


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("fault", "error_type", "detail"), PERSISTENT.values(), ids=PERSISTENT.keys())
def test_a_persistent_fault_ends_in_an_error_naming_the_url(store, uploaded, proxy, fault, error_type, detail):
    url = uploaded["plain"]
    proxy.schedule([None], then=fault)
    got, error = read_all(records(url, store, proxy), SHORT)
    assert isinstance(error, error_type), repr(error)
    message = str(error)
    assert message.startswith(f"{url}: ") and "reading bytes 1048576-2097151" in message
    if error_type is UnavailableError:
        assert "failed 2 times (time limit 1 s per try)" in message
        assert re.search(f"{detail}|no complete answer within 1 s", message), message
    else:
        assert detail in message
    ends = np.cumsum([len(frame(r)) for r in RECORDS])
    whole = int(np.searchsorted(ends, BLOCK, side="right"))
    assert got == RECORDS[:whole]  # exactly the records of the first MiB: nothing more, nothing twice
    if error_type is DataLossError:  # reported at the record the short response cut
        assert (error.path, error.offset) == (url, int(ends[whole - 1]))
    assert not wait_for_fastinput_threads()


@pytest.mark.timeout(20)  # a close that waited out the stall (or the 30 s time limit) would fail here
@pytest.mark.parametrize("num_parallel_reads", [None, 2])
def test_closing_does_not_wait_for_a_stalled_store(store, uploaded, proxy, num_parallel_reads):
    proxy.schedule([None, None], then=Fault("stall", seconds=25.0))
    ds = records([uploaded["plain"]] * 2, store, proxy, num_parallel_reads=num_parallel_reads)
    it = iter(ds.with_options(fi.Options(remote=fi.RemoteOptions(read_timeout=30))))
    got = []

    def close_once_stalled() -> None:  # on a busy machine the stalled request may come well after a second
        deadline = time.monotonic() + 10
        while "stall" not in proxy.faults and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # the stall under way
        it.close()

    closer = threading.Thread(target=close_once_stalled)
    closer.start()
    with pytest.raises(fi.errors.CancelledError):
        for record in it:
            got.append(record)
    closer.join()
    assert "stall" in proxy.faults
    expected = [r for pair in zip(RECORDS, RECORDS) for r in pair] if num_parallel_reads else RECORDS + RECORDS
    assert got == expected[:len(got)]
    assert not wait_for_fastinput_threads()


@pytest.mark.timeout(60)
def test_a_missing_object_is_not_retried(store, uploaded, proxy):
    url = uploaded["plain"].replace("plain", "missing")
    got, error = read_all(records(url, store, proxy))
    assert isinstance(error, fi.errors.NotFoundError) and url in str(error)
    assert proxy.matched == 0


@pytest.mark.parametrize("options", [{"read_timeout": 0}, {"read_timeout": float("inf")}, {"read_timeout": "5"},
                                     {"read_retries": -1}, {"read_retries": 1.5}, {"read_retries": 10**6}])
def test_bad_remote_options_are_rejected(options):
    with pytest.raises(InvalidArgumentError, match="RemoteOptions: read_"):
        fi.RemoteOptions(**options)


# -- plain HTTP servers: one that ignores Range, one that does not say how big the file is -----------------------


class _FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``data`` at any path: honours ``Range`` unless ``ignore_range``; sends no length if ``unsized``."""

    data = b""
    ignore_range = False
    unsized = False

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the base class's name)
        pass

    def do_HEAD(self) -> None:
        self._answer(b"")

    def do_GET(self) -> None:
        body = self.data
        if "Range" in self.headers and not self.ignore_range:
            first, last = self.headers["Range"].removeprefix("bytes=").split("-")
            body = body[int(first):int(last) + 1]
        self._answer(body)

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        if not self.unsized:
            self.send_header("Content-Length", str(len(self.data) if self.command == "HEAD" else len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("quirk", ["ignore_range", "unsized"])
def test_plain_http_servers(quirk):
    handler = type("Handler", (_FileHandler,), {"data": b"".join(frame(r) for r in RECORDS), quirk: True})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/data.tfrecord"
        got, error = read_all(fi.TFRecordDataset(url, buffer_size=BLOCK))
    finally:
        server.shutdown()
        thread.join()
    assert (error, got) == (None, RECORDS)
