"""The autotuner on running pipelines: it raises a slow stage, leaves a fast one, keeps budgets, ranges and order."""

import threading
import time

import numpy as np
import pytest

import fastinput as fi
from fastinput._engine.iterator import Knob
from fastinput._engine.traits import KnobKind, TuningKind
from fastinput.autotune.model import StageModel, queue_wait
from fastinput.autotune.tuner import climb
from fastinput.readers.framing import frame
from tests.helpers import as_ints, no_leaked_threads

NO_FUSION = fi.OptimizationOptions(map_fusion=False, map_and_batch_fusion=False)
WORKERS, OUTPUT = KnobKind.WORKERS, KnobKind.OUTPUT_BUFFER
PER_INPUT, AHEAD = KnobKind.PER_INPUT_BUFFER, KnobKind.INPUTS_AHEAD


def _consume_for(it, seconds, check=None):
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            out.append(next(it))
        except StopIteration:
            break
        if check is not None:
            check()
    return out


def _knob(it, stage_prefix, name):
    return next(k for k in it.knobs() if k.stage.startswith(stage_prefix) and k.name == name)


def test_queue_model_limits():
    assert queue_wait(0.0, 1.0, 4) == 0.0
    assert queue_wait(1.0, 0.0, 4) == 1.0  # a consumer that never waits on itself always waits for the producer
    assert queue_wait(10.0, 1.0, 4) == pytest.approx(9.0, rel=0.01)  # slow producer: wait about P - C
    assert queue_wait(1.0, 10.0, 4) < 1e-3  # fast producer: the buffer is almost never empty
    assert queue_wait(1.0, 1.0, 1) > queue_wait(1.0, 1.0, 8)  # a deeper buffer absorbs variation


def _prefetch_over_map(map_seconds, workers, consumer_batch_bytes=1_400_000, tune_workers=False):
    """A synthetic model of ``map(f, num_parallel_calls=workers).prefetch(AUTOTUNE)``: what the tuner would
    measure for a map taking ``map_seconds`` per element (all CPU) under a one-thread prefetch."""
    def knob(stage, name, kind, value, maximum, autotuned):
        return Knob(stage, name, value, 1, maximum, autotuned, lambda value: None, kind=kind)

    map_stage = StageModel("map(f)", TuningKind.PARALLEL, own=map_seconds, ratio=1.0, cpu=map_seconds,
                           nbytes=consumer_batch_bytes,
                           knobs={WORKERS: knob("map(f)", "parallelism", WORKERS, workers, 16, tune_workers),
                                  OUTPUT: knob("map(f)", "buffer_size", OUTPUT, 2 * workers, 1024, tune_workers)},
                           rate=100.0)
    return StageModel("prefetch(AUTOTUNE)", TuningKind.PREFETCH, own=2e-5, ratio=1.0, cpu=2e-5,
                      nbytes=consumer_batch_bytes,
                      knobs={OUTPUT: knob("prefetch(AUTOTUNE)", "buffer_size", OUTPUT, 2, 1024, True)},
                      inputs=[map_stage], rate=100.0)


def _tune(model, consumer_time, rounds=20, cpu_budget=2.0, ram_budget=8 << 30):
    """What the tuner's rounds do to ``model``'s knobs with the same measurements every round."""
    for _ in range(rounds):
        for knob, value in climb(model, consumer_time, cpu_budget, ram_budget).items():
            knob.set(value)
    return {(stage.name, knob.name): knob.value for stage in [model, *model.inputs] for knob in stage.knobs.values()}


@pytest.mark.parametrize(("consumer_over_producer", "most"), [(1.25, 16), (2.0, 8), (10.0, 4)])
def test_prefetch_stays_shallow_for_a_consumer_slower_than_the_pipeline(consumer_over_producer, most):
    # A slow training step, or TensorFlow calling through as_tf_dataset(): the buffer is nearly always full, and
    # each doubling of it only halves a wait that is already a sliver of the step. It used to grow to 64..1024.
    model = _prefetch_over_map(map_seconds=0.010, workers=2)
    knobs = _tune(model, consumer_time=consumer_over_producer * 0.010 / 2)
    assert knobs["prefetch(AUTOTUNE)", "buffer_size"] <= most


def test_prefetch_grows_while_depth_raises_the_modelled_rate():
    # Producer and consumer at the same mean rate: a deeper buffer does ride out their variation, up to a point.
    model = _prefetch_over_map(map_seconds=0.010, workers=2)
    knobs = _tune(model, consumer_time=0.005)
    assert 8 <= knobs["prefetch(AUTOTUNE)", "buffer_size"] <= 64


