"""Fuzz target: ``fi.parse_example`` against ``tf.io.parse_example`` on batches of serialized Examples.

An input is a feature spec (one to three features of every kind and dtype:
FixedLen with or without a default, VarLen, FixedLenSequence) and a batch of
one to four Examples written by hand: features present or missing, of the
right or a wrong type and count, numbers packed, unpacked or in pieces,
over-long varints, map entries value first, duplicate keys, features nobody
asked for, unknown fields, concatenated Features; then perhaps damaged by
``mutate``. fastinput must give what TensorFlow gives: both accept with equal
values (bit for bit, NaNs included), or both reject. It must never raise
anything but InvalidArgumentError, and its packed-strings form (what
``as_tf_dataset`` asks for) must hold the same values.

TensorFlow is not run where fastinput refused the batch because TensorFlow's
kernel would crash on it (``example_guard``; a sequence of zero-value items).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.fuzz.mutate import mutate, overlong_varint
from tests.fuzz.runner import ORACLE_SKIPPED
from tests.protobuf_wire import bytes_list, entry, feature, field, float_list, varint, wire_example

NAME = "example"
MEMORY_LIMIT = None  # TensorFlow reserves more address space than any sane cap
_KEYS = ["a", "b", "c"]
_OTHER_KEYS = ["x", "", "a_long_key_nobody_asked_for"]
_DTYPES = ["int64", "float32", "bytes"]
_LIST_KIND = {"int64": "int64", "float32": "float", "bytes": "bytes"}

Spec = tuple[str, str, str, tuple[int, ...], Any]
"""(key, kind: fixed / var / seq, dtype, shape, default or padding (None: none))."""


def prepare() -> None:
    import tensorflow  # noqa: F401

    import fastinput  # noqa: F401


def _random_values(rng: np.random.Generator, dtype: str, count: int, any_bits: bool = True) -> list:
    """``count`` values of ``dtype``; floats of any bit pattern where ``any_bits`` (values in Examples; a default
    is kept as a Python float, which makes a signaling NaN quiet: a difference from TensorFlow left alone)."""
    if dtype == "int64":
        edges = [0, 1, -1, 2**63 - 1, -(2**63)]
        return [edges[int(rng.integers(5))] if rng.random() < 0.2 else int(rng.integers(-1000, 1000))
                for _ in range(count)]
    if dtype == "float32":  # any bit pattern: NaNs with payloads, infinities, denormals
        return list(np.frombuffer(rng.bytes(4 * count), np.float32)) if any_bits and rng.random() < 0.3 else \
            rng.standard_normal(count).astype(np.float32).tolist()
    return [rng.bytes(int(rng.integers(0, 12))) for _ in range(count)]


def _random_spec(rng: np.random.Generator) -> list[Spec]:
    specs = []
    for key in rng.permutation(_KEYS)[:int(rng.integers(1, 4))]:
        kind = ["fixed", "var", "seq"][int(rng.integers(3))]
        dtype = _DTYPES[int(rng.integers(3))]
        if kind == "fixed":
            shape = [(), (1,), (3,), (2, 2), (0,)][int(rng.integers(5))]
            default = _random_values(rng, dtype, math.prod(shape), False) if rng.random() < 0.4 else None
        elif kind == "seq":
            shape = [(), (2,), (0,)][int(rng.choice(3, p=[0.6, 0.38, 0.02]))]
            default = _random_values(rng, dtype, 1, False)[0] if rng.random() < 0.4 else None
        else:
            shape, default = (), None
        specs.append((str(key), kind, dtype, shape, default))
    return specs


def _number_list(rng: np.random.Generator, dtype: str, values: list) -> bytes:
    """A list of numbers in one of the encodings a protobuf writer may use."""
    how = rng.random()
    if dtype == "float32":
        if how < 0.6:
            return float_list(values)
        if how < 0.9:
            return float_list(values, packed=False)
        cut = int(rng.integers(len(values) + 1))
        return float_list(values[:cut]) + float_list(values[cut:], packed=rng.random() < 0.5)
    encoded = [varint(v) if rng.random() < 0.8 else overlong_varint(v & (2**64 - 1), 10) for v in values]
    if how < 0.6:
        return field(1, b"".join(encoded))
    if how < 0.9:
        return b"".join(varint(1 << 3 | 0) + e for e in encoded)
    cut = int(rng.integers(len(encoded) + 1))
    return field(1, b"".join(encoded[:cut])) + b"".join(varint(1 << 3 | 0) + e for e in encoded[cut:])


def _feature(rng: np.random.Generator, dtype: str, count: int) -> bytes:
    """A Feature holding ``count`` values of ``dtype`` (now and then an empty Feature, or two lists)."""
    if rng.random() < 0.03:
        return b""
    values = _random_values(rng, dtype, count)
    lst = bytes_list(*values) if dtype == "bytes" else _number_list(rng, dtype, values)
    out = feature(_LIST_KIND[dtype], lst)
    if rng.random() < 0.02:
        out += feature(_LIST_KIND[dtype], lst)
    return out


def _value_count(rng: np.random.Generator, spec: Spec) -> int:
    _, kind, _, shape, _ = spec
    width = math.prod(shape)
    if kind == "fixed":
        return width if rng.random() < 0.9 else max(0, width + int(rng.integers(-2, 4)))
    if kind == "seq":
        return width * int(rng.integers(0, 4)) + (int(rng.integers(1, 3)) if rng.random() < 0.1 else 0)
    return int(rng.integers(0, 5))


def _example(rng: np.random.Generator, specs: list[Spec]) -> bytes:
    entries = []
    for spec in specs:
        if rng.random() < 0.2:
            continue  # missing
        dtype = spec[2] if rng.random() < 0.9 else _DTYPES[int(rng.integers(3))]
        value = _feature(rng, dtype, _value_count(rng, spec))
        entries.append(entry(spec[0], value, value_first=rng.random() < 0.15))
        if rng.random() < 0.05:
            entries.append(entry(spec[0], _feature(rng, spec[2], _value_count(rng, spec))))  # the key again
    for _ in range(int(rng.integers(0, 3))):
        key = _OTHER_KEYS[int(rng.integers(len(_OTHER_KEYS)))]
        entries.append(entry(key, _feature(rng, _DTYPES[int(rng.integers(3))], int(rng.integers(0, 4)))))
    order = rng.permutation(len(entries))
    example = wire_example(*[entries[i] for i in order])
    unusual = rng.random()
    if unusual < 0.04:
        example += varint(5 << 3 | 0) + varint(int(rng.integers(1000)))  # an unknown field
    elif unusual < 0.08:
        example += wire_example(entries[0]) if entries else b""  # concatenated Examples
    elif unusual < 0.1:
        example += varint(2 << 3 | 5) + struct.pack("<f", 1.0)
    return mutate(example, rng) if rng.random() < 0.25 else example


def make_input(rng: np.random.Generator) -> tuple[list[Spec], list[bytes]]:
    """(feature specs, serialized Examples)."""
    specs = _random_spec(rng)
    return specs, [_example(rng, specs) for _ in range(int(rng.integers(1, 5)))]


_FUZZER_SPECS: list[Spec] = [
    ("a", "fixed", "float32", (3,), None), ("b", "var", "int64", (), None), ("c", "seq", "bytes", (2,), None),
    ("x", "fixed", "int64", (), 7),
]


def from_fuzzer_bytes(data: bytes) -> tuple[list[Spec], list[bytes]]:
    """An input from a coverage-guided fuzzer's bytes: one Example, features of every kind."""
    return _FUZZER_SPECS, [data]


