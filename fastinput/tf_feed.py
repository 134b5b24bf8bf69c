"""The supply side of ``as_tf_dataset``: a thread per TensorFlow iteration that feeds a TensorFlow queue.

TensorFlow dequeues in C++ without the GIL; only the feed's own thread runs
Python. How an iteration ends matters as much as how it runs: see ``Feed``.
"""

from __future__ import annotations

import atexit
import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any


class Feed:
    """One TensorFlow iteration's supply: a thread that packs the elements of its own fastinput iterator into
    crossing tensors (``pack``: ``as_tf_dataset``'s transfer) and enqueues them in a TensorFlow queue, which the
    iteration dequeues from in C++, without the GIL.

    Each queued element carries one more component (the last of ``dtypes``), an
    error message: empty, or the exception the pipeline raised at that place
    (with ``placeholders`` standing in for the tensors), which TensorFlow then
    raises there. Closing the queue after the last element ends the iteration.

    TensorFlow ends an iteration (at its end, or when it drops it) with graph
    ops alone, no Python (``finalize``): TensorFlow may drop an iteration
    while the interpreter shuts down, and a thread that asks for the GIL then
    is stopped for good, leaving TensorFlow waiting for it forever. They close
    the queue and delete it, so the queue belongs to TensorFlow's iteration,
    not to a Python object. The feed's thread sees its enqueue cancelled,
    closes its fastinput iterator and ends. At interpreter exit, before
    shutdown begins, every feed still running is closed
    (``_close_open_feeds``): its queue ends, so no TensorFlow thread waits on
    a feed that can no longer run.
    """

    def __init__(self, tf: Any, iterator: Any, pack: Callable[[Any], list[Any]], placeholders: list[Any],
                 dtypes: list[Any], capacity: int) -> None:
        self._tf = tf
        self._iterator = iterator
        self._pack = pack
        self._placeholders = placeholders
        self._stopping = False
        self.queue = tf.raw_ops.FIFOQueueV2(component_types=dtypes, capacity=capacity,
                                            shared_name=f"fastinput-feed-{next(_feed_ids)}")
        self._ok = tf.constant(b"")
        self._thread = threading.Thread(target=self._run, name="fastinput-to-tensorflow", daemon=True)
        _open_feeds.add(self)
        self._thread.start()

    def _run(self) -> None:
        tf = self._tf
        try:
            while not self._stopping:
                try:
                    tensors = [*self._pack(next(self._iterator)), self._ok]
                except StopIteration:
                    break
                except Exception as exc:  # raised by TensorFlow in its place; reading goes on after it
                    if self._stopping:
                        break
                    tensors = [*self._placeholders, tf.constant(f"{type(exc).__name__}: {exc}")]
                # The raw op: QueueBase.enqueue's Python checks cost three times the enqueue (~20 us, holding the GIL).
                tf.raw_ops.QueueEnqueueV2(handle=self.queue, components=tensors)
        except (tf.errors.CancelledError, tf.errors.NotFoundError):
            pass  # the queue was closed or deleted (TensorFlow ended the iteration, or the interpreter exits)
        finally:
            if not self._stopping:
                self._close_queue(cancel_pending_enqueues=False)
                self._iterator.close()
                _open_feeds.discard(self)

    def _close_queue(self, cancel_pending_enqueues: bool) -> None:
        try:
            self._tf.raw_ops.QueueCloseV2(handle=self.queue, cancel_pending_enqueues=cancel_pending_enqueues)
        except (self._tf.errors.CancelledError, self._tf.errors.NotFoundError):
            pass  # TensorFlow has ended the iteration: closed it already, or deleted it

    def close(self) -> None:
        """End the iteration from outside: its queue ends, its thread stops and is joined."""
        self._stopping = True
        self._close_queue(cancel_pending_enqueues=True)  # an enqueue waiting for room gives up
        self._iterator.close()  # a next() waiting for the pipeline gives up
        self._thread.join()
        _open_feeds.discard(self)


_feed_ids = itertools.count()
_open_feeds: weakref.WeakSet[Feed] = weakref.WeakSet()
"""The feeds whose thread still runs."""


@atexit.register
def _close_open_feeds() -> None:
    """At interpreter exit, while threads can still run: end every open iteration (see ``Feed``)."""
    for feed in list(_open_feeds):
        feed.close()


def finalize(tf: Any, queue: Any) -> Any:
    """Graph ops, TensorFlow's end of an iteration: close its queue (the feed's thread then ends by itself) and
    delete it."""
    closed = tf.raw_ops.QueueCloseV2(handle=queue, cancel_pending_enqueues=True)
    with tf.control_dependencies([closed]):
        deleted = tf.raw_ops.DestroyResourceOp(resource=queue, ignore_lookup_error=True)
    with tf.control_dependencies([deleted]):
        return tf.constant(0, tf.int64)
