"""Writing your own stage: the public base classes a custom source or transformation is built on.

fastinput's own readers and ops are written on exactly these classes. A stage is two classes:

- a ``Dataset`` subclass, the description: it passes its input nodes to ``super().__init__(inputs)`` (none for a
  source), declares ``traits`` (what kind of stage it is: the profiler's advice, the TF adapter and the static
  rewrites read them, never the stage's string), says how it reads in reports (``__str__``), what its elements look
  like (``compute_element_spec``, unless its traits say ``keeps_spec``) and how to run it (``make_iterator``);
- a ``DatasetIterator`` subclass, the running state: it defines ``produce_chunk(n)`` (up to ``n`` next elements,
  never an empty list, ``StopIteration`` at the end) or ``produce()`` (one element), and reads its inputs through
  their ``get_next_chunk(n)`` / ``get_next()``, which time the call and name the stage in errors. A stage that owns
  threads derives from ``ThreadedIterator``, hands items over through a ``Channel`` or an ``ItemQueue`` (errors
  travel as ``Failure`` at their place), checks ``raise_if_cancelled()`` after a wait, and joins its threads in
  ``join_self``; a setting that can change while it runs is a ``Knob`` of a ``KnobKind``, which the autotuner turns.

A source that counts down from ``n``, in chunks:

>>> import numpy as np
>>> import fastinput as fi
>>> from fastinput.extension import Dataset, DatasetIterator, StageKind, StageTraits
>>> class Countdown(Dataset):
...     traits = StageTraits("countdown", StageKind.IN_MEMORY)
...     def __init__(self, n):
...         super().__init__()
...         self.n = n
...     def __str__(self):
...         return f"countdown({self.n})"
...     def compute_element_spec(self):
...         return fi.TensorSpec((), np.int64)
...     def make_iterator(self, ctx):
...         return CountdownIterator(self, ctx)
>>> class CountdownIterator(DatasetIterator):
...     def __init__(self, dataset, ctx):
...         super().__init__(dataset, ctx)
...         self.left = dataset.n
...     def produce_chunk(self, n):
...         if self.left == 0:
...             raise StopIteration
...         take = min(n, self.left)
...         chunk = [np.int64(self.left - i) for i in range(take)]
...         self.left -= take
...         return chunk
>>> [int(x) for x in Countdown(5).map(lambda x: x * 10, num_parallel_calls=2)]
[50, 40, 30, 20, 10]
>>> Countdown(5).batch(2).element_spec
TensorSpec(shape=(None,), dtype=int64)
"""

from fastinput._engine.buffer import Channel, Failure, ItemQueue
from fastinput._engine.iterator import DatasetIterator, IteratorContext, Knob, ThreadedIterator
from fastinput._engine.traits import KnobKind, StageKind, StageTraits
from fastinput.dataset import Dataset

__all__ = [
    "Channel",
    "Dataset",
    "DatasetIterator",
    "Failure",
    "ItemQueue",
    "IteratorContext",
    "Knob",
    "KnobKind",
    "StageKind",
    "StageTraits",
    "ThreadedIterator",
]
