"""``ds.element_spec``: derived op by op without running the pipeline, equal to tf.data's on the same pipeline."""


import numpy as np
import pytest

import fastinput as fi
from fastinput.dataset import Dataset
from fastinput.tf_adapter import tf_element_spec
from tests.helpers import fi_elements, package_dataset_classes


def _same_spec(fi_ds, tf_ds):
    assert tf_element_spec(fi_ds.element_spec) == tf_ds.element_spec, (fi_ds.element_spec, tf_ds.element_spec)


def _ragged(n):
    """Element i: i + 1 ones (a shape that follows a value)."""
    return np.ones(int(n) + 1, np.int32)


def _pipelines(tf):
    """(name, fastinput pipeline, tf.data pipeline) for every op, on the same input."""
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    names = [b"a", b"bb", b"", b"c", b"dd", b"e"]
    fr, tr = fi.Dataset.range(6), tf.data.Dataset.range(6)
    fl = fr.map(_ragged)
    tl = tr.map(lambda n: tf.ones(n + 1, tf.int32))
    signature = {"v": tf.TensorSpec([None, 3], tf.float32), "s": tf.TensorSpec([], tf.string)}

    def gen():
        yield {"v": np.zeros((2, 3), np.float32), "s": b"x"}

    return [
        ("range", fr, tr),
        ("range int32", fi.Dataset.range(3, output_type=np.int32), tf.data.Dataset.range(3, output_type=tf.int32)),
        ("from_tensor_slices", fi.Dataset.from_tensor_slices(({"x": x, "n": names}, np.arange(6))),
         tf.data.Dataset.from_tensor_slices(({"x": x, "n": names}, np.arange(6)))),
        ("from_tensors", fi.Dataset.from_tensors((x, b"s")), tf.data.Dataset.from_tensors((x, b"s"))),
        ("from_generator signature", fi.Dataset.from_generator(gen, output_signature=signature),
         tf.data.Dataset.from_generator(gen, output_signature=signature)),
        ("from_generator types and shapes",
         fi.Dataset.from_generator(gen, output_types={"v": tf.float32, "s": tf.string},
                                   output_shapes={"v": [None, 3], "s": []}),
         tf.data.Dataset.from_generator(gen, output_types={"v": tf.float32, "s": tf.string},
                                        output_shapes={"v": [None, 3], "s": []})),
        ("from_generator types", fi.Dataset.from_generator(gen, output_types={"v": tf.float32, "s": tf.string}),
         tf.data.Dataset.from_generator(gen, output_types={"v": tf.float32, "s": tf.string})),
        ("batch", fr.batch(4), tr.batch(4)),
        ("batch drop_remainder", fr.batch(4, drop_remainder=True), tr.batch(4, drop_remainder=True)),
        ("padded_batch", fl.padded_batch(2), tl.padded_batch(2)),
        ("padded_batch shapes", fl.padded_batch(2, padded_shapes=[8], drop_remainder=True),
         tl.padded_batch(2, padded_shapes=[8], drop_remainder=True)),
        ("unbatch", fr.batch(4).unbatch(), tr.batch(4).unbatch()),
        ("map", fr.map(lambda n: (n * 2, {"f": np.float32(n) / 2})),
         tr.map(lambda n: (n * 2, {"f": tf.cast(n, tf.float32) / 2}))),
        ("map ragged", fl, tl),
        ("map of batches", fr.batch(4).map(lambda b: b * 2), tr.batch(4).map(lambda b: b * 2)),
        ("map of strings", fi.Dataset.from_tensor_slices(names).map(lambda s: (s, np.frombuffer(s, np.uint8))),
         tf.data.Dataset.from_tensor_slices(names).map(lambda s: (s, tf.io.decode_raw(s, tf.uint8)))),
        ("filter shuffle repeat take skip shard prefetch cache with_options",
         fl.filter(lambda v: len(v) > 1).shuffle(3).repeat(2).take(5).skip(1).shard(2, 0).prefetch(1).cache()
         .with_options(fi.Options(deterministic=True)),
         tl.filter(lambda v: tf.size(v) > 1).shuffle(3).repeat(2).take(5).skip(1).shard(2, 0).prefetch(1).cache()
         .with_options(tf.data.Options())),
        ("zip", fi.Dataset.zip({"a": fr, "b": fl}), tf.data.Dataset.zip({"a": tr, "b": tl})),
        ("enumerate", fl.enumerate(), tl.enumerate()),
        ("concatenate", fi.Dataset.from_tensors(np.zeros(2)).concatenate(fi.Dataset.from_tensors(np.zeros(3))),
         tf.data.Dataset.from_tensors(np.zeros(2)).concatenate(tf.data.Dataset.from_tensors(np.zeros(3)))),
        ("concatenate ranks",
         fi.Dataset.from_tensors(np.zeros(2)).concatenate(fi.Dataset.from_tensors(np.zeros((2, 2)))),
         tf.data.Dataset.from_tensors(np.zeros(2)).concatenate(tf.data.Dataset.from_tensors(np.zeros((2, 2))))),
        ("interleave", fr.interleave(lambda n: fi.Dataset.from_tensor_slices(np.arange(n)).batch(2), cycle_length=2),
         tr.interleave(lambda n: tf.data.Dataset.range(n).batch(2), cycle_length=2)),
        ("flat_map", fr.flat_map(lambda n: fi.Dataset.from_tensors(_ragged(n))),
         tr.flat_map(lambda n: tf.data.Dataset.from_tensors(tf.ones(n + 1, tf.int32)))),
        ("map_and_batch", fr.map_and_batch(lambda n: (n, np.float32(n)), 3, drop_remainder=True),
         tr.map(lambda n: (n, tf.cast(n, tf.float32))).batch(3, drop_remainder=True)),
    ]


