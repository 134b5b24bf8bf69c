"""The forms a leaf of an element takes, in one place.

A leaf is a numpy array, a numpy scalar, ``bytes`` or a ``fi.SparseArray``
(whose ``values`` is itself an array leaf). Every stage and every user sees
strings in one form; two more exist only on the way to TensorFlow
(``as_tf_dataset``), where building a ``tf.string`` tensor from Python
objects would cost as much again as making them:

1. **An object array of ``bytes``**: what string features are, everywhere.
2. **``TensorBackedArray``** (``fastinput.tf_values``): a read-only numpy
   array, so form 1 to everything, that also keeps the ``tf.Tensor`` it was
   made from (``parse_example`` through TensorFlow's kernel); the adapter
   passes that tensor on instead of converting the array back.
3. **``PackedStrings``** (``fastinput.tf_values``): no array at all, but
   every value in one blob plus offsets, written by fastinput's own Example
   parser when TensorFlow is the consumer; the adapter cuts the tensor out of
   the blob without holding the GIL.

Form 3 is an ``ArrayLeaf``: a leaf that stands for an array without being a
numpy array. The core (``structure``, ``conversion``, ``spec``) knows only
this base class: it keeps such a leaf as it is, takes its spec from
``shape`` and ``dtype``, and gets the values through ``np.asarray`` where it
needs them. It names no TensorFlow-specific class.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class ArrayLeaf:
    """A leaf that stands for an array of ``shape`` and ``dtype`` without being a ``numpy.ndarray``.

    Subclasses define ``shape``, ``dtype``, ``size``, ``nbytes`` and ``__array__`` (the values as a numpy
    array, for whatever needs them); the core passes them through untouched.
    """

    __slots__ = ()
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        """How many values the leaf holds."""
        raise NotImplementedError

    @property
    def nbytes(self) -> int:
        """The bytes the leaf's values take."""
        raise NotImplementedError

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The values as a numpy array (of ``dtype``, if given)."""
        raise NotImplementedError