def test_prefetch_does_not_grow_for_an_infinitely_fast_consumer():
    model = _prefetch_over_map(map_seconds=0.010, workers=2)  # the consumer always waits for the map: depth can't help
    assert _tune(model, consumer_time=0.0)["prefetch(AUTOTUNE)", "buffer_size"] == 2


def test_slow_consumer_frees_workers_and_buys_no_buffers():
    model = _prefetch_over_map(map_seconds=0.002, workers=2, tune_workers=True)
    knobs = _tune(model, consumer_time=0.020)  # the map could serve 5x faster with one worker
    assert knobs["map(f)", "parallelism"] == 1
    assert knobs["map(f)", "buffer_size"] <= 4
    assert knobs["prefetch(AUTOTUNE)", "buffer_size"] <= 4


@pytest.mark.slow
def test_slow_consumer_keeps_the_prefetch_buffer_small():
    def f(x):
        return np.full(256, x, np.float32)

    ds = fi.Dataset.range(10**7).map(f).batch(64).prefetch(fi.AUTOTUNE)
    with iter(ds) as it:
        start = _knob(it, "prefetch", "buffer_size").value
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:  # a training step of 4 ms; the pipeline makes a batch in well under 1 ms
            next(it)
            time.sleep(0.004)
        assert it.tuner.rounds > 2
        assert _knob(it, "prefetch", "buffer_size").value <= max(8, start)


@pytest.mark.slow
def test_raises_a_slow_stage_and_leaves_a_fast_one():
    def slow(x):
        threading.Event().wait(0.003)  # waits like a storage read: no CPU
        return x

    def fast(x):
        return x + 1

    ds = (fi.Dataset.range(10**6).map(slow, num_parallel_calls=fi.AUTOTUNE).map(fast, num_parallel_calls=fi.AUTOTUNE)
          .with_options(fi.Options(optimization=NO_FUSION)))
    with no_leaked_threads(), iter(ds) as it:
        slow_start = _knob(it, "map(slow", "parallelism").value
        fast_start = _knob(it, "map(fast", "parallelism").value
        _consume_for(it, 4)
        assert _knob(it, "map(slow", "parallelism").value > slow_start
        assert _knob(it, "map(fast", "parallelism").value <= fast_start
        assert it.tuner.rounds > 0 and it.tuner.estimates


@pytest.mark.slow
def test_buffers_stay_within_a_small_ram_budget():
    image = np.zeros((100, 1000), np.uint8)  # 100 KB elements
    budget = 1_000_000
    ds = (fi.Dataset.range(10**6).map(lambda x: image + 0, num_parallel_calls=fi.AUTOTUNE).prefetch(fi.AUTOTUNE)
          .with_options(fi.Options(autotune=fi.AutotuneOptions(ram_budget=budget))))
    with iter(ds) as it:
        _consume_for(it, 2)
        prefetch_buffer = _knob(it, "prefetch", "buffer_size").value
        map_stats = next(s for s in it.stats() if s.name.startswith("map("))
    assert prefetch_buffer * 100_000 <= budget
    assert map_stats.bytes_buffered <= 2 * budget  # measured occupancy, with chunks in flight


@pytest.mark.slow
def test_knobs_stay_in_range_while_tuning():
    def varying(x):
        threading.Event().wait(0.002 if int(x) % 100 < 50 else 0.0)
        return x

    ds = (fi.Dataset.range(10**6)
          .interleave(lambda i: fi.Dataset.range(100).map(varying), cycle_length=4, num_parallel_calls=fi.AUTOTUNE)
          .map(varying, num_parallel_calls=fi.AUTOTUNE).batch(8).prefetch(fi.AUTOTUNE))
    with iter(ds) as it:
        def check():
            for knob in it.knobs():
                assert 0 <= knob.minimum <= knob.value <= knob.maximum
                assert knob.value >= 1 or knob.name == "prefetch_input_elements"
        _consume_for(it, 3, check)


