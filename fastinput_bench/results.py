"""RESULTS.md from benchmark JSON files: ``fastinput-bench report FILE... > fastinput_bench/RESULTS.md``.

``fastinput-bench`` documents (``"format": "fastinput-bench/1"``) become one
row each of the main table: rates (median and min-max over the timed
intervals), the ratio to tf.data, CPU and peak memory, and the command that
reproduces the row. Any other JSON file (the other ``fastinput_bench/*.py``
scripts' ``--json`` output) gets a section of its own under "Other
benchmarks", named after the file's stem: its scalar fields as a key/value
table, each list of records or dict of records as a table of its own. The
machine (cores, memory, CPU) is stated from the documents themselves.

    python -m fastinput_bench.results images.json tabular.json csv.json core_map.json > fastinput_bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastinput.errors import InvalidArgumentError
from fastinput_bench.measure import relative_spread
from fastinput_bench.report import JSON_FORMAT, KERNEL, format_bytes, format_machine, format_share, machine_info

_RANGE = "min-max over the timed intervals, and max - min as a share of the median"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSON results (fastinput-bench --json, or any other)")
    parser.add_argument("-o", "--output", help="write here instead of stdout")


def run(args: argparse.Namespace) -> int:
    """The ``report`` subcommand: render ``args.files`` to ``args.output`` or stdout."""
    text = render([(Path(name).stem, _load(name)) for name in args.files], command=_report_command(args))
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _report_command(args: argparse.Namespace) -> str:
    output = f" -o {args.output}" if args.output else ""
    return f"fastinput-bench report {' '.join(args.files)}{output}"


def _load(name: str) -> Any:
    try:
        return json.loads(Path(name).read_text())
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"{name}: not a JSON file ({exc})") from exc


def render(documents: Sequence[tuple[str, Any]], command: str = "fastinput-bench report") -> str:
    """The Markdown of RESULTS.md for ``(name, parsed JSON)`` pairs, in the order given; ``command`` made it."""
    bench = [doc for _, doc in documents if isinstance(doc, dict) and doc.get("format") == JSON_FORMAT]
    others = [(name, doc) for name, doc in documents
              if not (isinstance(doc, dict) and doc.get("format") == JSON_FORMAT)]
    lines = ["# Benchmark results", "",
             f"Generated from the benchmarks' JSON output by `{command}`; do not edit by hand.", ""]
    lines += _machine_lines(bench)
    if bench:
        lines += ["", "## fastinput-bench: examples/sec against an infinitely fast model", ""]
        lines += _bench_table(bench)
        lines += ["", "Reproduce:", ""] + [f"    {_command(doc)}" for doc in bench]
    if others:
        lines += ["", "## Other benchmarks", ""]
        for name, doc in others:
            lines += [f"### {name}", ""] + generic_tables(doc) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _machine_lines(bench: list[dict[str, Any]]) -> list[str]:
    machines = {json.dumps(doc["machine"], sort_keys=True): doc["machine"] for doc in bench}
    if not machines:
        return [f"Machine (where this report was generated): {format_machine(machine_info())}."]
    lines = [f"Machine: {format_machine(m)}; Python {m['python']}, TensorFlow {m.get('tensorflow', '-')}, "
             f"fastinput {m['fastinput']}." for m in machines.values()]
    return lines + ["", "Rates are medians over timed intervals on a machine that may be shared with other work: "
                        "compare the ratios measured in one run, not absolute rates across runs."]


def _bench_table(bench: list[dict[str, Any]]) -> list[str]:
    header = ["benchmark", "data", "batch", "fastinput", "tf.data", "fastinput / tf.data", "fastinput / decode kernel",
              "CPU (fi / tf)", "peak memory (fi / tf)", "busy processes' work, of alone (fi / tf)"]
    rows = []
    for doc in bench:
        config, found = doc["config"], doc["results"]
        fast, tf, kernel = found.get("fastinput"), found.get("tf.data"), found.get(KERNEL)
        batch = f"{config['batch_size']}" + (f", {config['dtype']}" if config.get("dtype") else "")
        rows.append([
            f"{doc['subcommand']}: {doc['description']}{_variant(config)}", _data(config), batch,
            _rate(fast, doc["unit"]), _rate(tf, doc["unit"]),
            f"{doc['ratio']:.2f}x" if doc.get("ratio") else "-",
            f"{doc['kernel_share']:.1%} of {_rate(kernel, doc['unit'])}" if doc.get("kernel_share") else "-",
            " / ".join(f"{r['cpu_utilization']:.0%}" for r in (fast, tf) if r),
            " / ".join(format_bytes(r["peak_memory_bytes"]) for r in (fast, tf) if r),
            _beside(fast, tf),
        ])
    return _markdown_table(header, rows) + ["", f"Rates: median ({_RANGE})."]


def _beside(*found: dict[str, Any] | None) -> str:
    """The busy processes' (``--busy-cores``) work while each library was timed, as a share of their work alone;
    ``-`` without them (or from a JSON file written before it was measured)."""
    shares = [r.get("beside_share") for r in found if r]
    if all(share is None for share in shares):
        return "-"
    return " / ".join(format_share(share) for share in shares)


def _variant(config: dict[str, Any]) -> str:
    """`` (readme pipeline, 1 busy core(s) beside)``: the settings that change what fastinput's row measures."""
    notes = [f"{config['pipeline']} pipeline"] if config.get("pipeline") else []
    notes += [f"{config['busy_cores']} busy core(s) beside"] if config.get("busy_cores") else []
    return f" ({', '.join(notes)})" if notes else ""