def test_every_op_has_tf_datas_element_spec(tf):
    for name, fi_ds, tf_ds in _pipelines(tf):
        try:
            _same_spec(fi_ds, tf_ds)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def test_every_dataset_class_says_what_its_elements_look_like():
    classes = package_dataset_classes()
    assert len(classes) > 20
    missing = [c.__name__ for c in classes
               if c.compute_element_spec is Dataset.compute_element_spec and not c.traits.keeps_spec]
    assert not missing, missing


def test_readers(tf, tmp_path):
    path = str(tmp_path / "a.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(5):
            feature = {"n": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
                       "v": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5] * i))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    _same_spec(fi.TFRecordDataset(path), tf.data.TFRecordDataset(path))
    features = {"n": tf.io.FixedLenFeature([], tf.int64), "v": tf.io.VarLenFeature(tf.float32),
                "q": tf.io.FixedLenSequenceFeature([2], tf.float32, allow_missing=True),
                "s": tf.io.FixedLenFeature([3], tf.string, default_value=[b""] * 3)}
    _same_spec(fi.TFRecordDataset(path).batch(2).map(lambda b: fi.parse_example(b, features)),
               tf.data.TFRecordDataset(path).batch(2).map(lambda b: tf.io.parse_example(b, features)))
    for epochs, label in ((1, None), (None, "n")):
        args = dict(file_pattern=path, batch_size=2, features=features, num_epochs=epochs, label_key=label)
        _same_spec(fi.make_batched_features_dataset(**args), tf.data.experimental.make_batched_features_dataset(**args))
    csv = tmp_path / "a.csv"
    csv.write_text("a,b,c\n1,2.5,x\n3,4.5,y\n")
    _same_spec(fi.CsvDataset(str(csv), [0, 0.0, ""], header=True),
               tf.data.experimental.CsvDataset(str(csv), [0, 0.0, ""], header=True))
    for epochs in (1, None):
        args = dict(file_pattern=str(csv), batch_size=2, label_name="c", num_epochs=epochs)
        _same_spec(fi.make_csv_dataset(**args), tf.data.experimental.make_csv_dataset(**args))


