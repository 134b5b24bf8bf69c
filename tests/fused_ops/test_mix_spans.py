"""Mixing TFRecord files read as spans (``fastinput.readers.record_spans``, the fused ``mix_and_batch`` stage's
``MixSpansAndBatchIterator``): the batches and errors are the unfused pipeline's (main's, whose mix tf.data's tests
pin), element by element, for clean, damaged, truncated, empty and missing files, every ``repeat`` and
``stop_on_empty_dataset``; states saved at every batch restore, with the rewrite on or off; any other input keeps the
mix's own path."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import fastinput as fi
from fastinput.dataset import Dataset
from fastinput.fused_ops.mix_and_batch import MixAndBatchDataset
from fastinput.fused_ops.rewrites import optimize
from fastinput.readers import record_spans
from fastinput.readers.framing import frame
from fastinput.readers.record_spans import RecordSpansDataset, spans_source
from tests.checkpoint.test_interleave import check_resume, check_resume_across, outcomes, total
from tests.helpers import fi_outcomes, tf_outcomes

UNFUSED = fi.Options(optimization=fi.OptimizationOptions(mix_and_batch_fusion=False))

SIZES = [[50] * 70, [10, 900, 0, 3000] * 9, [200] * 33, [1000] * 5]
"""Record sizes of each file: small records, mixed ones (an empty record among them), and two shorter files."""


def _write(path, records: list[bytes]) -> str:
    path.write_bytes(b"".join(frame(record) for record in records))
    return str(path)


def _records_of(index: int) -> list[bytes]:
    rng = np.random.default_rng(index)
    return [rng.bytes(size) for size in SIZES[index]]


@pytest.fixture(scope="module")
def tf_files(tf, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """TFRecord files written by TensorFlow, one per entry of ``SIZES``."""
    root = tmp_path_factory.mktemp("mix_spans")
    paths = []
    for index in range(len(SIZES)):
        path = str(root / f"part-{index}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for record in _records_of(index):
                writer.write(record)
        paths.append(path)
    return paths


@pytest.fixture
def damaged(tmp_path) -> dict[str, str]:
    """Files of ~40-byte records: clean, one with a data CRC wrong mid-file, one with a length CRC wrong, one whose
    last record is cut, an empty one, and a name that is no file."""
    records = [bytes([k]) * (20 + k % 40) for k in range(60)]
    clean = b"".join(frame(record) for record in records)
    data_crc = bytearray(clean)
    data_crc[sum(len(frame(r)) for r in records[:23]) + 15] ^= 1
    length_crc = bytearray(clean)
    length_crc[sum(len(frame(r)) for r in records[:41]) + 2] ^= 1
    contents = {"clean": clean, "data_crc": bytes(data_crc), "length_crc": bytes(length_crc),
                "truncated": clean[:-7], "empty": b""}
    paths = {}
    for name, content in contents.items():
        path = tmp_path / f"{name}.tfrecord"
        path.write_bytes(content)
        paths[name] = str(path)
    paths["missing"] = str(tmp_path / "missing.tfrecord")
    return paths


def _mix_and_batch(ds: Dataset) -> MixAndBatchDataset | None:
    """The fused stage in ``ds``'s rewritten description, if any."""
    node = optimize(ds, ds.options())
    while not isinstance(node, MixAndBatchDataset):
        if not node.inputs:
            return None
        node = node.inputs[0]
    return node


def _reads_spans(ds: Dataset) -> bool:
    fused = _mix_and_batch(ds)
    return fused is not None and all(type(d) is RecordSpansDataset for d in fused.mix.datasets)


def _sample(paths, count=None, weights=None, seed=0, stop=False, batch=16, drop=False):
    sources = [fi.TFRecordDataset(path) if count is None else fi.TFRecordDataset(path).repeat(count)
               for path in paths]
    return fi.Dataset.sample_from_datasets(sources, weights, seed=seed, stop_on_empty_dataset=stop).batch(batch, drop)


def _same_as_mains(ds: Dataset, limit: int = 1000) -> None:
    assert _reads_spans(ds) and not _reads_spans(ds.with_options(UNFUSED))
    assert fi_outcomes(ds, limit) == fi_outcomes(ds.with_options(UNFUSED), limit)


@pytest.mark.parametrize("count", [None, 2, -1])
@pytest.mark.parametrize("seed, weights", [(0, None), (1, [0.5, 0.2, 0.2, 0.1]), (5, [0.0, 0.3, 0.3, 0.4])])
@pytest.mark.parametrize("batch", [1, 7, 64, 1000])
@pytest.mark.parametrize("stop", [False, True])
def test_mixed_batches_are_mains(tf_files, count, seed, weights, batch, stop):
    _same_as_mains(_sample(tf_files, count, weights, seed, stop, batch), limit=40 if count == -1 else 1000)


