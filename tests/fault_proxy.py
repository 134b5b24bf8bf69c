"""A fault-injecting HTTP reverse proxy on loopback, in front of a real storage server (moto's S3, the GCS emulator).

Requests pass through to the server unchanged, except those a schedule picks:
by default the *data reads* (requests with a ``Range`` header: the ranged GETs
readers make for each block; listings and metadata pass), the n-th of which
gets the n-th entry of the schedule:

- ``Fault("status", status=503)``: an S3-style XML error response instead of the data;
- ``Fault("reset", fraction=0.5)``: the headers and part of the body, then a TCP reset;
- ``Fault("truncate", fraction=0.5)``: the headers (full Content-Length) and part of the body, then a clean close;
- ``Fault("short", fraction=0.5)``: a well-formed response whose body is only part of the data asked for;
- ``Fault("stall", seconds=2.0)``: the response, after a delay (a slow server);
- ``Fault("down", seconds=1.0)``: the connection dropped and the proxy gone (connections refused), for
  ``seconds`` or, with ``seconds=None``, for good.

``None`` in a schedule passes that request through; ``then`` is what every
request past the schedule gets (``None``: pass through; a ``Fault``: a persistent fault).

Bounded: every socket has a timeout, stalls are capped at ``MAX_STALL_SECONDS``
and cut short by ``stop()``, the proxy answers at most ``max_requests``
requests (then 500s), and ``stop()`` closes every connection and joins the server thread.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import socket
import struct
import threading
import urllib.parse
from collections.abc import Callable, Sequence

MAX_STALL_SECONDS = 30.0
SOCKET_TIMEOUT_SECONDS = 10.0
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
_ERROR_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
               b"<Message>injected by the fault proxy</Message></Error>")


@dataclasses.dataclass(frozen=True)
class Fault:
    """One injected fault (see the module docstring for the kinds)."""

    kind: str
    status: int = 503
    fraction: float = 0.5
    seconds: float | None = 1.0

    def __post_init__(self) -> None:
        if self.kind not in {"status", "reset", "truncate", "short", "stall", "down"}:
            raise ValueError(f"unknown fault kind {self.kind!r}")


def data_reads(method: str, path: str, headers: http.client.HTTPMessage) -> bool:
    """The default request matcher: ranged reads of object data."""
    return "Range" in headers


class FaultProxy:
    """A threaded reverse proxy on 127.0.0.1 in front of ``upstream`` (``http://127.0.0.1:PORT``)."""

    def __init__(self, upstream: str, match: Callable[[str, str, http.client.HTTPMessage], bool] = data_reads,
                 max_requests: int = 10_000) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.hostname not in {"127.0.0.1", "localhost"}:
            raise ValueError(f"the fault proxy only fronts loopback servers, not {upstream!r}")
        self._upstream = (parsed.hostname, parsed.port)
        self._match = match
        self._max_requests = max_requests
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._schedule: list[Fault | None] = []
        self._then: Fault | None = None
        self._connections: set[socket.socket] = set()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0  # every request answered or faulted
        self.matched = 0  # requests the matcher picked
        self.faults: list[str] = []  # the kinds injected, in order
        self.ranges: list[str] = []  # the Range header of each matching request, in order
        self.port = 0
        self._up()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def schedule(self, faults: Sequence[Fault | None], then: Fault | None = None) -> None:
        """Fault the next matching requests as ``faults`` says, and every one after them as ``then``."""
        with self._lock:
            self._schedule = list(faults)
            self._then = then
            self.matched = 0
            self.faults = []
            self.ranges = []

    def clear(self) -> None:
        """Pass every request through from now on."""
        self.schedule([])

    def stop(self) -> None:
        """Close every connection, end every stall and join the server thread."""
        self._stopped.set()
        self._down()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the server coming and going ------------------------------------------------------------------------
    def _up(self) -> None:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        server = _Server(("127.0.0.1", self.port), Handler)
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="fault proxy", daemon=True)
        thread.start()
        with self._lock:
            self._server, self._thread = server, thread

    def _down(self) -> None:
        with self._lock:
            server, thread, self._server, self._thread = self._server, self._thread, None, None
            connections, self._connections = list(self._connections), set()
        if server is not None:
            server.shutdown()
            server.server_close()
        for conn in connections:
            _reset(conn)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=SOCKET_TIMEOUT_SECONDS)

    def _go_away(self, seconds: float | None) -> None:
        """The server vanishes (connections refused), and comes back after ``seconds`` unless None."""
        self._down()
        if seconds is not None and not self._stopped.wait(min(seconds, MAX_STALL_SECONDS)):
            self._up()

    # -- deciding each request's fate -----------------------------------------------------------------------
    def _fault_for(self, method: str, path: str, headers: http.client.HTTPMessage) -> Fault | None:
        with self._lock:
            self.requests += 1
            if self.requests > self._max_requests:
                return Fault("status", status=500)
            if not self._match(method, path, headers):
                return None
            index = self.matched
            self.matched += 1
            self.ranges.append(headers.get("Range", ""))
            fault = self._schedule[index] if index < len(self._schedule) else self._then
            if fault is not None:
                self.faults.append(fault.kind)
            return fault

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)


