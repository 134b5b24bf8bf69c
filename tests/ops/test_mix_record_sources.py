"""Mixing TFRecord sources: a reader gives what its read buffer holds, so the mix asks it for two pulls' worth
(``directed_interleave.SHORT_PULL_ASK``) and it hands its buffer on (``framing.SpareBuffers``). The elements are
tf.data's, and the same whatever the asks and the buffers."""

from __future__ import annotations

import numpy as np
import pytest

import fastinput as fi
from fastinput._engine.resume import ReadAhead
from fastinput.fused_ops import rewrites
from fastinput.ops import directed_interleave
from fastinput.readers import framing
from tests.helpers import fi_outcomes

tf = pytest.importorskip("tensorflow", reason="TensorFlow is not installed")

SIZES = [[50] * 70, [10, 900, 0, 3000] * 9, [200] * 33]
"""Record sizes of each file: small records (many in a buffer), mixed ones, and one file with a short end."""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """TFRecord files written by TensorFlow, one per entry of ``SIZES``."""
    root = tmp_path_factory.mktemp("mix_records")
    paths = []
    for index, sizes in enumerate(SIZES):
        rng = np.random.default_rng(index)
        path = str(root / f"part-{index}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for size in sizes:
                writer.write(rng.bytes(size))
        paths.append(path)
    return paths


def _choices(count: int) -> np.ndarray:
    return (np.arange(count) * 7 % 11 % len(SIZES)).astype(np.int64)


@pytest.mark.parametrize("batch", [None, 16])
@pytest.mark.parametrize("buffer_size", [100, 4096, None])
def test_choose_from_record_sources_is_tf_datas(files, buffer_size, batch):
    def mix(library, **reader):
        sources = [library.TFRecordDataset(path, **reader) for path in files]
        ds = library.Dataset.choose_from_datasets(sources, library.Dataset.from_tensor_slices(_choices(200)))
        return ds if batch is None else ds.batch(batch)

    expected = [np.asarray(element).tolist() for element in mix(tf.data).as_numpy_iterator()] + ["end"]
    assert fi_outcomes(mix(fi, buffer_size=buffer_size)) == expected


def _sample(files: list[str], buffer_size: int | None) -> fi.Dataset:
    sources = [fi.TFRecordDataset(path, buffer_size=buffer_size).repeat(3) for path in files]
    return fi.Dataset.sample_from_datasets(sources, [0.5, 0.2, 0.3], seed=4).batch(32)


@pytest.mark.parametrize("buffer_size", [300, None])
def test_the_elements_do_not_depend_on_the_asks_or_the_buffers(files, monkeypatch, buffer_size):
    monkeypatch.setattr(rewrites, "spans_source", lambda node: None)  # the mix's own buffers, not spans
    expected = fi_outcomes(_sample(files, buffer_size))
    monkeypatch.setattr(directed_interleave, "SHORT_PULL_ASK", 1)
    monkeypatch.setattr(framing.SpareBuffers, "KEPT", 0)
    assert fi_outcomes(_sample(files, buffer_size)) == expected


def test_an_input_that_gives_fewer_than_asked_is_asked_for_more(files, monkeypatch):
    """The reader (buffers of 2,000 bytes: ~30 records of 50 bytes) gives fewer than asked, and is asked for two
    pulls' worth from then on; ``from_tensor_slices`` gives all it is asked for, and is asked for a pull's worth."""
    asks: list[tuple[int, int, int]] = []  # (input, asked, given)
    pull = ReadAhead.pull

    def spy(self, index, held, n):
        before = len(held)
        try:
            pull(self, index, held, n)
        finally:
            asks.append((index, n, len(held) - before))

    monkeypatch.setattr(ReadAhead, "pull", spy)
    monkeypatch.setattr(directed_interleave, "PULL_BYTES", 1000)  # 8 records of 50 bytes: many pulls
    sources = [fi.TFRecordDataset(files[0], buffer_size=2000).repeat(),
               fi.Dataset.from_tensor_slices(np.array([b"y" * 50] * 10_000))]
    with iter(fi.Dataset.sample_from_datasets(sources, seed=1).batch(10)) as it:
        for _ in range(30):
            next(it)
    reader = [(asked, given) for index, asked, given in asks if index == 0]
    first_short = next(i for i, (asked, given) in enumerate(reader) if given < asked)
    pull_size = directed_interleave.pull_size(b"x" * 50)
    assert all(asked >= 2 * pull_size for asked, _ in reader[first_short + 1:])
    assert len(reader) > first_short + 2
    assert all(asked < 2 * pull_size and given == asked for index, asked, given in asks if index == 1)