def test_the_readme_preprocessing_gets_a_spec_from_the_kernels_placeholders():
    features = {"image/encoded": fi.FixedLenFeature([], bytes), "image/class/label": fi.FixedLenFeature([], "int64")}

    def preprocess(record, out=None):
        example = fi.parse_example([record], features)
        image = fi.image.decode_random_crop_resize(example["image/encoded"][0], size=(224, 224),
                                                   out=None if out is None else out[0])
        return image, example["image/class/label"][0]

    records = fi.Dataset.from_tensor_slices([b"not read"]).interleave(fi.TFRecordDataset,
                                                                      num_parallel_calls=fi.AUTOTUNE)
    ds = records.shuffle(10).map_and_batch(preprocess, 64, drop_remainder=True)
    assert ds.element_spec == (fi.TensorSpec((64, 224, 224, 3), np.uint8), fi.TensorSpec((64,), np.int64))
    center = records.map(lambda r: fi.image.decode_center_crop_resize(r, size=(8, 9), dtype=np.float32))
    assert center.element_spec == fi.TensorSpec((8, 9, 3), np.float32)
    shape = records.map(fi.image.jpeg_shape)  # the size of an image is the data's: unknown
    assert shape.element_spec == (fi.TensorSpec((), np.int32), fi.TensorSpec((), np.int32), fi.TensorSpec((), np.int32))


def test_a_map_is_traced_on_placeholders_twice_never_on_the_data():
    calls = []

    def f(x):
        calls.append(x)
        return {"v": np.arange(x), "s": b"s"}

    ds = fi.Dataset.from_tensor_slices(np.array([5, 6], np.int64)).map(f)  # traced while building, as tf.data does
    assert [int(c) for c in calls] == [0, 1]
    assert ds.element_spec == {"v": fi.TensorSpec((None,), np.int64), "s": fi.TensorSpec((), bytes)}
    assert len(calls) == 2  # once learnt, kept


def test_output_signature_declares_what_a_map_returns():
    def strict(x):
        if x < 100:
            raise ValueError("only real data")
        return x

    ds = fi.Dataset.range(200, 203).map(strict)
    with pytest.raises(fi.errors.InvalidArgumentError,
                       match=r"map\(strict\).*ValueError: only real data.*output_signature="):
        _ = ds.element_spec
    assert [int(x) for x in fi_elements(ds)] == [200, 201, 202]  # iterating never needs the spec
    declared = fi.Dataset.range(200, 203).map(strict, output_signature=fi.TensorSpec([], np.int64))
    assert declared.batch(2).element_spec == fi.TensorSpec((None,), np.int64)
    fused = fi.Dataset.range(3).map_and_batch(strict, 2, output_signature=fi.TensorSpec([2], np.float32))  # builds
    assert fused.element_spec == fi.TensorSpec((None, 2), np.float32)


def test_a_generator_without_signature_has_no_spec():
    ds = fi.Dataset.from_generator(lambda: iter([1, 2])).map(lambda x: x * 2)  # building works
    with pytest.raises(fi.errors.InvalidArgumentError, match="pass output_signature"):
        _ = ds.element_spec
    assert [int(x) for x in fi_elements(ds)] == [2, 4]


@pytest.mark.parametrize("case", ["concatenate structure", "concatenate dtype", "map None", "interleave", "flat_map",
                                  "padded_batch sparse", "unbatch scalar", "filter int", "filter vector"])
def test_checks_made_while_building_as_tf_data_does(tf, case):
    sparse = fi.Dataset.from_generator(lambda: iter([]), output_signature=fi.SparseSpec([None], np.int64))
    fi_build, tf_build = {
        "concatenate structure": (
            lambda: fi.Dataset.range(3).concatenate(fi.Dataset.range(3).map(lambda x: (x, x))),
            lambda: tf.data.Dataset.range(3).concatenate(tf.data.Dataset.range(3).map(lambda x: (x, x)))),
        "concatenate dtype": (
            lambda: fi.Dataset.range(3).concatenate(fi.Dataset.range(3).map(lambda x: np.float32(x))),
            lambda: tf.data.Dataset.range(3).concatenate(
                tf.data.Dataset.range(3).map(lambda x: tf.cast(x, tf.float32)))),
        "map None": (lambda: fi.Dataset.range(3).map(lambda x: None),
                     lambda: tf.data.Dataset.range(3).map(lambda x: None)),
        "interleave": (lambda: fi.Dataset.range(3).interleave(lambda x: x),
                       lambda: tf.data.Dataset.range(3).interleave(lambda x: x)),
        "flat_map": (lambda: fi.Dataset.range(3).flat_map(lambda x: [x]),
                     lambda: tf.data.Dataset.range(3).flat_map(lambda x: [x])),
        "padded_batch sparse": (
            lambda: sparse.padded_batch(2),
            lambda: tf.data.Dataset.range(3).map(lambda x: tf.sparse.from_dense([x])).padded_batch(2)),
        "unbatch scalar": (lambda: fi.Dataset.range(3).unbatch(), lambda: tf.data.Dataset.range(3).unbatch()),
        "filter int": (lambda: fi.Dataset.range(3).filter(lambda x: x),
                       lambda: tf.data.Dataset.range(3).filter(lambda x: x)),
        "filter vector": (lambda: fi.Dataset.range(3).filter(lambda x: np.array([True, False])),
                          lambda: tf.data.Dataset.range(3).filter(lambda x: tf.constant([True, False]))),
    }[case]
    with pytest.raises((TypeError, ValueError, AttributeError, tf.errors.InvalidArgumentError)):
        tf_build()
    with pytest.raises(fi.errors.InvalidArgumentError):
        fi_build()