@pytest.mark.parametrize("drop", [False, True])
def test_a_last_partial_batch_comes_unless_dropped(tf_files, drop):
    _same_as_mains(_sample(tf_files, 2, seed=2, batch=100, drop=drop))


@pytest.mark.parametrize("count", [None, 2])
@pytest.mark.parametrize("batch", [1, 16])
def test_choose_from_record_files_is_tf_datas(tf, tf_files, count, batch):
    def mix(library):
        sources = [library.TFRecordDataset(path) for path in tf_files]
        if count is not None:
            sources = [source.repeat(count) for source in sources]
        choices = (np.arange(500) * 7 % 11 % len(tf_files)).astype(np.int64)
        return library.Dataset.choose_from_datasets(sources, library.Dataset.from_tensor_slices(choices)).batch(batch)

    assert _reads_spans(mix(fi))
    assert fi_outcomes(mix(fi)) == tf_outcomes(mix(tf.data))


@pytest.mark.parametrize("stop", [False, True])
def test_choices_out_of_range_raise_in_their_places_as_mains(damaged, stop):
    sources = [fi.TFRecordDataset(damaged[name]).repeat(2) for name in ("clean", "data_crc")]
    choices = fi.Dataset.from_tensor_slices((np.arange(300) * 5 % 7 - 2).astype(np.int64))  # -2 to 4: 0 and 1 exist
    _same_as_mains(fi.Dataset.choose_from_datasets(sources, choices, stop_on_empty_dataset=stop).batch(6))


@pytest.mark.parametrize("files", [["clean", "data_crc"], ["length_crc", "clean", "truncated"],
                                   ["empty", "clean"], ["clean", "missing", "truncated"], ["data_crc"]])
@pytest.mark.parametrize("count", [None, 2])
@pytest.mark.parametrize("batch", [1, 5, 64])
@pytest.mark.parametrize("stop", [False, True])
def test_damaged_files_raise_in_their_places_as_mains(damaged, files, count, batch, stop):
    """A damaged record raises where the unfused mix raises it (the batch holding it dropped), its file ends there, and
    the pipeline goes on or ends as main's does; a missing file raises where its first record would be."""
    _same_as_mains(_sample([damaged[name] for name in files], count, seed=3, stop=stop, batch=batch))


def test_a_forever_repeat_of_only_damage_ends_as_mains(damaged):
    """``repeat()`` of a file whose first record is damaged ends after one epoch of errors (tf.data's rule)."""
    first_bad = bytearray(open(damaged["clean"], "rb").read())
    first_bad[20] ^= 1
    with open(damaged["empty"], "wb") as file:
        file.write(first_bad)
    _same_as_mains(_sample([damaged["empty"], damaged["clean"]], -1, seed=1, batch=8), limit=60)


def test_records_longer_than_the_buffer_and_walks_past_the_spans_held(tmp_path, monkeypatch):
    """A buffer of 256 bytes grows for a 5,000-byte record; a walk notes at most 4 spans (``MAX_SPANS``)."""
    monkeypatch.setattr(record_spans, "SPAN_BUFFER", 256)
    monkeypatch.setattr(record_spans, "MAX_SPANS", 4)
    paths = [_write(tmp_path / "a", [b"a" * 30] * 40), _write(tmp_path / "b", [b"b" * 5000, b"c" * 3, b"d" * 700] * 4)]
    _same_as_mains(_sample(paths, 2, seed=4, batch=9))


@pytest.mark.parametrize("files, count, stop", [(["clean", "data_crc", "clean"], 2, False),
                                                (["truncated", "missing", "clean"], 2, True),
                                                (["clean", "empty", "length_crc"], None, False)])
@pytest.mark.parametrize("batch", [1, 7])
def test_the_mix_resumes_at_every_batch(damaged, monkeypatch, files, count, stop, batch):
    monkeypatch.setattr(record_spans, "SPAN_BUFFER", 512)  # a few records per walk: states between walks too
    ds = _sample([[damaged[name]] * 2 for name in files], count, seed=6, stop=stop, batch=batch)
    assert _reads_spans(ds)
    for n in range(total(ds) + 2):
        check_resume(ds, n)


@pytest.mark.parametrize("saved_with_spans", [True, False])
@pytest.mark.parametrize("count", [2, 1])
def test_a_state_restores_with_the_rewrite_on_or_off(damaged, saved_with_spans, count):
    """The states are the replaced stages' (``repeat`` > ``TFRecordDataset`` > the file's offset), so a checkpoint
    outlives a change of options, and the unfused mix's (which holds records read ahead) restores here. A
    ``repeat(1)`` is no stage in either (noop elimination; the fuzz target 'mix' found the span reader keeping it)."""
    spans = _sample([damaged["clean"], damaged["data_crc"], damaged["truncated"]], count, seed=2, batch=6)
    unfused = spans.with_options(UNFUSED)
    first, second = (spans, unfused) if saved_with_spans else (unfused, spans)
    check_resume_across(first, second)


