"""The main program of a worker process (``python -m fastinput._engine.process_worker FD``; see ``processes.py``).

It reads its setup from the socket ``FD`` (the stage's ``sys.path``, the task, its segment name prefix), loads the
task and says whether it could, then answers work items one at a time until the socket ends: the task's results,
the exceptions among them as ``RemoteError``s, and the CPU time spent. Large arrays go back through shared memory;
the arrays fastinput allocates here (``map_and_batch``'s batches) are allocated there in the first place.

A segment it sent stays named until the stage maps it; the stage has mapped every earlier one when it sends the
next item, so when the socket ends (the stage is gone) the worker unlinks what it sent last.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import sys
import time
from typing import Any

from fastinput._engine import memory, shared_memory, wire
from fastinput._engine.buffer import Failure
from fastinput._engine.processes import RemoteError
from fastinput.errors import InvalidArgumentError


def _serve(sock: socket.socket) -> None:
    setup = pickle.loads(wire.receive(sock))
    sys.path[:] = setup["sys_path"]  # the stage's: its function's modules import here as they did there
    for variable, value in setup["environment"].items():  # as the stage has them, for the function's own children
        if value is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = value
    names = wire.Segments(setup["prefix"])
    shared = wire.SharedArrays(names)
    try:
        import cloudpickle

        task = cloudpickle.loads(setup["task"])
    except BaseException as exc:
        wire.send(sock, wire.pack(RemoteError(exc), names)[0])
        return
    wire.send(sock, wire.pack(None, names)[0])
    memory.allocate_large_with(shared.empty)
    sent: list[str] = []
    try:
        while True:
            try:
                message = wire.receive(sock)
            except (EOFError, OSError):
                return
            sent = []  # the stage has mapped what was sent before
            chunk = wire.unpack(message)
            start = time.process_time_ns()
            results = task(chunk)
            cpu = time.process_time_ns() - start
            failures = {i: RemoteError(result.exc) for i, result in enumerate(results) if type(result) is Failure}
            for i in failures:
                results[i] = None
            reply, sent = _pack_reply(results, failures, cpu, names, shared)
            chunk = results = None
            wire.send(sock, reply)
    finally:
        for name in sent:
            shared_memory.unlink(name)


def _pack_reply(results: list[Any], failures: dict[int, RemoteError], cpu: int, names: wire.Segments,
                shared: wire.SharedArrays) -> tuple[bytes, list[str]]:
    """The reply; a result that cannot be pickled becomes a failure at its place, saying why."""
    try:
        reply, sent = wire.pack((results, failures, cpu), names, shared)
    except Exception:
        for i, result in enumerate(results):
            try:
                pickle.dumps(result, protocol=5)
            except Exception as exc:
                results[i] = None
                failures[i] = RemoteError(InvalidArgumentError(
                    f"the function's output cannot be sent back from the worker process: pickling it failed: "
                    f"{type(exc).__name__}: {exc}"))
        reply, sent = wire.pack((results, failures, cpu), names, shared)
    shared.forget(sent)
    return reply, sent


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the stage handles it
    with socket.socket(fileno=int(sys.argv[1])) as sock:
        try:
            _serve(sock)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the stage closed while this worker was answering: no one is left to tell (what it sent is unlinked)


if __name__ == "__main__":
    main()
