"""The engine's one buffer primitive: items (elements, or a stage's own work items) and the errors among them.

Every stage that holds items for a consumer (prefetch, parallel map, interleave,
the CSV file readers) holds them in an ``ItemQueue``: a FIFO where an error
travels as a ``Failure`` at the position it happened, and the consumer takes
"up to n items, stopping before a failure", so the items before an error are
delivered first and the error comes alone, in its place. The queue keeps the
stage's ``buffer_occupancy`` metric and its trace counter in step with what it
holds, so no stage counts by hand (a stage whose buffer is not a queue of
items, parallel map's result slots, records its level with ``record_occupancy``).

``ItemQueue`` takes no lock: it lives under its stage's condition. ``Channel``
adds one: a bounded queue from one producer thread to one consumer (prefetch,
a file read ahead), with waiting, the end of the input, and cancellation.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from fastinput import errors
from fastinput._engine import instrument
from fastinput._engine.metrics import StageMetrics


class Failure:
    """An exception travelling in a buffer at the position where it happened."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def record_occupancy(metrics: StageMetrics, change: int) -> None:
    """Add ``change`` to the elements a stage buffers and sample its trace counter: the one place buffer levels
    are recorded."""
    metrics.buffer_occupancy += change
    if instrument.ACTIVE is not None:  # one attribute read while nobody traces
        instrument.buffer_level(metrics.name, metrics.buffer_occupancy)


def take_until_failure(items: deque[Any], n: int) -> list[Any]:
    """Up to ``n`` items from the head of ``items``, stopping before a ``Failure``; a failure at the head comes
    alone (``[failure]``), so a caller raises it only once it has handed out everything before it."""
    if items and type(items[0]) is Failure:
        return [items.popleft()]
    if len(items) <= n and not any(type(item) is Failure for item in items):
        out = list(items)
        items.clear()
        return out
    out = []
    while items and len(out) < n and type(items[0]) is not Failure:
        out.append(items.popleft())
    return out


class ItemQueue:
    """A FIFO of items and ``Failure``\\ s, counted into a stage's metrics (``buffer_occupancy``, trace counter).

    Not thread-safe by itself: the owning stage calls it with its condition held.
    """

    __slots__ = ("_items", "_failures", "_metrics")

    def __init__(self, metrics: StageMetrics | None = None) -> None:
        self._items: deque[Any] = deque()
        self._failures = 0
        self._metrics = metrics

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def has_failure(self) -> bool:
        """Whether a failure is buffered anywhere (fast paths that take whole rounds need none)."""
        return self._failures > 0

    @property
    def head_is_failure(self) -> bool:
        return bool(self._items) and type(self._items[0]) is Failure

    def put(self, items: Iterable[Any]) -> None:
        """Append items (elements, or ``Failure``\\ s at their positions)."""
        items = items if isinstance(items, list) else list(items)
        self._items.extend(items)
        self._failures += sum(1 for item in items if type(item) is Failure)
        self._count(len(items))

    def take(self, n: int) -> list[Any]:
        """Up to ``n`` items, stopping before a failure; a failure at the head comes alone (see
        ``take_until_failure``). Without a failure buffered, nothing is scanned."""
        if not self._failures:
            return self.take_exactly(min(n, len(self._items)))
        out = take_until_failure(self._items, n)
        if out and type(out[0]) is Failure:
            self._failures -= 1
        self._count(-len(out))
        return out

    def pop(self) -> Any:
        """The head item, a ``Failure`` too: ``take(1)``'s one item, without making a list (a per-element consumer)."""
        item = self._items.popleft()
        if type(item) is Failure:
            self._failures -= 1
        if self._metrics is not None:
            record_occupancy(self._metrics, -1)
        return item

    def take_exactly(self, n: int) -> list[Any]:
        """The first ``n`` items, which the caller knows hold no failure (``has_failure`` is False)."""
        items = self._items
        if n == len(items):
            out = list(items)
            items.clear()
        else:
            popleft = items.popleft
            out = [popleft() for _ in range(n)]
        self._count(-n)
        return out

    def clear(self) -> None:
        self._count(-len(self._items))
        self._items.clear()
        self._failures = 0

    def _count(self, change: int) -> None:
        if self._metrics is not None and change:
            record_occupancy(self._metrics, change)


class Channel:
    """A bounded ``ItemQueue`` from one producer thread to one consumer, with its own condition.

    The producer waits for room (``wait_for_room``), puts items and finally
    calls ``finish``; the consumer ``take``\\ s, waiting while it is empty.
    ``cancel`` wakes both for good: the producer's wait returns None, the
    consumer's take raises ``CancelledError``. ``capacity`` may change while
    it runs (a knob).
    """

    def __init__(self, name: str, capacity: int, metrics: StageMetrics | None = None) -> None:
        self.name = name
        self._capacity = capacity
        self._queue = ItemQueue(metrics)
        self._cond = threading.Condition(threading.Lock())
        self._finished = False
        self._cancelled = False

    @property
    def capacity(self) -> int:
        return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        with self._cond:
            self._capacity = value
            self._cond.notify_all()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def wait_for_room(self) -> int | None:
        """Producer: block while the channel is full; the number of items it has room for, None once cancelled."""
        with self._cond:
            while not self._cancelled and len(self._queue) >= self._capacity:
                self._cond.wait()
            return None if self._cancelled else self._capacity - len(self._queue)

    def put(self, items: Iterable[Any]) -> None:
        """Producer: hand items (and ``Failure``\\ s in place) to the consumer."""
        with self._cond:
            self._queue.put(items)
            self._cond.notify_all()

    def finish(self) -> None:
        """Producer: nothing more will come."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def take(self, n: int, on_wait: Callable[[int], None] | None = None) -> list[Any]:
        """Consumer: up to ``n`` items, stopping before a failure (a failure at the head comes alone); waits while
        the channel is empty; ``[]`` at the end. ``on_wait(ns)`` is told how long it waited, if it did."""
        with self._cond:
            if not self._queue and not self._finished and not self._cancelled:
                start = time.perf_counter_ns()
                while not self._queue and not self._finished and not self._cancelled:
                    self._cond.wait()
                if on_wait is not None:
                    on_wait(time.perf_counter_ns() - start)
            if self._cancelled:
                raise errors.CancelledError(f"{self.name}: the iterator was closed")
            out = self._queue.take(n)
            self._cond.notify_all()
            return out

    def cancel(self) -> None:
        """Wake both sides for good (never blocks for long: the condition is only held briefly)."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()
