"""Listing and opening files, local and remote: names, decompression, and errors mapped at the boundary."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import fsspec
import numpy as np
import pytest

import fastinput as fi
from fastinput.errors import DataLossError, InvalidArgumentError, NotFoundError, UnavailableError
from fastinput.readers.files import check_compression_type, match_files, open_read
from tests.servers import free_port

PAYLOAD = np.random.default_rng(7).bytes(300_000) + b"text " * 50_000


def read_all(path: str, block: int = 65_536, **kwargs) -> bytes:
    stream = open_read(path, **kwargs)
    try:
        parts = []
        while data := stream.read(block):
            parts.append(data)
        return b"".join(parts)
    finally:
        stream.close()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """a.rec, b.rec, c.txt and a directory named d.rec holding e.rec."""
    for name in ["b.rec", "a.rec", "c.txt", "d.rec/e.rec"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    return tmp_path


def test_match_files_sorted_without_directories(tree):
    assert match_files(str(tree / "*.rec")) == [str(tree / "a.rec"), str(tree / "b.rec")]
    assert match_files([str(tree / "c.*"), str(tree / "b.rec")]) == [str(tree / "c.txt"), str(tree / "b.rec")]


def test_match_files_nothing_matches(tree):
    with pytest.raises(NotFoundError, match=r"no files match .*\*\.none"):
        match_files(str(tree / "*.none"))
    with pytest.raises(NotFoundError, match="missing.rec"):
        match_files(str(tree / "missing.rec"))
    with pytest.raises(NotFoundError):
        match_files(str(tree / "d.rec"))  # a directory is not a file


def test_list_files_shuffles_by_default_and_sorts_otherwise(tree):
    for index in range(20):
        (tree / f"x{index:02d}.rec").write_bytes(b"")
    pattern = str(tree / "x*.rec")
    ordered = list(fi.Dataset.list_files(pattern, shuffle=False))
    shuffled = list(fi.Dataset.list_files(pattern, seed=3))
    assert ordered == [str(tree / f"x{i:02d}.rec").encode() for i in range(20)]
    assert sorted(shuffled) == ordered and shuffled != ordered


@pytest.mark.parametrize("block_size", [None, 0, 1000])
def test_open_read_returns_the_bytes(tmp_path, block_size):
    path = tmp_path / "plain.bin"
    path.write_bytes(PAYLOAD)
    assert read_all(str(path), block_size=block_size) == PAYLOAD
    assert read_all(f"file://{path}", block=7_777) == PAYLOAD


@pytest.mark.parametrize(
    ("compression", "compress"),
    [
        ("GZIP", gzip.compress),
        ("ZLIB", zlib.compress),
        ("GZIP", lambda data: gzip.compress(data[:1000]) + gzip.compress(data[1000:])),  # two gzip members
    ],
)
def test_open_read_decompresses(tmp_path, compression, compress):
    path = tmp_path / "packed"
    path.write_bytes(compress(PAYLOAD))
    assert read_all(str(path), block=10_000, compression_type=compression) == PAYLOAD
    assert open_read(str(path), compression_type=compression).size is None


def test_open_read_truncated_or_corrupt_compressed_data(tmp_path):
    packed = gzip.compress(PAYLOAD)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(packed[:len(packed) // 2])
    with pytest.raises(DataLossError, match=f"{cut}: the compressed stream starting at byte 0 is truncated at byte "
                                            f"{len(packed) // 2}"):
        read_all(str(cut), compression_type="GZIP")
    garbled = tmp_path / "garbled.gz"
    garbled.write_bytes(packed[:100] + bytes(500) + packed[600:])
    with pytest.raises(DataLossError, match=f"{garbled}: corrupt compressed data") as info:
        read_all(str(garbled), compression_type="GZIP")
    assert info.value.path == str(garbled)


def test_open_read_missing_file_or_directory(tmp_path):
    missing = str(tmp_path / "missing.bin")
    with pytest.raises(NotFoundError, match=missing) as info:
        open_read(missing)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value.__cause__, FileNotFoundError)
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        open_read(str(tmp_path))


@pytest.mark.parametrize("value", ["gzip", "BZ2", 0, b"GZIP"])
def test_bad_compression_type(value):
    with pytest.raises(InvalidArgumentError, match="compression_type must be None, '', 'GZIP' or 'ZLIB'"):
        check_compression_type("reader", value)
    assert check_compression_type("reader", "") is None and check_compression_type("reader", "ZLIB") == "ZLIB"


# -- remote storage (moto's S3 server and the GCS emulator on loopback) -------------------------------------


@pytest.fixture(scope="module")
def listing(store) -> str:
    """A bucket with three .rec objects, one .txt and one .rec under a sub-prefix; returns its URL."""
    fs = store.filesystem()
    store.make_bucket("listing")
    for name in ["b.rec", "a.rec", "c.rec", "notes.txt", "sub/d.rec"]:
        fs.pipe_file(f"listing/data/{name}", PAYLOAD if name == "a.rec" else name.encode())
    fs.invalidate_cache()
    return f"{store.scheme}://listing/data"


@pytest.mark.slow
def test_remote_match_files(store, listing):
    options = store.storage_options
    assert match_files(f"{listing}/*.rec", options) == [f"{listing}/{n}" for n in ["a.rec", "b.rec", "c.rec"]]
    assert match_files(f"{listing}/sub/d.rec", options) == [f"{listing}/sub/d.rec"]
    names = list(fi.Dataset.list_files(f"{listing}/[ab].rec", shuffle=False, storage_options=options))
    assert names == [f"{listing}/a.rec".encode(), f"{listing}/b.rec".encode()]
    with pytest.raises(NotFoundError, match="no files match"):
        match_files(f"{listing}/*.none", options)
    with pytest.raises(NotFoundError):
        match_files(f"{listing}/sub", options)  # a prefix, not an object


@pytest.mark.slow
def test_remote_open_read(store, listing):
    assert read_all(f"{listing}/a.rec", block=100_000, storage_options=store.storage_options) == PAYLOAD
    assert read_all(f"{listing}/a.rec", block_size=1000, storage_options=store.storage_options) == PAYLOAD
    missing = f"{listing}/missing.rec"
    with pytest.raises(NotFoundError, match=missing):
        open_read(missing, storage_options=store.storage_options)


@pytest.mark.slow
def test_fsspec_configuration_is_used_without_storage_options(store, listing, monkeypatch):
    monkeypatch.setitem(fsspec.config.conf, store.scheme, store.storage_options)
    assert read_all(f"{listing}/a.rec") == PAYLOAD


@pytest.mark.slow
def test_unreachable_s3_endpoint_is_unavailable():
    options = {
        "key": "testing", "secret": "testing",
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2},
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{free_port()}", "region_name": "us-east-1"},
    }
    with pytest.raises(UnavailableError, match="s3://bucket/x.rec: asking for the object.s size failed") as info:
        open_read("s3://bucket/x.rec", storage_options=options)
    assert info.value.__cause__ is not None
    with pytest.raises(UnavailableError):
        match_files("s3://bucket/*.rec", options)

