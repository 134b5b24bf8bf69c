"""``fastinput-bench``: how many images (examples, rows) per second can an input pipeline feed?

The model is infinitely fast: the consumer does nothing but take each batch
(on ``--device`` when given), so any shortfall is the input pipeline's.
Each subcommand runs fastinput's pipeline and, with ``--compare tf.data``,
the equivalent tf.data pipeline in the same process, then prints a table.

    fastinput-bench images --synthetic --compare tf.data
    fastinput-bench images --synthetic --compare tf.data --pipeline readme --busy-cores 1
    fastinput-bench tabular --data gs://bucket/criteo/ --batch-size 4096 --json tabular.json
    fastinput-bench csv --data 'data/part-*.csv' --compare tf.data
    fastinput-bench report images.json tabular.json csv.json > fastinput_bench/RESULTS.md

Errors (a missing path, an empty folder, a file that is not a TFRecord,
bad numbers) end the run with one ``fastinput-bench: error: ...`` line on
stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from fastinput.errors import FastInputError
from fastinput.fused_ops import jpeg_kernel  # internal: whether the fast JPEG kernel is built
from fastinput.optional import tensorflow
from fastinput_bench import results
from fastinput_bench.busy import busy_cores
from fastinput_bench.datafiles import resolve_files
from fastinput_bench.devices import resolve_device, tf_data_to_device
from fastinput_bench.measure import Beside, Measurement, measure, reset_peak_memory
from fastinput_bench.pipelines import IMAGE_PIPELINES, USER_PIPELINES, WORKLOADS, PipelineConfig, Workload
from fastinput_bench.report import (
    KERNEL,
    ProgressBar,
    format_machine,
    json_document,
    profile_lines,
    profile_summary,
    results_table,
)
from fastinput_bench.synthetic import SIZES, cache_root, synthetic_files

PROG = "fastinput-bench"
DESCRIPTION = ("How many images (examples, rows) per second can an input pipeline feed an infinitely fast model? "
               "fastinput's pipeline, and tf.data's with --compare tf.data, on your data or a synthetic set.")
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class UsageError(Exception):
    """A bad command line; reported as one line, without argparse's usage block."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:
        message = _expected_error(exc)
        if message is None:
            raise
        return _fail(message, EXIT_ERROR)


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def _expected_error(exc: Exception) -> str | None:
    """The one-line message for errors a user can cause (bad data, storage, missing packages); None for bugs."""
    if isinstance(exc, (FastInputError, OSError, ImportError)):
        return str(exc)
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(exc, tf.errors.OpError):
        return f"tf.data: {exc.message.strip().splitlines()[0]}"
    return None


# -- the command line -----------------------------------------------------------


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "an integer >= 0")


def _int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=DESCRIPTION)
    subcommands = parser.add_subparsers(dest="subcommand", required=True, metavar="{images,tabular,csv,report}",
                                        parser_class=_Parser)
    for workload in WORKLOADS.values():
        sub = subcommands.add_parser(workload.name, help=workload.description, description=workload.description)
        _add_benchmark_arguments(sub, workload)
        sub.set_defaults(handler=run_benchmark)
    report = subcommands.add_parser("report", help="write RESULTS.md (Markdown) from JSON results",
                                    description=results.__doc__.split("\n\n")[0])
    results.add_arguments(report)
    report.set_defaults(handler=results.run)
    return parser


