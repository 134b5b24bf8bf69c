"""How a dropped pipeline gets stopped without deadlocking, and why an error never pins one.

Two hazards sit between Python's memory management and a threaded pipeline:

- A finaliser (``Iterator.__del__``) runs wherever the last reference goes or
  the cyclic GC happens to run: possibly in one of the pipeline's own workers
  while it holds that pipeline's (non-reentrant) lock. Stopping the pipeline
  there would wait on that lock forever, and CPython's GC would stay "already
  collecting" for the life of the process. So a finaliser only queues the
  pipeline (``close_later``: ``SimpleQueue.put`` is reentrant and takes no lock
  a thread can hold) and the reaper thread, started beforehand from an
  ordinary context, cancels and joins it.
- An exception raised to the consumer carries a traceback whose frames hold
  the stages that handled it, and their locals hold the ``Failure`` that
  carried it: a reference cycle that lasts until the GC runs, and a path from
  the exception to the user's iterator. ``release_frames`` clears the locals
  of fastinput's own finished frames, so dropping the exception frees the
  pipeline by reference counting alone.
"""

from __future__ import annotations

import inspect
import logging
import os
import queue
import threading
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger("fastinput")

REAPER_THREAD_NAME = "fastinput reaper"
"""The one long-lived fastinput thread: it closes pipelines whose iterator was dropped."""

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
"""fastinput's own source folder (this module lives in its ``_engine`` package)."""
_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR

_queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_reaper: threading.Thread | None = None
_start_lock = threading.Lock()


def start_reaper() -> None:
    """Make sure the reaper thread runs (call from an ordinary context, never from a finaliser)."""
    global _reaper
    if _reaper is not None and _reaper.is_alive():
        return
    with _start_lock:
        if _reaper is None or not _reaper.is_alive():  # also after a fork: the child has no reaper
            _reaper = threading.Thread(target=_reap, name=REAPER_THREAD_NAME, daemon=True)
            _reaper.start()


def close_later(close: Callable[[], None]) -> None:
    """Run ``close()`` on the reaper thread; safe in a finaliser (takes no lock, never blocks)."""
    _queue.put(close)


def _reap() -> None:
    while True:
        close = _queue.get()
        try:
            close()
        except Exception:  # a pipeline that fails to stop must not stop the reaper
            logger.exception("fastinput: closing a dropped iterator failed")
        del close  # hold no pipeline while waiting for the next one


def release_frames(exc: BaseException) -> None:
    """Clear the locals of fastinput's finished frames that ``exc`` reaches (and its cause and context reach).

    Those are the frames of its tracebacks and their callers (a finished
    frame keeps its caller's). The user's own frames keep their locals (a
    debugger still shows them); frames still running (a worker's loop, the
    consumer's call) and suspended generators are left alone.
    """
    seen_frames: set[int] = set()
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            _clear_own_frames(tb.tb_frame, seen_frames)
            tb = tb.tb_next
        pending += [current.__cause__, current.__context__]


def _clear_own_frames(frame: FrameType | None, seen: set[int]) -> None:
    while frame is not None and id(frame) not in seen:
        seen.add(id(frame))
        code = frame.f_code
        if code.co_filename.startswith(_PACKAGE_DIR) and not code.co_flags & _SUSPENDABLE:
            try:
                frame.clear()
            except RuntimeError:  # still executing
                pass
        frame = frame.f_back
