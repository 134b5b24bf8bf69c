"""``fi.parse_example``: a batch of serialized ``tf.train.Example`` protos into numpy arrays, in one kernel call.

Two kernels, one result. fastinput's own (``_example.c``) walks the wire
format of a whole batch in C, mostly without the GIL, and writes the
columns directly: several times faster than TensorFlow's, and several
parser threads really run at once. It handles the well-formed batches;
anything it does not handle exactly as TensorFlow does (a missing required
feature, a wrong type or count, a duplicate key, malformed bytes) is
looked at by ``example_problems``, which names the common errors itself
(no TensorFlow needed), and otherwise goes to TensorFlow's
``ParseExampleV2`` kernel, which gives TensorFlow's result or its error;
without TensorFlow installed, that is a ``MissingDependencyError``. When
the C extension is not built, every batch goes to TensorFlow.

For TensorFlow's kernel, ``ExampleParser`` turns the feature specs into its
arguments once, and each call is then one eager op plus one ``.numpy()``
per output (``tf.io.parse_example`` rebuilds its parameters and default
tensors every call, about 1.5 ms). TensorFlow is imported at the first
batch that needs it, never at ``import fastinput``.
"""

from __future__ import annotations

import importlib.util
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from fastinput.errors import InvalidArgumentError
from fastinput.optional import tensorflow
from fastinput.readers import example_guard, example_problems
from fastinput.readers.features import (
    INT64,
    STRING,
    FeatureSpec,
    FixedLenFeature,
    FixedLenSequenceFeature,
    VarLenFeature,
    as_feature_spec,
)
from fastinput.spec import trace_size, tracing
from fastinput.structure import SparseArray
from fastinput.tf_values import PackedStrings, array_from_tensor

try:
    from fastinput.readers import _example as native_kernel
except ImportError:  # the C extension was not built: TensorFlow's kernel parses every batch
    native_kernel = None

Parsed = dict[str, "np.ndarray | SparseArray"]

_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|Name: <unknown>,\s*|\s*\[Op:\w+\]|\s+name:\s*$")
"""What TensorFlow wraps around a kernel's error message (the op's node name, the example name, the op)."""