@pytest.mark.slow
@pytest.mark.parametrize("with_interleave", [False, True])
def test_tuning_keeps_order_when_deterministic(with_interleave):
    rng = np.random.default_rng(1)
    delays = rng.uniform(0, 0.002, size=4000)

    def jitter(x):
        threading.Event().wait(delays[int(x) % 4000])
        return x

    ds = fi.Dataset.range(4000)
    expected = list(range(4000))
    if with_interleave:
        ds = fi.Dataset.range(40).interleave(lambda i: fi.Dataset.range(i * 100, i * 100 + 100), cycle_length=4,
                                             block_length=3, num_parallel_calls=fi.AUTOTUNE)
        expected = as_ints(list(fi.Dataset.range(40).interleave(lambda i: fi.Dataset.range(i * 100, i * 100 + 100),
                                                                cycle_length=4, block_length=3)))
    ds = ds.map(jitter, num_parallel_calls=fi.AUTOTUNE).prefetch(fi.AUTOTUNE)
    with iter(ds) as it:
        out = as_ints(list(it))
        assert it.tuner.rounds > 0
    assert out == expected


def test_autotune_can_be_switched_off():
    ds = fi.Dataset.range(10).map(lambda x: x, num_parallel_calls=fi.AUTOTUNE)
    with iter(ds.with_options(fi.Options(autotune=fi.AutotuneOptions(enabled=False)))) as it:
        assert it.tuner is None
    with iter(ds) as it:
        assert it.tuner is not None
    with iter(fi.Dataset.range(10).map(lambda x: x, num_parallel_calls=2)) as it:
        assert it.tuner is None  # nothing left to AUTOTUNE


def test_dropping_an_autotuned_iterator_stops_every_thread():
    import gc

    with no_leaked_threads():
        it = iter(fi.Dataset.range(10**6).map(lambda x: x, num_parallel_calls=fi.AUTOTUNE).prefetch(fi.AUTOTUNE))
        next(it)
        del it
        gc.collect()


# -- the RAM budget counts every buffer (issue 14, defect 8) --------------------------------------------------

BIG_RECORD = 256 << 10
RAM_BUDGET = 16 << 20


@pytest.fixture(scope="module")
def big_record_files(tmp_path_factory):
    """Eight TFRecord files of forty 256 KiB records each."""
    root = tmp_path_factory.mktemp("big_records")
    record = frame(np.random.default_rng(0).bytes(BIG_RECORD))
    paths = []
    for i in range(8):
        path = root / f"part-{i}.tfrecord"
        path.write_bytes(record * 40)
        paths.append(str(path))
    return paths


def _slow(x):
    threading.Event().wait(0.002)
    return x


def _buffered_bytes(it) -> int:
    return sum(s.bytes_buffered for s in it.stats())


@pytest.mark.slow
@pytest.mark.parametrize("map_parallelism", [fi.AUTOTUNE, 2], ids=["autotuned map", "nothing autotuned"])
@pytest.mark.parametrize("fusion", [True, False], ids=["map_and_batch", "map then batch"])
def test_ram_budget_holds_with_an_interleave_of_fixed_parallelism(big_record_files, map_parallelism, fusion):
    """An interleave with an explicit num_parallel_calls kept 64 records per dataset out of the tuner's reach
    (21 MiB buffered under a 16 MiB budget): its buffer depths are not the user's choice, so they count and shrink."""
    optimization = fi.OptimizationOptions(map_and_batch_fusion=fusion)
    ds = (fi.Dataset.from_tensor_slices(big_record_files).repeat()
          .interleave(fi.TFRecordDataset, cycle_length=4, num_parallel_calls=4)
          .map(_slow, num_parallel_calls=map_parallelism).batch(4).prefetch(fi.AUTOTUNE if map_parallelism else 2)
          .with_options(fi.Options(autotune=fi.AutotuneOptions(ram_budget=RAM_BUDGET), optimization=optimization)))
    samples = []
    with no_leaked_threads(), iter(ds) as it:
        _consume_for(it, 1.0)  # the tuner's first rounds
        _consume_for(it, 2.0, lambda: samples.append(_buffered_bytes(it)))
        assert it.tuner is not None and it.tuner.rounds > 0
    assert len(samples) > 10
    assert max(samples) <= RAM_BUDGET


@pytest.mark.slow
def test_fixed_buffers_over_the_budget_warn_once(big_record_files, caplog):
    ds = (fi.TFRecordDataset(big_record_files).repeat().prefetch(100)
          .with_options(fi.Options(autotune=fi.AutotuneOptions(ram_budget=RAM_BUDGET))))
    ds = ds.map(_slow, num_parallel_calls=fi.AUTOTUNE)
    with caplog.at_level("WARNING", logger="fastinput.autotune"), iter(ds) as it:
        _consume_for(it, 1.5)
    warnings = [r.getMessage() for r in caplog.records if "over the RAM budget" in r.getMessage()]
    assert len(warnings) == 1
    assert "prefetch(100)" in warnings[0] and "16.0 MiB" in warnings[0]


