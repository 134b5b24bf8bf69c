"""Why a batch of Examples fails to parse, found without TensorFlow: a missing required feature, the wrong type, the
wrong number of values, bytes that are not an Example.

The native parser (``_example.c``) leaves every batch it does not parse exactly as TensorFlow does to TensorFlow's
kernel, which then fails it or parses it. The common failures are found here first, in plain words (the feature, the
Example, both types; for a missing feature the keys the Example has, closest first), so the user sees fastinput's
error alone, with no TensorFlow logging or chained TensorFlow traceback, and without TensorFlow installed at all.
Each problem named here is one on which TensorFlow's kernel fails the batch too; an Example is read as that kernel
reads it (``example_guard.example_entries``: the last entry of a key wins). Anything else (a duplicate key, values
written unpacked, ...) is left to TensorFlow's kernel.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence

from fastinput.readers import example_guard
from fastinput.readers import features as specs

_LIST_TAGS = {0x0A: specs.STRING, 0x12: specs.FLOAT32, 0x1A: specs.INT64}
"""The Feature oneof's tags (bytes_list, float_list, int64_list) and the dtype each holds."""
_TYPE_NAMES = {specs.STRING: "bytes", specs.FLOAT32: "float32", specs.INT64: "int64"}


def first_problem(records: Sequence[bytes], features: Mapping[str, specs.FeatureSpec]) -> str | None:
    """What fails the first Example in ``records`` that TensorFlow's kernel would fail for one of these reasons, in
    words (without the "parse_example: " prefix); None if none does."""
    for index, record in enumerate(records):
        entries = example_guard.example_entries(record)
        if entries is None:
            return f"example {index} is not a serialized tf.train.Example (its bytes do not parse as one)"
        last = dict(entries)  # as in TensorFlow's parser, the last entry of a key wins, and for a dense feature
        filled = {name: value for name, value in entries if value}  # the last one that is not empty
        for key, spec in features.items():
            found = last if isinstance(spec, specs.VarLenFeature) else filled
            problem = _feature_problem(found.get(key.encode(), b""), spec)
            if problem == "missing":
                return _missing(key, index, filled)
            if problem:
                return f"feature {key!r}: example {index} {problem}"
    return None


def _feature_problem(value: bytes, spec: specs.FeatureSpec) -> str | None:
    """What is wrong with one Feature (its bytes, b"" if absent) for ``spec``: "missing", a description, or None."""
    if not value:  # absent, or an empty Feature: a missing dense feature, no values for a VarLenFeature
        return "missing" if isinstance(spec, specs.FixedLenFeature) and spec.default_value is None else None
    stored = _LIST_TAGS.get(value[0])
    if stored is None:
        return None  # an unknown list type: TensorFlow's own message says it best
    if stored != spec.dtype:
        return f"holds {_TYPE_NAMES[stored]} values, but the spec asks for {_TYPE_NAMES[spec.dtype]}"
    count = _count(value)
    if count is None or isinstance(spec, specs.VarLenFeature):
        return None
    width = math.prod(spec.shape)
    if isinstance(spec, specs.FixedLenFeature) and count != width:
        return f"has {count} values, but the spec's shape {list(spec.shape)} holds {width}"
    if isinstance(spec, specs.FixedLenSequenceFeature) and count % width:
        return f"has {count} values, not a whole number of items of shape {list(spec.shape)} ({width} values each)"
    return None


def _missing(key: str, index: int, found: Mapping[bytes, bytes]) -> str:
    """A required feature an Example lacks: the keys it has, closest first, and how to make the feature optional."""
    keys = [name.decode("utf-8", "replace") for name in found]
    closest = difflib.get_close_matches(key, keys, n=len(keys), cutoff=0.0) if keys else []
    has = ", ".join(repr(name) for name in closest) if closest else "none"
    return (f"feature {key!r} is required (a FixedLenFeature without default_value) but example {index} does not "
            f"have it; the features it has, closest first: {has}. Give the spec a default_value if the feature "
            "may be missing")


def _count(value: bytes) -> int | None:
    """How many values a Feature (tag byte first) holds, where its layout is the plain one TensorFlow's writer makes
    (bytes values one after another; numbers in one packed run); None otherwise (TensorFlow's kernel then decides)."""
    read = example_guard.varint32(value, 1, len(value))
    if read is None or read[0] != len(value) - read[1]:
        return None
    pos, end, count = read[1], len(value), 0
    while pos < end and value[pos] == 0x0A:  # a bytes value, or a packed run of numbers
        read = example_guard.varint32(value, pos + 1, end)
        if read is None or read[0] > end - read[1]:
            return None
        size, pos = read
        if value[0] == 0x12:
            count += size // 4
        elif value[0] == 0x1A:
            count += sum(1 for byte in value[pos:pos + size] if byte < 0x80)
        else:
            count += 1
        pos += size
        if value[0] != 0x0A and pos != end:
            return None  # numbers in more than one run, or unpacked after a packed run
    return count if pos == end else None