def fuzzer_bytes(inp: tuple[list[Spec], list[bytes]]) -> bytes:
    """What ``from_fuzzer_bytes`` turns back into (about) this input: a seed for a coverage-guided fuzzer."""
    return inp[1][0]


def payload(inp: tuple[list[Spec], list[bytes]]) -> tuple[bytes, str]:
    """The batch as one TFRecord file (the spec is in the pickle beside it)."""
    from fastinput.readers.framing import frame

    return b"".join(frame(record) for record in inp[1]), ".tfrecord"


def _fi_spec(spec: Spec) -> Any:
    import fastinput as fi

    _, kind, dtype, shape, default = spec
    np_dtype = bytes if dtype == "bytes" else np.dtype(dtype)
    if kind == "fixed":
        return fi.FixedLenFeature(list(shape), np_dtype, default_value=default)
    if kind == "var":
        return fi.VarLenFeature(np_dtype)
    return fi.FixedLenSequenceFeature(list(shape), np_dtype, allow_missing=True, default_value=default)


def _tf_spec(tf: Any, spec: Spec) -> Any:
    _, kind, dtype, shape, default = spec
    tf_dtype = {"int64": tf.int64, "float32": tf.float32, "bytes": tf.string}[dtype]
    if kind == "fixed":
        return tf.io.FixedLenFeature(list(shape), tf_dtype, default_value=default)
    if kind == "var":
        return tf.io.VarLenFeature(tf_dtype)
    return tf.io.FixedLenSequenceFeature(list(shape), tf_dtype, allow_missing=True, default_value=default)


