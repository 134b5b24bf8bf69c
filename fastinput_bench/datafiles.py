"""``--data PATH_OR_URL`` to a list of data files: a file, a glob pattern, or a folder; local or remote.

A folder means the data files in it (not in subfolders): names starting with
``.`` or ``_`` are left out (``_SUCCESS``, ``_manifest.json``, editor files),
and when some names match the subcommand's usual pattern (``train-*`` for
ImageNet's layout, ``*.csv``) only those are taken. Remote URLs (``s3://``,
``gs://``, any fsspec URL) are configured the fsspec way, as fastinput's
readers are. A missing path or an empty folder raises
``fastinput.errors.NotFoundError`` with a message that says which.
"""

from __future__ import annotations

import fnmatch
import posixpath

from fastinput.errors import NotFoundError
from fastinput.readers.files import filesystem, is_remote, match_files, storage_errors

_GLOB_CHARACTERS = "*?["


def resolve_files(data: str, preferred: str | None = None) -> list[str]:
    """The data files ``data`` names, sorted; ``preferred`` is the glob that picks files within a folder."""
    if any(c in data for c in _GLOB_CHARACTERS):
        return match_files(data)
    remote = is_remote(data)
    fs, fs_path = filesystem(data)
    with storage_errors(data, remote):
        if fs.isfile(fs_path):
            return [data]
        if not fs.isdir(fs_path):
            raise NotFoundError(f"{data}: no such file or folder")
        entries = fs.ls(fs_path, detail=True)
    files = sorted(entry["name"] for entry in entries if entry.get("type") == "file"
                   and not posixpath.basename(entry["name"]).startswith((".", "_")))
    if preferred:
        files = [f for f in files if fnmatch.fnmatch(posixpath.basename(f), preferred)] or files
    if not files:
        raise NotFoundError(f"{data}: the folder has no data files")
    return [fs.unstrip_protocol(f) for f in files] if remote else files
