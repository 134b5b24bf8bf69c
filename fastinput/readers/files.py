"""Listing and opening files through fsspec: local paths, ``s3://``, ``gs://`` and any other fsspec URL.

Remote filesystems are configured the fsspec way (environment variables such
as ``AWS_ENDPOINT_URL`` or ``STORAGE_EMULATOR_HOST``, ``FSSPEC_<PROTOCOL>_<ARG>``,
``fsspec.config.conf``), or explicitly with ``storage_options``. A missing
s3fs/gcsfs raises an ImportError that says which extra to install.

Readers open files with ``open_read``: large sequential reads (remote reads
of a MiB or more as one ranged request each, bounded in time and retried by
``remote.RemoteFile``), optional GZIP/ZLIB decompression, and
third-party errors mapped to fastinput's at this boundary: a missing file is
``NotFoundError``, a remote store that cannot be reached or refuses the
request is ``UnavailableError``, corrupt compressed data is ``DataLossError``.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

from fastinput._engine.cancellation import StopSignal
from fastinput.errors import DataLossError, InvalidArgumentError, NotFoundError, UnavailableError
from fastinput.options import RemoteOptions

_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}

LOCAL_BLOCK_SIZE = 1 << 20
"""Bytes per read from local files when the reader does not say (large enough to amortise the syscall)."""

REMOTE_BLOCK_SIZE = 16 << 20
"""Bytes per request to remote stores when the reader does not say (large enough to amortise the round trip)."""

COMPRESSION_TYPES = {None: None, "": None, "GZIP": 31, "ZLIB": 15}
"""Accepted ``compression_type`` values and the ``wbits`` of the zlib stream each one means."""

_REMOTE_ERROR_MODULES = ("botocore", "aiobotocore", "aiohttp", "gcsfs", "google", "s3fs", "fsspec", "requests",
                         "urllib3")


def as_path(name: Any) -> str:
    """A file name as ``str`` (file names travel through pipelines as bytes, like tf.string)."""
    if isinstance(name, bytes):
        return name.decode("utf-8")
    if hasattr(name, "item") and not isinstance(name, str):  # numpy scalar / 0-d array
        return as_path(name.item())
    if isinstance(name, (str, os.PathLike)):
        return os.fspath(name)
    raise InvalidArgumentError(f"expected a file name (str or bytes), got {name!r} ({type(name).__name__})")


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URL handled by an fsspec filesystem other than the local disk."""
    return "://" in path and not path.startswith("file://")


def _is_third_party_remote_error(exc: BaseException) -> bool:
    return any(cls.__module__.split(".", 1)[0] in _REMOTE_ERROR_MODULES for cls in type(exc).__mro__)


@contextlib.contextmanager
def storage_errors(path: str, remote: bool) -> Iterator[None]:
    """Map what storage libraries raise for ``path`` to fastinput's errors (``raise ... from exc``).

    A missing file becomes ``NotFoundError``; for remote paths, connection,
    permission and other storage errors (botocore, aiohttp, gcsfs, google-auth,
    OSErrors from fsspec filesystems) become ``UnavailableError``. Local
    OSErrors other than "not found" pass through unchanged.
    """
    try:
        yield
    except (NotFoundError, UnavailableError, DataLossError, InvalidArgumentError):
        raise
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path}: no such file or object") from exc
    except IsADirectoryError as exc:
        raise InvalidArgumentError(f"{path}: is a directory, not a file") from exc
    except Exception as exc:
        if remote and (isinstance(exc, OSError) or _is_third_party_remote_error(exc)):
            raise UnavailableError(f"{path}: storage request failed: {type(exc).__name__}: {exc}") from exc
        raise


def file_name_list(op: str, filenames: Any, accepted: str = "a file name or a list of file names") -> list[str]:
    """``filenames`` (a name, a list or vector of names, a numpy array or ``tf.Tensor`` of them) as paths.

    The readers' shared argument check: errors name ``op`` and the position of a bad name.
    """
    if hasattr(filenames, "numpy") and callable(filenames.numpy):  # a tf.Tensor of strings
        filenames = filenames.numpy()
    if isinstance(filenames, (str, bytes, os.PathLike)) or getattr(filenames, "ndim", None) == 0:
        filenames = [filenames]
    if getattr(filenames, "ndim", 1) > 1:
        raise InvalidArgumentError(
            f"{op}: filenames must be a scalar or a vector of names, got shape {filenames.shape}")
    if not isinstance(filenames, Sequence) and not hasattr(filenames, "__array__"):
        raise InvalidArgumentError(f"{op}: filenames must be {accepted}, got {type(filenames).__name__}")
    paths = []
    for i, name in enumerate(list(filenames)):
        try:
            paths.append(as_path(name))
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{op}: filenames[{i}]: {exc}") from None
    return paths


