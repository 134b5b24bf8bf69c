"""One fuzz child: ``python -m tests.fuzz.child TARGET SEED FIRST STOP`` runs inputs FIRST .. STOP-1.

It speaks the line protocol ``runner`` reads (see there). Where the target runs without TensorFlow, its
address space is capped (``MEMORY_LIMIT``), so an input that asks for a huge allocation fails it rather
than the machine.
"""

from __future__ import annotations

import json
import os
import resource
import sys

from tests.fuzz.runner import ORACLE_SKIPPED, make_input, target_module


class _Protocol:
    """The child's side of the line protocol."""

    def __init__(self) -> None:
        self.index = 0

    def say(self, line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def oracle(self) -> None:
        """Called by a target just before it runs TensorFlow on the current input."""
        self.say(f"O {self.index}")


def main(argv: list[str]) -> None:
    name, seed, first, stop = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    target = target_module(name)
    target.prepare()  # may find it runs on TensorFlow after all, and lift MEMORY_LIMIT
    if target.MEMORY_LIMIT is not None:
        resource.setrlimit(resource.RLIMIT_AS, (target.MEMORY_LIMIT, target.MEMORY_LIMIT))
    protocol = _Protocol()
    protocol.say("READY")
    for index in range(first, stop):
        protocol.index = index
        protocol.say(f"F {index}")
        inp = make_input(target, seed, index)
        outcome = target.check(inp, protocol.oracle)
        if outcome == ORACLE_SKIPPED:
            protocol.say(f"S {index}")
        elif outcome is not None:
            protocol.say(f"M {index} {json.dumps(outcome)}")
    protocol.say("END")


if __name__ == "__main__":
    main(sys.argv[1:])
