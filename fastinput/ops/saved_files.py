"""fastinput's saved-dataset format (``save`` / ``load`` / ``snapshot``): a folder of shard files and one metadata file.

::

    PATH/
      fastinput-dataset.json            the metadata, written last: a folder without it holds no (finished) dataset
      <run>-shard-00000.tfrecord        shard files: TFRecord framing (CRC-checked), GZIP-compressed if asked;
      <run>-shard-00001.tfrecord        each record a chunk of elements (``fastinput.ops.element_codec``)

The metadata (JSON) says: the format and its version, the compression, the elements per record (``chunk``: every
record holds that many but a shard's last), the element spec, and each shard's file and element count, which the
reader checks (a shard cut short at a record's end is data loss, not a shorter dataset). With the default sharding
record ``k`` goes to shard ``k % shards``, so reading the shards round robin, ``chunk`` elements at a time, gives
the elements back in their order.

A new save writes under a new ``<run>`` prefix and replaces the metadata in one ``os.replace``: a reader sees the
old dataset or the new one, never a mix; the old run's files are deleted after.

Not tf.data's format: tf.data writes ``snapshot.metadata``, ``dataset_spec.pb`` and shard folders of ``TensorProto``
records, which ``load`` reads too (``fastinput.ops.tf_saved``); tf.data cannot read this format.
"""

from __future__ import annotations

import gzip
import json
import os
import uuid
from typing import IO, Any

import numpy as np

from fastinput import errors, structure
from fastinput.ops.element_codec import encode_chunk
from fastinput.readers.framing import frame

METADATA = "fastinput-dataset.json"
FORMAT = "fastinput-saved-dataset"
VERSION = 1
CHUNK_BYTES = 4 << 20
"""About how many bytes of elements one record holds (at most ``MAX_CHUNK`` elements, at least one)."""
MAX_CHUNK = 1024
TF_DATA_SPEC = "dataset_spec.pb"
"""What tf.data's save writes first (its ``snapshot.metadata`` last: ``fastinput.ops.tf_saved`` reads those)."""
COMPRESSIONS = {None: None, "": None, "NONE": None, "AUTO": None, "GZIP": "GZIP"}
"""The ``compression`` values accepted, and the compression each writes (``AUTO``: none, the fastest to read)."""


def check_compression(op: str, compression: Any) -> str | None:
    """``compression`` as written in the metadata (None or ``"GZIP"``); ``InvalidArgumentError`` otherwise."""
    key = compression.upper() if isinstance(compression, str) else compression
    if key not in COMPRESSIONS:
        raise errors.InvalidArgumentError(f"{op}: compression must be None, \"GZIP\" or \"AUTO\" (no compression), "
                                          f"got {compression!r}")
    return COMPRESSIONS[key]


def check_local_path(op: str, path: Any) -> str:
    """``path`` as a string; fastinput saves to and loads from local folders only."""
    if not isinstance(path, (str, os.PathLike)):
        raise errors.InvalidArgumentError(f"{op}: path must be a string, got {type(path).__name__}")
    path = os.fspath(path)
    if "://" in path:
        raise errors.UnimplementedError(f"{op}: {path}: fastinput saves datasets to local folders only")
    return path


class DatasetWriter:
    """Writes elements into the shard files of one run in ``directory``; ``commit`` writes the metadata."""

    def __init__(self, directory: str, compression: str | None, shard_func: Any, num_shards: int,
                 element_spec: Any) -> None:
        os.makedirs(directory, exist_ok=True)
        self._directory = directory
        self._compression = compression
        self._shard_func = shard_func
        self._num_shards = num_shards
        self._spec = element_spec
        self._run = uuid.uuid4().hex[:12]
        self._chunk = 0  # elements per record, set by the first element
        self._pending: dict[int, list[Any]] = {}  # shard -> elements not yet written
        self._files: dict[int, IO[bytes]] = {}
        self._counts: dict[int, int] = {}
        self._records = 0
        self._round_robin: list[Any] = []

    def write(self, elements: list[Any]) -> None:
        if not elements:
            return
        if not self._chunk:
            self._chunk = _chunk_size(elements[0])
        if self._shard_func is None:
            self._round_robin.extend(elements)
            while len(self._round_robin) >= self._chunk:
                self._write_record(self._records % self._num_shards, self._round_robin[:self._chunk])
                del self._round_robin[:self._chunk]
            return
        for element in elements:
            shard = _shard_of(self._shard_func, element)
            pending = self._pending.setdefault(shard, [])
            pending.append(element)
            if len(pending) >= self._chunk:
                self._write_record(shard, pending)
                self._pending[shard] = []

    def _write_record(self, shard: int, elements: list[Any]) -> None:
        file = self._files.get(shard)
        if file is None:
            path = os.path.join(self._directory, self._file_name(shard))
            file = self._files[shard] = gzip.open(path, "wb") if self._compression else open(path, "wb")
            self._counts[shard] = 0
        file.write(frame(encode_chunk(elements)))
        self._counts[shard] += len(elements)
        self._records += 1

    def _file_name(self, shard: int) -> str:
        return f"{self._run}-shard-{shard:05d}.tfrecord"

    def commit(self, replace: bool = True) -> None:
        """Write what is left and the metadata: from now on the folder holds these elements. With ``replace``
        False a folder that already holds a dataset keeps it (this run's files are deleted)."""
        if not replace and os.path.exists(os.path.join(self._directory, METADATA)):
            self.abandon()
            return
        if self._round_robin:
            self._write_record(self._records % self._num_shards, self._round_robin)
        for shard, pending in sorted(self._pending.items()):
            if pending:
                self._write_record(shard, pending)
        self._close_files()
        previous = _previous_files(self._directory)
        metadata = {"format": FORMAT, "version": VERSION, "compression": self._compression,
                    "chunk": self._chunk or 1, "ordered": self._shard_func is None,
                    "element_spec": encode_spec(self._spec) if self._spec is not None else None,
                    "shards": [{"file": self._file_name(shard), "elements": self._counts[shard]}
                               for shard in sorted(self._counts)]}
        temporary = os.path.join(self._directory, f".{METADATA}.{self._run}")
        with open(temporary, "w") as f:
            json.dump(metadata, f, indent=1)
        os.replace(temporary, os.path.join(self._directory, METADATA))
        for name in previous - {entry["file"] for entry in metadata["shards"]}:
            _remove(os.path.join(self._directory, name))

    def abandon(self) -> None:
        """Close and delete this run's files: the folder keeps what it held before."""
        self._close_files()
        for shard in self._counts:
            _remove(os.path.join(self._directory, self._file_name(shard)))

    def _close_files(self) -> None:
        files, self._files = self._files, {}
        for file in files.values():
            file.close()


