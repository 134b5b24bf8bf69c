"""Remote read benchmark: fi.TFRecordDataset over ``s3://`` against a plain fsspec read of the same objects.

Starts moto's S3 server on loopback (a separate process, as a real store
would be), uploads TFRecord files of ~100 KB records, then measures in one
run, with the same number of files read at once:

(a) plain fsspec/s3fs: each object opened and read whole, sequentially, in
    reads of ``--read-mb`` (``f.read(16 MiB)`` in a loop, each one ranged GET);
(b) ``fi.TFRecordDataset(urls, num_parallel_reads=N, buffer_size=16 MiB)``,
    every record consumed (bytes counted: payload plus framing, i.e. the object bytes).

Both make the same requests, so the ratio is fastinput's own cost (framing,
CRCs, interleave, hand-off to the consumer). (With s3fs's default read-ahead
cache, (a) would ask for twice the read size per request; moto copies the
whole object for every request, so fewer requests would win on moto alone.)

After one untimed pass of each, the runs alternate (a), (b), (a), ...; it
prints the best and the median bytes/s of each and their ratios (the median
is the steadier figure on a busy machine), and the client's CPU seconds per
pass (fastinput's extra work, independent of the server's speed); the issue's
target is (b) >= 80% of (a).

    python -m fastinput_bench.s3_read [--files 8] [--file-mb 25] [--record-kb 100] [--parallel 4] [--read-mb 16]
        [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

OFFLINE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_GCE_CHECK": "True",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
}
BUCKET = "bench"


def start_moto() -> tuple[subprocess.Popen, str]:
    """moto's S3 server in a child process on a free loopback port; returns it and its endpoint URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(endpoint, timeout=2).close()
            return process, endpoint
        except urllib.error.HTTPError:
            return process, endpoint
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto's S3 server did not start within 60 s")


def make_objects(endpoint: str, files: int, file_bytes: int, record_bytes: int) -> list[str]:
    """Upload ``files`` TFRecord objects of about ``file_bytes`` each (records of 0.5x-1.5x ``record_bytes``)."""
    import boto3
    import numpy as np

    from fastinput.readers.framing import frame

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    rng = np.random.default_rng(0)
    pool = rng.bytes(2 * record_bytes + file_bytes)  # records are slices of one random buffer: quick to make
    urls = []
    for index in range(files):
        parts, size = [], 0
        while size < file_bytes:
            length = int(rng.integers(record_bytes // 2, record_bytes * 3 // 2))
            start = int(rng.integers(0, len(pool) - length))
            parts.append(frame(pool[start:start + length]))
            size += len(parts[-1])
        key = f"train-{index:03d}.tfrecord"
        client.put_object(Bucket=BUCKET, Key=key, Body=b"".join(parts))
        urls.append(f"s3://{BUCKET}/{key}")
    return urls


def read_plain(urls: list[str], storage_options: dict, parallel: int, read_size: int) -> int:
    """(a): every object read whole in reads of ``read_size``, ``parallel`` objects at once; returns bytes."""
    import fsspec

    fs = fsspec.filesystem("s3", **storage_options)

    def read_one(url: str) -> int:
        total = 0
        with fs.open(url, "rb", block_size=read_size, cache_type="none") as f:
            while data := f.read(read_size):
                total += len(data)
        return total

    with ThreadPoolExecutor(parallel) as pool:
        return sum(pool.map(read_one, urls))


def read_fastinput(urls: list[str], storage_options: dict, parallel: int, read_size: int) -> int:
    """(b): every record of fi.TFRecordDataset(num_parallel_reads=parallel); returns record plus framing bytes."""
    import fastinput as fi

    total = 0
    ds = fi.TFRecordDataset(urls, num_parallel_reads=parallel, buffer_size=read_size, storage_options=storage_options)
    for record in ds:
        total += len(record) + 16
    return total


def timed(fn, *args) -> tuple[float, float, int]:
    """Wall seconds, this process's CPU seconds (steadier than wall time on a busy machine), and fn's result."""
    start, cpu_start = time.perf_counter(), time.process_time()
    nbytes = fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu_start, nbytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--file-mb", type=float, default=25)
    parser.add_argument("--record-kb", type=float, default=100)
    parser.add_argument("--parallel", type=int, default=4, help="objects read at once, in both (a) and (b)")
    parser.add_argument("--read-mb", type=float, default=16, help="bytes per read request, in both (a) and (b)")
    parser.add_argument("--repeats", type=int, default=9, help="alternating runs of (a) and (b)")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)

    process, endpoint = start_moto()
    try:
        urls = make_objects(endpoint, args.files, int(args.file_mb * 1e6), int(args.record_kb * 1e3))
        options = {"key": "bench", "secret": "bench",
                   "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        runs: dict[str, list[float]] = {"plain fsspec": [], "fastinput": []}
        cpu: dict[str, list[float]] = {"plain fsspec": [], "fastinput": []}
        sizes = {}
        readers = (("plain fsspec", read_plain), ("fastinput", read_fastinput))
        for _, fn in readers:  # untimed: the first pass pays for connections, imports and the server's warm-up
            fn(urls, options, args.parallel, int(args.read_mb * (1 << 20)))
        for _ in range(args.repeats):
            for name, fn in readers:
                seconds, cpu_seconds, nbytes = timed(fn, urls, options, args.parallel, int(args.read_mb * (1 << 20)))
                runs[name].append(seconds)
                cpu[name].append(cpu_seconds)
                sizes[name] = nbytes
    finally:
        process.kill()
        process.wait()
    if sizes["plain fsspec"] != sizes["fastinput"]:
        raise SystemExit(f"byte counts differ: {sizes}")
    best = {name: sizes[name] / min(seconds) for name, seconds in runs.items()}
    median = {name: sizes[name] / statistics.median(seconds) for name, seconds in runs.items()}
    ratio_best = best["fastinput"] / best["plain fsspec"]
    ratio_median = median["fastinput"] / median["plain fsspec"]
    print(f"{args.files} objects, {sizes['fastinput'] / 1e6:,.0f} MB, ~{args.record_kb:g} KB records, "
          f"{args.parallel} at once, {args.read_mb:g} MiB reads, {args.repeats} runs each")
    print(f"  {'':<14} {'best MB/s':>10} {'median MB/s':>12} {'client CPU s':>13}   runs")
    for name, seconds in runs.items():
        print(f"  {name:<14} {best[name] / 1e6:10,.0f} {median[name] / 1e6:12,.0f} {statistics.median(cpu[name]):13.2f}"
              f"   {', '.join(f'{s:.2f} s' for s in seconds)}")
    print(f"  fastinput / plain fsspec: {ratio_median:.0%} on medians, {ratio_best:.0%} on best runs (target >= 80%)")
    print(f"  cores: {os.cpu_count()}")
    from fastinput_bench.report import write_figures  # as a script, the repository joins sys.path after the imports

    write_figures(args.json, {"bytes": sizes["fastinput"], "seconds": runs, "cpu_seconds": cpu,
                              "best_bytes_per_second": best, "median_bytes_per_second": median,
                              "ratio_median": ratio_median, "ratio_best": ratio_best})

if __name__ == "__main__":
    main()
