"""The engine's one cancellation concept: a ``StopSignal`` per pipeline and one per stage, the stage's a child.

Closing a pipeline sets the pipeline's signal, which sets every stage's;
closing one stage (an interleave dropping a finished file) sets only that
stage's. A stage made after its pipeline was stopped starts stopped, so a
stage opened while the pipeline closes cannot keep reading. Stages check
their own signal (``DatasetIterator.raise_if_cancelled``); blocking I/O
waits on it (``wait(timeout)``, as on a ``threading.Event``: remote reads
abandon a request or a retry pause as soon as it is set).

A signal is cheap to make, because every iterator makes one (a repeat makes
its input's stages anew at every epoch): a flag and its parent. A child is
set when it or an ancestor is (``is_set`` looks up the chain); only a signal
that is waited on gets a ``threading.Event``, which it registers with its
ancestors so that setting one of them wakes it.
"""

from __future__ import annotations

import threading
import weakref

_WAITERS_LOCK = threading.Lock()
"""Guards every signal's ``_event`` and ``_waiters`` (waiting is rare: one lock for all is enough)."""


class StopSignal:
    """A flag that, once set, stays set, and is set when its parent is (``child()`` makes a child).

    ``is_set()``, ``set()`` and ``wait(timeout)`` behave as ``threading.Event``'s do.
    """

    __slots__ = ("_flag", "_parent", "_event", "_waiters", "__weakref__")

    def __init__(self, parent: StopSignal | None = None) -> None:
        self._flag = False
        self._parent = parent
        self._event: threading.Event | None = None  # made by the first wait()
        self._waiters: weakref.WeakSet[StopSignal] | None = None  # descendants waiting, woken by set()

    def child(self) -> StopSignal:
        """A signal set when this one is (at once, if this one already is), and which may also be set on its own."""
        return StopSignal(self)

    def is_set(self) -> bool:
        if self._flag:
            return True
        parent = self._parent
        if parent is not None and parent.is_set():
            self._flag = True  # set for good: the chain need not be looked up again
            return True
        return False

    def set(self) -> None:
        self._flag = True
        if self._event is None and self._waiters is None:  # nobody has ever waited (checked again under the lock)
            return
        with _WAITERS_LOCK:
            events = [self._event, *(waiter._event for waiter in self._waiters or ())]
        for event in events:
            if event is not None:
                event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until this signal is set or ``timeout`` seconds pass; True if it is set."""
        with _WAITERS_LOCK:
            event = self._event
            if event is None:
                event = self._event = threading.Event()
                ancestor = self._parent
                while ancestor is not None:  # registered before is_set() below: a set() either sees it or comes first
                    if ancestor._waiters is None:
                        ancestor._waiters = weakref.WeakSet()
                    ancestor._waiters.add(self)
                    ancestor = ancestor._parent
        if self.is_set():
            event.set()
        return event.wait(timeout)
