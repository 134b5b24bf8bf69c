"""Saving and restoring a mix of TFRecord sources at every position: readers that give what their read buffer holds
(asked for two pulls' worth) and hand the buffer on (``framing.SpareBuffers``), a damaged file among them. A fresh
iterator restored from the (JSON round-tripped) state gives the same rest, errors included."""

from __future__ import annotations

import pytest

import fastinput as fi
from fastinput.fused_ops import rewrites
from fastinput.ops import directed_interleave
from fastinput.readers.framing import frame
from tests.checkpoint.test_interleave import check_resume, total


@pytest.fixture
def sources(tmp_path, monkeypatch: pytest.MonkeyPatch) -> list[fi.Dataset]:
    """Three TFRecord files read with buffers of 200 bytes (a few records each), the second damaged after 9
    records; pulls of ~5 records, so that the mix pulls often and readers walk their buffers to the end."""
    monkeypatch.setattr(directed_interleave, "PULL_BYTES", 400)
    contents = [b"".join(frame(bytes([k]) * (10 + k % 30)) for k in range(first, first + 25)) for first in (0, 40, 80)]
    contents[1] = contents[1][:9 * 16 + sum(10 + k % 30 for k in range(40, 49)) + 20]  # cut inside record 9
    paths = []
    for index, content in enumerate(contents):
        path = tmp_path / f"{index}.tfrecord"
        path.write_bytes(content)
        paths.append(str(path))
    return [fi.TFRecordDataset(path, buffer_size=200) for path in paths]


MIXES = {
    "sample": lambda sources: fi.Dataset.sample_from_datasets(sources, [0.3, 0.3, 0.4], seed=7),
    "sample, repeated sources, batches": lambda sources: fi.Dataset.sample_from_datasets(
        [source.repeat(2) for source in sources], seed=3, stop_on_empty_dataset=False).batch(4),
}


@pytest.mark.parametrize("mix", MIXES)
@pytest.mark.parametrize("spans", [True, False])
def test_a_mix_of_record_sources_resumes_at_every_position(sources, mix, spans, monkeypatch):
    """``spans``: a mix and batch of TFRecord readers reads them as spans (``readers.record_spans``), else from the
    mix's own buffers."""
    if not spans:
        monkeypatch.setattr(rewrites, "spans_source", lambda node: None)
    ds = MIXES[mix](sources)
    for n in range(total(ds) + 2):
        check_resume(ds, n)
