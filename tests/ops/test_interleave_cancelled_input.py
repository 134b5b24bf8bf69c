"""A parallel interleave whose input dataset stops with ``CancelledError`` raises it: that is never a clean end.

While a pipeline closes, the stop signals of its stages are set one by one: a
worker's read of an input dataset may raise ``CancelledError`` before the
interleave's own signal is set. Taken for the end of that dataset, the consumer
could then find every dataset ended and stop cleanly (``StopIteration``) instead
of raising ``CancelledError`` (seen as a rare failure of
``test_closing_does_not_wait_for_a_stalled_store``). Here an input dataset
raises it on its own, which reaches the same path every time.
"""

from __future__ import annotations

import pytest

import fastinput as fi


def stopped_after_one(x):
    def generate():
        yield int(x)
        raise fi.errors.CancelledError("stopped")  # what an input stage raises once its stop signal is set

    return fi.Dataset.from_generator(generate)


@pytest.mark.parametrize("num_parallel_calls", [None, 2])
def test_an_input_dataset_cancelled_raises_cancelled_error(num_parallel_calls):
    ds = fi.Dataset.range(2).interleave(stopped_after_one, cycle_length=2, num_parallel_calls=num_parallel_calls)
    with pytest.raises(fi.errors.CancelledError, match="stopped"):
        list(ds)