def _chunk_size(element: Any) -> int:
    """Elements per record for elements like ``element``: about ``CHUNK_BYTES`` of them, at most ``MAX_CHUNK``."""
    size = sum(leaf.nbytes if isinstance(leaf, np.ndarray) else len(leaf) if isinstance(leaf, bytes) else 8
               for leaf in structure.flatten(element))
    return int(max(1, min(MAX_CHUNK, CHUNK_BYTES // max(size, 1))))


def _shard_of(shard_func: Any, element: Any) -> int:
    value = shard_func(*element) if isinstance(element, tuple) else shard_func(element)
    try:
        shard = int(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise errors.InvalidArgumentError(f"save: shard_func must return an int64 scalar, got {value!r}") from exc
    if shard < 0:
        raise errors.InvalidArgumentError(f"save: shard_func must return a non-negative shard index, got {shard}")
    return shard


def _previous_files(directory: str) -> set[str]:
    """The shard files of the dataset the folder holds now (none if it holds none, or an unreadable one)."""
    try:
        return {entry["file"] for entry in read_metadata(directory)["shards"]}
    except (errors.FastInputError, KeyError, TypeError):
        return set()


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def encode_spec(spec: Any) -> Any:
    """An element spec (a nest of ``fi.TensorSpec`` / ``fi.SparseSpec``) as JSON, for the metadata."""
    from fastinput.ops.element_codec import skeleton
    from fastinput.spec import SparseSpec

    leaves = [{"kind": "sparse" if isinstance(leaf, SparseSpec) else "tensor", "dtype": leaf.dtype.str,
               "shape": None if leaf.shape is None else list(leaf.shape)} for leaf in structure.flatten(spec)]
    return {"structure": skeleton(spec), "leaves": leaves}


def decode_spec(encoded: Any) -> Any:
    """The element spec ``encode_spec`` wrote."""
    from fastinput.ops.element_codec import template
    from fastinput.spec import SparseSpec, TensorSpec

    leaves = [(SparseSpec if leaf["kind"] == "sparse" else TensorSpec)(leaf["shape"], np.dtype(leaf["dtype"]))
              for leaf in encoded["leaves"]]
    return structure.pack_as(template(encoded["structure"]), leaves)


def read_metadata(directory: str) -> dict[str, Any]:
    """The metadata of the dataset saved in ``directory``: ``NotFoundError`` if none was (or its save did not
    finish), ``DataLossError`` for a damaged metadata file."""
    path = os.path.join(directory, METADATA)
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        if not os.path.isdir(directory):
            raise errors.NotFoundError(f"load: {directory}: no such folder") from None
        if os.path.exists(os.path.join(directory, TF_DATA_SPEC)):
            raise errors.NotFoundError(f"load: {directory} holds a tf.data save that did not finish (it has "
                                       f"{TF_DATA_SPEC} but no snapshot.metadata)") from None
        raise errors.NotFoundError(f"load: {directory} holds no saved dataset ({METADATA} is missing: nothing was "
                                   "saved there, or the save did not finish)") from None
    try:
        metadata = json.loads(text)
        if metadata.get("format") != FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}")
        if metadata.get("version") != VERSION:
            raise ValueError(f"version {metadata.get('version')!r}, this fastinput reads version {VERSION}")
        for entry in metadata["shards"]:
            if not isinstance(entry["file"], str) or os.sep in entry["file"] or int(entry["elements"]) < 0:
                raise ValueError(f"shard entry {entry!r}")
        int(metadata["chunk"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise errors.DataLossError(f"load: {path} is not a fastinput dataset's metadata: {exc}", path=path) from None
    return metadata
