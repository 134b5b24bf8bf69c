"""A target for testing the runner itself: input i crashes, hangs, mismatches or passes, as ``make_input`` says."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np

NAME = "selftest"
MEMORY_LIMIT = None
ACTIONS = {3: "crash", 5: "hang", 7: "mismatch", 8: "oracle crash"}
"""What input i does with seed 0; every other input passes."""


def prepare() -> None:
    pass


def make_input(rng: np.random.Generator) -> str:
    index = int(rng.bit_generator.seed_seq.entropy[1])  # the input's index: seeds are (seed, index)
    return ACTIONS.get(index, "pass")


def from_fuzzer_bytes(data: bytes) -> str:
    return "pass"


def fuzzer_bytes(inp: str) -> bytes:
    return inp.encode()


def payload(inp: str) -> tuple[bytes, str]:
    return inp.encode(), ".txt"


def check(inp: str, oracle: Callable[[], None]) -> str | None:
    if inp == "crash":
        os.abort()
    if inp == "hang":
        time.sleep(3600)
    if inp == "oracle crash":
        oracle()
        os.abort()
    return "told to mismatch" if inp == "mismatch" else None
