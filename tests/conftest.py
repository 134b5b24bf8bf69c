"""Fixtures shared by the whole test suite.

The storage servers (moto's S3 server and the GCS emulator on loopback) live
in ``servers.py``; importing it also keeps cloud clients off the network.
Every test is also a leak check: it fails if it leaves a fastinput thread
running (closing, exhausting or dropping an iterator must stop them all).
"""

import gc
import time

import pytest

from tests.helpers import fastinput_threads
from tests.servers import gcs_server, s3_server  # noqa: F401  (pytest fixtures)

JOIN_GRACE_SECONDS = 10.0
"""How long a test's threads may take to stop after it ends (a dropped iterator is closed by the reaper)."""


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported once (it takes seconds)."""
    import tensorflow

    return tensorflow


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
