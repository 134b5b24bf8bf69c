"""Fuzz target: the buffered shuffle's C kernel (``fastinput.ops._shuffle``) and the shuffle built on it.

An input is a kernel call and a pipeline. The call: a buffer, incoming elements, positions or none, a block of
random numbers (now and then one that is no float in [0, 1): NaN, infinities, 1.0, a negative, an int, a string),
a count (now and then beyond what the lists hold, or negative) and which function (``draw`` or ``drain``). Where
the arguments are good, the kernel must do what its Python fallback does (the same elements out, the same lists
after); where they are not, it must raise TypeError or ValueError and leave every list as it was. The pipeline:
``range(n).shuffle(buffer, seed)``, repeated, fused with the repeat or not, with the kernel and with the fallback:
the same elements, and a state saved at a point picked from the input restores to the same rest. The shuffle's
draws are fastinput's own (tf.data's differ), so TensorFlow is no oracle here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

NAME = "shuffle"
MEMORY_LIMIT = 3 << 30
"""The child runs without TensorFlow: an allocation sized by a bad count fails it, not the machine."""
_BAD_RANDOMS: list[Any] = [float("nan"), float("inf"), -float("inf"), 1.0, -0.0 - 1e-300, -0.5, 2.0, 1, 0, "0.5",
                           None, np.float64(0.25)]
"""Values no random number of the shuffle's can be (np.float64 is a float subclass, not a float: refused too)."""

Input = dict[str, Any]


def prepare() -> None:
    import fastinput  # noqa: F401


def make_input(rng: np.random.Generator) -> Input:
    drain = bool(rng.random() < 0.4)
    size = int(rng.integers(0, 40)) if rng.random() < 0.9 else int(rng.integers(40, 3000))
    incoming = 0 if drain else int(rng.integers(0, 60))
    randoms = rng.random(int(rng.integers(0, 80))).tolist()
    if randoms and rng.random() < 0.2:
        randoms[int(rng.integers(len(randoms)))] = _BAD_RANDOMS[int(rng.integers(len(_BAD_RANDOMS)))]
    limit = min(size if drain else incoming, len(randoms))
    count = int(rng.integers(0, limit + 1)) if rng.random() < 0.85 else int(rng.integers(-3, limit + 10))
    return {"drain": drain, "size": size, "incoming": incoming, "randoms": randoms, "count": count,
            "positions": bool(rng.random() < 0.5), "pipeline": _pipeline_input(rng)}


def _pipeline_input(rng: np.random.Generator) -> dict[str, Any]:
    return {"n": int(rng.integers(0, 3000)), "buffer": int(rng.integers(1, 1200)), "seed": int(rng.integers(2**31)),
            "epochs": int(rng.integers(1, 4)), "batch": int(rng.integers(1, 600)), "fused": bool(rng.random() < 0.5),
            "cut": int(rng.integers(0, 40))}


def from_fuzzer_bytes(data: bytes) -> Input:
    """An input from a coverage-guided fuzzer's bytes: sizes from the first bytes, the randoms from the rest (a
    byte pair each, scaled into [0, 1), or one of the bad values)."""
    head = (data + bytes(6))[:6]
    randoms: list[Any] = []
    for i in range(6, len(data) - 1, 2):
        value = data[i] | data[i + 1] << 8
        randoms.append(value / 65536 if value < 65000 else _BAD_RANDOMS[value % len(_BAD_RANDOMS)])
    return {"drain": bool(head[0] & 1), "size": head[1] % 64, "incoming": head[2] % 64, "randoms": randoms,
            "count": head[3] % 72 - 4, "positions": bool(head[0] & 2),
            "pipeline": {"n": head[4] * 8, "buffer": 1 + head[5] * 3, "seed": head[0], "epochs": 1 + head[1] % 3,
                         "batch": 1 + head[2] * 4, "fused": bool(head[0] & 4), "cut": head[3] % 40}}


