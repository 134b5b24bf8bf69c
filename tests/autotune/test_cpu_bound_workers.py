"""The tuner's model of workers sharing cores: a computing stage gets about as many workers as cores, a waiting
one keeps gaining from more (issue 20: 16 threads on 2 cores for a stage that only decodes JPEGs)."""

import pytest

import fastinput as fi
from fastinput._engine.iterator import Knob
from fastinput._engine.traits import KnobKind, TuningKind, TuningProfile
from fastinput.autotune import tuner as tuner_module
from fastinput.autotune.model import StageModel, output_time, share_cores, worker_time
from fastinput.autotune.tuner import Tuner, climb

WORKERS, OUTPUT = KnobKind.WORKERS, KnobKind.OUTPUT_BUFFER
BATCH_CPU = 0.064  # a batch of 64 images at 1 ms of CPU each
CORES = 2.0


def _map_and_batch(own, cpu, workers, cores=CORES, maximum=16, queued=None, blocked=None):
    """What the tuner measures for ``map_and_batch`` with ``workers`` workers under a one-thread prefetch: ``own``
    seconds of a worker's wall time per batch, ``cpu`` of its CPU time, ``queued`` of its run-queue delay and
    ``blocked`` of its sleep at work (None: not known)."""
    def knob(stage, name, kind, value, top):
        return Knob(stage, name, value, 1, top, True, lambda value: None, kind=kind)

    stage = StageModel("map_and_batch(f)", TuningKind.PARALLEL, own=own, ratio=64.0, cpu=cpu, nbytes=9.6e6,
                       knobs={WORKERS: knob("map_and_batch(f)", "parallelism", WORKERS, workers, maximum),
                              OUTPUT: knob("map_and_batch(f)", "buffer_size", OUTPUT, 4, 1024)},
                       rate=30.0, cores=cores, queued=queued, blocked=blocked)
    return StageModel("prefetch(AUTOTUNE)", TuningKind.PREFETCH, own=2e-5, ratio=1.0, cpu=2e-5, nbytes=9.6e6,
                      knobs={OUTPUT: knob("prefetch(AUTOTUNE)", "buffer_size", OUTPUT, 2, 1024)},
                      inputs=[stage], rate=30.0, cores=cores)


def _workers_after(model, rounds=1):
    stage = model.inputs[0]
    for _ in range(rounds):
        for knob, value in climb(model, 0.0, CORES, 8 << 30).items():
            knob.set(value)
    return stage.knobs[WORKERS].value


def test_a_computing_stage_on_more_workers_than_cores_gives_them_back():
    # 16 workers on 2 cores, all computing: each batch's wall time is 8x its CPU time, spent queued for a core.
    # Counted as waiting, that time made every worker look worth keeping (and a 17th worth adding).
    model = _map_and_batch(own=8 * BATCH_CPU, cpu=BATCH_CPU, workers=16)
    assert _workers_after(model) == 2


def test_a_computing_stage_gets_no_worker_past_the_cores():
    model = _map_and_batch(own=BATCH_CPU, cpu=BATCH_CPU, workers=2)
    assert _workers_after(model, rounds=5) == 2


def test_a_stage_that_waits_half_its_time_gets_twice_the_cores():
    # Half of each batch waiting (storage, locks): four workers keep two cores busy, a fifth buys nothing.
    model = _map_and_batch(own=2 * BATCH_CPU, cpu=BATCH_CPU, workers=2)
    assert _workers_after(model) == 4


def _with_reads_beside(model, cpu_per_record):
    """``model`` with an interleave under its map_and_batch whose reader threads spend ``cpu_per_record`` seconds
    of CPU per record (64 records a batch), as ``Tuner.tune_once`` then sees it (``share_cores``)."""
    stage = model.inputs[0]
    stage.inputs = [StageModel("interleave(TFRecordDataset)", TuningKind.INTERLEAVE, own=cpu_per_record, ratio=1.0,
                               cpu=cpu_per_record, nbytes=94e3, knobs={}, rate=64 * stage.rate, cores=CORES)]
    share_cores(model)
    return model


def test_a_stage_that_waits_for_its_input_gets_no_worker_the_cores_cannot_run():
    # The README image pipeline on 2 quiet cores, one round's figures per batch: the workers' waiting (pulling
    # records the interleave's reader thread is still reading) made a third worker look 2% faster; it was 6% slower
    # (2,788 against 2,977 images/s), the reader's CPU already taking what the two left of the cores.
    def readme_round():
        return _map_and_batch(own=0.05110, cpu=0.04840, workers=2, queued=0.00167, blocked=0.00247)

    assert _workers_after(_with_reads_beside(readme_round(), cpu_per_record=20e-6)) == 2
    assert _workers_after(_with_reads_beside(readme_round(), cpu_per_record=0.0)) == 3  # the floor is the reads'


def test_the_cpu_beside_a_stage_is_the_rest_of_the_pipelines_per_element():
    model = _with_reads_beside(_map_and_batch(own=BATCH_CPU, cpu=BATCH_CPU, workers=2), cpu_per_record=20e-6)
    stage, reads = model.inputs[0], model.inputs[0].inputs[0]
    prefetch_cpu = model.cpu * model.rate
    assert stage.cpu_beside == pytest.approx((64 * 20e-6 * stage.rate + prefetch_cpu) / stage.rate)
    assert reads.cpu_beside == pytest.approx((BATCH_CPU * stage.rate + prefetch_cpu) / reads.rate)


def test_a_waiting_stage_still_gets_every_worker():
    # Slow storage: 20 ms of waiting for 0.1 ms of CPU per element; workers past the cores overlap the waits.
    model = _map_and_batch(own=0.020, cpu=0.0001, workers=2)
    assert _workers_after(model) == 16


