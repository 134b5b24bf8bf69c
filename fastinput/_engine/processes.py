"""Worker processes for stage functions that hold the GIL: ``map(fn, workers="process")`` and ``map_and_batch``.

The parallel engine (``ops/parallel.py``) keeps its worker threads, its ordering and its saved positions; with a
``RemoteChunks`` function, each worker thread hands its work item to a worker process and waits for the results.
So the number of processes busy at once is the stage's ``parallelism`` knob (the autotuner's, like any other),
and order, determinism and errors are exactly the threads' (the results come back in place, ``Failure``s
included).

A ``ProcessPool`` belongs to one stage iterator. Its processes are fresh interpreters (``python -m
fastinput._engine.process_worker``: never a fork of a process that runs TensorFlow or threads, and unlike
``multiprocessing``'s spawn it does not re-run the user's main script, so no ``if __name__ == "__main__"`` guard
is needed). Each receives the function once (cloudpickle: lambdas and closures travel by value) and then work
items, one at a time, over a socket; arrays travel through shared memory (``_engine/wire.py``).

A process that dies (a crash, a signal, ``os._exit``) is noticed as the end of its socket, never waited for: its
work item gets a ``WorkerProcessError`` naming the stage, the process and the signal, and the next item starts a
new process. For a map, where each element is its own output, the elements of the item are first run again one
at a time on new processes, so only the element that kills its process is lost, as only the element whose
function raises is in a thread. Closing the pool (the stage's close, a dropped pipeline, interpreter exit) kills
and reaps every process and unlinks every shared-memory segment its name prefix covers.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import traceback
import weakref
from dataclasses import dataclass
from typing import Any

from fastinput import errors
from fastinput._engine import shared_memory, wire
from fastinput._engine.buffer import Failure

STOP_TIMEOUT_SECONDS = 2.0
"""How long closing waits for a terminated process before it kills it."""
EXIT_GRACE_SECONDS = 1.0

RESTARTS_WHILE_LOADING = 3
"""Worker processes killed by a signal before they loaded the function (an OOM kill, a kill from outside) that a
pool replaces in a row; the work item waiting for one goes to the next. Past it, every item fails alike."""
"""How long a process whose socket ended may take to exit by itself before it is terminated."""

_POOL_SERIAL = itertools.count()
_LIVE_POOLS: weakref.WeakSet[ProcessPool] = weakref.WeakSet()


class WorkerTraceback(Exception):
    """The traceback of an exception raised in a worker process, as text: the ``__cause__`` of the exception the
    consumer receives (as ``concurrent.futures`` shows a process pool's errors)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class RemoteError:
    """An exception raised in a worker process, as it travels back: itself (pickled) where it can be, else its
    type and message; its traceback as text in both cases."""

    def __init__(self, exc: BaseException) -> None:
        self.traceback = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        self.message = str(exc)
        try:
            import cloudpickle

            self.pickled: bytes | None = cloudpickle.dumps(exc)
        except Exception:
            self.pickled = None

    def rebuild(self) -> BaseException:
        """The exception, its worker traceback as its cause; an ``errors.WorkerProcessError`` that names it when
        it cannot be unpickled here."""
        exc: BaseException | None = None
        if self.pickled is not None:
            try:
                exc = pickle.loads(self.pickled)
            except Exception:
                exc = None
        if exc is None:
            exc = errors.WorkerProcessError(f"{self.kind}: {self.message} (raised in a worker process; the "
                                            "exception could not be sent back as itself)")
        exc.__cause__ = WorkerTraceback(self.traceback)
        return exc


@dataclass(frozen=True)
class RemoteChunks:
    """A stage function to run in worker processes: ``task`` (cloudpickled) maps a work item to its results.

    ``per_element``: one result per input element (a map), so a crash is narrowed to its element; otherwise one
    result per work item (``map_and_batch``'s batch), where an input ``Failure`` in the item ends what is sent:
    the item's result is the worker's failure before it, else that input failure.
    """

    task: bytes
    per_element: bool


def pickled_function(op: str, fn: Any) -> bytes:
    """``fn`` as cloudpickle bytes, or an ``InvalidArgumentError`` that says why it cannot go to a worker process."""
    if not shared_memory.available():
        raise errors.InvalidArgumentError(f"{op}: workers=\"process\" needs POSIX shared memory, which this "
                                          "platform lacks; use workers=\"thread\"")
    import cloudpickle

    try:
        return cloudpickle.dumps(fn)
    except Exception as exc:
        raise errors.InvalidArgumentError(
            f"{op}: the function cannot be sent to worker processes (workers=\"process\"): pickling it with "
            f"cloudpickle failed: {type(exc).__name__}: {exc}. It may hold a lock, an open file, a socket or a "
            "TensorFlow object; use workers=\"thread\", or build such things inside the function") from exc


_STARTUP_VARIABLES = ("PYTHONPATH", "PYTHONSAFEPATH")
"""Set for a worker's start only (it restores them before it loads the function): see ``_worker_environment``."""


def _worker_environment() -> dict[str, str]:
    """This process's environment for a worker's start: this fastinput (wherever it was imported from) first on
    the path, and not the working folder's (``PYTHONSAFEPATH``), whatever is there."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    env["PYTHONSAFEPATH"] = "1"
    return env


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "closed its connection"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = {"SIGKILL": " (often the kernel's out-of-memory killer)", "SIGSEGV": " (a crash in native code)",
                "SIGABRT": " (an abort in native code)"}.get(name, "")
        return f"was killed by {name}{hint}"
    return f"exited with code {exitcode}"


class _WorkerDied(Exception):
    def __init__(self, pid: int, exitcode: int | None) -> None:
        super().__init__(pid, exitcode)
        self.pid = pid
        self.exitcode = exitcode


class _KilledWhileLoading(Exception):
    """A worker process was killed by a signal before it loaded the function: not the function's fault."""


class _Worker:
    """One worker process and the stage's end of its socket; runs one work item at a time."""

    def __init__(self, prefix: str, setup: dict[str, Any]) -> None:
        self.prefix = prefix
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fastinput._engine.process_worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=_worker_environment())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self._names = wire.Segments(prefix + "i")
        self.loaded: RemoteError | None | bool = False  # False until the worker says it loaded the function
        self.send({**setup, "prefix": prefix + "o"}, pickled=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, value: Any, pickled: bool = False) -> None:
        message = pickle.dumps(value, protocol=5) if pickled else wire.pack(value, self._names)[0]
        try:
            wire.send(self.sock, message)
        except OSError:
            raise self.died() from None

    def receive(self) -> Any:
        try:
            message = wire.receive(self.sock)
        except (EOFError, OSError):
            raise self.died() from None
        return wire.unpack(message)

    def wait_loaded(self) -> RemoteError | None:
        """None once the worker has loaded the function; the ``RemoteError`` if it could not."""
        if self.loaded is False:
            self.loaded = self.receive()
        return self.loaded  # type: ignore[return-value]

    def died(self) -> _WorkerDied:
        """The worker's end, once its socket has ended: reap it (ending it if it lingers: a signal of ours must not
        stand in for how it ended), unlink its segments."""
        try:
            self.process.wait(EXIT_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        self.stop()
        return _WorkerDied(self.pid, self.process.returncode)

    def shut_down(self) -> None:
        """Wake a thread waiting on the socket and end the process (from any thread)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.terminate()

    def reap(self) -> None:
        """Wait for the (shut down) process to end, killing it after ``STOP_TIMEOUT_SECONDS`` (from any thread)."""
        try:
            self.process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """``shut_down``, then reap the process and unlink what it left in shared memory (its owner thread only)."""
        self.shut_down()
        self.reap()
        self.sock.close()
        shared_memory.sweep(self.prefix)


class ProcessPool:
    """The worker processes of one stage: started as the stage's threads ask for them, at most ``size`` kept."""

    def __init__(self, stage: str, remote: RemoteChunks, size: int) -> None:
        self._stage = stage
        self._remote = remote
        self._prefix = f"fastinput-{os.getpid()}-{next(_POOL_SERIAL)}-"
        self._setup = {"sys_path": list(sys.path), "task": remote.task,
                       "environment": {name: os.environ.get(name) for name in _STARTUP_VARIABLES}}
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._size = size
        self._started = itertools.count()
        self._closed = False
        self._load_error: BaseException | None = None
        self._killed_while_loading = 0  # in a row (RESTARTS_WHILE_LOADING)
        _LIVE_POOLS.add(self)

    # -- running work items ------------------------------------------------------------------------------------
    def run(self, chunk: list[Any]) -> tuple[list[Any], int]:
        """The task's results on ``chunk`` (``Failure``s in place) and the CPU time the worker spent, in ns."""
        if not self._remote.per_element:
            end = next((i for i, item in enumerate(chunk) if type(item) is Failure), len(chunk))
            if end < len(chunk):
                results, cpu = self._run(chunk[:end]) if end else ([], 0)
                return (results if results and type(results[0]) is Failure else [chunk[end]]), cpu
        return self._run(chunk)

    def _run(self, chunk: list[Any]) -> tuple[list[Any], int]:
        try:
            return self._run_on_a_worker(chunk)
        except _WorkerDied as death:
            if self._closed:
                return [Failure(errors.CancelledError(f"{self._stage}: the iterator was closed"))], 0
            if self._remote.per_element and len(chunk) > 1:  # find the element that kills its process
                results: list[Any] = []
                cpu = 0
                for element in chunk:
                    more, spent = self._run([element])
                    results.extend(more)
                    cpu += spent
                return results, cpu
            error = errors.WorkerProcessError(
                f"{self._stage}: worker process {death.pid} {_how_it_ended(death.exitcode)} while running the "
                f"function on {self._what(chunk)}; that is lost, the elements after it follow from a new process",
                exitcode=death.exitcode)
            return [Failure(error)] * (len(chunk) if self._remote.per_element else 1), 0

    def _what(self, chunk: list[Any]) -> str:
        if self._remote.per_element:
            return "this element" if len(chunk) == 1 else f"{len(chunk)} elements"
        return f"a batch's {len(chunk)} elements"

    def _run_on_a_worker(self, chunk: list[Any]) -> tuple[list[Any], int]:
        worker = None
        while self._load_error is None:
            worker = self._acquire()
            try:
                self._load_error = self._load_failure(worker)
                if self._load_error is None:
                    worker.send(chunk)
                    results, failures, cpu = worker.receive()
                break
            except _KilledWhileLoading:  # the item never reached it: a new process takes it
                self._discard(worker)
                worker = None
            except BaseException:
                self._discard(worker)
                raise
        if self._load_error is not None:  # the function cannot run anywhere: every item fails alike
            if worker is not None:
                self._discard(worker)
            return [Failure(self._load_error)] * (len(chunk) if self._remote.per_element else 1), 0
        self._release(worker)
        for i, failure in failures.items():
            results[i] = Failure(failure.rebuild())
        return results, cpu

    def _load_failure(self, worker: _Worker) -> errors.WorkerProcessError | None:
        """None once ``worker`` has loaded the function; else the error every work item gets from now on."""
        try:
            remote = worker.wait_loaded()
        except _WorkerDied as death:
            with self._lock:
                killed = death.exitcode is not None and death.exitcode < 0 and not self._closed
                replace = killed and self._killed_while_loading < RESTARTS_WHILE_LOADING
                self._killed_while_loading += replace
            if replace:
                raise _KilledWhileLoading from death
            return errors.WorkerProcessError(
                f"{self._stage}: a worker process {_how_it_ended(death.exitcode)} before it loaded the function "
                "(its error output says why)", exitcode=death.exitcode)
        if remote is None:
            self._killed_while_loading = 0
            return None
        error = errors.WorkerProcessError(
            f"{self._stage}: a worker process could not load the function: {remote.kind}: {remote.message}. A "
            "function must be importable in a fresh Python process (its module on sys.path) or be defined in "
            "__main__ or a notebook (then it travels by value)")
        error.__cause__ = WorkerTraceback(remote.traceback)
        return error

    # -- the processes ------------------------------------------------------------------------------------------
    def _acquire(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise _WorkerDied(0, None)
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                prefix = f"{self._prefix}{next(self._started)}-"
        if worker is None:
            worker = _Worker(prefix, self._setup)
        with self._lock:
            self._busy.add(worker)
            closed = self._closed
        if closed:  # closed while it started: close() did not see it
            self._discard(worker)
            raise _WorkerDied(worker.pid, None)
        return worker

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            keep = not self._closed and len(self._idle) + len(self._busy) < self._size
            if keep:
                self._idle.append(worker)
        if not keep:
            worker.stop()

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.stop()

    def resize(self, size: int) -> None:
        """Keep at most ``size`` processes; idle ones beyond it stop now, busy ones when their item is done."""
        with self._lock:
            self._size = size
            surplus = self._idle[size:]
            del self._idle[size:]
        for worker in surplus:
            worker.stop()

    @property
    def pids(self) -> list[int]:
        """The live worker processes' ids (for tests and diagnostics)."""
        with self._lock:
            return [worker.pid for worker in (*self._idle, *self._busy)]

    def shut_down(self) -> None:
        """End every process and wake every thread waiting on one, without waiting; idempotent, from any thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = [*self._idle, *self._busy]
        for worker in workers:
            worker.shut_down()

    def close(self) -> None:
        """``shut_down``, then reap every process and unlink every segment of this pool; idempotent.

        A process busy on a work item is reaped here and by the thread that waits on it, whichever comes first."""
        self.shut_down()
        with self._lock:
            idle, busy = self._idle, list(self._busy)
            self._idle = []
        for worker in idle:
            worker.stop()
        for worker in busy:
            worker.reap()
        shared_memory.sweep(self._prefix)
        _LIVE_POOLS.discard(self)


@atexit.register
def _close_every_pool() -> None:
    """Interpreter exit: no worker process and no shared-memory segment outlives the program."""
    for pool in list(_LIVE_POOLS):
        pool.close()