def _add_benchmark_arguments(sub: argparse.ArgumentParser, workload: Workload) -> None:
    data = sub.add_mutually_exclusive_group(required=True)
    data.add_argument("--data", metavar="PATH_OR_URL",
                      help="a file, glob pattern or folder, local or remote (s3://, gs://, any fsspec URL)")
    data.add_argument("--synthetic", action="store_true",
                      help="use the cached synthetic set (written on first use)")
    sub.add_argument("--synthetic-size", choices=sorted(SIZES), default="default",
                     help="size of the synthetic set (small: for tests)")
    sub.add_argument("--cache-dir",
                     help="folder of the synthetic sets (default: $FASTINPUT_CACHE or ~/.cache/fastinput)")
    sub.add_argument("--batch-size", type=_positive_int, default=workload.default_batch_size,
                     help=f"default {workload.default_batch_size}")
    sub.add_argument("--steps", type=_positive_int, default=200, help="batches timed (default 200)")
    sub.add_argument("--warmup", type=_non_negative_int, default=20, help="batches taken before timing (default 20)")
    sub.add_argument("--intervals", type=_positive_int, default=10,
                     help="timed stretches the median and spread are taken over (default 10)")
    sub.add_argument("--device", help="copy batches to this device ahead of the step: /gpu:0, cuda:0, cpu, jax:0")
    sub.add_argument("--compare", choices=["tf.data"], help="also run the equivalent tf.data pipeline")
    sub.add_argument("--trace", metavar="FILE", help="write the profiler's trace of fastinput's run")
    sub.add_argument("--json", metavar="FILE", help="write the results as JSON")
    sub.add_argument("--quiet", action="store_true", help="no progress bar")
    sub.add_argument("--busy-cores", type=_non_negative_int, default=0, metavar="N",
                     help="keep N cores busy beside the pipelines, as a training step's host work would, and report "
                          "the share of their work alone they did while each pipeline ran (default 0)")
    if workload.name == "images":
        sub.add_argument("--dtype", choices=["uint8", "float32"], default="uint8", help="image dtype (default uint8)")
        sub.add_argument("--kernel-limit", action="store_true",
                         help="also time the JPEG decode kernel alone, one thread per core, on the same JPEGs: the "
                              "ceiling any pipeline can reach here, and fastinput's share of it")
        sub.add_argument("--pipeline", choices=list(IMAGE_PIPELINES), default="tuned",
                         help="fastinput's pipeline: tuned (hand-built: batch the records, one map parses and decodes "
                              "the batch; default), readme (the README's map_and_batch of a per-record function), "
                              "map-batch (that function with map -> batch); tf.data's stays its standard one")
    else:
        sub.add_argument("--label", default="label",
                         help="label feature/column split off (default: label; '' for none)")


# -- running a benchmark --------------------------------------------------------


def run_benchmark(args: argparse.Namespace) -> int:
    """One benchmark subcommand: check the arguments, find (or write) the data, measure, report."""
    workload = WORKLOADS[args.subcommand]
    device = resolve_device(args.device) if args.device else None
    for option in ("json", "trace"):
        _check_output_path(option, getattr(args, option))
    if getattr(args, "pipeline", None) in USER_PIPELINES and args.dtype != "uint8":
        raise UsageError(f"--pipeline {args.pipeline} decodes uint8 images, as the README does; "
                         f"--dtype {args.dtype} needs --pipeline tuned")
    if workload.name == "images":
        jpeg_kernel.warn_if_not_built()  # said before the progress bar, in plain words, with how to build it
    files, source = _prepare_data(args, workload)
    config = PipelineConfig(files, args.batch_size, getattr(args, "dtype", "uint8"),
                            getattr(args, "label", None) or None, getattr(args, "pipeline", "tuned"))

    measurements: dict[str, Measurement] = {}
    kernel_limit = getattr(args, "kernel_limit", False)
    with busy_cores(args.busy_cores) as busy:
        beside = busy.alone_seconds  # what each run leaves them (None without busy cores)
        # the kernel right before and right after fastinput: the machine's speed drifts by several percent
        # within a minute, and the ceiling is to be the one fastinput ran under
        kernel_before = _run_kernel(config, args, beside) if kernel_limit else None
        measurements["fastinput"], profile = _run_fastinput(workload, config, device, args, beside)
        if kernel_before is not None:
            measurements[KERNEL] = kernel_before.pooled(_run_kernel(config, args, beside))
        if args.compare:
            measurements["tf.data"] = _run_tf_data(workload, config, device, args, beside)

    document = json_document(workload.name, workload.description, workload.unit, _config(args, source, files),
                             measurements, profile)
    print("\n\n".join([
        f"{PROG} {workload.name}: {workload.description}\n"
        f"data: {source}; batch {args.batch_size}{_extras(args)}; "
        f"{args.steps} batches timed in {min(args.intervals, args.steps)} intervals after {args.warmup} warm-up",
        results_table(workload.unit, list(measurements.items()), _labels(args)),
        profile_lines(profile),
        f"machine: {format_machine(document['machine'])}; the machine may be shared: compare ratios from one run",
    ]))
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    return 0


def _prepare_data(args: argparse.Namespace, workload: Workload) -> tuple[list[str], str]:
    """The files to read and where they came from; TensorFlow imported when either pipeline needs it.

    ``--data`` is resolved first, so a bad path fails before the seconds TensorFlow takes to import.
    """
    given = None if args.synthetic else _given_files(args, workload)
    bar = _progress_bar(args, "", workload.unit)
    try:
        if workload.name != "csv" or args.compare:
            bar.status("importing TensorFlow ...")
            _import_tensorflow()
        return given or _synthetic_files(args, workload, bar)
    finally:
        bar.clear()


def _check_output_path(option: str, path: str | None) -> None:
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise UsageError(f"argument --{option}: the folder of {path} does not exist")


def _progress_bar(args: argparse.Namespace, label: str, unit: str) -> ProgressBar:
    return ProgressBar(label, args.warmup, args.steps, unit, enabled=not args.quiet)


