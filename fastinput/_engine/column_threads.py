"""Column work shared between a stage's thread and helper threads: calls that release the GIL, run side by side.

A stage that moves many columns in one step (the row shuffle's exchange: a C
walk over the numeric columns, arrow takes for the string ones) does each
column's work with the GIL released, so the columns can be moved by several
threads at once. ``ColumnThreads.run`` hands a list of such tasks to the
calling thread and up to ``threads - 1`` helpers, each taking the next task
until none is left, and returns when every task has ended (re-raising the
first error after that, so nothing still writes into the stage's buffers).
The helpers start at the first ``run`` with more than one task and stop at
``close``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor


class ColumnThreads:
    """Runs tasks on the calling thread and ``threads - 1`` helper threads (started when first needed)."""

    def __init__(self, name: str, threads: int) -> None:
        self._name = name
        self.threads = max(1, threads)
        self._helpers: ThreadPoolExecutor | None = None

    def run(self, tasks: Sequence[Callable[[], None]]) -> None:
        """Run every task once, the caller taking part; returns when all have ended, raising the first error."""
        helpers = min(self.threads, len(tasks)) - 1
        if helpers <= 0:
            for task in tasks:
                task()
            return
        if self._helpers is None:
            self._helpers = ThreadPoolExecutor(self.threads - 1, thread_name_prefix=f"fastinput {self._name}")
        pending = iter(tasks)
        lock = threading.Lock()
        errors: list[BaseException] = []

        def drain() -> None:
            while True:
                with lock:
                    task = next(pending, None)
                if task is None:
                    return
                try:
                    task()
                except BaseException as exc:  # kept for the caller: the other tasks still run to their end
                    errors.append(exc)

        futures = [self._helpers.submit(drain) for _ in range(helpers)]
        drain()
        for future in futures:
            future.result()
        if errors:
            raise errors[0]

    def close(self) -> None:
        """Stop the helper threads (waits for them); ``run`` may start new ones."""
        helpers, self._helpers = self._helpers, None
        if helpers is not None:
            helpers.shutdown(wait=True)
