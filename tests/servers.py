"""Storage servers on loopback for tests: moto's S3 server and the GCS emulator, one of each per session.

Importing this module sets the environment variables that keep botocore and
google-auth off the network (no cloud metadata probes, fake credentials),
before anything imports s3fs or gcsfs. The fixtures ``s3_server`` and
``gcs_server`` start the servers on free ports and yield a ``Store`` that
creates buckets, uploads files and gives the ``storage_options`` fastinput
readers take.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

OFFLINE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_GCE_CHECK": "True",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
}
os.environ.update(OFFLINE_ENV)

STARTUP_TIMEOUT_SECONDS = 60.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(url: str, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until the server answers any HTTP status (or fail the session after a minute)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with status {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {STARTUP_TIMEOUT_SECONDS:.0f} s")


@dataclasses.dataclass
class Store:
    """One running storage server: its URL scheme, endpoint and the fsspec options to reach it."""

    scheme: str
    endpoint: str
    storage_options: dict[str, Any]

    def filesystem(self) -> Any:
        import fsspec

        return fsspec.filesystem(self.scheme, **self.storage_options)

    def make_bucket(self, bucket: str) -> None:
        if self.scheme == "s3":
            import boto3

            boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        else:
            self.filesystem().mkdir(bucket)

    def upload(self, local_path: str | os.PathLike, bucket: str, key: str) -> str:
        """Copy a local file to ``bucket/key``; returns its URL (``s3://bucket/key``).

        To the GCS emulator the file goes as one raw-body ("media") upload: gcsfs sends files under 5 MB as
        multipart uploads, and gcp-storage-emulator drops a trailing carriage return from those, storing such a
        file one byte short (a TFRecord file ends in a CRC byte, 0x0D once in 256 files). An empty file, which the
        emulator's media upload refuses, goes the gcsfs way.
        """
        fs = self.filesystem()
        if self.scheme == "gs" and os.path.getsize(local_path):
            query = urllib.parse.urlencode({"uploadType": "media", "name": key})
            with open(local_path, "rb") as f:
                request = urllib.request.Request(f"{self.endpoint}/upload/storage/v1/b/{bucket}/o?{query}",
                                                 data=f.read(), method="POST",
                                                 headers={"Content-Type": "application/octet-stream"})
            urllib.request.urlopen(request, timeout=STARTUP_TIMEOUT_SECONDS).close()
        else:
            fs.put_file(os.fspath(local_path), f"{bucket}/{key}")
        fs.invalidate_cache()
        return f"{self.scheme}://{bucket}/{key}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Store]:
    """moto's S3 server in a thread of this process, on a free loopback port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(endpoint)
        yield Store("s3", endpoint, {
            "key": "testing", "secret": "testing",
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        })
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[Store]:
    """gcp-storage-emulator in a subprocess, in memory, on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port),
         "--in-memory", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(endpoint, process)
        yield Store("gs", endpoint, {"endpoint_url": endpoint, "token": "anon", "project": "test"})
    finally:
        process.kill()
        process.wait()
