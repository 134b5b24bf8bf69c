"""Named shared-memory segments: how array payloads cross between processes without a copy through a pipe.

A segment is created and filled by the process that sends it, and unlinked by the process that receives it as soon
as that has mapped it: the name exists only while a message is in flight, and the memory lives as long as an array
views it (the mapping closes with its last view). A name whose message never arrived (its sender or receiver died)
is unlinked by whoever outlives it: every name starts with a prefix its pool knows, and ``sweep`` removes a
prefix's leftovers.

Segments are POSIX shared memory (``shm_open``), through the same private CPython module the standard library's
``multiprocessing.shared_memory`` uses: that class owns its mapping and refuses to close while an array views it,
where fastinput needs the arrays to own the mapping.
"""

from __future__ import annotations

import mmap
import os

try:
    import _posixshmem
except ImportError:  # Windows: process workers are not available there
    _posixshmem = None

SHM_FOLDER = "/dev/shm"
"""Where Linux shows POSIX shared memory as files (``sweep`` lists it; elsewhere it does nothing)."""


def available() -> bool:
    """Whether this platform has POSIX shared memory."""
    return _posixshmem is not None


def create(name: str, size: int) -> mmap.mmap:
    """A new segment of ``size`` bytes (at least 1), mapped read-write; fails if ``name`` exists."""
    fd = _posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    try:
        os.ftruncate(fd, max(1, size))
        return mmap.mmap(fd, max(1, size))
    except BaseException:
        unlink(name)
        raise
    finally:
        os.close(fd)


def attach(name: str, size: int, keep_name: bool = False) -> mmap.mmap:
    """Map the segment ``name`` (``size`` bytes) read-write and unlink its name: the caller is its last user
    (``keep_name``: leave the name, the sender reuses the segment and unlinks it)."""
    try:
        fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
    except FileNotFoundError:
        raise FileNotFoundError(f"shared-memory segment {name} is gone (its sender died?)") from None
    try:
        return mmap.mmap(fd, max(1, size))
    finally:
        os.close(fd)
        if not keep_name:
            unlink(name)


def unlink(name: str) -> None:
    """Remove ``name`` if it still exists (the memory stays while a mapping holds it)."""
    try:
        _posixshmem.shm_unlink("/" + name)
    except FileNotFoundError:
        pass


def listing(prefix: str) -> list[str]:
    """The segments whose names start with ``prefix`` (none where ``SHM_FOLDER`` does not show them)."""
    try:
        return [name for name in os.listdir(SHM_FOLDER) if name.startswith(prefix)]
    except OSError:
        return []


def sweep(prefix: str) -> list[str]:
    """Unlink every segment whose name starts with ``prefix`` (leftovers of a process that died); their names."""
    names = listing(prefix)
    for name in names:
        unlink(name)
    return names
