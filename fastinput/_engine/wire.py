"""Messages between a stage and its worker processes: pickle protocol 5 with array payloads in shared memory.

``pack`` pickles a value with numpy's out-of-band buffers (protocol 5): arrays of ``LARGE_BUFFER_BYTES`` or more
leave the pickle stream and are copied into one shared-memory segment per message (``_engine/shared_memory.py``);
an array that already lives in shared memory (allocated there by ``SharedArrays``, as ``map_and_batch`` allocates
its batches in a worker) is referred to where it lies, with no copy at all. ``unpack`` maps the segments and
rebuilds the value with its arrays as views of them, so a batch written by a worker reaches the consumer without a
copy. Smaller arrays, bytes and Python values travel inside the pickle.

``send``/``receive`` frame messages on a stream socket (an 8-byte length, then the bytes).
"""

from __future__ import annotations

import itertools
import pickle
import socket
import struct
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from fastinput._engine import shared_memory

LARGE_BUFFER_BYTES = 32 << 10
"""Array payloads from this size travel through shared memory; smaller ones are cheaper inside the pickle."""

_ALIGNMENT = 64  # each payload in a segment starts 64-byte aligned, as fastinput's batches do (_engine/memory.py)
_LENGTH = struct.Struct("<Q")

Ref = tuple[str, int, int, int]
"""Where one payload lies: (segment name, segment size, offset, bytes)."""


class Segments:
    """Names for the segments one process sends on one channel: ``<prefix><serial>``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._serial = itertools.count()

    def new_name(self) -> str:
        return f"{self.prefix}{next(self._serial)}"


class SharedArrays:
    """Arrays allocated straight in shared memory, one segment each, so that sending them copies nothing.

    A worker process installs ``empty`` as fastinput's allocator of large arrays (``memory.allocate_large_with``):
    the batches ``map_and_batch`` fills are then written where the consumer will read them. ``pack`` finds them by
    address (``locate``); ``forget`` unlinks those a message did not carry (temporaries), whose memory then goes
    with their last array.
    """

    def __init__(self, names: Segments) -> None:
        self._names = names
        self._segments: dict[int, tuple[str, int]] = {}  # start address -> (name, size)

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * dtype.itemsize
        name = self._names.new_name()
        segment = shared_memory.create(name, nbytes)
        array = np.frombuffer(segment, dtype=dtype, count=count).reshape(shape)
        self._segments[array.ctypes.data] = (name, max(1, nbytes))
        return array

    def locate(self, address: int, nbytes: int) -> Ref | None:
        """The segment holding ``nbytes`` at ``address``, if one of these arrays' does."""
        for start, (name, size) in self._segments.items():
            if start <= address and address + nbytes <= start + size:
                return name, size, address - start, nbytes
        return None

    def forget(self, sent: list[str]) -> None:
        """Stop tracking every segment; unlink those not in ``sent`` (no message refers to them)."""
        keep = set(sent)
        for name, _ in self._segments.values():
            if name not in keep:
                shared_memory.unlink(name)
        self._segments.clear()


class Locator(Protocol):
    """Where arrays already in shared memory lie (``SharedArrays``, or a pool of reused segments)."""

    def locate(self, address: int, nbytes: int) -> Ref | None: ...


def pack(value: Any, names: Segments, shared: Locator | None = None,
         copy_into: Callable[[memoryview], Ref] | None = None) -> tuple[bytes, list[str]]:
    """``value`` as a message, and the names of the segments it refers to (the receiver unlinks them).

    ``shared``: where arrays already in shared memory are found.
    ``copy_into``: copies a payload found nowhere into a segment of its choosing and says where (a pool that
    reuses its segments); None: such payloads are copied into one new segment per message."""
    buffers: list[pickle.PickleBuffer] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        if buffer.raw().nbytes < LARGE_BUFFER_BYTES:
            return True  # in the pickle stream
        buffers.append(buffer)
        return False

    payload = pickle.dumps(value, protocol=5, buffer_callback=out_of_band)
    refs: list[Ref | None] = []
    copies: list[tuple[int, memoryview]] = []
    for i, buffer in enumerate(buffers):
        raw = buffer.raw()
        located = shared.locate(np.frombuffer(raw, np.uint8).ctypes.data, raw.nbytes) if shared else None
        if located is None and copy_into is not None:
            located = copy_into(raw)
        refs.append(located)
        if located is None:
            copies.append((i, raw))
    if copies:
        refs_of_copies = _copy_into_segment(copies, names.new_name())
        for (i, _), ref in zip(copies, refs_of_copies):
            refs[i] = ref
    sent = sorted({ref[0] for ref in refs})  # type: ignore[index]
    return pickle.dumps((payload, refs), protocol=5), sent


def _copy_into_segment(payloads: list[tuple[int, memoryview]], name: str) -> list[Ref]:
    offsets, size = [], 0
    for _, raw in payloads:
        offsets.append(size)
        size += -(-raw.nbytes // _ALIGNMENT) * _ALIGNMENT
    segment = shared_memory.create(name, size)
    try:
        for offset, (_, raw) in zip(offsets, payloads):
            segment[offset:offset + raw.nbytes] = raw
    finally:
        segment.close()  # the receiver maps it again; this side is done with it
    return [(name, max(1, size), offset, raw.nbytes) for offset, (_, raw) in zip(offsets, payloads)]


def unpack(message: bytes | bytearray,
           buffers_of: Callable[[dict[str, int]], dict[str, Any]] | None = None) -> Any:
    """The value of a ``pack``ed message; its segments are mapped (their names unlinked) and its large arrays are
    views of them. ``buffers_of``: maps the message's segments ({name: size}) its own way instead, returning a
    buffer of each (views of a pool's segments that stay named, say)."""
    payload, refs = pickle.loads(message)
    if not refs:
        return pickle.loads(payload)
    segments = {name: size for name, size, _, _ in refs}
    mapped = (buffers_of or _attach_all)(segments)
    views = [memoryview(mapped[name])[offset:offset + nbytes] for name, _, offset, nbytes in refs]
    return pickle.loads(payload, buffers=views)


def _attach_all(segments: dict[str, int]) -> dict[str, Any]:
    mapped, missing = {}, []
    for name, size in segments.items():  # every name first: each is unlinked even if a later one is missing
        try:
            mapped[name] = shared_memory.attach(name, size)
        except FileNotFoundError as exc:
            missing.append(exc)
    if missing:
        raise missing[0]
    return mapped


def send(sock: socket.socket, message: bytes) -> None:
    """Send one framed message."""
    header = _LENGTH.pack(len(message))
    if len(message) < (64 << 10):
        sock.sendall(header + message)
    else:
        sock.sendall(header)
        sock.sendall(message)


def receive(sock: socket.socket) -> bytearray:
    """The next framed message; ``EOFError`` when the other side has closed (or died)."""
    (length,) = _LENGTH.unpack(_receive_exactly(sock, _LENGTH.size))
    return _receive_exactly(sock, length)


def _receive_exactly(sock: socket.socket, n: int) -> bytearray:
    data = bytearray(n)
    view = memoryview(data)
    got = 0
    while got < n:
        received = sock.recv_into(view[got:])
        if not received:
            raise EOFError("the other process closed the connection")
        got += received
    return data
