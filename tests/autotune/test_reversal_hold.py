"""The tuner does not move a knob back and forth on small differences between windows (issue 20): on 2 cores the
README pipeline's map_and_batch flipped between 2 and 3 workers every few batches. A move is undone within
``REVERSAL_HOLD_ROUNDS`` only for a gain of ``REVERSAL_GAIN``; after that, persisting evidence moves it back."""

import fastinput as fi
from fastinput.autotune.tuner import REVERSAL_HOLD_ROUNDS, Tuner
from tests.autotune.test_cpu_bound_workers import BATCH_CPU, _Batches, _Consumer


class _Flipping(_Batches):
    """A computing map_and_batch whose windows say "one worker more" at 2 workers and "one worker less" at 3: at 2
    its batches take 5% over their CPU time (another thread took a core now and then, the GIL), at 3 exactly the
    1.5x of three workers queued for two cores."""

    def finish(self, batches):
        workers = self.workers.value
        self.own_ns = int(BATCH_CPU * (1.05 if workers <= 2 else workers / 2) * 1e9)
        super().finish(batches)


def _workers_per_round(stage, rounds):
    tuner = Tuner(stage, _Consumer(), fi.AutotuneOptions(cpu_budget=2), interval=3600)
    seen = []
    try:
        for _ in range(rounds):
            stage.finish(4)
            tuner.tune_once()
            seen.append(stage.workers.value)
    finally:
        tuner.stop()
    return seen


def test_a_worker_just_added_is_not_freed_on_the_next_window():
    seen = _workers_per_round(_Flipping(workers=2, own=BATCH_CPU, cpu=BATCH_CPU), REVERSAL_HOLD_ROUNDS + 3)
    assert seen[:REVERSAL_HOLD_ROUNDS + 1] == [3] * (REVERSAL_HOLD_ROUNDS + 1)  # up once, kept through the hold
    assert seen[-1] == 2  # the windows kept saying so: the worker is freed once the hold is over