class ExampleParser:
    """Parses batches of serialized Examples with one fixed set of features (compiled once, reused per call).

    Calling it is the same as ``fi.parse_example(serialized, features)``; the
    feature keys come out in the order ``features`` lists them. It is safe to
    call from several threads at once.

    >>> import numpy as np
    >>> parse = ExampleParser({"label": FixedLenFeature([], np.int64, default_value=0)})
    >>> parse([b""])["label"]
    array([0])
    """

    def __init__(self, features: Mapping[str, Any]) -> None:
        if not isinstance(features, Mapping) or not features:
            raise InvalidArgumentError(
                f"parse_example: features must be a non-empty dict of feature specs, got {features!r}"
            )
        specs = {key: as_feature_spec(key, spec) for key, spec in features.items()}
        for key, spec in specs.items():
            if isinstance(spec, FixedLenSequenceFeature) and not spec.allow_missing:
                raise InvalidArgumentError(
                    f"parse_example: feature {key!r}: a FixedLenSequenceFeature needs allow_missing=True "
                    "to be parsed from Examples (as in tf.io.parse_example)"
                )
            if isinstance(spec, FixedLenSequenceFeature) and math.prod(spec.shape) == 0:
                raise InvalidArgumentError(  # TensorFlow's kernel divides by it (SIGFPE)
                    f"parse_example: feature {key!r}: a FixedLenSequenceFeature's items need at least one value, "
                    f"got shape {list(spec.shape)}"
                )
        self.features: dict[str, FeatureSpec] = specs
        # The kernel wants keys sorted within each kind; outputs come back in that order.
        self._sparse_keys = sorted(k for k, s in specs.items() if isinstance(s, VarLenFeature))
        self._dense_keys = sorted(k for k, s in specs.items() if not isinstance(s, VarLenFeature))
        self._keys_by_length = sorted(specs, key=len, reverse=True)
        # Only FixedLenFeatures (the common case): each output is its column reshaped, no per-feature dispatch.
        self._fixed_shapes = ([(key, spec.shape) for key, spec in specs.items()]
                              if all(type(spec) is FixedLenFeature for spec in specs.values()) else None)
        # What example_guard checks before a batch goes to TensorFlow's kernel: the float and bytes features.
        self._guarded = {key.encode("utf-8"): _guarded(spec) for key, spec in specs.items() if spec.dtype != INT64}
        self._kernel_args: dict[str, Any] | None = None
        self._native_spec = None if native_kernel is None else native_kernel.compile(
            [_native_description(key, spec) for key, spec in specs.items()])

    def __repr__(self) -> str:
        return f"ExampleParser({self.features!r})"

    def __call__(self, serialized: Any, *, packed_strings: bool = False) -> Parsed:
        """The batch's features. ``packed_strings``: string values as ``PackedStrings`` (no Python object per
        value) where the native kernel parses the batch; only for a consumer that takes those (``as_tf_dataset``).
        While a function is traced for its output spec, the outputs are placeholders of the right spec.

        The native kernel lets go of the GIL for its passes over 16 records or more (``_example.c``'s
        ``RELEASE_GIL_RECORDS``), not for the README's per-record ``parse_example``: there the GIL's hand-over cost
        more than the few microseconds it freed. On the quiet README image pipeline (2 workers, 2 cores), a third
        of the workers' samples were waits to take the GIL back after the one-record parse, while the other worker
        ran its Python; keeping it took voluntary switches from 0.57-0.60 to 0.36-0.41 per image. (An earlier trial
        kept it below 8 records and judged it worse by switch counts on a machine at load 4-8, with a busy
        core.) Issue 20's static rewrite (commits 4b49697, 7ec4812) was reverted: ``map_and_batch`` learnt the
        parser from each batch's first row's ``parse_example([record], features)`` and parsed the other 63 records
        in one call, serving each row its own; alternated with the base (load 5-9) it switched more and spent no
        less CPU. One call for 63 ImageNet records also costs 3.7 ms of CPU where glibc has given the last batch's
        6 MB of strings back (0.43 ms with a warm heap), against ~10 us a one-record call."""
        if tracing():
            return self._placeholders(serialized)
        if self._native_spec is not None:
            columns = native_kernel.parse(self._native_spec, serialized, packed_strings)
            if columns is not None:
                return self._assemble(columns, len(serialized))
            self._raise_problem(serialized)
        return self._parse_with_tensorflow(serialized)

    def _raise_problem(self, serialized: Any) -> None:
        """Raise the error of a batch the native kernel declined, in fastinput's words (no TensorFlow traceback,
        no TensorFlow needed), where ``example_problems`` finds it; return if it finds none."""
        records = _records(serialized)
        if records is not None and self._guarded:
            example_guard.check_batch(records, self._guarded)  # first, as before TensorFlow's kernel
        problem = None if records is None else example_problems.first_problem(records, self.features)
        if problem:
            raise InvalidArgumentError(f"parse_example: {problem}")
        if records is None and not _tensorflow_installed():
            raise _not_a_batch(serialized)

    def _placeholders(self, serialized: Any) -> Parsed:
        """What parsing a batch like ``serialized`` gives, in shapes and dtypes, without parsing it (see
        ``fastinput.spec.tracing``): zeros and ``b""``, ``trace_size()`` long where the length is the data's."""
        if np.ndim(serialized) != 1:
            raise _not_a_batch(serialized)
        batch, length = len(serialized), trace_size()
        parsed: Parsed = {}
        for key, spec in self.features.items():
            fill = b"" if spec.dtype == STRING else 0
            if isinstance(spec, VarLenFeature):
                parsed[key] = SparseArray(np.zeros((0, 2), np.int64), np.zeros(0, spec.dtype), [batch, length])
            elif isinstance(spec, FixedLenSequenceFeature):
                parsed[key] = np.full((batch, length, *spec.shape), fill, spec.dtype)
            else:
                parsed[key] = np.full((batch, *spec.shape), fill, spec.dtype)
        return parsed

    def _assemble(self, columns: list[Any], batch: int) -> Parsed:
        """The native kernel's flat columns (see ``_example.c``'s ``parse``) shaped like TensorFlow's outputs."""
        if self._fixed_shapes is not None:  # a column of scalars is already [batch]
            parsed = {}
            for (key, shape), column in zip(self._fixed_shapes, columns):
                values = _values(column)
                parsed[key] = values if not shape and type(values) is np.ndarray else values.reshape(batch, *shape)
            return parsed
        parsed: Parsed = {}
        for (key, spec), column in zip(self.features.items(), columns):
            if isinstance(spec, FixedLenFeature):
                parsed[key] = _values(column).reshape(batch, *spec.shape)
            elif isinstance(spec, VarLenFeature):
                values, counts = column
                parsed[key] = _sparse_array(_values(values), counts)
            else:
                values, longest = column
                parsed[key] = _values(values).reshape(batch, longest, *spec.shape)
        return parsed

    def _parse_with_tensorflow(self, serialized: Any) -> Parsed:
        tf = tensorflow(_WHY_TENSORFLOW)

        args = self._kernel_args or self._build_kernel_args(tf)
        batch = _as_batch(serialized, tf)
        if self._guarded:
            example_guard.check_batch(_guarded_records(batch), self._guarded)
        try:
            sparse_indices, sparse_values, sparse_shapes, dense_values, _, _ = tf.raw_ops.ParseExampleV2(
                serialized=batch, **args)
        except tf.errors.OpError as exc:
            raise InvalidArgumentError(self._describe(exc.message)) from None  # TensorFlow's traceback adds nothing
        except UnicodeDecodeError as exc:  # TF quotes the undecodable input in its message and fails to build it
            raise InvalidArgumentError(
                "parse_example: a serialized Example in the batch is corrupt (not a tf.train.Example)") from exc
        except (TypeError, ValueError) as exc:  # an object array holding something other than bytes
            raise _not_a_batch(serialized) from exc
        parsed: Parsed = {}
        for key, indices, values, shape in zip(self._sparse_keys, sparse_indices, sparse_values, sparse_shapes):
            parsed[key] = SparseArray(indices.numpy(), values.numpy(), shape.numpy())
        for key, values in zip(self._dense_keys, dense_values):
            parsed[key] = array_from_tensor(values)  # strings remember their tensor: as_tf_dataset reuses it
        return {key: parsed[key] for key in self.features}

    def _build_kernel_args(self, tf: Any) -> dict[str, Any]:
        """The kernel's arguments for these features (default-value tensors included), made once."""
        dense = [self.features[key] for key in self._dense_keys]
        # String inputs go in as typed tensors: an empty Python list makes the op leave its fast path.
        args = {
            "names": tf.constant([], dtype=tf.string),
            "sparse_keys": tf.constant(self._sparse_keys, dtype=tf.string),
            "dense_keys": tf.constant(self._dense_keys, dtype=tf.string),
            "ragged_keys": tf.constant([], dtype=tf.string),
            "dense_defaults": [_dense_default(spec, tf) for spec in dense],
            "num_sparse": len(self._sparse_keys),
            "sparse_types": [_tf_dtype(self.features[key].dtype, tf) for key in self._sparse_keys],
            "ragged_value_types": [],
            "ragged_split_types": [],
            # A sequence feature's leading dimension is unknown (-1): the kernel pads to the batch's longest.
            "dense_shapes": [
                [-1, *spec.shape] if isinstance(spec, FixedLenSequenceFeature) else list(spec.shape) for spec in dense
            ],
        }
        self._kernel_args = args
        return args

    def _describe(self, message: str) -> str:
        """TensorFlow's error message, cleaned, naming the feature it is about."""
        message = _TF_NOISE.sub("", message).strip()
        for key in self._keys_by_length:  # longest first: a key may be a prefix of another
            if f"Key: {key}," in message or f"Feature: {key} (" in message:
                return f"parse_example: feature {key!r}: {message}"
        return f"parse_example: {message}"