def _import_tensorflow() -> None:
    """Import TensorFlow with file descriptor 2 silenced, then restored.

    Its start-up notes (absl's "log messages before InitializeLog", "Could not
    find cuda drivers") are written straight to fd 2 and no setting turns
    them off; they would bury the progress bar and error lines. Exceptions
    from the import are raised as usual, after stderr is back.
    Its Python-level noise is turned off too: deprecation notes that tf.data's
    own readers log, and numpy warnings from its CSV type inference.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            tf = tensorflow("fastinput-bench (the synthetic sets, tf.data's pipelines)")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", module=r"tensorflow\.")


def _given_files(args: argparse.Namespace, workload: Workload) -> tuple[list[str], str]:
    """The files ``--data`` names, and where they came from."""
    files = resolve_files(args.data, workload.folder_pattern)
    return files, f"{len(files)} file(s) from {args.data}"


def _synthetic_files(args: argparse.Namespace, workload: Workload, bar: ProgressBar) -> tuple[list[str], str]:
    """The synthetic set's files (written now if not cached yet), and where they are."""
    root = cache_root(args.cache_dir)
    bar.status(f"preparing the synthetic {workload.name} set in {root} (written once; may take a minute) ...")
    files = synthetic_files(workload.name, args.synthetic_size, root)
    return files, f"synthetic ({args.synthetic_size}), {len(files)} files in {Path(files[0]).parent}"


def _extras(args: argparse.Namespace) -> str:
    """The settings shown after the batch size: the image dtype and pipeline, the device, the busy cores."""
    extras = f", {args.dtype}, {args.pipeline} pipeline" if hasattr(args, "dtype") else ""
    extras += f", on {args.device}" if args.device else ""
    return extras + (f", {args.busy_cores} busy core(s) beside" if args.busy_cores else "")


def _labels(args: argparse.Namespace) -> dict[str, str]:
    """The table's name for fastinput's row: with the image pipeline's variant, when there is a choice."""
    return {"fastinput": f"fastinput ({args.pipeline})"} if hasattr(args, "pipeline") else {}


def _config(args: argparse.Namespace, source: str, files: list[str]) -> dict[str, Any]:
    keys = ("data", "synthetic", "synthetic_size", "batch_size", "steps", "warmup", "intervals", "device", "compare",
            "dtype", "pipeline", "label", "busy_cores", "kernel_limit")
    config = {key: getattr(args, key) for key in keys if hasattr(args, key)}
    config.update(source=source, files=len(files))
    return config


def _run_fastinput(workload: Workload, config: PipelineConfig, device: Any, args: argparse.Namespace,
                   beside: Beside) -> tuple[Measurement, dict[str, Any]]:
    """fastinput's measurement, and the profiler's verdict on the run (traced to ``--trace`` if given)."""
    from fastinput import profiler

    reset_peak_memory()
    dataset = workload.fastinput(config)
    if device is not None:
        dataset = dataset.prefetch_to_device(device)
    bar = _progress_bar(args, "fastinput", workload.unit)
    try:
        with profiler.trace(args.trace) if args.trace else contextlib.nullcontext(), iter(dataset) as iterator:
            measurement = measure(iterator, warmup=args.warmup, steps=args.steps, intervals=args.intervals,
                                  progress=bar, beside=beside)
            return measurement, profile_summary(profiler.analyze(iterator))
    finally:
        bar.clear()


def _run_kernel(config: PipelineConfig, args: argparse.Namespace, beside: Beside) -> Measurement:
    """The decode kernel alone on the run's JPEGs (``kernel_limit``), timed as the pipelines are (half the steps: it
    runs twice)."""
    from fastinput_bench.kernel_limit import kernel_batches, load_jpegs

    reset_peak_memory()
    bar = _progress_bar(args, KERNEL, "images")
    try:
        with kernel_batches(load_jpegs(config.files), config.batch_size, config.dtype) as batches:
            return measure(batches, warmup=args.warmup, steps=max(1, args.steps // 2),
                           intervals=max(1, args.intervals // 2), progress=bar, beside=beside)
    finally:
        bar.clear()


def _run_tf_data(workload: Workload, config: PipelineConfig, device: Any, args: argparse.Namespace,
                 beside: Beside) -> Measurement:
    reset_peak_memory()
    dataset, copy = workload.tf_data(config), None
    if device is not None:
        dataset, copy = tf_data_to_device(dataset, device)
    batches = iter(dataset)
    bar = _progress_bar(args, "tf.data", workload.unit)
    try:
        return measure(map(copy, batches) if copy else batches, warmup=args.warmup, steps=args.steps,
                       intervals=args.intervals, progress=bar, beside=beside)
    finally:
        bar.clear()


if __name__ == "__main__":
    sys.exit(main())
