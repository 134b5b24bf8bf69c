"""Where the S3 benchmark's time goes: each reader's requests, their overlap, and the CPU of client and server.

Runs ``s3_read``'s two readers (plain fsspec, ``fi.TFRecordDataset``) on the
same moto server and objects, alternating, and for each pass prints:

- its wall time, the client's CPU seconds (and of those, fsspec's event loop thread's, which receives every
  response for both readers) and moto's (from ``/proc``, so Linux only);
- the requests it made (ranged GETs and size lookups, counted by wrapping the
  functions they go through in this script: the library is not changed) and the time
  spent with 0, 1, 2, ... of them in flight: 0 means the server had nothing to do;
- how long after the pass started the first request went out, and how long the
  pass went on after the last response came (the reader's own tail).

``--timeline`` also draws each request of the last pass of each reader as a bar
(5 ms a character), to see when each file's ranges are asked for.

    python -m fastinput_bench.s3_requests [--files 8] [--file-mb 25] [--record-kb 100] [--parallel 4]
        [--read-mb 16] [--repeats 3] [--timeline]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fastinput_bench.report import process_cpu
from fastinput_bench.s3_read import OFFLINE_ENV, make_objects, read_fastinput, read_plain, start_moto

Request = tuple[str, str, int, float, float]
"""(kind: "get" or "size", object key, first byte, start, end) with perf_counter times."""


def record_requests(log: list[Request]) -> None:
    """Wrap the functions both readers' requests go through (fastinput: ``s3_ranges.read_range_parts`` and s3fs's
    ``_info``; plain fsspec file objects: ``s3fs.core._inner_fetch``), appending each finished request to ``log``."""
    import s3fs.core

    from fastinput.readers import s3_ranges

    def timed(kind: str, func: Callable, key_of: Callable, start_of: Callable) -> Callable:
        async def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return await func(*args, **kwargs)
            finally:
                log.append((kind, key_of(args), start_of(args, kwargs), started, time.perf_counter()))
        return wrapper

    fs_class = s3fs.core.S3FileSystem
    s3_ranges.read_range_parts = timed("get", s3_ranges.read_range_parts, lambda a: a[1], lambda a, k: a[2])
    fs_class._info = timed("size", fs_class._info, lambda a: a[1], lambda a, k: 0)
    s3fs.core._inner_fetch = timed("get", s3fs.core._inner_fetch, lambda a: a[2], lambda a, k: a[4])


def event_loop_thread() -> int:
    """The native id of fsspec's event loop thread (started by the first pass)."""
    import fsspec.asyn

    return fsspec.asyn.iothread[0].native_id


def in_flight_ms(requests: list[Request], start: float, end: float) -> dict[int, float]:
    """Milliseconds of the pass [start, end] spent with each number of requests in flight."""
    edges = sorted([(r[3], 1) for r in requests] + [(r[4], -1) for r in requests])
    spent: dict[int, float] = {}
    count, last = 0, start
    for t, step in edges:
        spent[count] = spent.get(count, 0.0) + (t - last) * 1e3
        count, last = count + step, t
    spent[count] = spent.get(count, 0.0) + (end - last) * 1e3
    return spent


def draw(requests: list[Request], start: float) -> None:
    for kind, key, first, began, ended in sorted(requests, key=lambda r: r[3]):
        left, right = int((began - start) * 200), int((ended - start) * 200)
        print(f"    {kind:4} {key.rsplit('/', 1)[-1]:<20} {first:>9} {(began - start) * 1e3:5.0f}-"
              f"{(ended - start) * 1e3:5.0f} ms {' ' * left}{'#' * max(1, right - left)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--file-mb", type=float, default=25)
    parser.add_argument("--record-kb", type=float, default=100)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--read-mb", type=float, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeline", action="store_true", help="draw each request of the last passes")
    args = parser.parse_args()
    os.environ.update(OFFLINE_ENV)
    log: list[Request] = []
    record_requests(log)
    process, endpoint = start_moto()
    try:
        urls = make_objects(endpoint, args.files, int(args.file_mb * 1e6), int(args.record_kb * 1e3))
        options = {"key": "bench", "secret": "bench",
                   "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        read_size = int(args.read_mb * (1 << 20))
        readers = (("plain fsspec", read_plain), ("fastinput", read_fastinput))
        for _, read in readers:  # untimed: connections, imports, the server's warm-up
            read(urls, options, args.parallel, read_size)
        last: dict[str, tuple[list[Request], float]] = {}
        me, loop_thread = os.getpid(), event_loop_thread()
        for _ in range(args.repeats):
            for name, read in readers:
                log.clear()
                server, client, loop = process_cpu(process.pid), time.process_time(), process_cpu(me, loop_thread)
                start = time.perf_counter()
                read(urls, options, args.parallel, read_size)
                end = time.perf_counter()
                server, client = process_cpu(process.pid) - server, time.process_time() - client
                loop = process_cpu(me, loop_thread) - loop
                requests = list(log)
                gets = [r for r in requests if r[0] == "get"]
                spent = in_flight_ms(requests, start, end)
                print(f"{name:<13} {end - start:.3f} s, client CPU {client:.2f} s (event loop {loop:.2f} s), "
                      f"moto CPU {server:.2f} s, "
                      f"{len(gets)} GETs (median {statistics.median(r[4] - r[3] for r in gets) * 1e3:.0f} ms) "
                      f"+ {len(requests) - len(gets)} size lookups; first request after "
                      f"{(min(r[3] for r in requests) - start) * 1e3:.0f} ms, pass ends "
                      f"{(end - max(r[4] for r in requests)) * 1e3:.0f} ms after the last response")
                print("    ms with N requests in flight: "
                      + ", ".join(f"{n}: {ms:.0f}" for n, ms in sorted(spent.items())))
                last[name] = (requests, start)
        if args.timeline:
            for name, (requests, start) in last.items():
                print(f"  {name}, last pass (5 ms a character):")
                draw(requests, start)
    finally:
        process.kill()
        process.wait()


if __name__ == "__main__":
    main()
