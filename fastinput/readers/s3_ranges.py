"""S3 ranged reads that keep the response body in the parts it arrived in.

s3fs's ``_cat_file`` reads a response with aiobotocore's ``read()``, which
joins the body's parts (about 256 KiB each, as the event loop takes them off the
socket) into one bytes object: for a 16 MiB range a copy of every byte into
freshly mapped pages, on the filesystem's event loop, which all open files
share. Measured on loopback moto, that join is half the loop's CPU. The record
readers split records out of each part where it lies (only a record that
straddles two parts is joined, into a buffer of its own), so the join bought
nothing. ``read_range_parts`` makes the same request as ``_cat_file`` (a
``get_object`` with a Range, through s3fs's ``_call_s3``: its session,
credentials, request retries and error translation apply) and returns the
body's parts as aiohttp hands them out, none copied.

Only the aiohttp backend's body (aiobotocore's ``AioStreamingBody``) is read in
parts; any other body is read whole with its own ``read()``. A body cut short
raises what aiohttp raises (``ClientPayloadError``), which the caller retries
like any storage error; the caller also checks the parts' total length.
"""

from __future__ import annotations

from typing import Any


async def read_range_parts(fs: Any, path: str, start: int, end: int) -> list[bytes]:
    """Bytes ``start`` to ``end - 1`` of the object ``path`` (as the s3fs filesystem ``fs`` names it), as the
    response body's parts in order (none empty)."""
    from aiobotocore.response import AioStreamingBody

    bucket, key, version_id = fs.split_path(path)
    version = {"VersionId": version_id} if version_id else {}
    response = await fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **version)
    body = response["Body"]
    try:
        if not isinstance(body, AioStreamingBody):
            return [data] if (data := await body.read()) else []
        content = body.raw_stream.content  # aiohttp's StreamReader: readchunk hands out each part as it came
        parts = []
        while True:
            part, end_of_http_chunk = await content.readchunk()
            if part:
                parts.append(part)
            elif not end_of_http_chunk:  # (b"", True) marks a chunk's end in a chunked body, (b"", False) the end
                return parts
    finally:
        body.close()
