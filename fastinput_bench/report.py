"""What ``fastinput-bench`` shows and writes: the progress bar, the results table and the JSON document.

The table is meant to be read at a glance: one row per pipeline with the
median rate over the timed intervals, their spread (min-max, and max - min as a share of the median), CPU
utilisation and peak memory, then the ratio line when tf.data was measured
too. The JSON document holds the same figures plus every interval's rate and
the machine, and is what ``fastinput_bench.results`` turns into RESULTS.md.
Under the table comes the profiler's verdict on fastinput's run (from
``fastinput.profiler.analyze``): the stage that limits it and what to change.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from fastinput.options import available_cpus
from fastinput_bench.measure import Measurement

if TYPE_CHECKING:
    from fastinput.profiler import Report

JSON_FORMAT = "fastinput-bench/1"
KERNEL = "decode kernel"
"""The name of ``--kernel-limit``'s row: the JPEG decode kernel alone, one thread per core (``kernel_limit``)."""
"""The ``format`` field of the CLI's JSON documents (``fastinput_bench.results`` recognises them by it)."""

_BAR_WIDTH = 28
_REDRAW_SECONDS = 0.1


class ProgressBar:
    """A one-line progress bar on a terminal, redrawn in place with ``\\r`` at most ten times a second.

    Draws nothing when ``enabled`` is False (``--quiet``) or the stream is not a terminal.
    """

    def __init__(self, label: str, warmup: int, steps: int, unit: str, stream: TextIO = sys.stderr,
                 enabled: bool = True) -> None:
        self._label = label
        self._warmup = warmup
        self._total = warmup + steps
        self._unit = unit
        self._stream = stream
        self._enabled = enabled and stream.isatty()
        self._last_draw = 0.0
        self._width = 0

    def __call__(self, taken: int, rate: float | None) -> None:
        """Show ``taken`` batches of the total; ``rate`` is the latest interval's examples/sec, if any."""
        if not self._enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < _REDRAW_SECONDS and taken < self._total:
            return
        self._last_draw = now
        filled = _BAR_WIDTH * taken // self._total
        phase = "warming up" if taken < self._warmup else (f"{rate:,.0f} {self._unit}/s" if rate else "timing")
        line = f"{self._label:<10} [{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {taken}/{self._total} batches  {phase}"
        self._stream.write("\r" + line.ljust(self._width))
        self._width = len(line)
        self._stream.flush()

    def status(self, text: str) -> None:
        """Show a line of text in the bar's place (e.g. while synthetic data is written)."""
        if self._enabled:
            self._stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self._stream.flush()

    def clear(self) -> None:
        """Erase the bar, leaving the cursor at the start of an empty line."""
        if self._enabled and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0


def machine_info() -> dict[str, Any]:
    """The machine the figures come from: cores usable by this process, memory, CPU model, software versions."""
    import fastinput

    info: dict[str, Any] = {
        "cores": available_cpus(),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "fastinput": fastinput.__version__,
    }
    if "tensorflow" in sys.modules:
        info["tensorflow"] = sys.modules["tensorflow"].__version__
    return info


def script_machine() -> dict[str, Any]:
    """Where a benchmark script ran, for its JSON: cores, Python, and the load average then (the machine may be
    shared, and a figure taken under load is not comparable with a quiet one)."""
    return {"cores": available_cpus(), "python": platform.python_version(), "load_average": os.getloadavg()[0]}


def write_figures(path: str | None, figures: dict[str, Any]) -> None:
    """Write a benchmark script's ``--json`` output to ``path`` (nothing without one). A document that does not say
    where it ran gets ``script_machine()``, so every figure RESULTS.md shows carries its core count."""
    if not path:
        return
    document = figures if "machine" in figures else {"machine": script_machine(), **figures}
    with open(path, "w") as f:
        json.dump(document, f, indent=2)


