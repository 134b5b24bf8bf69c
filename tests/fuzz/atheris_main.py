"""Coverage-guided fuzzing with atheris, in one process: ``python -m tests.fuzz.atheris_main --target jpeg
[libFuzzer options, e.g. -runs=100000 -max_len=4096 corpus_dir]``.

fastinput's Python code (the readers, ``example_guard``, the image argument checks) is instrumented, so
libFuzzer steers by its branches; the C extensions are not (that takes building them with clang and
``-fsanitize=fuzzer-no-link``), so inside them it fuzzes blind, like ``run``. Each target makes its input
from the fuzzer's bytes (``from_fuzzer_bytes``); ``--corpus DIR --seed-inputs N`` first writes N inputs
of the seeded generator there (``fuzzer_bytes``) for libFuzzer to start from. A mismatch raises; a crash
ends the process; either way libFuzzer saves the input as ``crash-<sha1>`` (replay: pass that file as the
only argument).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tests.fuzz.runner import ORACLE_SKIPPED, TARGETS, make_input, target_module


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.atheris_main", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=TARGETS, required=True)
    parser.add_argument("--corpus", type=Path, help="libFuzzer's corpus directory (made if missing)")
    parser.add_argument("--seed-inputs", type=int, default=0, help="generated inputs to write to --corpus first")
    args, libfuzzer_args = parser.parse_known_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install atheris")
    with atheris.instrument_imports(include=["fastinput"]):
        import fastinput  # noqa: F401
        import fastinput.fused_ops.image  # noqa: F401
        import fastinput.readers.example  # noqa: F401
        import fastinput.readers.tfrecord  # noqa: F401
    target = target_module(args.target)
    target.prepare()
    if args.corpus:
        args.corpus.mkdir(parents=True, exist_ok=True)
        for index in range(args.seed_inputs):
            (args.corpus / f"seed-{index}").write_bytes(target.fuzzer_bytes(make_input(target, 0, index)))
        libfuzzer_args.append(str(args.corpus))

    def test_one_input(data: bytes) -> None:
        outcome = target.check(target.from_fuzzer_bytes(data), lambda: None)
        if outcome is not None and outcome != ORACLE_SKIPPED:
            raise AssertionError(outcome)

    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