_WHY_TENSORFLOW = (
    "parse_example on this batch (fastinput's native Example parser is not built)" if native_kernel is None else
    "parse_example on this batch (one fastinput's native Example parser leaves to TensorFlow's kernel: a duplicate "
    "key, an empty or unknown field, values written unpacked, ...)")
"""What needs TensorFlow's kernel, for the MissingDependencyError raised without it."""

_NATIVE_KIND = {FixedLenFeature: 0, VarLenFeature: 1, FixedLenSequenceFeature: 2}
_NATIVE_LIST_TYPE = {STRING: 1, np.dtype(np.float32): 2, np.dtype(np.int64): 3}  # the Feature oneof's field numbers


def _native_description(key: str, spec: FeatureSpec) -> tuple:
    """One feature as the native kernel's ``compile`` takes it: (key, kind, list type, width, fill)."""
    if isinstance(spec, VarLenFeature):
        return key.encode("utf-8"), _NATIVE_KIND[VarLenFeature], _NATIVE_LIST_TYPE[spec.dtype], 0, None
    if isinstance(spec, FixedLenSequenceFeature):  # fill: the padding
        fill = _sequence_padding(spec)
    else:  # fill: the default, if any
        fill = spec.default_value
    if fill is not None:
        values = np.asarray(fill, dtype=spec.dtype).reshape(-1)
        fill = tuple(values.tolist()) if spec.dtype == STRING else values.tobytes()
    return key.encode("utf-8"), _NATIVE_KIND[type(spec)], _NATIVE_LIST_TYPE[spec.dtype], math.prod(spec.shape), fill


