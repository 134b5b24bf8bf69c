"""The tuner's worker count when other processes share the cores (issue 20, one busy core beside the README image
pipeline): workers that sleep at work (GIL waits) get workers past the cores, up to a bound and no further; on a
quiet machine the count stays where it was; a window that straddles a change of the worker count is not judged."""

import pytest

import fastinput as fi
from fastinput.autotune import model as model_module
from fastinput.autotune import tuner as tuner_module
from fastinput.autotune.model import blocked_bound, worker_time
from fastinput.autotune.tuner import Tuner
from tests.autotune.test_cpu_bound_workers import BATCH_CPU, _Batches, _Consumer, _map_and_batch, _workers_after


def _contended(workers):
    """What the README pipeline's map_and_batch measured with one busy core beside (per batch of 64, load 2-4):
    queued for a core about 0.2 s at any worker count, and the workers' sleep at work (GIL waits) growing with them:
    about 120 ms at 4 workers, 250 at 6, 360 at 10, 630 at 14, of which half or more shows as own less CPU less
    queueing (readme5 saw the same: 42 ms a batch at 4 workers, 153 at 7, 397-1,066 at 16)."""
    queued, blocked = 0.2, 0.04 * workers
    return _map_and_batch(own=BATCH_CPU + queued + blocked, cpu=BATCH_CPU, workers=workers, queued=queued,
                          blocked=blocked)


def _climb_contended(rounds):
    workers = 2
    for _ in range(rounds):
        workers = _workers_after(_contended(workers))
    return workers


def test_gil_waits_with_a_busy_core_buy_workers_up_to_three_per_core_and_no_more():
    assert blocked_bound(2.0) == 6
    assert _climb_contended(rounds=20) == 6


def test_without_the_bound_the_same_figures_run_away(monkeypatch):
    # What readme5 saw: each worker added made the GIL waits longer, which justified the next (16 workers in 7 s).
    monkeypatch.setattr(model_module, "BLOCKED_WORKERS_PER_CORE", 8)
    assert _climb_contended(rounds=20) == 16
    monkeypatch.setattr(model_module, "CONTENDED_SHARE", float("inf"))  # only the sleep the run queue hid bounded
    monkeypatch.setattr(model_module, "BLOCKED_WORKERS_PER_CORE", 3)
    assert _climb_contended(rounds=20) == 16


def test_sleep_that_the_run_queue_hides_buys_a_worker():
    # One busy core: the kernel's run-queue delay per batch exceeds own less CPU (it accrues also outside the work),
    # so nothing shows as waiting; the workers' sleep at work (13% of own) does.
    own = 0.2
    model = _map_and_batch(own=own, cpu=BATCH_CPU, workers=2, queued=0.16, blocked=0.135 * own)
    assert _workers_after(model) == 3
    assert _workers_after(_map_and_batch(own=own, cpu=BATCH_CPU, workers=2, queued=0.16)) == 2  # sleep not known


@pytest.mark.parametrize("share", [0.0, 0.025, 0.05, 0.07])
def test_on_a_quiet_machine_the_count_stays(share):
    # Quiet: the workers sleep 2-3% of their time at work (GIL hand-offs between the two of them), and queue a
    # little for a core (the reader and prefetch threads run too).
    queued = 0.05 * BATCH_CPU
    model = _map_and_batch(own=BATCH_CPU + queued, cpu=BATCH_CPU, workers=2, queued=queued,
                           blocked=share * (BATCH_CPU + queued))
    assert _workers_after(model, rounds=5) == 2


def test_sleep_below_the_threshold_leaves_the_model_as_it_was():
    own, queued = 1.3 * BATCH_CPU, 0.2 * BATCH_CPU
    without = _map_and_batch(own=own, cpu=BATCH_CPU, workers=3, queued=queued).inputs[0]
    with_some = _map_and_batch(own=own, cpu=BATCH_CPU, workers=3, queued=queued,
                               blocked=own - BATCH_CPU - queued + 0.07 * own).inputs[0]
    for workers in (1, 2, 3, 4, 8, 16):
        assert worker_time(with_some, workers) == worker_time(without, workers)


def test_a_stage_idle_most_of_the_window_counts_no_idle_sleep(monkeypatch):
    # Reads from the page cache far ahead of their consumer: 4 reads of 10 ms (9 of CPU) in a second on 2 threads,
    # which sleep the rest of it waiting for room. In the share at work (2%) that idle sleep alone would be 39 ms,
    # more than the 4 ms the reads spent off the CPU.
    clock = _Clock()
    monkeypatch.setattr(tuner_module, "time", clock)
    times = {101: (9_000_000, 1_000_000), 102: (9_000_000, 1_000_000)}  # first look: the reads' rest was queueing
    monkeypatch.setattr(tuner_module, "thread_times", lambda threads: dict(times))
    stage, consumer = _Batches(workers=2, own=0.010, cpu=0.009, threads=(101, 102)), _Consumer()
    tuner = Tuner(stage, consumer, fi.AutotuneOptions(cpu_budget=2), interval=3600)
    try:
        stage.finish(2)
        tuner.tune_once()
        assert stage.workers.value == 2
        clock.ns += 10**9
        times.update({101: (27_000_000, 1_000_000), 102: (27_000_000, 1_000_000)})
        stage.finish(4)
        tuner.tune_once()
        assert tuner.model.blocked == pytest.approx(0.001)
    finally:
        tuner.stop()


