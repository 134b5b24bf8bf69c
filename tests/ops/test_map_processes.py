"""``map(fn, workers="process")`` and ``map_and_batch(..., workers="process")``: the same elements, errors and saved
states as threads, past the GIL; a worker that dies is an error in place, never a hang; nothing is left behind
(no process, no shared-memory segment) however the iterator ends."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

import numpy as np
import pytest

import fastinput as fi
from fastinput import errors
from fastinput._engine import shared_memory
from tests.helpers import elements_and_errors

MINE = f"fastinput-{os.getpid()}-"


def segments_left() -> list[str]:
    return [name for name in os.listdir(shared_memory.SHM_FOLDER) if name.startswith(MINE)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not reaped) counts as gone only once reaped: we reap our children
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:  # gone between the two looks (ENOENT on open, ESRCH on read)
        return False


def worker_pids(it: fi.Iterator) -> list[int]:
    return [pid for stage in it.stats() for pid in stage.worker_pids]


@pytest.fixture(autouse=True)
def nothing_left_behind():
    yield
    assert segments_left() == []


def outcomes(ds: fi.Dataset) -> list:
    """Each element, or ``("error", type, message)`` for each error, to the end."""
    return elements_and_errors(ds, lambda exc: ("error", type(exc), str(exc)))


def same(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, tuple) and x and x[0] == "error":
            if x != y:
                return False
        elif not _equal(x, y):
            return False
    return True


def _equal(x, y) -> bool:
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    if isinstance(x, tuple):
        return len(x) == len(y) and all(_equal(a, b) for a, b in zip(x, y))
    if isinstance(x, fi.SparseArray):
        return all(np.array_equal(getattr(x, f), getattr(y, f)) for f in ("indices", "values", "dense_shape"))
    return type(x) is type(y) and np.array_equal(x, y)


# -- the same elements as threads ----------------------------------------------------------------------------------


def nested(x):
    return {"small": x * 2, "large": np.full((64, 64), x, np.float32), "text": b"r%d" % x,
            "pair": (np.int32(x), np.arange(x % 3, dtype=np.int64))}


def fails_at_3_and_7(x):
    if x in (3, 7):
        raise ValueError(f"bad element {x}")
    return x + 100


@pytest.mark.parametrize("make", [
    lambda w: fi.Dataset.range(40).map(nested, num_parallel_calls=2, workers=w),
    lambda w: fi.Dataset.range(40).map(lambda x: (x, -x), workers=w),  # sequential map: one process
    lambda w: fi.Dataset.range(12).map(fails_at_3_and_7, num_parallel_calls=fi.AUTOTUNE, workers=w),
    lambda w: fi.Dataset.range(30).map(nested, num_parallel_calls=2, workers=w).batch(8),  # map -> batch fused
    lambda w: fi.Dataset.range(30).map_and_batch(nested, 8, num_parallel_calls=2, workers=w),
    lambda w: fi.Dataset.range(30).map_and_batch(fails_at_3_and_7, 4, drop_remainder=True, workers=w),
    lambda w: fi.Dataset.range(10).map(fails_at_3_and_7).map_and_batch(lambda x: x * 2, 3, workers=w),
    lambda w: fi.Dataset.range(20).map(lambda x: fi.SparseArray(np.array([[x % 4]]), np.array([x]), (4,)),
                                      num_parallel_calls=2, workers=w),
], ids=["nested", "sequential", "errors", "map-batch", "map_and_batch", "batch-errors", "input-errors", "sparse"])
def test_processes_give_exactly_what_threads_give(make) -> None:
    threads, processes = outcomes(make("thread")), outcomes(make("process"))
    assert len(processes) > 1
    assert same(processes, threads)


def test_large_outputs_arrive_through_shared_memory_as_writable_arrays() -> None:
    ds = fi.Dataset.range(6).map_and_batch(lambda x: np.full((32, 32, 3), x, np.float32), 3, workers="process")
    batches = list(ds)
    assert [b[:, 0, 0, 0].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5]]
    for batch in batches:
        owner = batch
        while isinstance(owner, np.ndarray) and owner.base is not None:
            owner = owner.base
        assert isinstance(owner, memoryview)  # a view of the mapped segment, not a copy through the pipe
        assert batch.flags.writeable and batch.ctypes.data % 64 == 0
        batch += 1


def test_a_function_with_out_fills_its_row_of_the_shared_batch() -> None:
    def fill(x, out=None):
        if out is None:  # the first row: its output's shape and dtype size the batch
            return np.full((128, 128), x, np.float64)
        out[...] = x
        return out

    batches = list(fi.Dataset.range(4).map_and_batch(fill, 2, output_signature=fi.TensorSpec((128, 128), np.float64),
                                                     workers="process"))
    assert [b[:, 0, 0].tolist() for b in batches] == [[0, 1], [2, 3]]


def test_unordered_processes_give_every_element() -> None:
    ds = fi.Dataset.range(200).map(lambda x: x * 3, num_parallel_calls=2, deterministic=False, workers="process")
    assert Counter(int(x) for x in ds) == Counter(3 * x for x in range(200))


def test_closures_and_lambdas_travel_by_value() -> None:
    offset = np.arange(4)
    ds = fi.Dataset.range(3).map(lambda x: offset + x, workers="process")
    assert [v.tolist() for v in ds] == [[0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5]]


# -- errors --------------------------------------------------------------------------------------------------------


def test_an_error_in_a_worker_carries_its_traceback() -> None:
    it = iter(fi.Dataset.range(6).map(fails_at_3_and_7, num_parallel_calls=2, workers="process"))
    assert [int(next(it)) for _ in range(3)] == [100, 101, 102]
    with pytest.raises(ValueError, match="bad element 3") as raised:
        next(it)
    cause = raised.value.__cause__
    assert "Traceback" in str(cause) and "fails_at_3_and_7" in str(cause) and 'raise ValueError' in str(cause)
    assert [int(x) for x in it] == [104, 105]


class Unpicklable(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")

    def __reduce__(self):
        raise TypeError("this exception cannot be pickled")


def raises_unpicklable(x):
    if x == 1:
        raise Unpicklable(1, 2)
    return x


def test_an_exception_that_cannot_travel_is_named() -> None:
    got = outcomes(fi.Dataset.range(3).map(raises_unpicklable, workers="process"))
    assert got[0] == 0 and got[2] == 2
    assert got[1][1] is errors.WorkerProcessError and "Unpicklable: 1/2" in got[1][2]


def test_a_function_that_cannot_be_pickled_is_refused_while_building() -> None:
    lock = threading.Lock()
    with pytest.raises(errors.InvalidArgumentError, match='cannot be sent to worker processes.*workers="thread"'):
        fi.Dataset.range(3).map(lambda x: (lock, x)[1], workers="process")
    with pytest.raises(errors.InvalidArgumentError, match='workers must be "thread" or "process"'):
        fi.Dataset.range(3).map(lambda x: x, workers="processes")


def test_a_function_the_workers_cannot_load_is_one_clear_error(tmp_path) -> None:
    import types

    module = types.ModuleType("only_in_this_process")
    exec("def double(x):\n    return x * 2\n", module.__dict__)
    sys.modules["only_in_this_process"] = module  # importable here, not in a fresh interpreter
    try:
        got = outcomes(fi.Dataset.range(2).map(module.double, workers="process",
                                               output_signature=fi.TensorSpec((), np.int64)))
    finally:
        del sys.modules["only_in_this_process"]
    assert [g[1] for g in got] == [errors.WorkerProcessError] * 2
    assert "could not load the function" in got[0][2] and "only_in_this_process" in got[0][2]


# -- a worker that dies --------------------------------------------------------------------------------------------


def dies_at_4(how: str):
    def fn(x):
        if x == 4:
            if how == "SIGKILL":
                os.kill(os.getpid(), signal.SIGKILL)
            elif how == "SIGSEGV":
                ctypes.string_at(0)
            else:
                os._exit(3)
        return x
    return fn


@pytest.mark.parametrize("how, says", [("SIGKILL", "killed by SIGKILL"), ("SIGSEGV", "killed by SIGSEGV"),
                                       ("exit", "exited with code 3")])
def test_a_dying_worker_is_an_error_at_its_element_and_the_rest_follow(how, says) -> None:
    ds = fi.Dataset.range(10).map(dies_at_4(how), num_parallel_calls=2, workers="process",
                                  output_signature=fi.TensorSpec((), np.int64))
    got = outcomes(ds)
    assert got[:4] == [0, 1, 2, 3] and got[5:] == [5, 6, 7, 8, 9]
    kind, message = got[4][1], got[4][2]
    assert kind is errors.WorkerProcessError and says in message and "map(fn" in message


def test_a_dying_worker_in_map_and_batch_loses_only_its_batch() -> None:
    ds = fi.Dataset.range(10).map_and_batch(dies_at_4("SIGKILL"), 3, workers="process",
                                            output_signature=fi.TensorSpec((), np.int64))
    got = outcomes(ds)
    assert [g.tolist() for g in got[:1] + got[2:]] == [[0, 1, 2], [6, 7, 8], [9]]
    assert got[1][1] is errors.WorkerProcessError and "a batch's 3 elements" in got[1][2]


def sleeps(x):
    time.sleep(0.05)
    return x


def test_a_worker_killed_from_outside_is_an_error_not_a_hang() -> None:
    it = iter(fi.Dataset.range(200).map(sleeps, num_parallel_calls=2, workers="process"))
    next(it)
    for pid in worker_pids(it):
        os.kill(pid, signal.SIGKILL)
    got, error = [], None
    for _ in range(400):  # each killed worker's element is an error in place: more calls than elements
        try:
            got.append(int(next(it)))
        except errors.WorkerProcessError as exc:
            error = exc
        except StopIteration:
            break
    assert error is not None and "SIGKILL" in str(error)
    assert got[-1] == 199 and len(got) >= 190  # the elements after it follow
    it.close()


class SlowToLoad:
    """Adds one; unpickling it (in the worker, as it loads the function) takes a while: a window to kill a process
    that has not loaded it yet."""

    def __init__(self) -> None:
        self.offset = 1

    def __call__(self, x):
        return x + self.offset

    def __setstate__(self, state: dict) -> None:
        time.sleep(1.0)
        self.__dict__.update(state)


def test_a_worker_killed_before_it_loaded_the_function_is_replaced_and_nothing_is_lost() -> None:
    """An OOM kill while a process starts is not the function's fault: the item waiting goes to a new process."""
    it = iter(fi.Dataset.range(20).map(SlowToLoad(), num_parallel_calls=1, workers="process"))
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(int(x) for x in it))
    reader.start()
    deadline = time.monotonic() + 60
    while not worker_pids(it) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(worker_pids(it)[0], signal.SIGKILL)
    reader.join(120)
    assert got == list(range(1, 21))
    it.close()


