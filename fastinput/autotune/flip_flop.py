"""Settling a worker count that the model turns back and forth: measure both counts, keep the faster one a while.

The model decides a worker count from small differences of large measured figures (a worker's wall time less its
CPU time less its time queued for a core). Where two counts sit on its edge, each window's noise decides, and the
count flips every few rounds: the README image pipeline with one busy core beside went 2 -> 3 -> 2 workers every
0.5-0.75 s (``own`` 84-130 ms a batch, CPU 50-59, queued 26-70: the waiting left over, 0-7 ms, was all the model
had to go on), and each flip changed the pipeline's share of the cores, and its rate, by about a tenth.

A change that undoes the knob's previous one within ``FLIP_ROUNDS`` rounds is such a flip. The tuner then stops
asking the model: it compares the output rates the stage delivered at the two counts (its own windows, those
after a change left out, the last ``EVIDENCE_WINDOWS`` at each count) and pins the knob to the faster one, or to
the smaller where neither is faster by ``MIN_GAIN`` (a consumer slower than the pipeline makes both alike; a
worker more then only takes cores from the training step). The pin lasts ``FIRST_HOLD_ROUNDS`` rounds, twice as
long after each further flip (up to ``MAX_HOLD_ROUNDS``), so that a pipeline whose load changes is looked at again.
"""

from __future__ import annotations

import collections

FLIP_ROUNDS = 16
"""A change that undoes the previous one within this many tuning rounds (4 s at 0.25 s a round) is a flip."""
EVIDENCE_WINDOWS = 8
"""Windows of measured output kept per worker count."""
MIN_WINDOWS = 3
"""Windows needed at each of the two counts before the knob is pinned; until then the model goes on deciding."""
MIN_GAIN = 0.02
"""The larger count is kept only if its measured rate is this share above the smaller count's."""
FIRST_HOLD_ROUNDS = 40
"""Rounds the first pin lasts (10 s); each further flip of the knob doubles it."""
MAX_HOLD_ROUNDS = 480
"""The longest pin (2 min)."""


class FlipFlopGuard:
    """One worker-count knob's recent changes and the rates measured at each count (``record``); ``settle`` says
    what a change the model asks for becomes, ``pinned`` what the knob is held at in a round."""

    __slots__ = ("_changed_round", "_before_change", "_flips", "_pin", "_pinned_until", "_windows")

    def __init__(self) -> None:
        self._changed_round: int | None = None  # the round of the knob's last change
        self._before_change = 0  # its value before that change
        self._flips = 0  # pins so far: each doubles the next one's length
        self._pin = 0
        self._pinned_until = -1
        self._windows: dict[int, collections.deque[tuple[float, float]]] = {}

    def record(self, workers: int, elements: float, seconds: float) -> None:
        """A window of ``seconds`` in which the stage delivered ``elements`` with ``workers`` workers throughout."""
        if seconds > 0:
            self._windows.setdefault(workers, collections.deque(maxlen=EVIDENCE_WINDOWS)).append((elements, seconds))

    def rate(self, workers: int) -> float | None:
        """Elements per second measured at ``workers`` (its kept windows pooled), None below ``MIN_WINDOWS``."""
        windows = self._windows.get(workers, ())
        if len(windows) < MIN_WINDOWS:
            return None
        return sum(e for e, _ in windows) / sum(s for _, s in windows)

    def pinned(self, round_: int) -> int | None:
        """The value the knob is held at in ``round_``, or None: the model turns it."""
        return self._pin if round_ < self._pinned_until else None

    def settle(self, current: int, proposed: int, round_: int) -> int:
        """The value to set where the model asks to go from ``current`` to ``proposed`` in ``round_``: ``proposed``,
        unless that undoes the last change within ``FLIP_ROUNDS`` and both counts have been measured; then the
        measured faster one (the smaller unless the larger gains ``MIN_GAIN``), pinned from now on."""
        undoes = (self._changed_round is not None and proposed == self._before_change
                  and round_ - self._changed_round <= FLIP_ROUNDS)
        low, high = sorted((current, proposed))
        low_rate, high_rate = self.rate(low), self.rate(high)
        if not undoes or low_rate is None or high_rate is None:
            return self._changed(current, proposed, round_)
        keep = high if high_rate > low_rate * (1 + MIN_GAIN) else low
        self._pin = keep
        self._pinned_until = round_ + min(MAX_HOLD_ROUNDS, FIRST_HOLD_ROUNDS << self._flips)
        self._flips += 1
        return self._changed(current, keep, round_) if keep != current else current

    def _changed(self, current: int, value: int, round_: int) -> int:
        if value != current:
            self._changed_round, self._before_change = round_, current
        return value
