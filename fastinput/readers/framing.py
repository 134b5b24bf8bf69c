"""TFRecord framing: split a byte stream into records and verify both CRCs of each.

Each record on disk is::

    uint64 length (little endian)
    uint32 masked CRC32C of those 8 length bytes
    bytes  data[length]
    uint32 masked CRC32C of data

``RecordReader`` reads the stream in large blocks and walks each block with
the C extension ``_records`` (built from ``_records.c``): it finds the records
with the GIL released, takes it only to allocate one ``bytes`` object per
record, then checks each record's data CRC and copies it into its object, each
record while it is in the cache, with the GIL released again (about 0.1 us per
record of 700 bytes, CRCs included, plus about 7 us per 100 KB of data). So a
thread that needs the GIL meanwhile (the event loop receiving a remote read's
next response) does not wait on the copies. Where the extension is not built,
a Python loop (``struct.unpack_from`` and ``google_crc32c``) does the same with
the GIL held throughout, at 1.3 to 2 us per record. Damage is reported as
``DataLossError`` naming the file and the byte offset of the bad record, after
every good record before it has been handed out. Allocating the records, the
walk fetches the memory the next allocations will likely take into the cache
(``_records.c``'s ``PREFETCH_AHEAD``): memory freed long before (the records of
8 mixed sources, pulled batches earlier) no longer costs a miss per record
that the allocator's lock waits on.

Blocks of a local file are read into one reused buffer (a fresh buffer per
read costs a page fault per 4 KiB every read, more than the walk itself).
A reader that has walked its buffer to the end hands it on (``SpareBuffers``):
the next reader to read, of this file or another, reads into the buffer used
last, still in the CPU's cache, where readers taking turns (the sources of
``sample_from_datasets``, the files of a repeat) would each write into one of
their own that is not.
Remote and decompressed data come as new bytes anyway: those are walked
where they lie, and only a record that straddles two reads is copied. A
remote response is walked in the parts it arrived in (``read_parts``: about
256 KiB each from S3), never joined: the C walk takes a record that straddles
parts from each of them.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Protocol

import google_crc32c
import numpy as np

from fastinput.errors import DataLossError

try:
    from fastinput.readers import _records
except ImportError:  # not built (see setup.py): the Python loop in RecordReader does the same, slower
    _records = None

HEADER_SIZE = 12
FOOTER_SIZE = 4
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8
_KNOWN_LENGTHS = 4096
"""Distinct record lengths whose header CRC is remembered (it depends on the length only), saving a CRC per record."""
_MAX_READ = 64 << 20
"""Largest read request, or growth of the reused buffer, at once: a huge (corrupt) length cannot ask for an
impossible allocation."""


def _space(size: int) -> memoryview:
    """``size`` bytes to read into, left as they are: ``bytearray(size)`` would first write a zero to each (~20 us per
    MiB, at every file opened, and at every epoch of a repeat over one file)."""
    return memoryview(np.empty(size, dtype=np.uint8))


class SpareBuffers:
    """Read buffers (``_space``) that readers have walked to the end, for the next reader to read into.

    The kernel's copy of a read into a buffer out of the CPU's caches costs more than into one in them (measured:
    ~85 against ~50 us per MiB); mixing 8 TFRecord sources, each reader's own buffer of 1 MiB was cold by its
    next read, 8 MiB of other reads later. Handed on, the buffer a reader reads into is the one walked last. Kept
    per size, at most ``KEPT`` of each, none larger than ``LARGEST`` (what is kept stays for the process's life):
    the rest are garbage. Taken and given back from any thread (``list.pop`` and ``append`` are atomic).
    """

    KEPT = 2
    LARGEST = 16 << 20

    def __init__(self) -> None:
        self._spare: dict[int, list[memoryview]] = {}

    def take(self, size: int) -> memoryview:
        """A buffer of ``size`` bytes, contents undefined: the one given back last, or a new one."""
        try:
            return self._spare.get(size, []).pop()
        except IndexError:
            return _space(size)

    def give_back(self, space: memoryview) -> None:
        """``space`` is not needed any more (nothing refers to its bytes): the next ``take`` of its size may have it."""
        if len(space) > self.LARGEST:
            return
        spare = self._spare.setdefault(len(space), [])
        if len(spare) < self.KEPT:
            spare.append(space)


SPARE_BUFFERS = SpareBuffers()
"""The spare read buffers every ``RecordReader`` shares."""

_TAIL_KEPT = 64 << 10
"""A reader hands its buffer on at the end of a walk if at most this many bytes past the last whole record (part of
the next one) are left to copy out; a longer record's part keeps the buffer."""


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of ``data`` (rotate right by 15 bits, add a constant)."""
    if _records is not None:
        return _records.masked_crc32c(data)
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record as TFRecord framing writes it (for tests and benchmarks that write files)."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


class Readable(Protocol):
    """What ``RecordReader`` reads from (``files.ReadStream``)."""

    path: str
    size: int | None
    reads_in_place: bool
    """True: ``readinto`` fills a reused buffer; False: only ``read_parts``, which hands out new bytes."""

    def read_parts(self, n: int) -> list[bytes]:
        """Up to ``n`` bytes as buffers that follow one another (a remote response's parts), ``[]`` at the end."""
        ...

    def readinto(self, view: memoryview) -> int:
        """Read up to ``len(view)`` bytes into ``view``; the count read, 0 at the end."""
        ...


def read_record_at(file: BinaryIO, offset: int, path: str) -> bytes:
    """The record at byte ``offset`` of an uncompressed, seekable TFRecord ``file`` (named ``path`` in errors), both
    CRCs checked: how a record whose position was saved is read again."""
    file.seek(offset)
    header = file.read(HEADER_SIZE)
    if len(header) == HEADER_SIZE:
        length, length_crc = _HEADER.unpack(header)
        if masked_crc32c(header[:8]) == length_crc:
            body = file.read(length + FOOTER_SIZE)
            if len(body) == length + FOOTER_SIZE:
                data = body[:length]
                if masked_crc32c(data) == _FOOTER.unpack_from(body, length)[0]:
                    return data
    raise DataLossError(f"{path}: no intact record at offset {offset} (read again from a saved position: the file "
                        "changed since)", path=path, offset=offset)


class RecordReader:
    """Records out of one TFRecord stream, in blocks of ``block_size`` bytes read ahead.

    ``read_into(out, n)`` appends between 1 and ``n`` records to ``out``, or
    none when the stream has ended. On damage it raises ``DataLossError``
    after appending the good records before it, so a caller can hand those
    out first. Offsets in errors count bytes of the file, or of the
    decompressed data when ``compressed``.
    """

    def __init__(self, stream: Readable, block_size: int, compressed: bool, start: int = 0) -> None:
        self._stream = stream
        self._block_size = block_size
        self._compressed = compressed
        # Reading in place: the reused buffer, grown for a record that needs more; None between a walk to its end
        # and the next read (handed on to other readers meanwhile, ``SPARE_BUFFERS``).
        self._in_place = stream.reads_in_place
        self._space: memoryview | None = None
        # The bytes read and not yet handed out, from _pos on: reads one after another, as they came (the C walk
        # takes a record that straddles two of them from both), or the reused buffer's filled part.
        self._parts: list[bytes | memoryview] = []
        self._size = 0  # bytes in _parts
        self._pos = 0  # in _parts, counting from the first one's start
        self._base = start  # stream offset of _parts[0][0] (``start``: where the stream was opened)
        self._eof = False
        self._known_lengths: dict[int, int] = {}  # length -> its masked CRC, already verified

    @property
    def offset(self) -> int:
        """Where the next record starts in the stream (the damaged one, after a ``DataLossError``): what a saved
        reader's state records."""
        return self._base + self._pos

    def read_into(self, out: list[bytes], n: int) -> None:
        """Append up to ``n`` records to ``out``; stops early rather than block on a read once it has some."""
        if _records is not None:
            self._split_into(out, n)
        else:
            self._walk_into(out, n)

    def _split_into(self, out: list[bytes], n: int) -> None:
        """``read_into`` with the C walk: ``_records.split`` takes the records of the buffer, up to the damage."""
        start_count = len(out)
        while True:
            records, pos, status, detail = _records.split(self._parts, self._pos, n - (len(out) - start_count))
            out += records
            self._pos = pos
            if status == _records.DONE:
                return
            if status == _records.BAD_LENGTH_CRC:
                raise self._bad_length_crc(pos)
            if status == _records.BAD_DATA_CRC:
                raise self._bad_data_crc(pos, detail)
            if len(out) > start_count or (self._eof and pos == self._size):
                self._hand_on()
                return  # hand out what is parsed before blocking on I/O; or the clean end of the stream
            self._fill(detail)  # NEED_MORE: detail bytes from pos

    def _walk_into(self, out: list[bytes], n: int) -> None:
        """``read_into`` in Python, where the extension is not built: one record per turn of the loop."""
        buf, pos = self._joined(), self._pos
        end = len(buf)
        start_count = len(out)
        append = out.append
        unpack_header, unpack_footer, crc = _HEADER.unpack_from, _FOOTER.unpack_from, google_crc32c.value
        delta, known_lengths = _MASK_DELTA, self._known_lengths
        while len(out) - start_count < n:
            if end - pos >= HEADER_SIZE:
                length, length_crc = unpack_header(buf, pos)
                if known_lengths.get(length) != length_crc:
                    c = crc(bytes(buf[pos:pos + 8]))
                    if (((c >> 15) | (c << 17)) + delta) & 0xFFFFFFFF != length_crc:
                        self._pos = pos
                        raise self._bad_length_crc(pos)
                    if len(known_lengths) < _KNOWN_LENGTHS:
                        known_lengths[length] = length_crc
                stop = pos + HEADER_SIZE + length
                if stop + FOOTER_SIZE <= end:
                    data = bytes(buf[pos + HEADER_SIZE:stop])
                    c = crc(data)
                    if (((c >> 15) | (c << 17)) + delta) & 0xFFFFFFFF != unpack_footer(buf, stop)[0]:
                        self._pos = pos
                        raise self._bad_data_crc(pos, length)
                    append(data)
                    pos = stop + FOOTER_SIZE
                    continue
                need = HEADER_SIZE + length + FOOTER_SIZE
            else:
                need = HEADER_SIZE
            self._pos = pos
            if len(out) > start_count or (self._eof and pos == end):
                self._hand_on()
                return  # hand out what is parsed before blocking on I/O; or the clean end of the stream
            self._fill(need)
            buf, pos = self._joined(), self._pos
            end = len(buf)
        self._pos = pos

    def _hand_on(self) -> None:
        """The walk has reached the end of the buffer read in place: its bytes past the last whole record are copied
        out (up to ``_TAIL_KEPT``; more keep the buffer, as a buffer grown for a long record is kept), and the buffer
        is given to ``SPARE_BUFFERS``."""
        space, tail = self._space, self._size - self._pos
        if space is None or tail > _TAIL_KEPT or len(space) != self._block_size:  # a grown one stays
            return
        self._parts = [bytes(self._parts[0][self._pos:self._size])] if tail else []
        self._base += self._pos
        self._pos, self._size = 0, tail
        self._space = None
        SPARE_BUFFERS.give_back(space)

    def _joined(self) -> bytes | memoryview:
        """The bytes of ``_parts`` as one buffer (for the Python walk), kept as the only part."""
        if len(self._parts) != 1:
            self._parts = [b"".join(self._parts)]
        return self._parts[0]

    def _fill(self, need: int) -> None:
        """Make ``need`` bytes from the current position available in ``_parts``, or raise DataLossError."""
        pos, size = self._pos, self._stream.size
        if size is not None and self._base + pos + need > size:  # known size: no need to read to find out
            if self._base + pos == size:
                self._eof = True
                return
            raise self._truncated(need, size - self._base - pos)
        try:
            if self._in_place:
                self._fill_in_place(need)
            else:
                self._fill_from_reads(need)
        except DataLossError as exc:  # damaged compressed data: report it at the record it hides
            detail = str(exc).removeprefix(f"{self._stream.path}: ")
            raise self._damage(self._pos, "unreadable record", detail) from exc
        if 0 < self._size - self._pos < need:
            raise self._truncated(need, self._size - self._pos)

    def _fill_in_place(self, need: int) -> None:
        """``_fill`` by reading into the reused buffer: the unparsed tail (part of a record that straddles two
        reads) moves to its front, and the next read fills the space after it. A reader that handed its buffer on
        takes one (``SPARE_BUFFERS``): its tail, copied out, moves to that one's front."""
        have = self._size - self._pos
        if self._space is None:
            self._space = SPARE_BUFFERS.take(self._block_size) if have <= self._block_size else _space(have)
        space = self._space
        if have:
            space[:have] = self._parts[0][self._pos:]  # the one part there is: the buffer's filled part, or the tail
        self._base += self._pos
        self._pos = 0
        while have < need and not self._eof:
            if have == len(space):  # a record longer than the buffer: double it (a corrupt length stops at the end)
                space = _space(min(need, 2 * have, have + _MAX_READ))
                space[:have] = self._space[:have]
                self._space = space
            count = self._stream.readinto(space[have:])
            if not count:
                self._eof = True
                break
            have += count
        self._parts, self._size = [space[:have]], have

    def _fill_from_reads(self, need: int) -> None:
        """``_fill`` with the stream's new bytes: the reads are kept as they came, never joined (the parts the
        walk has gone past are dropped), so every byte is copied once, into its record."""
        parts, walked = self._parts, self._pos
        while parts and walked >= len(parts[0]):
            walked -= len(parts.pop(0))
        if walked:
            parts[0] = memoryview(parts[0])[walked:]
        self._base += self._pos
        self._size -= self._pos
        self._pos = 0
        while self._size < need and not self._eof:
            new = self._stream.read_parts(min(max(self._block_size, need - self._size), _MAX_READ))
            if not new:
                self._eof = True
                break
            parts += new
            self._size += sum(map(len, new))

    def _bad_length_crc(self, pos: int) -> DataLossError:
        return self._damage(pos, "corrupted record", "the CRC of its length does not match")

    def _bad_data_crc(self, pos: int, length: int) -> DataLossError:
        return self._damage(pos, "corrupted record", f"the CRC of its {length} data bytes "
                                                     f"(from offset {self._base + pos + HEADER_SIZE}) does not match")

    def _truncated(self, need: int, have: int) -> DataLossError:
        part = "header" if have < HEADER_SIZE else "data"
        return self._damage(self._pos, "truncated record",
                            f"the data ends inside its {part}, {need - have} of its {need} bytes missing")

    def _damage(self, pos: int, what: str, why: str) -> DataLossError:
        path = self._stream.path
        offset = self._base + pos
        where = f"offset {offset} of the decompressed data" if self._compressed else f"offset {offset}"
        if offset == 0:  # the very first header is wrong: most often the file is not a TFRecord file at all
            why += "; is this a TFRecord file (and is compression_type right)?"
        return DataLossError(f"{path}: {what} at {where}: {why}", path=path, offset=offset)
