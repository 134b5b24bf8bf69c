"""Saving and restoring a loaded dataset and a snapshot (reading and writing) at every position: a fresh iterator
restored from the (JSON round-tripped) state gives the same rest."""

from __future__ import annotations

import os

import numpy as np
import pytest

import fastinput as fi
from fastinput.ops import saved_files
from tests.checkpoint.test_interleave import check_resume, outcomes, saved, total


@pytest.fixture
def small_records(monkeypatch):
    """Records of 3 elements, so that positions inside records, at their edges and across shards are few."""
    monkeypatch.setattr(saved_files, "MAX_CHUNK", 3)


def _elements():
    return fi.Dataset.range(23).map(lambda x: (x, b"r%d" % int(x), np.full(2, x, dtype=np.float32)))


@pytest.mark.parametrize("sharding", ["round robin", "shard_func"])
def test_load_resumes_at_every_position(tmp_path, small_records, sharding):
    shard_func = (lambda x, s, v: x % 3) if sharding == "shard_func" else None
    _elements().save(str(tmp_path), shard_func=shard_func)
    ds = fi.Dataset.load(str(tmp_path))
    assert len(os.listdir(tmp_path)) > 2
    for n in range(total(ds) + 2):
        check_resume(ds, n)


def test_a_reader_func_pipeline_that_holds_datasets_says_it_cannot_save(tmp_path):
    _elements().save(str(tmp_path))
    ds = fi.Dataset.load(str(tmp_path), reader_func=lambda datasets: datasets.flat_map(lambda x: x))
    with iter(ds) as it:
        outcomes(it, 5)
        with pytest.raises(fi.errors.UnimplementedError):  # its interleave holds a dataset as its input element
            saved(it)


def test_snapshot_resumes_while_reading(tmp_path, small_records):
    ds = _elements().snapshot(str(tmp_path))
    assert len(list(ds)) == 23  # the first pass writes it
    for n in range(25):
        check_resume(ds, n)


def test_snapshot_resumes_while_writing_and_writes_on_a_later_pass(tmp_path, small_records):
    for n in range(0, 25, 4):
        folder = tmp_path / str(n)
        ds = _elements().snapshot(str(folder))
        check_resume(ds, n)  # the pass that was saved runs on to the end and commits; the restored one only reads
        (digest,) = os.listdir(folder)
        assert os.path.exists(folder / digest / "fastinput-dataset.json")
        check_resume(ds, n)  # reading now


def test_a_state_saved_while_reading_restores_into_a_pass_that_would_write(tmp_path, small_records):
    ds = _elements().snapshot(str(tmp_path))
    list(ds)
    with iter(ds) as it:
        outcomes(it, 5)
        state = saved(it)
        rest = outcomes(it)
    (digest,) = os.listdir(tmp_path)
    moved = tmp_path / "moved"
    os.rename(tmp_path / digest, moved)  # no snapshot: a new iterator would write
    with iter(ds) as it:
        with pytest.raises(fi.errors.NotFoundError, match="snapshot"):
            it.set_state(state)
    os.rename(moved, tmp_path / digest)
    with iter(ds) as it:
        it.set_state(state)
        assert outcomes(it) == rest
