"""Every way out of a pipeline ends the process promptly: each run in a child interpreter with a deadline.

Representative pipelines (parallel map, interleave, prefetch, map_and_batch,
shuffle + repeat) are left by a normal end, ``break``, an uncaught error in a
map function, ``del``, a reference cycle and ``gc.collect()``, Ctrl-C, and
interpreter exit with the iterator still open. A hang shows as the child
missing its deadline (a hang guard, not a timing).
"""

import signal
import subprocess

import pytest

from tests.helpers import ROOT, child_command, run_child

DEADLINE_SECONDS = 60
"""Generous on a loaded machine; a hang never meets it."""

CHILD = """
    import gc, sys, time
    import fastinput as fi
    from tests.helpers import wait_for_fastinput_threads

    pipeline, way_out = sys.argv[1], sys.argv[2]

    def work(x):
        time.sleep(0.0002)
        if way_out == "error in map" and x == 100:
            raise ValueError("bad element 100")
        return x

    n = 300 if way_out == "end" else 10**6
    make = {
        "parallel map": lambda: fi.Dataset.range(n).map(work, num_parallel_calls=3),
        "interleave": lambda: fi.Dataset.range(4).interleave(
            lambda i: fi.Dataset.range(n).map(work), cycle_length=3, num_parallel_calls=3),
        "prefetch": lambda: fi.Dataset.range(n).map(work).prefetch(4),
        "map_and_batch": lambda: fi.Dataset.range(n).map_and_batch(work, 8, num_parallel_calls=3).prefetch(2),
        "shuffle and repeat": lambda: (fi.Dataset.range(1000).shuffle(100).repeat().take(n)
                                       .map(work, num_parallel_calls=2).batch(4).prefetch(2)),
    }[pipeline]

    def no_threads_left():
        left = wait_for_fastinput_threads(20)
        assert not left, f"threads left: {[t.name for t in left]}"

    if way_out in ("end", "error in map"):
        for _ in make():
            pass
        no_threads_left()
    elif way_out == "break":
        for i, _ in enumerate(make()):
            if i == 50:
                break
        no_threads_left()
    elif way_out == "del":
        it = iter(make())
        next(it)
        del it
        no_threads_left()
    elif way_out == "cycle and gc.collect()":
        it = iter(make())
        next(it)
        cycle = [it]
        cycle.append(cycle)
        del it, cycle
        gc.collect()
        no_threads_left()
    elif way_out == "ctrl-c":
        it = iter(make())
        next(it)
        print("running", flush=True)
        for _ in it:
            pass
    elif way_out == "exit with the iterator open":
        it = iter(make())
        next(it)
        sys.exit(0)
    print("done")
"""

PIPELINES = ["parallel map", "interleave", "prefetch", "map_and_batch", "shuffle and repeat"]


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("way_out", ["end", "break", "del", "cycle and gc.collect()", "exit with the iterator open"])
def test_leaving_the_pipeline_ends_cleanly(pipeline, way_out):
    result = run_child(CHILD, pipeline, way_out, timeout=DEADLINE_SECONDS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("done") or way_out == "exit with the iterator open", result.stdout


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_an_uncaught_error_in_a_map_function_exits_with_it(pipeline):
    result = run_child(CHILD, pipeline, "error in map", timeout=DEADLINE_SECONDS)
    assert result.returncode == 1
    assert "ValueError: bad element 100" in result.stderr


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_ctrl_c_mid_iteration_exits(pipeline):
    command, env = child_command(CHILD, pipeline, "ctrl-c")
    with subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as child:
        try:
            assert child.stdout.readline().strip() == "running"
            child.send_signal(signal.SIGINT)
            _, stderr = child.communicate(timeout=DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            pytest.fail(f"the child did not exit within {DEADLINE_SECONDS} s of Ctrl-C")
    assert child.returncode != 0
    assert "KeyboardInterrupt" in stderr
