"""The one error tree of fastinput.

Every class is also the builtin a user would catch without knowing fastinput
(``InvalidArgumentError`` is a ``ValueError``, ``NotFoundError`` a
``FileNotFoundError``), so ``except ValueError`` keeps working after switching
from another library. Third-party errors (fsspec, botocore, gcsfs) are mapped
to these at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class FastInputError(Exception):
    """Base class of every error fastinput raises on purpose."""


class InvalidArgumentError(FastInputError, ValueError):
    """An argument, a feature spec or an element's value is not what the operation accepts."""


class NotFoundError(FastInputError, FileNotFoundError):
    """A file, object or pattern that was asked for does not exist."""


class DataLossError(FastInputError, OSError):
    """Stored data is corrupt or truncated.

    The message names the file and the byte offset where the damage starts;
    ``path`` and ``offset`` hold them for programs.
    """

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None):
        super().__init__(message)
        self.path = path
        self.offset = offset


class UnavailableError(FastInputError, OSError):
    """Remote storage could not be reached or refused the request (network, credentials)."""


class CancelledError(FastInputError, RuntimeError):
    """The iterator was closed while an operation was waiting on it."""


class FunctionStopIterationError(InvalidArgumentError):
    """A user function (of ``map``, ``filter``, ``interleave``, ...) raised ``StopIteration`` (tf.data:
    InvalidArgument).

    Inside a pipeline a ``StopIteration`` reads as the end of the data, so
    letting it through would end the dataset silently. It is raised as this
    error at that element instead (the ``StopIteration`` is its ``__cause__``),
    and the elements after it follow, as in tf.data. (A generator given to
    ``from_generator`` ending is the end, as usual.)
    """


class UnimplementedError(FastInputError, NotImplementedError):
    """The operation is not supported for this pipeline (tf.data: Unimplemented), e.g. saving the state of a
    stage that cannot be restored; the message says which stage and why."""


class WorkerProcessError(FastInputError, RuntimeError):
    """A worker process of a ``workers="process"`` stage died, or could not load the stage's function.

    A worker dies by a crash in native code (SIGSEGV), a signal (SIGKILL, often the kernel's out-of-memory
    killer) or ``os._exit``; the message names the stage, the process and how it ended, and ``exitcode`` holds
    its exit status (negative: minus the signal's number; None when the function could not be loaded). The error
    takes the place of the element(s) the process was working on; the elements after it follow, from a new process.
    """

    def __init__(self, message: str, *, exitcode: int | None = None):
        super().__init__(message)
        self.exitcode = exitcode