def test_shrinking_to_the_budget_ends_when_nothing_can_shrink():
    """Halving a knob already at 0 or 1 frees nothing: the fit must stop, not loop (it hung the tuner thread)."""
    def knob(name, kind, value, minimum, autotuned=False, shrinkable=True):
        return Knob("interleave(f)", name, value, minimum, 1 << 16, autotuned, lambda value: None,
                    shrinkable=shrinkable, kind=kind)

    stage = StageModel("interleave(f)", TuningKind.INTERLEAVE, own=1e-3, ratio=1.0, cpu=1e-4, nbytes=BIG_RECORD,
                       knobs={WORKERS: knob("parallelism", WORKERS, 4, 1, shrinkable=False),
                              PER_INPUT: knob("buffer_output_elements", PER_INPUT, 64, 1),
                              AHEAD: knob("prefetch_input_elements", AHEAD, 0, 0)},
                       rate=100.0, cycle_length=4)
    changes = climb(stage, 1e-3, cpu_budget=2.0, ram_budget=1.0)
    assert {k.name: v for k, v in changes.items()} == {"buffer_output_elements": 1}


def test_a_pipeline_ending_in_repeat_is_tuned():
    """repeat() last used to hide its input's knobs until the first next(): the tuner never started."""
    ds = fi.Dataset.range(10).map(_slow, num_parallel_calls=fi.AUTOTUNE).repeat()
    with no_leaked_threads(), iter(ds) as it:
        assert it.tuner is not None
        assert [int(next(it)) for _ in range(12)] == [*range(10), 0, 1]


def test_settings_carry_over_from_one_epoch_to_the_next():
    ds = (fi.Dataset.range(5).map(_slow, num_parallel_calls=fi.AUTOTUNE).repeat(3)
          .with_options(fi.Options(autotune=fi.AutotuneOptions(enabled=False))))
    with no_leaked_threads(), iter(ds) as it:
        next(it)
        first = _knob(it, "map(", "parallelism")
        first.set(7)
        assert [int(next(it)) for _ in range(6)] == [1, 2, 3, 4, 0, 1]
        second = _knob(it, "map(", "parallelism")
        assert second is not first and second.value == 7


@pytest.mark.parametrize("fusion", [True, False], ids=["map_and_batch", "map then batch"])
def test_a_parallel_stage_counts_the_bytes_of_what_it_buffers(fusion):
    """A map_and_batch slot holds one batch made of the slot's input elements: the bytes it counts per buffered
    element are one row's (64 KiB), not a whole batch's (which overstated its buffers 32 times)."""
    row = 64 << 10
    ds = (fi.Dataset.range(10**6).map(lambda x: np.zeros(row, np.uint8), num_parallel_calls=2).batch(32)
          .with_options(fi.Options(optimization=fi.OptimizationOptions(map_and_batch_fusion=fusion))))
    per_element = []
    with no_leaked_threads(), iter(ds) as it:
        for _ in range(200):
            next(it)
            per_element += [s.bytes_buffered / s.buffer_occupancy for s in it.stats()
                            if s.parallel and s.buffer_occupancy and s.name.startswith(("map", "map_and_batch"))]
            if len(per_element) > 20:
                break
    assert per_element and max(per_element) < 2 * row


def test_the_tuner_lets_go_of_the_stages_of_finished_epochs():
    # repeat() builds its input's stages again each epoch; the tuner's figures of the closed ones held them (and
    # their threads' objects and knobs) for the iterator's whole life: a long run's memory grew without end.
    import gc

    from fastinput.ops.parallel import ParallelChunkIterator

    ds = fi.Dataset.range(64).map(lambda x: x + 1, num_parallel_calls=fi.AUTOTUNE).batch(8).repeat()
    with iter(ds) as it:
        for _ in range(12):
            batches = [next(it) for _ in range(8)]  # the epoch's end: its map stage has seen all 64 elements
            assert np.concatenate(batches).tolist() == list(range(1, 65))
            rounds, deadline = it.tuner.rounds, time.monotonic() + 60
            while it.tuner.rounds < rounds + 2 and time.monotonic() < deadline:  # the tuner has judged this epoch
                time.sleep(0.05)
            assert it.tuner.rounds >= rounds + 2
        gc.collect()
        maps = [o for o in gc.get_objects() if isinstance(o, ParallelChunkIterator)]
        assert len(maps) <= 2  # this epoch's (and at most the one before, until the next round)
