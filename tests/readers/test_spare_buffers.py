"""Read buffers handed on between TFRecord readers (``framing.SpareBuffers``): a reader that has walked its buffer
to the end gives it back, the next reader to read takes it. Readers taking turns (as a mix's sources do) read what
tf.data reads, errors included, whatever the buffer size; and the buffers really are handed on."""

from __future__ import annotations

from pathlib import Path

import pytest

import fastinput as fi
from fastinput.errors import DataLossError
from fastinput.readers import framing as framing_module
from fastinput.readers.framing import SpareBuffers
from tests.readers.test_tfrecord import flip, framing, record_offsets, tf_read_until_error  # noqa: F401 (fixture)

pytest.importorskip("tensorflow", reason="TensorFlow is not installed")
pytestmark = pytest.mark.usefixtures("framing")  # each test with the C walk, then the Python one


class CountingSpares(SpareBuffers):
    """``SpareBuffers`` that counts the buffers given back and taken again."""

    def __init__(self) -> None:
        super().__init__()
        self.given: set[int] = set()
        self.sizes: set[int] = set()
        self.reused = 0

    def take(self, size: int):
        space = super().take(size)
        self.reused += id(space) in self.given
        return space

    def give_back(self, space) -> None:
        self.given.add(id(space))
        self.sizes.add(len(space))
        super().give_back(space)


@pytest.fixture
def spares(monkeypatch: pytest.MonkeyPatch) -> CountingSpares:
    spares = CountingSpares()
    monkeypatch.setattr(framing_module, "SPARE_BUFFERS", spares)
    return spares


def take_turns(datasets: list[fi.Dataset], batch: int | None = None) -> list[tuple[list[bytes], BaseException | None]]:
    """Each dataset's records up to its first error (and that error), read one record (or ``batch`` records, a
    request that walks to the end of a reader's buffer) from each in turn."""
    iterators = [iter(ds if batch is None else ds.batch(batch)) for ds in datasets]
    results: list[tuple[list[bytes], BaseException | None]] = [([], None) for _ in datasets]
    running = set(range(len(datasets)))
    try:
        while running:
            for index in sorted(running):
                try:
                    element = next(iterators[index])
                    results[index][0].extend([element] if batch is None else element.tolist())
                except StopIteration:
                    running.discard(index)
                except Exception as exc:
                    results[index] = (results[index][0], exc)
                    running.discard(index)
    finally:
        for it in iterators:
            it.close()
    return results


@pytest.mark.parametrize("batch", [None, 7])
@pytest.mark.parametrize("buffer_size", [1, 100, 4096, 70_000, None])
def test_readers_taking_turns_read_what_tf_data_reads(corpus, spares, buffer_size, batch):
    files = corpus.files()
    results = take_turns([fi.TFRecordDataset(path, buffer_size=buffer_size) for path in files], batch)
    for path, (records, error) in zip(files, results):
        assert error is None
        assert records == corpus.tf_data(path)


def test_buffers_are_handed_on_between_readers(corpus, spares):
    """Records of 50 bytes in buffers of 512 (7 whole records and part of the next), asked for 16 at a time: each
    request walks a buffer to its end and hands it on, and the next read takes one."""
    path = corpus.files()[1]
    results = take_turns([fi.TFRecordDataset(path, buffer_size=512) for _ in range(3)], batch=16)
    assert [records for records, _ in results] == [corpus.tf_data(path)] * 3
    assert spares.reused >= 3


def test_a_long_record_keeps_its_grown_buffer(corpus, spares):
    """A record longer than the buffer grows it; the grown buffer is the reader's own, never handed on."""
    path = corpus.files()[3]  # a record of 2 MB
    assert take_turns([fi.TFRecordDataset(path, buffer_size=1024)], batch=2) == [(corpus.tf_data(path), None)]
    assert spares.sizes == {1024}


@pytest.mark.parametrize("damage", ["flipped data byte", "cut in data"])
def test_damage_in_a_reader_taking_turns_is_reported_where_tf_data_reports_it(corpus, spares, tmp_path, damage):
    written = corpus.records(1)
    offset = record_offsets(written)[23]
    data = Path(corpus.files()[1]).read_bytes()
    damaged = tmp_path / "damaged.tfrecord"
    damaged.write_bytes(flip(data, offset + 12 + 7) if damage == "flipped data byte" else data[:offset + 20])
    tf_records, _ = tf_read_until_error(str(damaged))

    (records, error), (other, other_error) = take_turns(
        [fi.TFRecordDataset(str(damaged), buffer_size=600), fi.TFRecordDataset(corpus.files()[1], buffer_size=600)])

    assert records == tf_records == written[:23]
    assert isinstance(error, DataLossError) and error.offset == offset and str(damaged) in str(error)
    assert other == written and other_error is None


def test_at_most_kept_buffers_of_each_size_and_none_too_large_are_kept(monkeypatch):
    monkeypatch.setattr(SpareBuffers, "LARGEST", 1000)
    spares = SpareBuffers()
    small = [spares.take(100) for _ in range(SpareBuffers.KEPT + 1)]
    large = spares.take(2000)
    for space in [*small, large]:
        spares.give_back(space)
    assert spares.take(2000) is not large
    again = [spares.take(100) for _ in range(SpareBuffers.KEPT + 1)]
    assert [id(space) for space in again[:-1]] == [id(space) for space in reversed(small[:SpareBuffers.KEPT])]
    assert all(again[-1] is not space for space in small)
