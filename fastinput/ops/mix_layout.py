"""The mixing ops' layout step: the elements a run of choices names, taken from the front of per-input lists.

``sample_from_datasets`` / ``choose_from_datasets`` (``fastinput.ops.directed_interleave``) hold, per input, the
elements pulled ahead in a list. ``take(choices, buffers)`` hands out, in the order of ``choices``, each named
input's next element, and removes those from the lists. The C extension ``_mixing`` does it in one pass (a
pointer copy per element); where it is not built (see ``setup.py``), numpy does the same: a stable argsort of the
choices scatters the inputs' runs into place. ``take_bytes_into`` writes a batch of bytes straight into its
object array (the fused ``sample_from_datasets -> batch``, ``fastinput.fused_ops.mix_and_batch``).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

try:
    from fastinput.ops import _mixing
except ImportError:  # not built: take_numpy does the same, slower
    _mixing = None


def take(choices: np.ndarray, buffers: list[list[Any]]) -> list[Any]:
    """The elements ``choices`` (int64 indices into ``buffers``, each list holding enough) name, in their order;
    the elements taken are deleted from the front of each list."""
    if _mixing is not None:
        return _mixing.take(choices, buffers)
    return take_numpy(choices, buffers)


def take_bytes_into(choices: np.ndarray, buffers: list[list[Any]], out: np.ndarray) -> bool:
    """``take`` written into ``out`` (an object array of ``len(choices)``: a batch) if every element is a ``bytes``
    object, as ``batch`` lays out a batch of bytes; False, nothing taken, if one is not."""
    if _mixing is not None:
        return _mixing.take(choices, buffers, out)
    counts = np.bincount(choices, minlength=len(buffers))
    if not all(type(element) is bytes for index in np.flatnonzero(counts).tolist()
               for element in buffers[index][:counts[index]]):
        return False
    out[:] = take_numpy(choices, buffers)
    return True


def take_numpy(choices: np.ndarray, buffers: list[list[Any]]) -> list[Any]:
    """``take`` in numpy: the runs each input gives, scattered to where the stably sorted choices list them."""
    counts = np.bincount(choices, minlength=len(buffers))
    runs = []
    for index in np.flatnonzero(counts).tolist():
        buffer, want = buffers[index], int(counts[index])
        runs.append(buffer[:want])
        del buffer[:want]
    if len(runs) <= 1:
        return runs[0] if runs else []
    flat = np.fromiter(itertools.chain.from_iterable(runs), dtype=object, count=len(choices))
    out = np.empty(len(choices), dtype=object)
    narrow = choices.astype(np.int8 if len(buffers) <= 127 else np.int32)  # 8 bits: a radix sort
    out[np.argsort(narrow, kind="stable")] = flat
    return out.tolist()
