"""Fixtures shared by the whole test suite.

The storage servers (moto's S3 server and the GCS emulator on loopback) live
in ``servers.py``; importing it also keeps cloud clients off the network.
Every test is also a leak check: it fails if it leaves a fastinput thread
running (closing, exhausting or dropping an iterator must stop them all).
"""

import gc
import os
import time

import pytest

from tests.helpers import fastinput_threads
from tests.servers import gcs_server, s3_server  # noqa: F401  (pytest fixtures)

os.environ.setdefault("FASTINPUT_TF_OPS", "off")
"""By default as_tf_dataset builds its native op (fastinput.tf_ops) in the background on first use, so which way a
test's strings crossed would depend on the tests before it. The suite cuts them with graph ops unless the caller
sets FASTINPUT_TF_OPS (``require``: every test with the op); the tests of packed strings run both ways
(``cut_strings_mode``)."""

JOIN_GRACE_SECONDS = 10.0
"""How long a test's threads may take to stop after it ends (a dropped iterator is closed by the reaper)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--no-skips", action="store_true",
                     help="fail the run if any test is skipped (.ci/run's main job: everything the tests need is "
                          "installed there, so a skip means something is missing)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    if session.config.getoption("--no-skips") and skipped and session.exitstatus == pytest.ExitCode.OK:
        reporter.write_line(f"--no-skips: {skipped} test(s) skipped (see the reasons above); failing the run", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported once (it takes seconds). Where it is not installed (.ci/run's job without TensorFlow),
    the tests that compare with it are skipped; the engine's own tests still run."""
    return pytest.importorskip("tensorflow", reason="TensorFlow is not installed (pip install \"fastinput[tf]\")")


@pytest.fixture(params=["off", "require"], ids=["graph ops", "native op"])
def cut_strings_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """as_tf_dataset cutting packed strings with graph ops, then with its native op (built here if it is not in the
    cache yet, failing the test if it cannot be)."""
    monkeypatch.setenv("FASTINPUT_TF_OPS", request.param)
    return request.param


@pytest.fixture(autouse=True)
def no_fastinput_thread_left(request: pytest.FixtureRequest):
    """Fail the test if a fastinput thread it started is still alive after it (after a grace period and a GC)."""
    before = set(fastinput_threads())
    yield
    left = set(fastinput_threads()) - before
    if not left:
        return
    gc.collect()  # an iterator in a reference cycle (say, a frame kept by pytest.raises) waits for the GC
    deadline = time.monotonic() + JOIN_GRACE_SECONDS
    while left and time.monotonic() < deadline:
        time.sleep(0.01)
        left = set(fastinput_threads()) - before
    if left:
        names = sorted(t.name for t in left)
        pytest.fail(f"{request.node.nodeid} left {len(names)} fastinput thread(s) running: {names}", pytrace=False)
