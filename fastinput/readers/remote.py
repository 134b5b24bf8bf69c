"""Remote objects read front to back in ranged requests, each bounded in time and retried where it fails.

fsspec's file objects read remote data well, but a reader needs three things
they leave to chance: a time limit on every request (a stalled server must not
hang a training job), a retry that resumes at the first byte not yet delivered
when a read fails mid-file (so no record is delivered twice or skipped), and a
response whose length is checked against the range asked for (a short response
must never look like the end of the file). ``RemoteFile`` adds these around the
filesystem's own ranged reads (``cat_file``; for s3fs the same request, its body
kept in parts: ``s3_ranges``), so the client library's settings
(for s3fs, botocore's ``config_kwargs={"retries": {"max_attempts": ...},
"read_timeout": ..., "connect_timeout": ...}``; for gcsfs, ``requests_timeout``;
all passed through ``storage_options``) still apply inside each try. A fourth:
a read waiting on the store gives up as soon as the pipeline is closed.

On an async filesystem whose object size is known, each response starts the
request for the next range on the filesystem's event loop, so the next block
arrives while this one is split into records (one request read ahead per
open file: a reader's memory is two requests, not one). A read-ahead that
fails is not an error of its own: the range is asked for again, with the retries below.

A response is kept in the parts it arrived in where the filesystem gives them
(s3fs: ``s3_ranges``; elsewhere a response is one part): ``read_parts`` hands
them out as they are, for a reader that splits records where they lie
(``framing.RecordReader``); ``read`` joins them.

A request that fails with a storage error (connection refused or reset, a 5xx
answer the library gave up on, a timeout) is tried again after a short pause,
up to ``retries`` more times; then ``UnavailableError`` names the URL, the byte
range and the last error. A missing object (``NotFoundError``) or a refusal
(``PermissionError``) is not retried. A response of the wrong length that
persists ends in ``DataLossError``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from fastinput._engine.cancellation import StopSignal
from fastinput.errors import CancelledError, DataLossError, FastInputError, UnavailableError
from fastinput.options import RemoteOptions
from fastinput.readers.files import storage_errors

MIN_REQUEST_SIZE = 1 << 20
"""Smallest ranged request: smaller reads are served from the rest of the last response."""

_FIRST_PAUSE = 0.1
_MAX_PAUSE = 2.0
_CANCEL_POLL_SECONDS = 0.05
"""How often a thread waiting on a request looks at the pipeline's stop signal."""


class _ShortResponse(Exception):
    """A response with fewer or more bytes than the range asked for (retried like a failed request)."""