def _values(column: Any) -> np.ndarray | PackedStrings:
    """A native column's flat values: an array, or (packed strings) the ``(blob, offsets)`` pair as PackedStrings."""
    return PackedStrings(*column) if type(column) is tuple else column


def _sparse_array(values: np.ndarray | PackedStrings, counts: np.ndarray) -> SparseArray:
    """A VarLenFeature's output from its values and the number of values in each Example."""
    rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    columns = np.arange(len(values), dtype=np.int64) - np.repeat(starts, counts)
    longest = int(counts.max()) if len(counts) else 0
    return SparseArray(np.stack([rows, columns], axis=1), values, np.array([len(counts), longest], dtype=np.int64))


def _tf_dtype(dtype: np.dtype, tf: Any) -> Any:
    return tf.string if dtype == STRING else tf.as_dtype(dtype)


def _sequence_padding(spec: FixedLenSequenceFeature) -> Any:
    """What pads a sequence feature to the batch's longest: its default_value, else 0 or b"" (as in TensorFlow)."""
    return spec.default_value if spec.default_value is not None else (b"" if spec.dtype == STRING else 0)


def _dense_default(spec: FixedLenFeature | FixedLenSequenceFeature, tf: Any) -> Any:
    """The kernel's default for a dense feature: an empty tensor (required), the default, or the padding scalar."""
    dtype = _tf_dtype(spec.dtype, tf)
    if isinstance(spec, FixedLenSequenceFeature):
        return tf.constant(_sequence_padding(spec), dtype=dtype)
    if spec.default_value is None:
        return tf.constant([], dtype=dtype)
    return tf.constant(spec.default_value, dtype=dtype, shape=spec.shape)


def _as_batch(serialized: Any, tf: Any) -> Any:
    """The serialized Examples as the kernel's 1-D string input.

    A 1-D object array of bytes (what ``batch`` makes) goes to the kernel as
    it is: its C fast path converts it for less than ``tf.convert_to_tensor`` costs.
    """
    if isinstance(serialized, np.ndarray) and serialized.ndim == 1 and serialized.dtype == STRING:
        return serialized
    try:
        batch = tf.convert_to_tensor(serialized, dtype=tf.string)
    except (TypeError, ValueError) as exc:
        raise _not_a_batch(serialized) from exc
    if batch.shape.rank != 1:
        raise InvalidArgumentError(
            f"parse_example: serialized must be a batch (1-D) of serialized Examples, got shape {batch.shape.as_list()}"
        )
    return batch