# -- nothing left behind -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["close", "exhaust", "break", "drop"])
def test_every_process_and_segment_goes_however_the_iterator_ends(end) -> None:
    ds = fi.Dataset.range(50).map(lambda x: np.full((100, 100), x), num_parallel_calls=2, workers="process")
    it = iter(ds)
    next(it)
    pids = worker_pids(it)
    assert pids
    if end == "close":
        it.close()
    elif end == "exhaust":
        list(it)
        it.close()
    elif end == "break":
        for i, _ in enumerate(it):
            if i == 3:
                break
        it.close()
    else:
        del it
        import gc
        gc.collect()
    deadline = time.monotonic() + 10  # a dropped iterator is closed on the reaper thread: wait for it
    while (any(alive(pid) for pid in pids) or segments_left()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)
    assert segments_left() == []


def test_interpreter_exit_stops_the_workers_and_unlinks_their_segments(tmp_path) -> None:
    script = textwrap.dedent("""
        import numpy as np, fastinput as fi
        it = iter(fi.Dataset.range(100).map(lambda x: np.full((100, 100), x), num_parallel_calls=2,
                                            workers="process"))
        next(it)
        print(*[pid for stage in it.stats() for pid in stage.worker_pids], flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert done.returncode == 0, done.stderr
    pids = [int(p) for p in done.stdout.split()]
    assert pids
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)
    assert not [name for name in os.listdir(shared_memory.SHM_FOLDER) if name.startswith("fastinput-")
                and name.split("-")[1] not in {str(os.getpid())} and not alive(int(name.split("-")[1]))]


# -- tuning, tracing, saving ---------------------------------------------------------------------------------------


def test_the_process_count_is_a_knob_within_the_cpus() -> None:
    it = iter(fi.Dataset.range(100).map(lambda x: x, num_parallel_calls=fi.AUTOTUNE, workers="process"))
    next(it)
    [knob] = [k for k in it.knobs() if k.name == "parallelism"]
    assert knob.autotuned and knob.maximum == max(2, fi.options.available_cpus())
    assert 'workers="process"' in knob.stage
    knob.set(1)
    assert len(list(it)) == 99
    it.close()


def test_a_saved_state_resumes_where_it_stood() -> None:
    ds = fi.Dataset.range(30).map(lambda x: x * 2, num_parallel_calls=2, workers="process").batch(4)
    it = iter(ds)
    [next(it) for _ in range(3)]
    state = it.get_state()
    rest = [b.tolist() for b in it]
    it.close()
    resumed = iter(ds)
    resumed.set_state(state)
    assert [b.tolist() for b in resumed] == rest
    resumed.close()


def test_the_trace_shows_the_process_stage_and_its_workers(tmp_path) -> None:
    import json

    path = tmp_path / "trace.json"
    ds = fi.Dataset.range(400).map(tokenize_like, num_parallel_calls=2, workers="process").batch(8)
    ds.profile(steps=20, warmup=2, trace_path=str(path), print_report=False)
    text = path.read_text()
    trace = json.loads(text)
    assert 'workers=\\"process\\"' in text
    pids = [pid for stage in _summaries(trace) for pid in stage.get("worker_pids", [])]
    assert len(pids) >= 1


def tokenize_like(x):
    return sum(ord(c) for c in str(int(x)) * 50)


def _summaries(trace) -> list[dict]:
    """Every stage summary recorded in a trace file (wherever the format keeps them)."""
    found = []

    def visit(value):
        if isinstance(value, dict):
            if "worker_pids" in value:
                found.append(value)
            for v in value.values():
                visit(v)
        elif isinstance(value, list):
            for v in value:
                visit(v)

    visit(trace)
    return found


def test_a_worker_that_dies_before_loading_the_function_is_one_clear_error(monkeypatch, tmp_path) -> None:
    from fastinput._engine import processes

    broken = tmp_path / "fastinput"  # a fastinput that cannot be imported, first on the workers' path
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('this fastinput is broken on purpose')\n")
    monkeypatch.setattr(processes, "_worker_environment", lambda: {**os.environ, "PYTHONPATH": str(tmp_path),
                                                                   "PYTHONSAFEPATH": "1"})
    got = outcomes(fi.Dataset.range(3).map(lambda x: x, num_parallel_calls=2, workers="process",
                                           output_signature=fi.TensorSpec((), np.int64)))
    assert [g[1] for g in got] == [errors.WorkerProcessError] * 3
    assert "exited with code 1 before it loaded the function" in got[0][2]


def test_a_worker_whose_stage_closes_while_it_answers_exits_quietly(capfd) -> None:
    """The stage shuts a worker's socket down and terminates it; a worker that finishes its item in between finds
    the socket gone when it answers. It exits without a traceback on the user's stderr and unlinks the shared
    memory it had just filled for the answer (the fixture checks none is left)."""
    import cloudpickle

    from fastinput._engine.processes import _Worker

    def slow_large(chunk):
        time.sleep(0.5)
        return [np.ones(1 << 20) for _ in chunk]

    worker = _Worker(f"{MINE}quiet-", {"sys_path": list(sys.path), "task": cloudpickle.dumps(slow_large),
                                        "environment": {}})
    try:
        assert worker.wait_loaded() is None
        worker.send([1, 2])
        worker.sock.shutdown(socket.SHUT_RDWR)  # shut_down without its SIGTERM: the race, made certain
        assert worker.process.wait(30) == 0
    finally:
        worker.stop()
    assert "Traceback" not in capfd.readouterr().err