def _data(config: dict[str, Any]) -> str:
    where = f"synthetic ({config['synthetic_size']})" if config["synthetic"] else f"`{config['data']}`"
    return f"{where}, {config['files']} files"


def _rate(result: dict[str, Any] | None, unit: str) -> str:
    if result is None:
        return "-"
    low, high, median = result["min_per_second"], result["max_per_second"], result["median_per_second"]
    return f"{median:,.0f} {unit}/s ({low:,.0f}-{high:,.0f}, {relative_spread(low, high, median):.0%})"


def _command(doc: dict[str, Any]) -> str:
    """The ``fastinput-bench`` command line that produced ``doc``."""
    config = doc["config"]
    parts = ["fastinput-bench", doc["subcommand"]]
    if not config["synthetic"]:
        parts += ["--data", config["data"]]
    elif config["synthetic_size"] == "default":
        parts += ["--synthetic"]
    else:
        parts += ["--synthetic", "--synthetic-size", config["synthetic_size"]]
    for key in ("batch_size", "steps", "warmup", "intervals", "device", "compare", "dtype", "pipeline", "label",
                "busy_cores"):
        if config.get(key) not in (None, "") and not (key == "busy_cores" and config[key] == 0):
            parts += [f"--{key.replace('_', '-')}", str(config[key])]
    return " ".join(parts + (["--kernel-limit"] if config.get("kernel_limit") else []))


def generic_tables(doc: Any) -> list[str]:
    """Markdown for any JSON value: scalars as a key/value table, lists and dicts of records as tables."""
    scalars: list[list[str]] = []
    tables: list[str] = []
    _collect(doc, "", scalars, tables)
    lines = _markdown_table(["key", "value"], scalars) if scalars else []
    return lines + tables


def _collect(value: Any, key: str, scalars: list[list[str]], tables: list[str]) -> None:
    if isinstance(value, dict) and value and all(_is_record(v) for v in value.values()) and len(value) > 1:
        columns = _columns(list(value.values()))
        tables += ["", f"{key or 'results'}:", ""]
        tables += _markdown_table(["name", *columns],
                                  [[k, *(_cell(v.get(c)) for c in columns)] for k, v in value.items()])
    elif isinstance(value, dict):
        for k, v in value.items():
            _collect(v, f"{key}.{k}" if key else str(k), scalars, tables)
    elif isinstance(value, list) and value and all(_is_record(v) for v in value):
        columns = _columns(value)
        tables += ["", f"{key or 'results'}:", ""]
        tables += _markdown_table(columns, [[_cell(v.get(c)) for c in columns] for v in value])
    else:
        scalars.append([key or "value", _cell(value)])


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and all(not isinstance(v, (dict, list)) for v in value.values())


def _columns(records: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for record in records for k in record))


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, list):
        return "; ".join(_cell(v) for v in value)
    return str(value).replace("|", "\\|")


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(row) + " |" for row in rows])


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastinput_bench.results FILE...``: the same as ``fastinput-bench report``."""
    parser = argparse.ArgumentParser(prog="python -m fastinput_bench.results", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
