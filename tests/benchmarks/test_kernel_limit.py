"""``--kernel-limit``'s kernel: threads decoding the benchmark's JPEGs, counted out in batches, joined at the end."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import fastinput as fi
from fastinput_bench.kernel_limit import kernel_batches, load_jpegs
from fastinput_bench.synthetic import synthetic_files


def test_each_batch_is_that_many_more_decoded_images_and_the_threads_end_with_the_block(cache_dir, monkeypatch):
    jpegs = load_jpegs(synthetic_files("images", "small", cache_dir), count=16)
    assert len(jpegs) == 16 and all(j[:2] == b"\xff\xd8" for j in jpegs)  # JPEG start-of-image markers
    decoded = []
    decode = fi.image.decode_random_crop_resize
    monkeypatch.setattr(fi.image, "decode_random_crop_resize",
                        lambda *args, **kwargs: decoded.append(decode(*args, **kwargs).shape))
    before = set(threading.enumerate())
    with kernel_batches(jpegs, batch_size=4, threads=2) as batches:
        kernels = [t for t in threading.enumerate() if t.name.startswith("decode kernel")]
        assert len(kernels) == 2
        for taken in range(1, 6):
            batch = next(batches)
            assert isinstance(batch, np.ndarray) and batch.shape == (4, 0)
            assert len(decoded) >= 4 * taken
    assert not any(t.is_alive() for t in kernels)
    assert set(decoded) == {(224, 224, 3)}
    assert set(threading.enumerate()) <= before


def test_no_jpegs_is_an_error():
    with pytest.raises(ValueError, match="no JPEGs"), kernel_batches([], batch_size=4):
        pass