class RemoteFile:
    """A remote object read sequentially: ``read(n)`` returns up to ``n`` bytes, ``b""`` only at its end;
    ``read_parts(n)`` the same as the parts a response arrived in, ``[]`` at the end.

    ``fs`` is the fsspec filesystem, ``fs_path`` the object as it names it and
    ``url`` the name errors use; ``options`` sets the time limit and retries
    (``fi.RemoteOptions``; None: the defaults); once ``cancelled`` (the
    pipeline's stop signal) is set, a waiting request is abandoned and
    ``CancelledError`` raised, so closing an iterator never waits on a slow
    store (async filesystems: s3fs, gcsfs, http). Opening asks the store for the
    object's size (``NotFoundError`` if there is none), under the same limit and retries.
    Where the store does not say (an HTTP server without Content-Length), ``size``
    is None and the first response shorter than asked for marks the end: a
    truncation there cannot be told from the end of the object.
    """

    def __init__(self, fs: Any, fs_path: str, url: str, request_size: int, options: RemoteOptions | None,
                 cancelled: StopSignal | None = None, start: int = 0) -> None:
        options = (options or RemoteOptions()).resolved()
        self._cancelled = cancelled or StopSignal()
        self.path = url
        self._fs = fs
        self._fs_path = fs_path
        self._request_size = max(request_size, MIN_REQUEST_SIZE)
        self._timeout = options.read_timeout
        self._retries = options.read_retries
        self._offset = start  # of the first byte not yet returned (``start``: a restored reader goes on there)
        self._parts: collections.deque[bytes] = collections.deque()  # of the last response not yet returned
        self._ahead: tuple[int, int, concurrent.futures.Future] | None = None  # the range read ahead, in flight
        self._get_parts = _range_parts_reader(fs) if _is_async(fs) else None
        info_func = fs._info if _is_async(fs) else fs.info
        info = self._request("asking for the object's size", lambda: self._call(info_func, fs_path))
        self.size: int | None = None if info.get("size") is None else int(info["size"])

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes from the current offset, as one bytes object (one request at most)."""
        parts = self.read_parts(n)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def read_parts(self, n: int) -> list[bytes]:
        """Up to ``n`` bytes from the current offset as the parts they arrived in (the first one cut at ``n``):
        the rest of the last response, or the next one (one request at most); ``[]`` at the end."""
        if not self._parts:
            self._receive(n)
            if not self._parts:
                return []
        first = self._parts.popleft()
        if len(first) > n:
            first, rest = first[:n], first[n:]
            self._parts.appendleft(rest)
        taken, have = [first], len(first)
        while self._parts and have + len(self._parts[0]) <= n:
            taken.append(self._parts.popleft())
            have += len(taken[-1])
        self._offset += have
        return taken

    def close(self) -> None:
        self._parts.clear()
        if self._ahead is not None:
            self._ahead[2].cancel()
            self._ahead = None

    def _receive(self, n: int) -> None:
        """Ask for the next range (at least ``n`` bytes, to the end of the object at most) and keep its parts."""
        start = self._offset
        end = start + max(n, self._request_size)
        if self.size is not None:
            end = min(self.size, end)
        if start >= end:
            return
        parts = self._take_ahead(start)
        if parts is None:
            parts = self._read_range(start, end)
        got = sum(map(len, parts))
        if self.size is None and got < end - start:
            self.size = start + got
        self._read_ahead(start + got)
        self._parts.extend(part for part in parts if part)

    def _read_ahead(self, start: int) -> None:
        """Start the request for the range from ``start`` on the filesystem's loop (async filesystems, known size,
        not at the end); ``_receive`` takes its answer with ``_take_ahead``."""
        fs = self._fs
        if self.size is None or start >= self.size or not _is_async(fs):
            return
        end = min(self.size, start + self._request_size)
        self._ahead = (start, end, self._submit(self._get_parts, self._fs_path, start, end))

    def _take_ahead(self, start: int) -> list[bytes] | None:
        """The parts read ahead from ``start`` on, once they arrive; None where there is no such read or it failed
        (the caller then asks again, with retries)."""
        if self._ahead is None:
            return None
        ahead_start, ahead_end, future = self._ahead
        self._ahead = None
        if ahead_start != start:
            future.cancel()
            return None
        self._wait(future)
        try:
            return self._checked(future.result(), ahead_start, ahead_end)
        except (Exception, asyncio.CancelledError):
            return None

    def _checked(self, parts: list[bytes], start: int, end: int) -> list[bytes]:
        """``parts``, the response to a request for bytes ``start`` to ``end``, if its length is right (the rest of
        the object from ``start`` where the server ignored the range and sent all of it); else ``_ShortResponse``."""
        got = sum(map(len, parts))
        if got != end - start and got == self.size:  # a server that ignores Range sends it all
            return [b"".join(parts)[start:]]  # the rest of it: later reads are served from it (``_parts``)
        if got > end - start or (got < end - start and self.size is not None):
            raise _ShortResponse(f"{got} bytes came for the {end - start} asked for")
        return parts

    def _read_range(self, start: int, end: int) -> list[bytes]:
        def checked() -> list[bytes]:
            if self._get_parts is not None:
                parts = self._call(self._get_parts, self._fs_path, start, end)
            else:
                parts = [self._fs.cat_file(self._fs_path, start=start, end=end)]
            return self._checked(parts, start, end)

        try:
            return self._request(f"reading bytes {start}-{end - 1}", checked)
        except UnavailableError as exc:
            if isinstance(exc.__cause__, _ShortResponse):
                raise DataLossError(f"{self.path}: reading bytes {start}-{end - 1} of {self.size}: "
                                    f"{exc.__cause__} (a response of the wrong length, every try)",
                                    path=self.path, offset=start) from exc
            raise

    def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``func(*args, **kwargs)``: for an async filesystem a coroutine run on its loop under the time limit,
        abandoned (cancelled on the loop) if the pipeline stops meanwhile; else a plain call."""
        fs = self._fs
        if not _is_async(fs):
            return func(*args, **kwargs)
        future = self._submit(func, *args, **kwargs)
        self._wait(future)
        try:
            return future.result()
        except TimeoutError as exc:  # asyncio.wait_for's limit (or a socket timeout inside the library)
            raise TimeoutError(f"no complete answer within {self._timeout:g} s") from exc

    def _submit(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """Start the coroutine ``func(*args, **kwargs)`` on the async filesystem's loop, under the time limit."""
        return asyncio.run_coroutine_threadsafe(asyncio.wait_for(func(*args, **kwargs), self._timeout), self._fs.loop)

    def _wait(self, future: concurrent.futures.Future) -> None:
        """Until ``future`` is done; abandoned (cancelled on the loop) with ``CancelledError`` if the pipeline stops."""
        while not future.done():
            concurrent.futures.wait([future], timeout=_CANCEL_POLL_SECONDS)
            if self._cancelled.is_set() and not future.done():
                future.cancel()
                raise CancelledError(f"{self.path}: the iterator was closed while a read was waiting")

    def _request(self, what: str, func: Callable[[], Any]) -> Any:
        """``func()``, tried again after storage errors and short responses; errors mapped to fastinput's."""
        pause = _FIRST_PAUSE
        for attempt in range(self._retries + 1):
            try:
                with storage_errors(self.path, remote=True):
                    return func()
            except UnavailableError as exc:
                if isinstance(exc.__cause__, PermissionError):
                    raise  # a refusal does not go away by asking again
                last = exc
            except _ShortResponse as exc:
                last = exc
            if attempt < self._retries:
                if self._cancelled.wait(pause):
                    raise CancelledError(f"{self.path}: the iterator was closed while a read was being retried")
                pause = min(2 * pause, _MAX_PAUSE)
        cause = last.__cause__ if isinstance(last, UnavailableError) and last.__cause__ else last
        raise UnavailableError(
            f"{self.path}: {what} failed {self._retries + 1} times (time limit {self._timeout:g} s per try); "
            f"last error: {_describe(cause)}") from cause


def _range_parts_reader(fs: Any) -> Callable[[str, int, int], Awaitable[list[bytes]]]:
    """The coroutine function ``(path, start, end) -> parts`` that reads a range of an async filesystem's object:
    in the parts the body arrived in for s3fs (``s3_ranges``), else as the one part ``_cat_file`` returns.
    (An S3FileSystem exists only where s3fs is imported, so looking it up in ``sys.modules`` imports nothing.)"""
    s3fs = sys.modules.get("s3fs")
    if s3fs is not None and isinstance(fs, s3fs.S3FileSystem):
        from fastinput.readers import s3_ranges

        return functools.partial(s3_ranges.read_range_parts, fs)
    return functools.partial(_cat_parts, fs)


async def _cat_parts(fs: Any, path: str, start: int, end: int) -> list[bytes]:
    """Bytes ``start`` to ``end - 1`` of ``path`` through the filesystem's own ``_cat_file``, as one part."""
    return [await fs._cat_file(path, start=start, end=end)]


def _is_async(fs: Any) -> bool:
    return bool(getattr(fs, "async_impl", False)) and getattr(fs, "loop", None) is not None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FastInputError):
        return str(exc).split(": storage request failed: ", 1)[-1]
    return f"{type(exc).__name__}: {exc}"