def _slot_ended(state: dict) -> dict:
    """``state`` (of ``TFRecordDataset``, or ``repeat`` over it) with a slot whose file has ended emptied (the
    position stays): the same place."""
    reader = state["inputs"][0] if state["stage"] == "repeat" and state["inputs"] else state
    if reader["stage"] == "TFRecordDataset" and reader["slots"][0] and reader["slots"][0]["state"]["done"]:
        reader["slots"] = [None]
    return state


@pytest.mark.parametrize("count", [None, 2])
def test_a_reader_saves_the_replaced_stages_states(damaged, count):
    """Record after record (errors included), the span reader's records, errors and states are those of
    ``TFRecordDataset(files).repeat(count)`` (where a file's error ended it, its slot is empty, as it is once the next
    file opens: the same place)."""
    paths = [damaged[name] for name in ("clean", "empty", "data_crc", "missing", "truncated")]
    replaced = fi.TFRecordDataset(paths) if count is None else fi.TFRecordDataset(paths).repeat(count)
    with iter(replaced) as real, iter(spans_source(replaced)) as read:
        steps = 0
        while True:
            assert read.get_state()["root"] == _slot_ended(real.get_state()["root"])
            expected = outcomes(real, 1)
            assert outcomes(read, 1) == expected
            if not expected:
                break
            steps += 1
    assert steps > 100


@pytest.mark.parametrize("make", ["compressed", "mapped", "names dataset", "parallel reads", "remote"])
def test_other_inputs_keep_the_mixs_own_path(tmp_path, make):
    paths = [_write(tmp_path / f"{k}.tfrecord", [bytes([k]) * (5 + i) for i in range(30)]) for k in range(3)]
    with gzip.open(tmp_path / "z.tfrecord.gz", "wb") as file:
        file.write(b"".join(frame(b"z" * i) for i in range(30)))
    other = {"compressed": lambda: fi.TFRecordDataset(str(tmp_path / "z.tfrecord.gz"), compression_type="GZIP"),
             "mapped": lambda: fi.TFRecordDataset(paths[0]).map(lambda x: x + b"!"),
             "names dataset": lambda: fi.TFRecordDataset(fi.Dataset.from_tensor_slices([paths[0]])),
             "parallel reads": lambda: fi.TFRecordDataset(paths[:2], num_parallel_reads=2),
             "remote": lambda: fi.TFRecordDataset("s3://bucket/key.tfrecord")}[make]()
    ds = fi.Dataset.sample_from_datasets([fi.TFRecordDataset(paths[1]), other], seed=1).batch(8)
    assert _mix_and_batch(ds) is not None and not _reads_spans(ds)
    if make != "remote":
        assert fi_outcomes(ds) == fi_outcomes(ds.with_options(UNFUSED))


def test_the_kernels_check_their_arguments():
    """``_records.split_spans`` and ``_mixing.take_spans`` (reached through ``record_spans``, which reads spans only
    where both are built) check what they are given before they write or size anything."""
    _records, take_spans = record_spans._records, record_spans.take_spans
    if take_spans is None:
        pytest.skip("the C extensions are not built")
    buffer = np.frombuffer(frame(b"abc") + frame(b"de"), dtype=np.uint8)
    spans = np.zeros((4, 2), dtype=np.int64)
    assert _records.split_spans(buffer, 0, spans)[:3] == (2, len(buffer), _records.NEED_MORE)
    assert spans[:2].tolist() == [[12, 3], [31, 2]]
    with pytest.raises(ValueError):
        _records.split_spans(buffer, len(buffer) + 1, spans)
    with pytest.raises(TypeError):
        _records.split_spans(buffer, 0, spans.astype(np.int32))
    out = np.empty(3, dtype=object)
    ends, cursors = np.array([2]), np.array([0])
    assert take_spans(np.zeros(3, np.int64), [buffer], [spans], ends, cursors, out) == 2
    assert out.tolist() == [b"abc", b"de", None] and cursors.tolist() == [2]
    assert take_spans(np.array([1, 0]), [buffer], [spans], ends, np.array([0]), out) == 0  # out of range
    for bad_cursors, bad_ends in [([3], [2]), ([-1], [2]), ([0], [5])]:
        with pytest.raises(IndexError):
            take_spans(np.zeros(1, np.int64), [buffer], [spans], np.array(bad_ends), np.array(bad_cursors),
                               out)
    with pytest.raises(IndexError):  # a span past its buffer
        take_spans(np.zeros(1, np.int64), [buffer], [np.array([[30, 10]])], ends, np.array([0]), out)
    with pytest.raises(ValueError):
        take_spans(np.zeros(1, np.int64), [buffer], [spans, spans], ends, np.array([0]), out)
    with pytest.raises(TypeError):
        take_spans(np.zeros(3, np.int64), [buffer], [spans], ends, np.array([0]), np.empty(2, object))