def process_cpu(pid: int, thread: int | None = None) -> float:
    """User plus system CPU seconds of process ``pid`` so far (of its thread ``thread`` only, if given), from Linux's
    ``/proc``: a thread that has ended raises ``FileNotFoundError`` (or ``ProcessLookupError`` if it ends between the
    open and the read)."""
    with open(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_model() -> str:
    """The CPU's model name, with its family and model numbers where the name is a generic one (a VM's "AMD EPYC"
    names every generation alike: figures from a Zen 4 and a Zen 5 host differ by a fifth)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                if not line.strip() and fields:
                    break  # the first processor's block is enough
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        return f"{name}, family {fields['cpu family']} model {fields['model']}"
    return name


def format_machine(machine: dict[str, Any]) -> str:
    """``2 cores, 23.4 GiB memory (CPU model)``."""
    return f"{machine['cores']} cores, {machine['memory_bytes'] / 2**30:.1f} GiB memory ({machine['cpu']})"


def format_share(share: float | None) -> str:
    """A share as a percentage (``58%``), ``-`` where not measured."""
    return "-" if share is None else f"{share:.0%}"


def format_bytes(count: float) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


def results_table(unit: str, rows: Sequence[tuple[str, Measurement]], labels: Mapping[str, str] | None = None) -> str:
    """The table of pipelines and their figures, and the ratio line when tf.data was measured.

    ``labels``: the name shown for a row, where it is not the row's own (``fastinput (readme)``).
    """
    head = ("pipeline", f"{unit}/s (median)", "spread (min-max, of median)", "CPU", "peak memory")
    cells = [head] + [
        ((labels or {}).get(name, name), f"{m.median:,.0f}",
         f"{m.minimum:,.0f}-{m.maximum:,.0f} ({m.relative_spread:.0%})",
         f"{m.cpu_utilization:.0%}", format_bytes(m.peak_memory_bytes))
        for name, m in rows
    ]
    if any(m.beside_share is not None for _, m in rows):  # --busy-cores: what each run left the processes beside
        cells = [cells[0] + ("busy processes' work, of alone",)] + [
            row + (format_share(m.beside_share),) for row, (_, m) in zip(cells[1:], rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    ratio = comparison_ratio(dict(rows))
    if ratio is not None:
        lines.append(f"fastinput / tf.data: {ratio:.2f}x ({unit}/s, medians)")
    share = kernel_share(dict(rows))
    if share is not None:
        lines.append(f"fastinput / {KERNEL}: {share:.1%} (the share of the ceiling it reaches; {unit}/s, medians)")
    return "\n".join(lines)


def comparison_ratio(measurements: dict[str, Measurement]) -> float | None:
    """fastinput's median rate over tf.data's, when both were measured."""
    return _median_ratio(measurements, "tf.data")


def kernel_share(measurements: dict[str, Measurement]) -> float | None:
    """fastinput's median rate over the decode kernel's alone (``--kernel-limit``), when both were measured."""
    return _median_ratio(measurements, KERNEL)


def _median_ratio(measurements: dict[str, Measurement], other: str) -> float | None:
    if "fastinput" in measurements and other in measurements:
        return measurements["fastinput"].median / measurements[other].median
    return None


def profile_summary(report: Report) -> dict[str, Any]:
    """The profiler's verdict on a run, as plain data: input wait share, limiting stage, recommendation."""
    return {
        "pipeline": report.pipeline,
        "input_wait_share": report.input_wait_share,
        "input_bound": report.input_bound,
        "limiting_stage": report.limiting_stage,
        "verdict": report.verdict,
        "recommendation": report.recommendation,
        "suggestions": list(report.suggestions),
    }


def profile_lines(profile: dict[str, Any]) -> str:
    """The profiler's verdict in a few lines, for under the table."""
    lines = [f"fastinput profile: waited for input {profile['input_wait_share']:.0%} of the time "
             f"({profile['input_bound']}; the model is infinitely fast)",
             f"  slowest stage: {profile['limiting_stage'] or '-'}",
             f"  verdict: {profile['verdict']}",
             f"  recommendation: {profile['recommendation']}"]
    return "\n".join(lines + [f"  also: {suggestion}" for suggestion in profile["suggestions"]])


def json_document(subcommand: str, description: str, unit: str, config: dict[str, Any],
                  measurements: dict[str, Measurement], profile: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable results of one ``fastinput-bench`` run."""
    return {
        "format": JSON_FORMAT,
        "subcommand": subcommand,
        "description": description,
        "unit": unit,
        "config": config,
        "machine": machine_info(),
        "results": {name: m.as_dict() for name, m in measurements.items()},
        "ratio": comparison_ratio(measurements),
        "kernel_share": kernel_share(measurements),
        "profile": profile,
    }
