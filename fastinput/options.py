"""Pipeline-wide settings: frozen, keyword-only dataclasses.

``ds.with_options(fi.Options(...))`` attaches options to a pipeline; as in
tf.data they apply to the whole pipeline, and options set later in the chain
win over earlier ones field by field (a field left at ``None`` means "not set").

Defaults are resolved here and nowhere else: ``Options.resolved()`` fills in
every field a default exists for (``IteratorContext`` holds the resolved
options of a running pipeline), and ``AutotuneOptions.cpu_cores()`` /
``ram_bytes()`` give the budgets, which depend on the machine and are looked
up only by the tuner. ``ram_budget`` itself stays unresolved: whether the user
set one changes what the engine does (see ``AutotuneOptions``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from fastinput._engine.arguments import check_bool, check_int
from fastinput.errors import InvalidArgumentError

DEFAULT_READ_TIMEOUT = 60.0
"""Seconds one remote request (the client library's own retries inside it included) may take before it is abandoned."""
DEFAULT_READ_RETRIES = 2
"""Times a failed remote request is tried again before the read fails."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class AutotuneOptions:
    """How ``fi.AUTOTUNE`` knobs are set.

    ``enabled``: whether a tuner runs (default True). ``cpu_budget``: cores
    the pipeline may keep busy (default: the cores this process may run on).
    ``ram_budget``: bytes its buffers may hold (default: half the available
    memory). An explicit RAM budget is also a ceiling for buffers the user did
    not autotune, and starts the tuner to keep them within it.
    """

    enabled: bool | None = None
    cpu_budget: int | None = None
    ram_budget: int | None = None

    def __post_init__(self) -> None:
        check_bool("AutotuneOptions", "enabled", self.enabled, allow_none=True)
        for name in ("cpu_budget", "ram_budget"):  # 0, like None, means the default (as in tf.data)
            if getattr(self, name) is not None:
                check_int("AutotuneOptions", name, getattr(self, name), minimum=0)

    def resolved(self) -> AutotuneOptions:
        """These options with ``enabled`` defaulted (the budgets: ``cpu_cores()``, ``ram_bytes()``)."""
        return dataclasses.replace(self, enabled=self.enabled is not False)

    def cpu_cores(self) -> int:
        """The CPU budget: ``cpu_budget``, or the cores this process may run on."""
        return self.cpu_budget or available_cpus()

    def ram_bytes(self) -> int:
        """The RAM budget: ``ram_budget``, or half the memory available now."""
        return self.ram_budget or available_memory() // 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class OptimizationOptions:
    """Static rewrites applied when a pipeline is iterated (fused ops); each is on unless set to False."""

    map_and_batch_fusion: bool | None = None
    map_and_batch_out: bool | None = None
    """With ``map -> batch`` fused: a map function with an ``out=None`` parameter (``fi.image``'s convention, the
    README's ``preprocess``) is handed its batch row as ``out=``, as ``map_and_batch`` hands it, so it fills the batch
    instead of a fresh array that is then copied; such a function must give the same output with or without ``out``."""
    map_fusion: bool | None = None
    noop_elimination: bool | None = None
    shuffle_and_repeat_fusion: bool | None = None
    mix_and_batch_fusion: bool | None = None
    """``sample_from_datasets`` / ``choose_from_datasets`` -> ``batch`` as one stage that lays out whole batches."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            check_bool("OptimizationOptions", field.name, getattr(self, field.name), allow_none=True)

    def resolved(self) -> OptimizationOptions:
        """These options with every rewrite not turned off turned on (the default)."""
        return OptimizationOptions(**{field.name: getattr(self, field.name) is not False
                                      for field in dataclasses.fields(self)})


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
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)
                                    or not 0 <= retries <= 100):
            raise InvalidArgumentError(f"RemoteOptions: read_retries must be an int in [0, 100], got {retries!r}")

    def resolved(self) -> RemoteOptions:
        """These options with the defaults filled in (``DEFAULT_READ_TIMEOUT``, ``DEFAULT_READ_RETRIES``)."""
        timeout = DEFAULT_READ_TIMEOUT if self.read_timeout is None else float(self.read_timeout)
        return RemoteOptions(read_timeout=timeout,
                             read_retries=DEFAULT_READ_RETRIES if self.read_retries is None else self.read_retries)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CheckpointOptions:
    """How an iterator's state (``it.get_state()``) is kept ready.

    ``positions``: a shuffle over sources that can read elements again (TFRecord files, through interleaves)
    tracks where each buffered element came from, so its state holds (file, offset) positions instead of the
    elements: a 10,000-image buffer saves in a few hundred kilobytes rather than a gigabyte. Tracking costs
    throughput on small records (about 1 us per record), so it is off by default (a state then holds the
    buffered elements themselves); turn it on for pipelines of large records that are checkpointed.

    >>> import fastinput as fi
    >>> options = fi.Options(checkpoint=fi.CheckpointOptions(positions=True))
    """

    positions: bool | None = None

    def __post_init__(self) -> None:
        check_bool("CheckpointOptions", "positions", self.positions, allow_none=True)

    def resolved(self) -> CheckpointOptions:
        """These options with ``positions`` defaulted (off)."""
        return CheckpointOptions(positions=self.positions is True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    """Settings for a whole pipeline.

    ``deterministic``: whether parallel stages keep input order when the stage
    itself does not say (default True). ``autotune``: see ``AutotuneOptions``.
    ``optimization``: see ``OptimizationOptions``. ``remote``: see ``RemoteOptions``. ``checkpoint``: see
    ``CheckpointOptions``.

    >>> import fastinput as fi
    >>> ds = fi.Dataset.range(4).with_options(fi.Options(deterministic=False))
    """

    deterministic: bool | None = None
    autotune: AutotuneOptions = dataclasses.field(default_factory=AutotuneOptions)
    optimization: OptimizationOptions = dataclasses.field(default_factory=OptimizationOptions)
    remote: RemoteOptions = dataclasses.field(default_factory=RemoteOptions)
    checkpoint: CheckpointOptions = dataclasses.field(default_factory=CheckpointOptions)

    def __post_init__(self) -> None:
        check_bool("Options", "deterministic", self.deterministic, allow_none=True)
        for name, kind in (("autotune", AutotuneOptions), ("optimization", OptimizationOptions),
                           ("remote", RemoteOptions), ("checkpoint", CheckpointOptions)):
            if not isinstance(getattr(self, name), kind):
                raise InvalidArgumentError(f"Options: {name} must be a fi.{kind.__name__}, got {getattr(self, name)!r}")

    def merge(self, other: Options) -> Options:
        """These options overridden by every field ``other`` sets."""
        return _merge(self, other)

    def resolved(self) -> Options:
        """These options with every default filled in (``deterministic`` True, ...), as a running pipeline sees them;
        resolving twice changes nothing."""
        return Options(deterministic=self.deterministic is not False, autotune=self.autotune.resolved(),
                       optimization=self.optimization.resolved(), remote=self.remote.resolved(),
                       checkpoint=self.checkpoint.resolved())


def _merge(base: Any, override: Any) -> Any:
    changes = {}
    for field in dataclasses.fields(base):
        mine, theirs = getattr(base, field.name), getattr(override, field.name)
        if dataclasses.is_dataclass(mine):
            changes[field.name] = _merge(mine, theirs)
        elif theirs is not None:
            changes[field.name] = theirs
    return dataclasses.replace(base, **changes)


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable), or 8 GiB when it cannot be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def available_cpus() -> int:
    """Cores this process may run on (respects affinity masks and cgroup pinning)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
