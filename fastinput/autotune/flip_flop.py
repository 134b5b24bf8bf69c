"""Settling a worker count that the model turns back and forth: try both counts in turn, keep the faster a while.

The model decides a worker count from small differences of large measured figures (a worker's wall time less its
CPU time less its time queued for a core). Where two counts sit on its edge, each window's noise decides, and the
count flips every few rounds: the README image pipeline with one busy core beside went 2 -> 3 -> 2 workers every
0.5-0.75 s (``own`` 84-130 ms a batch, CPU 50-59, queued 26-70: the waiting left over, 0-7 ms, was all the model
had to go on), and each flip changed the pipeline's share of the cores, and its rate, by about a tenth.

A change that undoes the knob's previous one within ``FLIP_ROUNDS`` rounds, itself undoing the one before, is such a
flip (a single step back may be the model correcting itself, a change of workload, or a start-up window: the model
decides that one). The tuner then stops asking the model and measures: it holds the knob at each of the two counts
for ``TRIAL_ROUNDS`` rounds (the other count between two halves of its own), counting what the stage delivered once
the work in flight at the change has finished (a worker let go finishes its batch, a new one delivers its first only
after a batch's time: counted, those made the tuned image pipeline with a busy core look faster on 2 workers than on
3, which delivered 7% more held fixed), and pins the faster count, or the smaller where neither is faster by
``MIN_GAIN`` (a consumer slower than the pipeline makes both alike; a worker more then only takes cores from the
training step). The pin lasts ``FIRST_HOLD_ROUNDS`` rounds, twice as long after each further flip (up to
``MAX_HOLD_ROUNDS``), so that a pipeline whose load changes is tried again; a trial adds to what earlier ones
counted at its two counts, at half their weight (3 s a count did not always resolve the README pipeline's 8%).
"""

from __future__ import annotations

import logging

logger = logging.getLogger("fastinput.autotune")

FLIP_ROUNDS = 16
"""A change that undoes the previous one within this many tuning rounds (4 s at 0.25 s a round) is a step back;
the second step back in a row is a flip."""
TRIAL_ROUNDS = 12
"""Rounds each of the two counts is held and measured (3 s): the count the knob has for the first and last half of
them, the other count for all of them in between, so that a machine whose speed drifts during the trial favours
neither."""
MIN_GAIN = 0.02
"""The larger count is kept only if its measured rate is this share above the smaller count's."""
FIRST_HOLD_ROUNDS = 40
"""Rounds the first pin lasts (10 s); each further flip of the knob doubles it."""
MAX_HOLD_ROUNDS = 480
"""The longest pin (2 min)."""


class FlipFlopGuard:
    """One worker-count knob (``name``, for the debug log): its last change, and after a flip the trial of both
    counts and the pin.

    Each round the tuner calls ``record`` with the stage's measured window (if it has one), then ``held`` for the
    value the knob is to keep (a trial's count or the pin; None: the model decides), and ``settle`` for a change
    the model asks of a knob not held."""

    __slots__ = ("name", "_changed_round", "_before_change", "_steps_back", "_flips", "_pin", "_pinned_until",
                 "_tried", "_trial", "_trial_until", "_in_flight", "_delivered")

    def __init__(self, name: str = "worker count") -> None:
        self.name = name
        self._changed_round: int | None = None  # the round of the knob's last change
        self._before_change = 0  # its value before that change
        self._steps_back = 0  # changes in a row, each undoing the one before within FLIP_ROUNDS
        self._flips = 0  # pins so far: each doubles the next one's length
        self._pin = 0
        self._pinned_until = -1
        self._tried = (0, 0)  # the two counts of the last trial
        self._trial: list[tuple[int, int]] = []  # (count, rounds) still to try, the one held now first
        self._trial_until = -1
        self._in_flight = 0  # work items to let finish before counting (those under way at the last change)
        self._delivered: dict[int, tuple[float, float]] = {}  # count -> (elements, seconds) counted in the trial

    def settle(self, current: int, proposed: int, round_: int) -> int:
        """The value to set where the model asks to go from ``current`` to ``proposed`` in ``round_``: ``proposed``,
        unless that is the second step back in a row (see ``FLIP_ROUNDS``); then ``current`` is held for the trial,
        which tries ``proposed`` next."""
        if proposed == current:
            return current
        steps_back = (self._changed_round is not None and proposed == self._before_change
                      and round_ - self._changed_round <= FLIP_ROUNDS)
        self._steps_back = self._steps_back + 1 if steps_back else 0
        if self._steps_back >= 2:
            self._steps_back = 0
            half = TRIAL_ROUNDS // 2
            self._tried = (current, proposed)
            self._trial = [(current, half), (proposed, TRIAL_ROUNDS), (current, TRIAL_ROUNDS - half)]
            self._trial_until = round_ + half
            # what earlier trials counted at these counts, at half weight: later trials decide on more, the old fades
            self._delivered = {count: (done / 2, spent / 2) for count, (done, spent) in self._delivered.items()
                               if count in self._tried}
            self._in_flight = max(current, proposed)
            logger.debug("autotune: %s turned %d -> %d -> %d: trying both counts", self.name, proposed, current,
                         proposed)
            return current
        self._changed_round, self._before_change = round_, current
        return proposed

    def record(self, workers: int, elements: float, seconds: float) -> None:
        """A window of ``seconds`` in which the stage delivered ``elements`` with ``workers`` workers throughout:
        counted if a trial holds that count and the work in flight at its last change has finished."""
        if not self._trial or workers != self._trial[0][0]:
            return
        if self._in_flight > 0:
            self._in_flight -= elements
            return
        done, spent = self._delivered.get(workers, (0.0, 0.0))
        self._delivered[workers] = (done + elements, spent + seconds)

    def rate(self, workers: int) -> float | None:
        """Elements per second the trial counted at ``workers``, None if it counted none."""
        done, spent = self._delivered.get(workers, (0.0, 0.0))
        return done / spent if done > 0 and spent > 0 else None

    def held(self, round_: int) -> int | None:
        """The value the knob is to keep in ``round_`` (a trial's count, or the pin), or None: the model decides.
        Moves the trial on to its next count, and from its last to the pin, as the rounds pass."""
        if self._trial and round_ >= self._trial_until:
            tried, _ = self._trial.pop(0)
            if self._trial:  # the other count next
                count, rounds = self._trial[0]
                self._trial_until = round_ + rounds
                self._in_flight = max(tried, count)
            else:
                self._pin_faster(round_)
        if self._trial:
            return self._trial[0][0]
        return self._pin if round_ < self._pinned_until else None

    def _pin_faster(self, round_: int) -> None:
        """Pin the larger count if it measured ``MIN_GAIN`` faster, else the smaller (also where either measured
        nothing: the consumer paused)."""
        low, high = sorted(self._tried)
        low_rate, high_rate = self.rate(low), self.rate(high)
        faster = low_rate is not None and high_rate is not None and high_rate > low_rate * (1 + MIN_GAIN)
        self._pin = high if faster else low
        hold = min(MAX_HOLD_ROUNDS, FIRST_HOLD_ROUNDS << self._flips)
        self._pinned_until = round_ + hold
        self._flips += 1
        self._changed_round = None  # the model's next change starts afresh
        logger.debug("autotune: %s tried: %d workers: %s, %d: %s elements/s; held at %d for %d rounds", self.name,
                     low, _rate(low_rate), high, _rate(high_rate), self._pin, hold)


def _rate(rate: float | None) -> str:
    return "not measured" if rate is None else f"{rate:.3g}"
