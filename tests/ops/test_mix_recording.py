"""A mix reads an input that records (a ``cache`` still recording) no further than tf.data does.

``sample_from_datasets`` / ``choose_from_datasets`` read their inputs ahead, in blocks. Where an input holds a
cache that is recording, reading it to its end completes the record, which leaves out the input's errors; tf.data,
reading one element per choice, leaves the record partial when the mix ends first (the choices end, or an input
ends), discards it, and the next pass reads the input again, errors and all. So such an input is read exactly
(``Dataset.records_when_read``), and the outcomes of every pass match tf.data's, element by element and error by
error. The cases with a recording dataset of choices or weights guard what needs no special reading there (it is
pulled again only when a choice is needed).
"""

import numpy as np
import pytest

import fastinput as fi
from tests.helpers import fi_outcomes, fi_raising_at, tf_outcomes, tf_raising_at


def _choices(D, values):
    return D.from_tensor_slices(np.array(values, dtype=np.int64))


def _one_hot(D, fail):
    """Weight vectors that leave no choice: row i picks input i % 2 (row 2 raises)."""
    if D is fi.Dataset:
        pick = lambda i: np.eye(2, dtype=np.float32)[int(i) % 2]  # noqa: E731
    else:
        import tensorflow as tf

        pick = lambda i: tf.one_hot(i % 2, 2)  # noqa: E731
    return D.range(6).map(fail(2)).map(pick)


def _as_written(D, ds):
    """``ds``; in tf.data, without the optimizations that read a map's input ahead (a parallel map, an injected
    prefetch: on by default, they read the weights dataset ahead by as much as their buffers hold)."""
    if D is fi.Dataset:
        return ds
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = False
    options.experimental_optimization.inject_prefetch = False
    return ds.with_options(options)


def _unchosen_then_read(D, fail, cache):
    """An input never chosen (weight 0: tf.data leaves it out), read in full after the mix: the mix must not have
    recorded it (read ahead, it would be read past its errors, which ``ignore_errors`` drops after the cache)."""
    recorded = cache(D.range(10, 14).map(fail(12)))
    return D.sample_from_datasets([D.range(3), recorded.ignore_errors()], weights=[1.0, 0.0], seed=3,
                                  stop_on_empty_dataset=True).concatenate(recorded)


# ``D`` is tf.data.Dataset or fi.Dataset, ``fail`` fi_raising_at or tf_raising_at, ``cache`` applies the cache
CASES = {
    "the choices end first": lambda D, fail, cache: D.choose_from_datasets(
        [D.range(5), cache(D.range(10, 16).map(fail(11)))], _choices(D, [1, 0, 1, 1])).repeat(2),
    "an input ends first": lambda D, fail, cache: D.choose_from_datasets(
        [D.range(2), cache(D.range(10, 16).map(fail(11)))], _choices(D, [1, 0, 0, 1, 0, 1, 1, 1])).repeat(2),
    "two recording inputs end in one run": lambda D, fail, cache: D.choose_from_datasets(
        [cache(D.range(2)), cache(D.range(10, 13).map(fail(10)))], _choices(D, [1, 1, 0, 1, 0, 0, 1, 1])).repeat(2),
    "the cache below a filter": lambda D, fail, cache: D.choose_from_datasets(
        [D.range(5), cache(D.range(10, 30).filter(lambda x: x % 3 > 0).map(fail(14)))],
        _choices(D, [0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 1])).repeat(3),
    "go on after an input ends": lambda D, fail, cache: D.choose_from_datasets(
        [D.range(2), cache(D.range(10, 16).map(fail(11)))], _choices(D, [1, 0, 0, 1, 0, 1]),
        stop_on_empty_dataset=False).repeat(2),
    "recording choices": lambda D, fail, cache: D.choose_from_datasets(  # 2 raises (in the map): not out of range
        [D.range(2), D.range(10, 16)],
        cache(_choices(D, [0, 2, 1, 0, 1, 0, 1, 1]).map(fail(2))).filter(lambda x: x >= 0)).repeat(2),
    "recording weights": lambda D, fail, cache: _as_written(D, D.sample_from_datasets(
        [D.range(1), D.range(10, 13)], weights=cache(_one_hot(D, fail)).filter(lambda w: w[0] >= 0), seed=3,
        stop_on_empty_dataset=True).repeat(2)),
    "an unchosen input read after the mix": _unchosen_then_read,
}


READERS = {  # one element at a time (a choice a run), or 8 (runs of several choices, an error dropping the batch)
    "one by one": lambda ds: ds,
    "batch then unbatch": lambda ds: ds.batch(8).unbatch(),
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("where", ["memory", "file"])
@pytest.mark.parametrize("case", CASES)
def test_a_recording_input_is_read_as_tf_reads_it(tf, tmp_path, case, where, reader):
    def caching(prefix):
        files = iter(range(10))
        return lambda ds: ds.cache("" if where == "memory" else str(tmp_path / f"{prefix}{next(files)}"))

    build, read = CASES[case], READERS[reader]
    expected = tf_outcomes(read(build(tf.data.Dataset, tf_raising_at, caching("tf"))))
    assert fi_outcomes(read(build(fi.Dataset, fi_raising_at, caching("fi")))) == expected


def test_records_when_read(tmp_path):
    """A cache or snapshot records until one pass has read its input to the end; a node above one records too."""
    memory, in_file = fi.Dataset.range(3).cache(), fi.Dataset.range(3).cache(str(tmp_path / "c"))
    snapshot = fi.Dataset.range(3).snapshot(str(tmp_path / "s"))
    for recording in (memory, in_file, snapshot):
        above = recording.map(lambda x: x + 1).prefetch(1)
        assert recording.records_when_read() and above.records_when_read()
        assert fi_outcomes(above) == [1, 2, 3, "end"]
        assert not recording.records_when_read() and not above.records_when_read()
    assert not fi.Dataset.range(3).map(lambda x: x).records_when_read()


@pytest.mark.parametrize("stop", [False, True])
def test_a_recording_input_gives_the_same_elements(stop):
    """Read exactly (the cached inputs) or ahead (the others), the mix gives the elements it gives uncached."""
    inputs = lambda: [fi.Dataset.range(i * 1000, i * 1000 + 300 + 50 * i) for i in range(4)]  # noqa: E731
    mix = lambda datasets: fi.Dataset.sample_from_datasets(  # noqa: E731
        datasets, [0.4, 0.3, 0.2, 0.1], seed=5, stop_on_empty_dataset=stop).batch(7)
    expected = fi_outcomes(mix(inputs()))
    partly_cached = [ds.cache() if i % 2 else ds for i, ds in enumerate(inputs())]
    assert fi_outcomes(mix(partly_cached).repeat(2)) == expected[:-1] * 2 + ["end"]  # recorded, then replayed
