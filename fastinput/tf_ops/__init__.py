"""fastinput's native TensorFlow op (``FastinputCutStrings``, ``cut_strings.cc``), built on first use and cached.

``as_tf_dataset`` hands packed strings to TensorFlow as one blob and offsets.
Cutting the values out with graph ops makes ~1 MB of temporaries a batch on
the tabular benchmark (26 string features of 1024 values), which fault in
fresh pages every batch; the op writes each value once into its output.

Why built on first use rather than at install: ``pip install`` builds in an
isolated environment without TensorFlow, so setup.py has no headers to build
against, and a library built against one TensorFlow breaks on the next (its
C++ ABI changes between releases). So, as ``torch.utils.cpp_extension.load``
does, it is built against the TensorFlow that imports, into a per-user cache
(``$FASTINPUT_CACHE_DIR``, else ``$XDG_CACHE_HOME/fastinput``, else
``~/.cache/fastinput``), in a folder keyed by the source, TensorFlow's
version and flags, and the compiler; a file lock keeps two processes from
building it at once. Unlike torch, the build (6-8 s CPU, ~680 MB of the
compiler's memory, a 45 KB library) runs in a background thread: the
``as_tf_dataset`` that starts it uses the graph ops, and the ones after it
in any process use the op once it is there. Nothing waits for a compiler.

It fails soft: no compiler, no headers, a failed build or load leave the
graph ops in place, with one log line (warning for a failed build or load,
debug for a missing compiler); a failed build is remembered in its cache
folder, so it is not retried until TensorFlow, the compiler or the source
changes. ``FASTINPUT_TF_OPS``: ``auto`` (the default: as above), ``off``
(never build nor load), ``require`` (build now, waiting, and raise if it
fails: for tests and benchmarks that must measure the op).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger("fastinput")

SOURCE = Path(__file__).with_name("cut_strings.cc")
MODES = ("auto", "off", "require")
BUILD_THREAD_NAME = "build-tf-ops"
"""Not ``fastinput-...``: it is no pipeline thread, and may outlive the as_tf_dataset call that started it."""

_lock = threading.Lock()
_op: Callable[..., Any] | None = None  # the op, once loaded
_failed: dict[str, BuildError] = {}  # library path -> why TensorFlow could not load it
_building: set[str] = set()  # library paths a thread of this process builds now
_warned: set[str] = set()


class BuildError(RuntimeError):
    """The op could not be built or loaded (``FASTINPUT_TF_OPS=require`` raises it)."""


def mode() -> str:
    """``FASTINPUT_TF_OPS``, checked: auto, off or require."""
    value = os.environ.get("FASTINPUT_TF_OPS", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"FASTINPUT_TF_OPS={value!r}: expected one of {', '.join(MODES)}")
    return value


def cache_root() -> Path:
    """Where built ops are kept, per user (see the module docstring)."""
    if os.environ.get("FASTINPUT_CACHE_DIR"):
        return Path(os.environ["FASTINPUT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastinput"


def compiler() -> str | None:
    """The C++ compiler to build with (``$CXX``, else ``c++``, else ``g++``), or None if there is none (or this is
    not a POSIX system: the build's file lock is ``fcntl.flock``)."""
    if os.name != "posix":
        return None
    for name in (os.environ.get("CXX"), "c++", "g++"):
        if name and shutil.which(name):
            return name
    return None


def build_command(tf: Any, cxx: str, output: Path, source: Path = SOURCE) -> list[str]:
    """The compiler's command line that builds ``source`` into ``output`` against ``tf``'s headers and library."""
    return [cxx, "-shared", "-fPIC", "-O2", "-Wno-deprecated-declarations", str(source), "-o", str(output),
            *tf.sysconfig.get_compile_flags(), *tf.sysconfig.get_link_flags()]


def library_path(tf: Any, cxx: str) -> Path:
    """Where the op built with ``cxx`` for this TensorFlow lies: a folder keyed by everything the build depends
    on (the source, TensorFlow's version and flags, the compiler's version and command line). Not where fastinput is
    installed: two checkouts, or a reinstall elsewhere, share one build."""
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), tf.__version__.encode(), _compiler_version(cxx).encode(),
                 "\0".join(build_command(tf, cxx, Path("out"), Path(SOURCE.name))).encode()):
        key.update(part)
        key.update(b"\0")
    return cache_root() / "tf_ops" / f"tf{tf.__version__}-{key.hexdigest()[:16]}" / "cut_strings.so"