class _Server(http.server.ThreadingHTTPServer):
    """The listening side: one thread per connection, quiet about connections the proxy cut itself."""

    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    """One client connection (keep-alive): forwards each request, or injects the fault the proxy picks."""

    owner: FaultProxy
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_SECONDS

    def setup(self) -> None:
        super().setup()
        self.owner._track(self.connection, True)

    def finish(self) -> None:
        self.owner._track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the base class's name)
        pass

    def do_GET(self) -> None:
        self._proxy()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_GET

    def _proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = self.owner._fault_for(self.command, self.path, self.headers)
        if fault is not None and fault.kind == "down":
            self.close_connection = True
            self.owner._go_away(fault.seconds)
            return
        if fault is not None and fault.kind == "status":
            self._send(fault.status, {"Content-Type": "application/xml"},
                       _ERROR_BODY % (b"ServiceUnavailable" if fault.status == 503 else b"InternalError"))
            return
        if fault is not None and fault.kind == "stall":
            if self.owner._stopped.wait(min(fault.seconds or 0.0, MAX_STALL_SECONDS)):
                self.close_connection = True
                return
        status, headers, data = self._forward(body)
        if fault is None or fault.kind == "stall" or not data:
            self._send(status, headers, data)
            return
        cut = int(len(data) * fault.fraction)
        if fault.kind == "short":
            self._send(status, headers, data[:cut])
            return
        self._send(status, headers, data[:cut], content_length=len(data))  # reset or truncate: the rest never comes
        self.close_connection = True
        self.wfile.flush()
        if fault.kind == "reset":
            _reset(self.connection)
        else:
            self.connection.shutdown(socket.SHUT_WR)

    def _forward(self, body: bytes | None) -> tuple[int, dict[str, str], bytes]:
        upstream = http.client.HTTPConnection(*self.owner._upstream, timeout=SOCKET_TIMEOUT_SECONDS)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            dropped = _HOP_BY_HOP if self.command == "HEAD" else _HOP_BY_HOP | {"content-length"}  # HEAD: the size
            kept = {k: v for k, v in response.getheaders() if k.lower() not in dropped}
            return response.status, kept, data
        finally:
            upstream.close()

    def _send(self, status: int, headers: dict[str, str], data: bytes, content_length: int | None = None) -> None:
        self.send_response_only(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if not any(key.lower() == "content-length" for key in headers):
            self.send_header("Content-Length", str(len(data) if content_length is None else content_length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def _reset(conn: socket.socket) -> None:
    """Close ``conn`` with a TCP reset (SO_LINGER 0), as a crashed server or a middlebox does."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    except OSError:
        pass
