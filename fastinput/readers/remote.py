"""Remote objects read front to back in ranged requests, each bounded in time and retried where it fails.

fsspec's file objects read remote data well, but a reader needs three things
they leave to chance: a time limit on every request (a stalled server must not
hang a training job), a retry that resumes at the first byte not yet delivered
when a read fails mid-file (so no record is delivered twice or skipped), and a
response whose length is checked against the range asked for (a short response
must never look like the end of the file). ``RemoteFile`` adds these around the
filesystem's own ranged reads (``cat_file``), so the client library's settings
(for s3fs, botocore's ``config_kwargs={"retries": {"max_attempts": ...},
"read_timeout": ..., "connect_timeout": ...}``; for gcsfs, ``requests_timeout``;
all passed through ``storage_options``) still apply inside each try. A fourth:
a read waiting on the store gives up as soon as the pipeline is closed.

On an async filesystem whose object size is known, each response starts the
request for the next range on the filesystem's event loop, so the next block
arrives while this one is split into records (one request read ahead per
open file: a reader's memory is two requests, not one). A read-ahead that
fails is not an error of its own: the range is asked for again, with the retries below.

A request that fails with a storage error (connection refused or reset, a 5xx
answer the library gave up on, a timeout) is tried again after a short pause,
up to ``retries`` more times; then ``UnavailableError`` names the URL, the byte
range and the last error. A missing object (``NotFoundError``) or a refusal
(``PermissionError``) is not retried. A response of the wrong length that
persists ends in ``DataLossError``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
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
    """A remote object read sequentially: ``read(n)`` returns up to ``n`` bytes, ``b""`` only at its end.

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
        self._rest = b""  # bytes of the last response beyond what was asked for, from _offset on
        self._ahead: tuple[int, int, concurrent.futures.Future] | None = None  # the range read ahead, in flight
        info_func = fs._info if _is_async(fs) else fs.info
        info = self._request("asking for the object's size", lambda: self._call(info_func, fs_path))
        self.size: int | None = None if info.get("size") is None else int(info["size"])

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes from the current offset (one request at most)."""
        if self._rest:
            data, self._rest = self._rest[:n], self._rest[n:]
        else:
            start = self._offset
            end = start + max(n, self._request_size)
            if self.size is not None:
                end = min(self.size, end)
            if start >= end:
                return b""
            data = self._take_ahead(start)
            if data is None:
                data = self._read_range(start, end)
            if self.size is None and len(data) < end - start:
                self.size = start + len(data)
            self._read_ahead(start + len(data))
            if len(data) > n:
                data, self._rest = data[:n], data[n:]
        self._offset += len(data)
        return data

    def close(self) -> None:
        self._rest = b""
        if self._ahead is not None:
            self._ahead[2].cancel()
            self._ahead = None

    def _read_ahead(self, start: int) -> None:
        """Start the request for the range from ``start`` on the filesystem's loop (async filesystems, known size,
        not at the end); ``read`` takes its answer with ``_take_ahead``."""
        fs = self._fs
        if self.size is None or start >= self.size or not _is_async(fs):
            return
        end = min(self.size, start + self._request_size)
        self._ahead = (start, end, self._submit(fs._cat_file, self._fs_path, start=start, end=end))

    def _take_ahead(self, start: int) -> bytes | None:
        """The bytes read ahead from ``start`` on, once they arrive; None where there is no such read or it failed
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

    def _checked(self, data: bytes, start: int, end: int) -> bytes:
        """``data``, the response to a request for bytes ``start`` to ``end``, if its length is right (the rest of
        the object from ``start`` where the server ignored the range and sent all of it); else ``_ShortResponse``."""
        if len(data) != end - start and len(data) == self.size:  # a server that ignores Range sends it all
            return data[start:]  # the rest of it: later reads are served from it (``_rest``)
        if len(data) > end - start or (len(data) < end - start and self.size is not None):
            raise _ShortResponse(f"{len(data)} bytes came for the {end - start} asked for")
        return data

    def _read_range(self, start: int, end: int) -> bytes:
        fs = self._fs
        cat = fs._cat_file if _is_async(fs) else fs.cat_file

        def checked() -> bytes:
            return self._checked(self._call(cat, self._fs_path, start=start, end=end), start, end)

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


def _is_async(fs: Any) -> bool:
    return bool(getattr(fs, "async_impl", False)) and getattr(fs, "loop", None) is not None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FastInputError):
        return str(exc).split(": storage request failed: ", 1)[-1]
    return f"{type(exc).__name__}: {exc}"
