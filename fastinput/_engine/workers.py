"""A stage's worker threads: a resizable pool of daemon threads running one target, joined when the stage closes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fastinput._engine.arguments import MAX_PARALLELISM

logger = logging.getLogger("fastinput")

JOIN_TIMEOUT_SECONDS = 30.0
"""How long ``close()`` waits for one worker thread (a user function stuck forever is left behind, with a warning)."""


class WorkerPool:
    """A resizable group of daemon threads running ``target()`` for one stage.

    ``resize(n)`` starts threads or lets the surplus ones retire: a worker calls
    ``should_retire()`` between work items and returns when it says True.
    """

    def __init__(self, name: str, target: Callable[[], None], size: int) -> None:
        self._name = name
        self._target = target
        self._lock = threading.Lock()
        self._target_size = 0
        self._live = 0
        self._threads: list[threading.Thread] = []
        self._started = 0
        self._retired = threading.local()
        self.resize(size)

    def resize(self, size: int) -> None:
        size = min(size, MAX_PARALLELISM)  # a pool never grows past it, whatever a caller asks
        with self._lock:
            self._target_size = size
            missing = size - self._live
            self._threads = [t for t in self._threads if t.is_alive()]
            for _ in range(max(0, missing)):
                thread = threading.Thread(target=self._run, name=f"fastinput {self._name} #{self._started}",
                                          daemon=True)
                self._started += 1
                self._live += 1
                self._threads.append(thread)
                thread.start()

    @property
    def surplus(self) -> bool:
        """Whether the pool has shrunk below its live workers: one should retire at its next ``should_retire()``
        (read without the lock, so a worker deep in its work item can look often)."""
        return self._live > self._target_size

    def should_retire(self) -> bool:
        """Called by a worker between work items: True when the pool has shrunk and this worker should return."""
        if not self.surplus:  # unlocked fast path; the locked check below decides
            return False
        with self._lock:
            if self._live > self._target_size:
                self._live -= 1
                self._retired.flag = True
                return True
            return False

    def _run(self) -> None:
        self._retired.flag = False
        try:
            self._target()
        finally:
            if not self._retired.flag:  # ended by cancellation or end of input: free its place
                with self._lock:
                    self._live -= 1

    def native_ids(self) -> tuple[int, ...]:
        """The kernel's ids of the live worker threads (the tuner reads how long they waited for a core)."""
        with self._lock:
            return tuple(t.native_id for t in self._threads if t.native_id is not None and t.is_alive())

    def join(self) -> None:
        """Join every thread of the pool (call after cancelling the stage)."""
        me = threading.current_thread()
        with self._lock:  # ``resize`` adds a thread and starts it under the lock: never see one not yet started
            threads = list(self._threads)
        for thread in threads:
            if thread is me:
                continue
            thread.join(JOIN_TIMEOUT_SECONDS)
            if thread.is_alive():
                logger.warning("fastinput: thread %s did not stop within %.0f s; leaving it behind",
                               thread.name, JOIN_TIMEOUT_SECONDS)
