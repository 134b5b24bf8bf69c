"""A files reader keeps the interleave that reads its input (a ``repeat`` over it makes an iterator per epoch):
epochs read what tf.data's read, a snapshot of a reader is found again after a pass (what the reader keeps is not part
of the pipeline's description), and a reader over a rewritten input reads the new input."""

from __future__ import annotations

import os

import fastinput as fi
from tests.helpers import fi_elements


def test_epochs_over_a_reader_read_what_tf_data_reads(corpus, tf):
    files = corpus.files()
    expected = corpus.tf_data(files) * 3
    assert fi_elements(fi.TFRecordDataset(files).repeat(3)) == expected
    mixed = fi.Dataset.sample_from_datasets([fi.TFRecordDataset(path).repeat(3) for path in files[:2]], seed=1)
    assert sorted(fi_elements(mixed)) == sorted(corpus.tf_data(files[:2]) * 3)


def test_a_readers_snapshot_is_found_again_after_a_pass(corpus, tf, tmp_path):
    """The snapshot's folder is named after the pipeline's description, read again at the second pass (after the
    reader made and kept its interleave): the same folder, read, not written again."""
    reader = fi.TFRecordDataset(corpus.files()[:2])
    first = fi_elements(reader.snapshot(str(tmp_path)))
    again = fi_elements(reader.snapshot(str(tmp_path)))
    assert again == first == corpus.tf_data(corpus.files()[:2])
    assert len(os.listdir(tmp_path)) == 1


def test_the_same_reader_twice_in_a_pipeline(corpus, tf):
    reader = fi.TFRecordDataset(corpus.files()[1])
    both = fi_elements(reader.concatenate(reader.take(3)))
    records = corpus.tf_data(corpus.files()[1])
    assert both == records + records[:3]
