"""Bad arguments are refused when the pipeline is built, before they size anything (issue 14, defect 4).

Each case must raise ``InvalidArgumentError`` naming the argument, without
allocating anything big (checked with tracemalloc) and without starting a
thread per unit of parallelism asked for.
"""

import io
import math
import threading
import tracemalloc

import numpy as np
import pytest

import fastinput as fi
from fastinput._engine.arguments import MAX_PARALLELISM
from fastinput.errors import InvalidArgumentError
from fastinput.fused_ops import image

R = fi.Dataset.range(10)
FEATURES = {"a": fi.FixedLenFeature([], "int64")}
HUGE = 2**62


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 48, 3), 128, np.uint8)).save(buffer, "JPEG", progressive=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("csv") / "a.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    return str(path)


def _take(ds: fi.Dataset, n: int = 1) -> list:
    with iter(ds) as it:
        return [next(it) for _ in range(n)]


BAD = {  # what is called -> the argument its error must name
    "random crop: aspect_ratio_range up to inf": (
        lambda j, f: image.decode_random_crop_resize(j, aspect_ratio_range=(0.5, math.inf)), "aspect_ratio_range"),
    "random crop: aspect_ratio_range nan": (
        lambda j, f: image.decode_random_crop_resize(j, aspect_ratio_range=(math.nan, 1.0)), "aspect_ratio_range"),
    "random crop: max_attempts 10**8": (
        lambda j, f: image.decode_random_crop_resize(j, max_attempts=10**8), "max_attempts"),
    "random crop: min_object_covered nan": (
        lambda j, f: image.decode_random_crop_resize(j, min_object_covered=math.nan), "min_object_covered"),
    "random crop: min_object_covered -1": (
        lambda j, f: image.decode_random_crop_resize(j, min_object_covered=-1), "min_object_covered"),
    "crop: size 50000 x 50000": (lambda j, f: image.decode_crop_resize(j, size=(50000, 50000)), "size"),
    "crop: size 2**31 x 1": (lambda j, f: image.decode_crop_resize(j, size=(2**31, 1)), "size"),
    "center crop: size 2**31 x 1": (lambda j, f: image.decode_center_crop_resize(j, size=(2**31, 1)), "size"),
    "random crop: size 2**40 x 1": (lambda j, f: image.decode_random_crop_resize(j, size=(2**40, 1)), "size"),
    "crop: max_pixels 0": (lambda j, f: image.decode_crop_resize(j, max_pixels=0), "max_pixels"),
    "TFRecordDataset buffer_size 2**62": (lambda j, f: fi.TFRecordDataset(f, buffer_size=HUGE), "buffer_size"),
    "TFRecordDataset buffer_size -1": (lambda j, f: fi.TFRecordDataset(f, buffer_size=-1), "buffer_size"),
    "CsvDataset buffer_size 2**62": (lambda j, f: fi.CsvDataset(f, [0, 0], buffer_size=HUGE), "buffer_size"),
    "FixedLenFeature 2**32 x 2**32": (lambda j, f: fi.FixedLenFeature([2**32, 2**32], "float32"), "shape"),
    "FixedLenFeature 2**20 x 2**20": (lambda j, f: fi.FixedLenFeature([2**20, 2**20], "float32"), "shape"),
    "FixedLenSequenceFeature 2**40": (
        lambda j, f: fi.FixedLenSequenceFeature([2**40], "float32", allow_missing=True), "shape"),
    "padded_shapes 2**40": (lambda j, f: R.padded_batch(2, padded_shapes=[2**40]), "padded_shapes"),
    "padded_shapes -2": (lambda j, f: R.padded_batch(2, padded_shapes=[-2]), "padded_shapes"),
    "AutotuneOptions ram_budget -1": (lambda j, f: fi.AutotuneOptions(ram_budget=-1), "ram_budget"),
    "AutotuneOptions cpu_budget 1.5": (lambda j, f: fi.AutotuneOptions(cpu_budget=1.5), "cpu_budget"),
    "Options deterministic 'yes'": (lambda j, f: fi.Options(deterministic="yes"), "deterministic"),
    "map deterministic 'yes'": (lambda j, f: R.map(int, deterministic="yes"), "deterministic"),
    "interleave deterministic 'yes'": (lambda j, f: R.interleave(lambda x: R, deterministic="yes"), "deterministic"),
    "map_and_batch deterministic 'yes'": (lambda j, f: R.map_and_batch(int, 2, deterministic="yes"), "deterministic"),
    "map num_parallel_calls 0": (lambda j, f: R.map(int, num_parallel_calls=0), "num_parallel_calls"),
    "interleave cycle_length 2**62": (lambda j, f: R.interleave(lambda x: R, cycle_length=HUGE), "cycle_length"),
    "interleave block_length 0": (lambda j, f: R.interleave(lambda x: R, block_length=0), "block_length"),
    "shuffle buffer_size 0": (lambda j, f: R.shuffle(0), "buffer_size"),
    "prefetch buffer_size -5": (lambda j, f: R.prefetch(-5), "buffer_size"),
    "batch batch_size 0": (lambda j, f: R.batch(0), "batch_size"),
    "map_and_batch batch_size 0": (lambda j, f: R.map_and_batch(int, 0), "batch_size"),
    "make_csv_dataset batch_size 0": (lambda j, f: fi.make_csv_dataset(f, batch_size=0), "batch_size"),
    "make_csv_dataset shuffle_buffer_size 0": (
        lambda j, f: fi.make_csv_dataset(f, batch_size=2, shuffle_buffer_size=0), "shuffle_buffer_size"),
    "make_batched_features_dataset batch_size 0": (
        lambda j, f: fi.make_batched_features_dataset(f, 0, FEATURES), "batch_size"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_argument_is_refused_by_name_before_anything_is_allocated(case, jpeg, csv_file):
    call, argument = BAD[case]
    tracemalloc.start()
    try:
        with pytest.raises(InvalidArgumentError, match=argument):
            call(jpeg, csv_file)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{case}: {peak} bytes allocated before the error"


def _direct_constructions() -> dict:
    """Nodes built from their classes, as the static rewrites and the readers build them, past ``Dataset``'s
    methods: each class checks its own arguments."""
    from fastinput.fused_ops.map_and_batch import MapAndBatchDataset
    from fastinput.ops.batch import BatchDataset
    from fastinput.ops.interleave import InterleaveDataset
    from fastinput.ops.map import MapDataset
    from fastinput.ops.zip import ZipDataset

    return {  # what is built -> the argument its error must name
        "MapDataset map_func 3": (lambda: MapDataset(R, 3, None, None), "map_func"),
        "MapDataset num_parallel_calls 0": (lambda: MapDataset(R, int, 0, None), "num_parallel_calls"),
        "MapDataset deterministic 'yes'": (lambda: MapDataset(R, int, 2, "yes"), "deterministic"),
        "MapDataset output_signature 3": (
            lambda: MapDataset(R, int, None, None, output_signature=3), "output_signature"),
        "InterleaveDataset cycle_length 0": (
            lambda: InterleaveDataset(R, lambda x: R, 0, 1, None, None), "cycle_length"),
        "InterleaveDataset block_length 0": (
            lambda: InterleaveDataset(R, lambda x: R, 2, 0, None, None), "block_length"),
        "InterleaveDataset num_parallel_calls > cycle_length": (
            lambda: InterleaveDataset(R, lambda x: R, 2, 1, 3, None), "num_parallel_calls"),
        "BatchDataset batch_size 0": (lambda: BatchDataset(R, 0, False), "batch_size"),
        "MapAndBatchDataset batch_size 0": (lambda: MapAndBatchDataset(R, int, 0, None, False), "batch_size"),
        "ZipDataset of a number": (lambda: ZipDataset((R, 3)), "every argument must be a fastinput Dataset"),
        "ZipDataset of nothing": (lambda: ZipDataset(()), "at least one dataset"),
    }


@pytest.mark.parametrize("case", list(_direct_constructions()))
def test_every_node_class_checks_its_arguments_when_built_directly(case):
    build, argument = _direct_constructions()[case]
    with pytest.raises(InvalidArgumentError, match=argument):
        build()


@pytest.mark.parametrize("make", [
    lambda: R.map(lambda x: x, num_parallel_calls=10**6),
    lambda: R.map_and_batch(lambda x: x, 2, num_parallel_calls=10**6),
    lambda: R.interleave(lambda x: fi.Dataset.range(3), cycle_length=1000, num_parallel_calls=10**6),
], ids=["map", "map_and_batch", "interleave"])
def test_a_huge_parallelism_runs_at_most_max_parallelism_threads(make):
    """As tf.data, any positive ``num_parallel_calls`` is accepted; the workers are a pool of at most
    ``MAX_PARALLELISM`` threads, not one per unit asked for."""
    ds = make()
    assert f"num_parallel_calls={MAX_PARALLELISM}" in str(ds)
    with iter(ds) as it:
        next(it)
        workers = [t for t in threading.enumerate() if t.name.startswith("fastinput") and "#" in t.name]
        assert 0 < len(workers) <= MAX_PARALLELISM
        assert all(k.value <= MAX_PARALLELISM for k in it.knobs() if k.name == "parallelism")


@pytest.mark.parametrize("make", [
    lambda f: fi.Dataset.range(5).shuffle(HUGE),
    lambda f: fi.Dataset.range(5).prefetch(HUGE),
    lambda f: fi.Dataset.range(5).batch(HUGE),
    lambda f: fi.Dataset.range(5).map_and_batch(lambda x: x, HUGE),
    lambda f: fi.Dataset.range(5).interleave(lambda x: fi.Dataset.range(2), cycle_length=2, block_length=HUGE),
    lambda f: fi.make_csv_dataset(f, batch_size=2, shuffle_buffer_size=HUGE, num_epochs=1),
], ids=["shuffle", "prefetch", "batch", "map_and_batch", "block_length", "make_csv_dataset shuffle"])
def test_huge_sizes_that_tf_data_accepts_allocate_only_for_what_arrives(make, csv_file):
    """tf.data takes these (``shuffle(2**62)`` is the usual "shuffle everything"); buffers grow with the data."""
    tracemalloc.start()
    try:
        assert len(_take(make(csv_file))) == 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def _claiming(jpeg: bytes, height: int, width: int) -> bytes:
    """``jpeg`` with its frame header (SOF) claiming ``height`` x ``width``: a few KB that would decode huge."""
    data = bytearray(jpeg)
    i = 2
    while data[i + 1] not in (0xC0, 0xC1, 0xC2):  # walk the marker segments to the frame header
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    data[i + 5:i + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


@pytest.mark.parametrize("kernel", [image.decode_crop_resize, image.decode_random_crop_resize,
                                    image.decode_center_crop_resize])
def test_a_decompression_bomb_is_refused_before_decoding(kernel, jpeg):
    bomb = _claiming(jpeg, 13000, 13700)
    assert image.jpeg_shape(bomb)[:2] == (13000, 13700) and len(bomb) < 10_000
    tracemalloc.start()
    try:
        with pytest.raises(InvalidArgumentError, match="13000x13700 = 178100000 pixels, more than max_pixels"):
            kernel(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_max_pixels_bounds_the_image_and_can_be_raised(jpeg):
    assert image.DEFAULT_MAX_PIXELS == 89_478_485  # Pillow's limit
    assert image.decode_crop_resize(jpeg, size=(8, 8), max_pixels=64 * 48).shape == (8, 8, 3)
    with pytest.raises(InvalidArgumentError, match="max_pixels=3071"):
        image.decode_crop_resize(jpeg, size=(8, 8), max_pixels=64 * 48 - 1)
    assert image.decode_crop_resize(jpeg, size=(100, 100), max_pixels=10_000).shape == (100, 100, 3)
    with pytest.raises(InvalidArgumentError, match="size"):  # the output counts too
        image.decode_crop_resize(jpeg, size=(100, 100), max_pixels=9_999)