def fuzzer_bytes(inp: Input) -> bytes:
    head = bytes([int(inp["drain"]) | 2 * int(inp["positions"]), inp["size"] % 256, inp["incoming"] % 256,
                  (inp["count"] + 4) % 256, inp["pipeline"]["n"] // 8 % 256, inp["pipeline"]["buffer"] // 3 % 256])
    return head + b"".join(int(r * 65536).to_bytes(2, "little") for r in inp["randoms"]
                           if isinstance(r, float) and 0 <= r < 1)


def payload(inp: Input) -> tuple[bytes, str]:
    return json.dumps({key: value for key, value in inp.items() if key != "randoms"}).encode(), ".json"


def _lists(inp: Input) -> dict[str, Any]:
    """The call's lists, fresh: distinct objects as elements (their identity is what moves)."""
    elements = [object() for _ in range(inp["size"] + inp["incoming"])]
    lists = {"buffer": elements[:inp["size"]], "randoms": list(inp["randoms"])}
    if not inp["drain"]:
        lists["incoming"] = elements[inp["size"]:]
    if inp["positions"]:
        lists["positions"] = [("p", i) for i in range(inp["size"])]
        if not inp["drain"]:
            lists["incoming_positions"] = [("q", i) for i in range(inp["incoming"])]
    return lists


def _call(function: Callable[..., list[Any]], inp: Input, lists: dict[str, Any]) -> list[Any]:
    if inp["drain"]:
        return function(lists["buffer"], lists["randoms"], inp["count"], lists.get("positions"))
    return function(lists["buffer"], lists["incoming"], lists["randoms"], inp["count"], lists.get("positions"),
                    lists.get("incoming_positions"))


def _good(inp: Input) -> bool:
    limit = min(inp["size"] if inp["drain"] else inp["incoming"], len(inp["randoms"]))
    used = inp["randoms"][len(inp["randoms"]) - inp["count"]:] if inp["count"] > 0 else []
    return (0 <= inp["count"] <= limit and (inp["size"] > 0 or inp["count"] == 0)
            and all(type(r) is float and 0.0 <= r < 1.0 for r in used))


def _check_kernel(inp: Input) -> str | None:
    from fastinput.ops import shuffle

    if shuffle.draw is shuffle.draw_python:
        return "the C extension fastinput.ops._shuffle is not built (see setup.py): nothing to fuzz"
    lists = _lists(inp)
    before = {key: list(value) for key, value in lists.items()}
    kernel = shuffle.drain if inp["drain"] else shuffle.draw
    try:
        out = _call(kernel, inp, lists)
    except (TypeError, ValueError) as exc:
        if _good(inp):
            return f"the kernel refused good arguments: {type(exc).__name__}: {exc}"
        if lists != before:
            return f"the kernel changed the lists before refusing them ({exc})"
        return None
    if not _good(inp):
        return "the kernel took bad arguments"
    fallback_lists = {key: list(value) for key, value in before.items()}
    fallback = shuffle.drain_python if inp["drain"] else shuffle.draw_python
    expected = _call(fallback, inp, fallback_lists)
    if out != expected or lists != fallback_lists:
        return f"the kernel and its fallback differ ({len(out)} and {len(expected)} elements out)"
    return None


def _pipeline(p: dict[str, Any]) -> Any:
    import fastinput as fi

    ds = fi.Dataset.range(p["n"]).shuffle(p["buffer"], seed=p["seed"]).repeat(p["epochs"]).batch(p["batch"])
    return ds.with_options(fi.Options(optimization=fi.OptimizationOptions(shuffle_and_repeat_fusion=p["fused"])))


def _batches(it: Any, limit: int | None = None) -> list[list[int]]:
    out = []
    for batch in it:
        out.append(batch.tolist())
        if limit is not None and len(out) == limit:
            break
    return out


def _check_pipeline(p: dict[str, Any]) -> str | None:
    from fastinput.ops import shuffle

    with iter(_pipeline(p)) as it:
        with_kernel = _batches(it)
    kernels = shuffle.draw, shuffle.drain
    shuffle.draw, shuffle.drain = shuffle.draw_python, shuffle.drain_python
    try:
        with iter(_pipeline(p)) as it:
            without = _batches(it)
    finally:
        shuffle.draw, shuffle.drain = kernels
    if with_kernel != without:
        return "the pipeline's batches differ with the kernel and with its fallback"
    if sorted(v for batch in with_kernel for v in batch) != sorted(list(range(p["n"])) * p["epochs"]):
        return "the pipeline lost, added or repeated elements"
    cut = p["cut"] % (len(with_kernel) + 1)
    with iter(_pipeline(p)) as it:
        if cut:
            _batches(it, cut)
        state = json.loads(json.dumps(it.get_state()))
    with iter(_pipeline(p)) as resumed:
        resumed.set_state(state)
        if _batches(resumed) != with_kernel[cut:]:
            return f"restored at batch {cut}, the rest differs from the uninterrupted run"
    return None


def check(inp: Input, oracle: Callable[[], None]) -> str | None:
    return _check_kernel(inp) or _check_pipeline(inp["pipeline"])
