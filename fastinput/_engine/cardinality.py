"""tf.data's cardinality constants and the arithmetic several stages share.

Each ``Dataset`` class states its own rule in ``cardinality()`` (the base class says UNKNOWN); the rules here
are the ones more than one class uses (``batch``, ``padded_batch``, ``ragged_batch`` and ``map_and_batch`` count
batches alike; ``repeat`` and the fused ``shuffle_and_repeat`` count epochs alike; the grouping ops count alike).
They follow tf.data's kernels exactly, including where an UNKNOWN input wins over an INFINITE one.
"""

from __future__ import annotations

INFINITE_CARDINALITY = -1
"""``ds.cardinality()`` of a dataset that never ends (``repeat()``, ``Dataset.counter()``): tf.data's constant."""

UNKNOWN_CARDINALITY = -2
"""``ds.cardinality()`` where the count is not known without running the pipeline (``filter``, files): tf.data's
constant."""

INFINITE = INFINITE_CARDINALITY
UNKNOWN = UNKNOWN_CARDINALITY


def batched(n: int, batch_size: int, drop_remainder: bool) -> int:
    """Batches of ``batch_size`` cut from ``n`` elements."""
    if n < 0:
        return n
    return n // batch_size + (0 if drop_remainder or n % batch_size == 0 else 1)


def grouped(n: int) -> int:
    """Windows grouped by key (``group_by_window``, ``bucket_by_sequence_length``): infinite from an infinite
    input, else unknown (how many windows depends on the keys)."""
    return INFINITE if n == INFINITE else UNKNOWN


def repeated(n: int, count: int) -> int:
    """``n`` elements repeated ``count`` times (-1: forever; an empty input stays empty, even forever)."""
    if count < 0:
        return 0 if n == 0 else INFINITE
    if count == 0:
        return 0
    return n if n < 0 else n * count
