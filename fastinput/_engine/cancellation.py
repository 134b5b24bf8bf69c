"""The engine's one cancellation concept: a ``StopSignal`` per pipeline and one per stage, the stage's a child.

Closing a pipeline sets the pipeline's signal, which sets every stage's;
closing one stage (an interleave dropping a finished file) sets only that
stage's. A stage made after its pipeline was stopped starts stopped, so a
stage opened while the pipeline closes cannot keep reading. Stages check
their own signal (``DatasetIterator.raise_if_cancelled``); blocking I/O
waits on it (it is a ``threading.Event``: remote reads abandon a request or a
retry pause as soon as it is set).
"""

from __future__ import annotations

import threading
import weakref


class StopSignal(threading.Event):
    """An ``Event`` that, once set, stays set and sets its children (made with ``child()``), now or when made."""

    def __init__(self) -> None:
        super().__init__()
        self._children: weakref.WeakSet[StopSignal] = weakref.WeakSet()
        self._children_lock = threading.Lock()

    def child(self) -> StopSignal:
        """A signal set when this one is (at once, if this one already is), and which may also be set on its own."""
        child = StopSignal()
        with self._children_lock:
            self._children.add(child)
        if self.is_set():  # set() lists the children after setting itself: either it sees the child or we see it set
            child.set()
        return child

    def set(self) -> None:
        super().set()
        with self._children_lock:
            children = list(self._children)
        for child in children:
            child.set()