def filesystem(path: str, storage_options: dict | None = None) -> tuple[Any, str]:
    """The fsspec filesystem for ``path`` and the path as that filesystem names it."""
    import fsspec

    protocol = path.split("://", 1)[0] if "://" in path else "file"
    try:
        with storage_errors(path, is_remote(path)):
            fs, fs_path = fsspec.core.url_to_fs(path, **(storage_options or {}))
    except ImportError as exc:
        extra = _EXTRAS.get(protocol)
        hint = f' (pip install "fastinput[{extra}]")' if extra else ""
        raise ImportError(f"reading {protocol}:// paths needs a package that is not installed{hint}: {exc}") from exc
    except ValueError as exc:
        raise InvalidArgumentError(f"cannot open {path!r}: {exc}") from exc
    return fs, fs_path


def match_files(patterns: str | Sequence[str], storage_options: dict | None = None) -> list[str]:
    """Every file matching the glob pattern(s), sorted per pattern, with protocols kept; NotFoundError if none."""
    if isinstance(patterns, (str, bytes, os.PathLike)):
        patterns = [patterns]
    found: list[str] = []
    for pattern in patterns:
        pattern = as_path(pattern)
        fs, fs_pattern = filesystem(pattern, storage_options)
        with storage_errors(pattern, is_remote(pattern)):
            if any(c in fs_pattern for c in "*?["):
                infos = fs.glob(fs_pattern, detail=True)
                matches = sorted(name for name, info in infos.items() if info.get("type") != "directory")
            else:
                matches = [fs_pattern] if fs.isfile(fs_pattern) else []
        if "://" in pattern:
            matches = [fs.unstrip_protocol(m) for m in matches]
        if not matches:
            raise NotFoundError(f"no files match {pattern!r}")
        found.extend(matches)
    return found


def list_files(file_pattern: str | Sequence[str], shuffle: bool | None = None, seed: int | None = None,
               storage_options: dict | None = None):
    """``Dataset.list_files``: the matching file names as bytes elements, shuffled unless ``shuffle=False``."""
    from fastinput.dataset import Dataset

    names = [name.encode("utf-8") for name in match_files(file_pattern, storage_options)]
    ds = Dataset.from_tensor_slices(names)
    if shuffle is None or shuffle:
        ds = ds.shuffle(len(names), seed=seed)
    return ds


def check_compression_type(op: str, compression_type: Any) -> str | None:
    """``compression_type`` as given if it is one fastinput reads (``None``, ``""``, ``"GZIP"``, ``"ZLIB"``)."""
    if not isinstance(compression_type, (str, type(None))) or compression_type not in COMPRESSION_TYPES:
        raise InvalidArgumentError(
            f"{op}: compression_type must be None, '', 'GZIP' or 'ZLIB', got {compression_type!r}"
        )
    return compression_type or None