@functools.cache
def _compiler_version(cxx: str) -> str:
    """What ``cxx --version`` says (once per process: it is part of every cache key)."""
    return subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False).stdout


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Held by one process at a time (flock: released by the kernel if its holder dies)."""
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(tf: Any, cxx: str, library: Path, retry: bool = False) -> None:
    """Build the op into ``library`` unless a process did already (or failed to, unless ``retry``); BuildError
    with the compiler's output if it fails. Written to a temporary file and renamed, under a file lock."""
    folder = library.parent
    folder.mkdir(parents=True, exist_ok=True)
    failed = folder / "failed.log"
    with _file_lock(folder / "lock"):
        if library.exists():
            return
        if failed.exists() and not retry:
            raise BuildError(f"an earlier build failed, see {failed}")
        for stale in folder.glob("cut_strings.so.*.tmp"):  # left by a process that died while it built
            stale.unlink(missing_ok=True)
        partial = folder / f"cut_strings.so.{os.getpid()}.tmp"
        result = subprocess.run(build_command(tf, cxx, partial), capture_output=True, text=True, check=False)
        if result.returncode != 0 or not partial.exists():
            partial.unlink(missing_ok=True)
            failed.write_text(f"{' '.join(build_command(tf, cxx, library))}\n{result.stdout}{result.stderr}")
            raise BuildError(f"{cxx} exited with {result.returncode}, see {failed}")
        failed.unlink(missing_ok=True)
        os.replace(partial, library)


def _load(tf: Any, library: Path) -> Callable[..., Any]:
    """The op from ``library``, kept for the rest of the process (TensorFlow registers an op's name once per
    process: a second library with it would add nothing); BuildError if TensorFlow cannot load it (tried once per
    library and process)."""
    global _op
    key = str(library)
    with _lock:
        if _op is not None:
            return _op
        if key in _failed:
            raise _failed[key]
        try:
            _op = tf.load_op_library(key).fastinput_cut_strings
        except Exception as exc:  # NotFoundError (a missing symbol: an ABI mismatch), OSError, ...
            _failed[key] = BuildError(f"TensorFlow could not load {library}: {exc}")
            raise _failed[key] from exc
        return _op


def _build_in_background(tf: Any, cxx: str, library: Path) -> None:
    """Build ``library`` in a daemon thread, once per process; a failure is one warning."""

    def run() -> None:
        try:
            build(tf, cxx, library)
            logger.info("fastinput: built its TensorFlow op into %s; as_tf_dataset uses it from the next call", library)
        except BuildError as exc:
            logger.warning("fastinput: could not build its TensorFlow op (%s); as_tf_dataset cuts strings with "
                           "TensorFlow's ops, correct and slower. FASTINPUT_TF_OPS=off skips the build", exc)
        except OSError as exc:  # an unwritable cache
            logger.warning("fastinput: could not build its TensorFlow op in %s (%s)", library.parent, exc)
        finally:
            with _lock:
                _building.discard(str(library))

    with _lock:
        if str(library) in _building:
            return
        _building.add(str(library))
    threading.Thread(target=run, name=BUILD_THREAD_NAME, daemon=True).start()


def cut_strings(tf: Any) -> Callable[..., Any] | None:
    """``FastinputCutStrings(blob, offsets, count=, size=)`` if it can be used now, else None (use graph ops):
    per ``FASTINPUT_TF_OPS``, see the module docstring."""
    wanted = mode()
    if wanted == "off":
        return None
    if _op is not None:
        return _op
    cxx = compiler()
    if cxx is None:
        if wanted == "require":
            raise BuildError("no C++ compiler ($CXX, c++ or g++) to build fastinput's TensorFlow op")
        logger.debug("fastinput: no C++ compiler, so as_tf_dataset cuts strings with TensorFlow's ops")
        return None
    try:
        library = library_path(tf, cxx)
        if wanted == "require":
            build(tf, cxx, library, retry=True)
        elif not library.exists():
            if not (library.parent / "failed.log").exists():
                _build_in_background(tf, cxx, library)
            return None
        return _load(tf, library)
    except (BuildError, OSError) as exc:
        if wanted == "require":
            raise BuildError(str(exc)) from exc
        _warn_once(f"fastinput: cannot use its TensorFlow op ({exc}); as_tf_dataset cuts strings with TensorFlow's "
                   "ops, correct and slower")
        return None


def _warn_once(message: str) -> None:
    """``message`` as a warning, the first time this process meets it."""
    with _lock:
        if message in _warned:
            return
        _warned.add(message)
    logger.warning(message)
