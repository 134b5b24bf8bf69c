"""The fuzz campaign command: ``python -m tests.fuzz.run --target example --inputs 1000000``.

Prints the figures (inputs, crashes, hangs, mismatches) and every failure with the file its input was
saved to; exits 1 if there was any. ``--replay FILE`` runs one saved input in this process instead.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

from tests.fuzz.runner import TARGETS, run_campaign, target_module


def replay(path: Path) -> int:
    """Run one saved input here (a crash then shows its traceback, under a debugger if you like)."""
    name, inp = pickle.loads(path.read_bytes())
    target = target_module(name)
    target.prepare()
    outcome = target.check(inp, lambda: print("running the oracle (TensorFlow)", flush=True))
    print(f"{name}: {outcome or 'no mismatch'}")
    return 1 if outcome and outcome != "oracle skipped" else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=TARGETS, action="append", help="repeat for several (default: all)")
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="first input index (to resume a campaign)")
    parser.add_argument("--batch", type=int, default=5000, help="inputs per child process")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one input may take")
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="where failing inputs go")
    parser.add_argument("--replay", type=Path, help="run one saved input (a .pickle) in this process")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.replay:
        return replay(args.replay)
    failed = False
    for name in args.target or TARGETS:
        report = run_campaign(name, args.inputs, args.seed, out_dir=args.out, batch=args.batch,
                              input_timeout=args.timeout, start=args.start, progress=True)
        print(report.summary())
        for failure in report.failures:
            print("  " + failure)
        failed = failed or bool(report.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
