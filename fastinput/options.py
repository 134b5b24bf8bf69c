"""Pipeline-wide settings: frozen, keyword-only dataclasses.

``ds.with_options(fi.Options(...))`` attaches options to a pipeline; as in
tf.data they apply to the whole pipeline, and options set later in the chain
win over earlier ones field by field (a field left at ``None`` means "not set").
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from fastinput.arguments import check_bool, check_int
from fastinput.errors import InvalidArgumentError


@dataclasses.dataclass(frozen=True, kw_only=True)
class AutotuneOptions:
    """How ``fi.AUTOTUNE`` knobs are set.

    ``cpu_budget``: cores the pipeline may keep busy (default: the cores this
    process may run on). ``ram_budget``: bytes its buffers may hold (default:
    half the available memory).
    """

    enabled: bool | None = None
    cpu_budget: int | None = None
    ram_budget: int | None = None

    def __post_init__(self) -> None:
        check_bool("AutotuneOptions", "enabled", self.enabled, allow_none=True)
        for name in ("cpu_budget", "ram_budget"):  # 0, like None, means the default (as in tf.data)
            if getattr(self, name) is not None:
                check_int("AutotuneOptions", name, getattr(self, name), minimum=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizationOptions:
    """Static rewrites applied when a pipeline is iterated (fused ops)."""

    map_and_batch_fusion: bool | None = None
    map_fusion: bool | None = None
    shuffle_and_repeat_fusion: bool | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            check_bool("OptimizationOptions", field.name, getattr(self, field.name), allow_none=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RemoteOptions:
    """How reads from remote storage (``s3://``, ``gs://``, any fsspec URL) are bounded.

    ``read_timeout``: seconds one ranged request may take, the client library's
    own retries inside it included (default 60); past it the request is
    abandoned and counts as failed. ``read_retries``: times a failed request is
    tried again, resuming at the first byte not yet read (default 2); then the
    read fails with ``UnavailableError`` naming the URL. A file that fails for
    good thus ends in an error after at most ``(read_retries + 1) * read_timeout``
    seconds and a few seconds of pauses, never a hang. They apply to the files a
    pipeline reads while it is iterated (listings and ``make_csv_dataset``'s type
    inference at build time use the defaults). The client libraries' own retry
    settings go in the readers' ``storage_options``.

    >>> import fastinput as fi
    >>> options = fi.Options(remote=fi.RemoteOptions(read_timeout=20, read_retries=5))
    """

    read_timeout: float | None = None
    read_retries: int | None = None

    def __post_init__(self) -> None:
        timeout = self.read_timeout
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not math.isfinite(timeout) or timeout <= 0):
            raise InvalidArgumentError(f"RemoteOptions: read_timeout must be a finite number of seconds > 0, "
                                       f"got {timeout!r}")
        retries = self.read_retries
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100):
            raise InvalidArgumentError(f"RemoteOptions: read_retries must be an int in [0, 100], got {retries!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """Settings for a whole pipeline.

    ``deterministic``: whether parallel stages keep input order when the stage
    itself does not say (default True). ``autotune``: see ``AutotuneOptions``.
    ``optimization``: see ``OptimizationOptions``. ``remote``: see ``RemoteOptions``.

    >>> import fastinput as fi
    >>> ds = fi.Dataset.range(4).with_options(fi.Options(deterministic=False))
    """

    deterministic: bool | None = None
    autotune: AutotuneOptions = dataclasses.field(default_factory=AutotuneOptions)
    optimization: OptimizationOptions = dataclasses.field(default_factory=OptimizationOptions)
    remote: RemoteOptions = dataclasses.field(default_factory=RemoteOptions)

    def __post_init__(self) -> None:
        check_bool("Options", "deterministic", self.deterministic, allow_none=True)
        for name, kind in (("autotune", AutotuneOptions), ("optimization", OptimizationOptions), ("remote", RemoteOptions)):
            if not isinstance(getattr(self, name), kind):
                raise InvalidArgumentError(f"Options: {name} must be a fi.{kind.__name__}, got {getattr(self, name)!r}")

    def merge(self, other: Options) -> Options:
        """These options overridden by every field ``other`` sets."""
        return _merge(self, other)


def _merge(base: Any, override: Any) -> Any:
    changes = {}
    for field in dataclasses.fields(base):
        mine, theirs = getattr(base, field.name), getattr(override, field.name)
        if dataclasses.is_dataclass(mine):
            changes[field.name] = _merge(mine, theirs)
        elif theirs is not None:
            changes[field.name] = theirs
    return dataclasses.replace(base, **changes)


def available_cpus() -> int:
    """Cores this process may run on (respects affinity masks and cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