def check(inp: tuple[list[Spec], list[bytes]], oracle: Callable[[], None]) -> str | None:
    from fastinput.errors import InvalidArgumentError
    from fastinput.readers.example import ExampleParser

    specs, batch = inp
    parsed = error = parser = None
    try:
        parser = ExampleParser({spec[0]: _fi_spec(spec) for spec in specs})
        parsed = parser(batch)
        packed = _plain(parser(batch, packed_strings=True))
    except InvalidArgumentError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - which error it is, is what gets checked
        return f"fastinput raised {type(exc).__name__}: {exc}"
    if error is not None and _tensorflow_would_crash(parser, batch, error):
        return ORACLE_SKIPPED
    if parsed is not None and (difference := _difference(packed, parsed)):
        return f"the packed-strings parse differs from the plain one: {difference}"
    oracle()
    expected, tf_error = _tf_parse(specs, batch)
    if (error is None) != (tf_error is None):
        return (f"fastinput {'accepts' if error is None else 'rejects'} ({error}), TensorFlow "
                f"{'accepts' if tf_error is None else 'rejects'} ({tf_error})")
    return None if error is not None else _difference(parsed, expected)


def _tensorflow_would_crash(parser: Any, batch: list[bytes], error: Exception) -> bool:
    """Whether fastinput refused the spec (a sequence of zero-value items) or the batch (example_guard) because
    TensorFlow's kernel would crash on it."""
    from fastinput.errors import InvalidArgumentError
    from fastinput.readers import example_guard

    if parser is None:
        return "at least one value" in str(error)
    try:
        example_guard.check_batch(batch, parser._guarded)
    except InvalidArgumentError:
        return True
    return False


def _tf_parse(specs: list[Spec], batch: list[bytes]) -> tuple[dict | None, str | None]:
    import tensorflow as tf

    from fastinput.structure import SparseArray

    try:
        result = tf.io.parse_example(tf.constant(batch, dtype=tf.string),
                                     {spec[0]: _tf_spec(tf, spec) for spec in specs})
    except (tf.errors.InvalidArgumentError, UnicodeDecodeError) as exc:  # TF fails to quote undecodable bytes
        return None, f"{type(exc).__name__}: {str(exc)[:300]}"
    return {key: SparseArray(v.indices.numpy(), v.values.numpy(), v.dense_shape.numpy())
            if isinstance(v, tf.SparseTensor) else v.numpy() for key, v in result.items()}, None


def _plain(parsed: dict) -> dict:
    """Parsed values with packed strings (PackedStrings) as object arrays of bytes."""
    from fastinput.structure import SparseArray

    return {key: SparseArray(v.indices, np.asarray(v.values), v.dense_shape) if isinstance(v, SparseArray)
            else np.asarray(v) for key, v in parsed.items()}


def _difference(actual: dict, expected: dict) -> str | None:
    """None if the two parses are equal bit for bit (keys, kinds, shapes, dtypes, values), else where not."""
    from fastinput.structure import SparseArray

    if sorted(actual) != sorted(expected):
        return f"keys {sorted(actual)} != {sorted(expected)}"
    for key, want in expected.items():
        got = actual[key]
        pairs = [(got, want)]
        if isinstance(want, SparseArray):
            if not isinstance(got, SparseArray):
                return f"{key!r}: not sparse"
            pairs = [(got.indices, want.indices), (got.values, want.values), (got.dense_shape, want.dense_shape)]
        for a, b in pairs:
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape or (b.dtype != object and a.dtype != b.dtype):
                return f"{key!r}: {a.dtype}{list(a.shape)} != {b.dtype}{list(b.shape)}"
            same = a.tolist() == b.tolist() if b.dtype == object else a.tobytes() == b.tobytes()
            if not same:
                return f"{key!r}: values {a.tolist()[:8]} != {b.tolist()[:8]}"
    return None
