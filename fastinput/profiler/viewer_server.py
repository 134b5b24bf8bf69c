"""``fastinput-trace view trace.json``: open a profiler trace in fastinput's trace viewer.

The viewer (``tools/trace_viewer``) is a static page, but a page opened from ``file://`` may not fetch
a local trace file, so this command serves the page and the one trace file over HTTP on 127.0.0.1
(stdlib ``http.server`` in a thread, an ephemeral port unless ``--port`` is given), prints the URL,
opens a browser unless ``--no-browser``, and serves until Ctrl-C.

Example::

    $ fastinput-trace view /tmp/trace.json --no-browser
    Serving /tmp/trace.json
    http://127.0.0.1:40613/index.html?trace=/trace.json
"""

from __future__ import annotations

import argparse
import functools
import http.server
import pathlib
import sys
import threading
import urllib.parse
import webbrowser
from collections.abc import Sequence

TRACE_URL_PATH = "/trace.json"


def viewer_dir() -> pathlib.Path:
    """The folder holding the viewer's ``index.html``: shipped in the package, or the checkout's ``tools/``."""
    here = pathlib.Path(__file__).resolve().parent
    candidates = (here / "trace_viewer", here.parents[1] / "tools" / "trace_viewer")
    for candidate in candidates:
        if (candidate / "index.html").is_file():
            return candidate
    raise FileNotFoundError(
        f"fastinput's trace viewer page was not found in {' or '.join(map(str, candidates))}"
    )


class _ViewerRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the viewer folder, plus the trace file at ``/trace.json``; never caches, logs nothing."""

    def __init__(self, *args, trace_file: pathlib.Path, **kwargs) -> None:
        self.trace_file = trace_file  # set before super().__init__, which handles the request
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        if urllib.parse.urlsplit(path).path == TRACE_URL_PATH:
            return str(self.trace_file)
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: the terminal shows the URL, not a line per request."""


def serve(trace_file: str | pathlib.Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Starts serving the viewer and ``trace_file`` on 127.0.0.1 in a daemon thread.

    Returns the server (stop it with ``shutdown()`` then ``server_close()``) and the URL that opens
    the trace. ``port=0`` picks a free port.
    """
    trace = pathlib.Path(trace_file).resolve()
    if not trace.is_file():
        raise FileNotFoundError(f"no such trace file: {trace}")
    handler = functools.partial(_ViewerRequestHandler, directory=str(viewer_dir()), trace_file=trace)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="fastinput-trace-viewer", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/index.html?trace={TRACE_URL_PATH}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastinput-trace`` command."""
    parser = argparse.ArgumentParser(
        prog="fastinput-trace", description="Tools for fastinput profiler traces."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    view = commands.add_parser("view", help="open a trace file in fastinput's trace viewer")
    view.add_argument("trace", type=pathlib.Path, help="a Chrome Trace Event Format file (.json or .json.gz)")
    view.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    view.add_argument("--no-browser", action="store_true", help="only print the URL; do not open a browser")
    args = parser.parse_args(argv)
    if not args.trace.is_file():
        view.error(f"no such trace file: {args.trace}")  # view's usage, not the top level's
    server, url = serve(args.trace, args.port)
    port = server.server_port
    print(f"Serving {args.trace}\n{url}\n"
          f"On a remote machine, forward the port first (ssh -L {port}:127.0.0.1:{port} HOST), then open the URL "
          "in your local browser.\nPress Ctrl-C to stop.", flush=True)
    if not args.no_browser and not webbrowser.open(url):
        print("No browser could be opened here: open the URL above in one.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