def _guarded(spec: FeatureSpec) -> example_guard.Guarded:
    """How TensorFlow's kernel parses a float or bytes feature, for example_guard."""
    list_tag = example_guard.BYTES_LIST if spec.dtype == STRING else example_guard.FLOAT_LIST
    fixed = isinstance(spec, FixedLenFeature)
    return example_guard.Guarded(not isinstance(spec, VarLenFeature), fixed, list_tag,
                                 math.prod(spec.shape) if fixed else 0)


def _guarded_records(batch: Any) -> list[bytes]:
    """The records of a batch bound for TensorFlow's kernel, as the bytes it will parse (str as UTF-8, like its
    conversion); an item that is neither (b"" here) fails the batch in the kernel's conversion, before parsing."""
    items = batch.numpy() if hasattr(batch, "numpy") else batch
    return [item.encode("utf-8") if isinstance(item, str) else item if isinstance(item, bytes) else b""
            for item in items]


def _records(serialized: Any) -> list[bytes] | None:
    """The batch's records as bytes (str as UTF-8), or None if it is not a list or 1-D array of bytes and str."""
    if not isinstance(serialized, (list, tuple)) and not (isinstance(serialized, np.ndarray) and serialized.ndim == 1):
        return None
    records = [item.encode("utf-8") if isinstance(item, str) else item for item in serialized]
    return records if all(isinstance(item, bytes) for item in records) else None


def _tensorflow_installed() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def _not_a_batch(serialized: Any) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"parse_example: serialized must be a batch (list or 1-D array) of bytes, got {type(serialized).__name__}"
    )


_CACHE_SIZE = 32
_cache: OrderedDict[int, tuple[Mapping, list, ExampleParser]] = OrderedDict()
_cache_lock = threading.Lock()


def parser_for(features: Mapping[str, Any] | ExampleParser) -> ExampleParser:
    """The compiled parser for ``features``, reused while the same, unchanged mapping is passed.

    The cache holds the last few feature mappings (and a snapshot of their
    items, so a mapping changed in place is compiled anew). A plain dict
    found there whose items are the snapshot's (the same keys and spec
    objects) is answered without the lock and without refreshing its place:
    a per-record ``parse_example`` (the README's) pays ~0.3 us here instead
    of ~0.9; a mapping pushed out by ``_CACHE_SIZE`` others is compiled anew.
    """
    entry = _cache.get(id(features))  # lock-free: one call on the C OrderedDict
    if entry is not None and entry[0] is features and type(features) is dict and entry[1] == list(features.items()):
        return entry[2]
    if isinstance(features, ExampleParser):
        return features
    items = list(features.items()) if isinstance(features, Mapping) else None
    with _cache_lock:
        entry = _cache.get(id(features))
        if entry is not None and entry[0] is features and entry[1] == items:
            _cache.move_to_end(id(features))
            return entry[2]
    parser = ExampleParser(features)
    with _cache_lock:
        _cache[id(features)] = (features, items, parser)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return parser


def parse_example(serialized: Any, features: Mapping[str, Any]) -> Parsed:
    """Parse a batch of serialized ``tf.train.Example`` protos into numpy values, like ``tf.io.parse_example``.

    ``serialized``: a list or 1-D array of ``bytes``. ``features``: a dict of
    ``fi.FixedLenFeature`` (-> array ``[batch, *shape]``), ``fi.VarLenFeature``
    (-> ``fi.SparseArray`` of shape ``[batch, max_len]``) and
    ``fi.FixedLenSequenceFeature(allow_missing=True)`` (-> array
    ``[batch, max_len, *shape]``, padded); ``tf.io`` specs work too. Strings
    come out as object arrays of ``bytes``. A missing required feature or a
    value of the wrong type raises ``fi.errors.InvalidArgumentError`` naming
    the feature.

    >>> import fastinput as fi, numpy as np
    >>> features = {"x": fi.FixedLenFeature([2], np.float32, default_value=[0.0, 0.0])}
    >>> fi.parse_example([b""], features)["x"]
    array([[0., 0.]], dtype=float32)
    """
    return parser_for(features)(serialized)