def test_checks_skip_a_stage_whose_spec_cannot_be_learnt():
    """A function that fails on placeholders is no error while building: only element_spec says so."""
    def needs_real_files(name):
        if not name:
            raise FileNotFoundError("no such file")
        return fi.Dataset.from_tensors(name)

    names = fi.Dataset.from_tensor_slices([b"a", b"b"])
    ds = names.interleave(needs_real_files, cycle_length=1).concatenate(fi.Dataset.range(2))
    with pytest.raises(fi.errors.InvalidArgumentError, match="no such file"):
        _ = ds.element_spec


def test_spec_helpers():
    spec = fi.TensorSpec([None, 3], "float32")
    assert (spec.is_compatible_with(np.zeros((5, 3), np.float32))
            and not spec.is_compatible_with(np.zeros((5, 4), np.float32)))
    assert not spec.is_compatible_with(np.zeros((5, 3), np.float64))
    assert fi.TensorSpec(None, np.int64).is_compatible_with(np.zeros((1, 2, 3), np.int64))
    assert spec.most_specific_common(fi.TensorSpec([2, 3], np.float32)) == spec
    assert spec.most_specific_common(fi.TensorSpec([2], np.float32)) == fi.TensorSpec(None, np.float32)
    assert (fi.TensorSpec([], str).dtype == np.dtype(object)
            and repr(fi.TensorSpec([2], bytes)) == "TensorSpec(shape=(2,), dtype=string)")
    assert fi.SparseSpec([2, None], np.int64).is_compatible_with(
        fi.SparseArray(np.zeros((0, 2)), np.zeros(0, np.int64), [2, 7]))


def test_datasets_an_interleave_opens_while_running_are_not_traced_again():
    calls = []

    def parse(x):
        calls.append(x)
        return x * 2

    ds = fi.Dataset.range(3).interleave(lambda n: fi.Dataset.from_tensors(n).map(parse), cycle_length=2)
    traced = len(calls)  # the interleave's function traced twice, each building a map traced twice
    assert traced == 4 and ds.element_spec == fi.TensorSpec((), np.int64)
    assert sorted(int(x) for x in fi_elements(ds)) == [0, 2, 4]
    assert len(calls) == traced + 3


def test_tracing_is_seen_in_its_own_thread_only_and_ends_with_its_block():
    """``tracing()`` reads a global count of open traces first (one read while none is open): a trace is still
    seen only by its own thread, nested traces restore the outer size, and an error closes the block."""
    import threading

    from fastinput import spec as spec_module

    seen_elsewhere = []
    with spec_module.tracing_with(3):
        with spec_module.tracing_with(5):
            assert spec_module.tracing() and spec_module.trace_size() == 5
        assert spec_module.tracing() and spec_module.trace_size() == 3
        thread = threading.Thread(target=lambda: seen_elsewhere.append(spec_module.tracing()))
        thread.start()
        thread.join()
    assert seen_elsewhere == [False] and not spec_module.tracing() and spec_module._traces_open == 0
    with pytest.raises(ValueError), spec_module.tracing_with(4):
        raise ValueError
    assert not spec_module.tracing() and spec_module._traces_open == 0