class ReadStream:
    """A file opened for sequential reading: ``read(n)`` returns up to ``n`` bytes, ``b""`` at the end
    (``read_parts(n)`` the same as a list: a remote response's parts, not joined); local, uncompressed files also
    ``readinto`` a caller's buffer (``reads_in_place``).

    Wraps a local file (unbuffered: callers read large blocks), or an fsspec
    file with read-ahead, optionally decompressing GZIP/ZLIB on the fly.
    Every storage error surfaces as a fastinput error naming the path.
    ``size`` is the number of bytes ``read`` will return in all, when known
    (uncompressed files), so readers can spot impossible lengths early.
    """

    def __init__(self, path: str, raw: Any, size: int | None, remote: bool, wbits: int | None,
                 block_size: int) -> None:
        self.path = path
        self._raw = raw
        self._remote = remote
        self._block_size = max(block_size, 64 << 10)
        self._wbits = wbits
        self._inflater = zlib.decompressobj(wbits) if wbits is not None else None
        self._compressed_offset = 0  # compressed bytes read so far
        self._stream_start = 0  # where the gzip member / zlib stream being inflated starts in the file
        self._salvaged = b""  # output decompressed before damage, still to hand out before ``_damage``
        self._damage: DataLossError | None = None
        self.size = size if wbits is None else None
        self.reads_in_place = not remote and wbits is None

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (at least one unless the stream has ended)."""
        if self._inflater is None:
            with storage_errors(self.path, self._remote):
                return self._raw.read(n)
        return self._inflate(n)

    def read_parts(self, n: int) -> list[bytes]:
        """``read`` as a list of buffers, ``[]`` at the end: a remote response in the parts it arrived in
        (``RemoteFile.read_parts``), not joined, for a reader that splits records out of each where it lies."""
        if self._remote and self._inflater is None:
            with storage_errors(self.path, True):
                return self._raw.read_parts(n)
        data = self.read(n)
        return [data] if data else []

    def readinto(self, view: memoryview) -> int:
        """Read up to ``len(view)`` bytes into ``view``, a buffer the caller reuses (no fresh pages each read);
        0 at the end. Only where ``reads_in_place``: elsewhere the data comes as new bytes, and copying those
        into a buffer would cost more than it saves."""
        if not self.reads_in_place:
            raise TypeError(f"{self.path}: readinto is for local, uncompressed files; use read")
        with storage_errors(self.path, False):
            return self._raw.readinto(view) or 0

    def skip(self, n: int) -> None:
        """Read and drop the next ``n`` bytes (fewer if the stream ends first)."""
        while n > 0:
            data = self.read(min(n, self._block_size))
            if not data:
                return
            n -= len(data)

    def _inflate(self, n: int) -> bytes:
        """Up to ``n`` decompressed bytes, b"" at the end. Several streams one after another (a multi-member
        gzip file, ``cat a.gz b.gz``, as tf.data reads it) are read as one; anything after a complete stream
        that does not start another is DataLossError. A stream's end is checked before its unconsumed input:
        once zlib reaches it, the input it did not use is ``unused_data`` (Python 3.11 may leave it in
        ``unconsumed_tail`` too, and feeding that to the ended stream again returns nothing, forever)."""
        while True:
            if self._salvaged:
                out, self._salvaged = self._salvaged[:n], self._salvaged[n:]
                return out
            if self._damage is not None:
                raise self._damage
            inflater = self._inflater
            if inflater.eof:  # a complete stream: what follows it starts the next one, or ends the file
                data = inflater.unused_data or self._read_compressed()
                if not data:
                    return b""
                self._stream_start = self._compressed_offset - len(data)
                self._inflater = inflater = zlib.decompressobj(self._wbits)
            else:
                data = inflater.unconsumed_tail or self._read_compressed()
                if not data:
                    if self._compressed_offset == 0:  # an empty file
                        return b""
                    raise DataLossError(
                        f"{self.path}: the compressed stream starting at byte {self._stream_start} is truncated "
                        f"at byte {self._compressed_offset}",
                        path=self.path, offset=self._compressed_offset,
                    )
            before = inflater.copy()
            try:
                out = inflater.decompress(data, n)
            except zlib.error as exc:
                self._damage = DataLossError(
                    f"{self.path}: corrupt compressed data in the stream starting at byte {self._stream_start} "
                    f"(read up to byte {self._compressed_offset}): {exc}",
                    path=self.path, offset=self._stream_start,
                )
                self._damage.__cause__ = exc
                self._salvaged = _salvage(before, data)
                continue
            if out:
                return out

    def _read_compressed(self) -> bytes:
        """The next block of the compressed file (b"" at its end), counted in ``_compressed_offset``."""
        with storage_errors(self.path, self._remote):
            data = self._raw.read(self._block_size)
        self._compressed_offset += len(data)
        return data

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()


def _salvage(inflater: Any, data: bytes) -> bytes:
    """What ``inflater`` makes of ``data`` before the damage that fails it: zlib raises for a whole call and
    drops that call's output, so the input goes in again in small steps, the last few bytes one at a time.
    The records in that output come out before the DataLossError, as tf.data hands them out."""
    out = []
    pos, step = 0, 4096
    while pos < len(data) and not inflater.eof:
        trial = inflater.copy()
        try:
            out.append(trial.decompress(data[pos:pos + step]))
        except zlib.error:
            if step == 1:
                break
            step = 1
            continue
        inflater = trial
        pos += step
    return b"".join(out)


def open_read(path: str, *, compression_type: str | None = None, block_size: int | None = None,
              storage_options: dict | None = None, remote_options: RemoteOptions | None = None,
              cancelled: StopSignal | None = None, offset: int = 0) -> ReadStream:
    """Open ``path`` for sequential reading in blocks of about ``block_size`` bytes (None: a default per store),
    from byte ``offset`` of its data on (where a restored reader stood; ``ReadStream.size`` still counts from 0).

    Remote objects are read in ranged requests bounded in time and retried as
    ``remote_options`` says (``fi.RemoteOptions``; None: its defaults), and
    abandoned once ``cancelled`` (the pipeline's stop signal) is set: see ``fastinput.readers.remote``.
    A compressed file cannot seek: ``offset`` counts decompressed bytes, read and dropped.
    """
    wbits = COMPRESSION_TYPES[check_compression_type("open_read", compression_type)]
    seek = offset if wbits is None else 0
    if not is_remote(path):
        local = path[len("file://"):] if path.startswith("file://") else path
        with storage_errors(path, remote=False):
            raw = open(local, "rb", buffering=0)  # closed by ReadStream.close
            raw.seek(seek)
        size = os.fstat(raw.fileno()).st_size
        stream = ReadStream(path, raw, size, False, wbits, LOCAL_BLOCK_SIZE if block_size is None else block_size)
    else:
        from fastinput.readers.remote import RemoteFile

        block_size = REMOTE_BLOCK_SIZE if block_size is None else block_size
        fs, fs_path = filesystem(path, storage_options)
        raw = RemoteFile(fs, fs_path, path, block_size, remote_options, cancelled, start=seek)
        stream = ReadStream(path, raw, raw.size, True, wbits, block_size)
    if wbits is not None and offset:
        try:
            stream.skip(offset)
        except BaseException:
            stream.close()
            raise
    return stream