def test_waiting_that_the_workers_did_not_sleep_is_not_waiting():
    # Own less CPU less queueing of 140 ms a batch, but the workers slept 1 ms at work: batches that had queued in
    # the window before finished in this one (own is credited when a batch finishes, the kernel's figures as they
    # accrue). Read as waiting, it bought two more workers.
    model = _map_and_batch(own=0.226, cpu=BATCH_CPU, workers=2, queued=0.022, blocked=0.001)
    assert _workers_after(model) == 2
    assert _workers_after(_map_and_batch(own=0.226, cpu=BATCH_CPU, workers=2, queued=0.022)) == 7  # sleep not known


def test_a_waiting_stage_that_queues_little_keeps_every_worker():
    # Slow storage: the workers sleep nearly all the time, and queue for a core only a sliver of it.
    assert _workers_after(_map_and_batch(own=0.020, cpu=0.0001, workers=2, queued=0.0001, blocked=0.0199)) == 16


def test_waiting_of_workers_that_queue_much_overlaps_only_up_to_the_bound():
    # Own less CPU less queueing is large, but the workers queue for a core half their time: GIL waits, not storage.
    model = _map_and_batch(own=0.4, cpu=BATCH_CPU, workers=4, queued=0.2, blocked=0.136)
    assert _workers_after(model, rounds=5) == 6


def test_the_bounded_model_agrees_with_the_measurement_at_the_current_worker_count():
    for workers in (2, 4, 6, 16):
        stage = _contended(workers).inputs[0]
        assert worker_time(stage, workers) == pytest.approx(stage.own / workers)


class _Clock:
    def __init__(self):
        self.ns = 0

    def monotonic_ns(self):
        return self.ns


def test_the_tuner_counts_the_workers_sleep_in_their_share_of_time_at_work(monkeypatch):
    clock, times = _Clock(), {}
    monkeypatch.setattr(tuner_module, "time", clock)
    monkeypatch.setattr(tuner_module, "thread_times", lambda threads: {t: times[t] for t in threads if t in times})
    stage, consumer = _Batches(workers=2, own=0.2, cpu=BATCH_CPU, threads=(101, 102, 103)), _Consumer()
    tuner = Tuner(stage, consumer, fi.AutotuneOptions(cpu_budget=2), interval=3600)
    try:
        stage.finish(2)
        times.update({101: (64_000_000, 136_000_000), 102: (64_000_000, 136_000_000)})  # 103 has not started yet
        tuner.tune_once()  # first look: queued all the rest of each batch; the sleep is not known
        assert tuner.model.blocked is None and stage.workers.value == 2
        # One second: 4 batches of 0.2 s over 2 workers (at work 40% of the time); each worker ran 0.116 s, queued
        # 0.6 s and slept 0.284 s. A thread that started meanwhile (103) is left out.
        clock.ns += 10**9
        times.update({101: (180_000_000, 736_000_000), 102: (180_000_000, 736_000_000), 103: (0, 0)})
        stage.finish(4)
        tuner.tune_once()
        assert tuner.model.blocked == pytest.approx(2 * 0.284 * 0.4 / 4)
        assert tuner.model.queued == pytest.approx(2 * 0.6 / 4)
        assert stage.workers.value == 4  # the sleep (28% of own) is waiting that the run-queue delay hid
    finally:
        tuner.stop()


def test_a_window_that_straddles_a_change_of_the_worker_count_is_not_judged():
    stage, consumer = _Batches(workers=2, own=2 * BATCH_CPU, cpu=BATCH_CPU), _Consumer()
    tuner = Tuner(stage, consumer, fi.AutotuneOptions(cpu_budget=2), interval=3600)
    try:
        stage.finish(4)  # half of each batch waiting: twice the cores
        tuner.tune_once()
        assert stage.workers.value == 4
        # Batches that started with 2 workers finish with 4: their figures belong to neither count.
        stage.own_ns = 8 * stage.cpu_ns
        stage.finish(4)
        tuner.tune_once()
        assert not tuner.model.settled and stage.workers.value == 4
        # The next window starts at that look: only the batches finished since are judged.
        stage.own_ns = stage.cpu_ns
        stage.finish(4)
        tuner.tune_once()
        assert tuner.model.settled and tuner.model.own == pytest.approx(BATCH_CPU)
        assert stage.workers.value == 2
    finally:
        tuner.stop()