def test_a_computing_stage_on_a_loaded_machine_keeps_the_cores():
    # Other processes hold one of the two cores: each batch's wall time is twice its CPU time, all of it queued for a
    # core, as the kernel's run-queue delay says. Estimated from wall and CPU time alone, it read as waiting, and the
    # tuner climbed to 9-16 workers (the README image pipeline on a loaded machine, ~30 us more CPU per image).
    assert _workers_after(_map_and_batch(own=2 * BATCH_CPU, cpu=BATCH_CPU, workers=2, queued=BATCH_CPU),
                          rounds=5) == 2
    assert _workers_after(_map_and_batch(own=16 * BATCH_CPU, cpu=BATCH_CPU, workers=16, queued=15 * BATCH_CPU)) == 2


def test_a_waiting_stage_on_a_loaded_machine_still_gets_every_worker():
    model = _map_and_batch(own=0.020, cpu=0.0001, workers=2, queued=0.0001)
    assert _workers_after(model) == 16


def test_the_model_agrees_with_the_measurement_at_the_current_worker_count():
    for own, cpu, workers, queued in [(8 * BATCH_CPU, BATCH_CPU, 16, None), (2 * BATCH_CPU, BATCH_CPU, 2, None),
                                      (0.020, 0.0001, 8, None), (2 * BATCH_CPU, BATCH_CPU, 2, BATCH_CPU),
                                      (16 * BATCH_CPU, BATCH_CPU, 16, 15 * BATCH_CPU), (0.020, 0.0001, 8, 0.0001)]:
        stage = _map_and_batch(own, cpu, workers, queued=queued).inputs[0]
        assert worker_time(stage, workers) == pytest.approx(own / workers)


def test_cores_unbounded_is_the_plain_model():
    stage = _map_and_batch(own=8 * BATCH_CPU, cpu=BATCH_CPU, workers=16, cores=float("inf")).inputs[0]
    for workers in (1, 2, 16, 17):
        assert worker_time(stage, workers) == pytest.approx(8 * BATCH_CPU / workers)
    assert output_time(stage, 0.0) == pytest.approx(8 * BATCH_CPU / 16, rel=0.01)


class _Metrics:
    parallel = True
    bytes_per_element = 9.6e6
    elements = busy_ns = call_ns = cpu_ns = 0


class _Batches:
    """A stand-in for a running ``map_and_batch`` whose batches each take ``own`` seconds (``cpu`` of CPU)."""

    name = "map_and_batch(f)"
    inputs = ()

    def __init__(self, workers, own, cpu, threads=None):
        self.metrics = _Metrics()
        self.own_ns, self.cpu_ns = int(own * 1e9), int(cpu * 1e9)
        self.threads = threads
        self.workers = Knob(self.name, "parallelism", workers, 1, 16, True, lambda value: None, kind=WORKERS)
        self.buffer = Knob(self.name, "buffer_size", 4, 1, 1024, True, lambda value: None, kind=OUTPUT)

    def finish(self, batches):
        self.metrics.elements += batches
        self.metrics.busy_ns += batches * self.own_ns
        self.metrics.cpu_ns += batches * self.cpu_ns

    def knobs(self):
        return [self.workers, self.buffer]

    def worker_threads(self):
        return self.threads

    def tuning_profile(self):
        return TuningProfile(TuningKind.PARALLEL)


class _Consumer:
    def consumer_progress(self):
        return 0, 0, 0


def test_workers_are_judged_only_on_enough_finished_work():
    # Batches outlast a round: a round that saw no batch finish measured nothing (it read as free work and gave
    # every worker back), one that saw fewer batches than workers measured noise. Both leave the workers alone.
    stage, consumer = _Batches(workers=4, own=0.128, cpu=0.064), _Consumer()
    tuner = Tuner(stage, consumer, fi.AutotuneOptions(cpu_budget=2), interval=3600)
    try:
        stage.finish(4)  # four workers computing, twice their CPU time per batch: they queue for the two cores
        tuner.tune_once()
        assert tuner.model.settled and stage.workers.value == 2
        tuner.tune_once()  # no batch finished since
        assert not tuner.model.settled and stage.workers.value == 2
        stage.finish(1)  # one batch for two workers
        tuner.tune_once()
        assert not tuner.model.settled and stage.workers.value == 2
        stage.finish(1)  # two batches since the last judgement, each half waiting: twice the cores keep them busy
        tuner.tune_once()
        assert tuner.model.settled and stage.workers.value == 4
    finally:
        tuner.stop()



def test_the_tuner_reads_the_workers_run_queue_delay(monkeypatch):
    # Two workers, each batch twice its CPU time: with the kernel saying the rest was spent queued for a core (other
    # processes' load), the workers stay at the cores; with it saying nothing was, the rest is waiting, and two more
    # workers overlap it.
    delays = {}
    monkeypatch.setattr(tuner_module, "thread_times", lambda threads: {tid: (0, delays[tid]) for tid in threads})
    for queued_per_batch, workers in [(0.064, 2), (0.0, 4)]:
        delays.update({101: 0, 102: 0})
        stage, consumer = _Batches(workers=2, own=0.128, cpu=0.064, threads=(101, 102)), _Consumer()
        tuner = Tuner(stage, consumer, fi.AutotuneOptions(cpu_budget=2), interval=3600)
        try:
            stage.finish(4)
            delays.update({101: int(2 * queued_per_batch * 1e9), 102: int(2 * queued_per_batch * 1e9)})
            tuner.tune_once()
            assert tuner.model.queued == pytest.approx(queued_per_batch)
            assert stage.workers.value == workers
        finally:
            tuner.stop()
