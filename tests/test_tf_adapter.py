"""as_tf_dataset, Keras model.fit and the input_fn contract with tf.distribute."""

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastinput as fi
from fastinput._engine.lifecycle import REAPER_THREAD_NAME
from fastinput._engine.traits import PacksStrings
from fastinput.readers.example import ExampleParser, native_kernel
from fastinput.structure import SparseArray
from fastinput.tf_adapter import SOLO_BYTES, gathered, joined_strings, tf_input_fn, with_strings_packed
from fastinput.tf_values import PackedStrings
from tests.helpers import assert_same_elements, fastinput_threads, fi_elements, tf_elements


def _examples(n=100):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32) > 0).astype(np.int64)
    return x, y


def test_element_spec_and_values(tf):
    x, y = _examples(10)
    ds = fi.Dataset.from_tensor_slices(({"x": x, "name": [f"n{i}" for i in range(10)]}, y)).batch(4)
    tf_ds = ds.as_tf_dataset()
    features, label = tf_ds.element_spec
    assert features["x"] == tf.TensorSpec([None, 4], tf.float32)
    assert features["name"] == tf.TensorSpec([None], tf.string)
    assert label == tf.TensorSpec([None], tf.int64)
    assert_same_elements(tf_elements(tf_ds), fi_elements(ds))


def test_drop_remainder_gives_a_static_batch_dimension(tf):
    ds = fi.Dataset.range(10).batch(4, drop_remainder=True).prefetch(2)
    assert ds.as_tf_dataset().element_spec == tf.TensorSpec([4], tf.int64)
    padded = fi.Dataset.range(1, 6).map(lambda n: np.ones(int(n), np.int32)).padded_batch(2)
    assert padded.as_tf_dataset().element_spec == tf.TensorSpec([None, None], tf.int32)


def test_sparse_values_become_sparse_tensors(tf):
    rows = [[1, 2], [3]]
    ds = fi.Dataset.from_generator(lambda: (SparseArray(np.arange(len(r))[:, None], np.array(r, np.int64), [len(r)])
                                            for r in rows),
                                   output_signature=fi.SparseSpec([None], np.int64)).batch(2)
    tf_ds = ds.as_tf_dataset()
    assert isinstance(tf_ds.element_spec, tf.SparseTensorSpec)
    (value,) = list(tf_ds)
    assert tf.sparse.to_dense(value).numpy().tolist() == [[1, 2], [3, 0]]


def _mixed_row(i):
    """One row with components of many dtypes and ranks; batched by 3, the image is big enough to cross alone."""
    rng = np.random.default_rng(i)
    return {
        "ids": np.int64(i), "counts": rng.integers(0, 9, 2), "x": rng.normal(size=3).astype(np.float32),
        "y": np.float32(i / 2), "flag": np.bool_(i % 2), "mask": rng.random(2) > 0.5,
        "image": rng.integers(0, 255, SOLO_BYTES // 3 + 1, dtype=np.uint8),
        "name": b"n%d" % i, "tags": np.array([b"", b"t\x00%d" % i], dtype=object),
    }, np.int32(i)


def test_components_of_every_kind_cross_unchanged(tf):
    signature = fi.Dataset.range(1).map(_mixed_row).element_spec
    ds = fi.Dataset.from_generator(lambda: (_mixed_row(i) for i in range(10)), output_signature=signature)
    ds = ds.batch(3).prefetch(1)  # last batch: 1
    tf_ds = ds.as_tf_dataset()
    assert tf_ds.element_spec[0]["counts"] == tf.TensorSpec([None, 2], tf.int64)
    assert_same_elements(tf_elements(tf_ds), fi_elements(ds))


def test_unbatched_scalars_and_padded_batches_cross_unchanged(tf):
    ds = fi.Dataset.from_tensor_slices({"n": np.arange(5), "s": [b"a", b"bb", b"", b"d", b"e"]})
    assert_same_elements(tf_elements(ds.as_tf_dataset()), fi_elements(ds))
    padded = fi.Dataset.range(1, 6).map(
        lambda n: (np.ones((int(n), 2), np.int32) * n, np.ones(int(n) % 3, np.int64))).padded_batch(2)
    assert_same_elements(tf_elements(padded.as_tf_dataset()), fi_elements(padded))


def _packed(values, blob_prefix=b""):
    """PackedStrings of ``values`` in a blob that starts with ``blob_prefix`` (so offsets need not start at 0)."""
    offsets = len(blob_prefix) + np.cumsum([0] + [len(v) for v in values])
    return PackedStrings(blob_prefix + b"".join(values), offsets.astype(np.int64))


def _packed_batches(layout):
    """Batches of two packed string leaves (plus a number) laid out in blobs as ``layout`` says."""
    batches = []
    for i in range(3):
        a = [b"a%d-%d" % (i, j) for j in range(4)]
        b = [b"b%d\x00" % i * j for j in range(4)]  # b"", then values with NUL bytes
        if layout == "own blobs":
            leaves = [_packed(a), _packed(b, b"<")]
        else:  # one blob, with bytes before, between and after; the leaves in it in the other order, one reshaped
            blob = b"<" + b"".join(b) + b"|" + b"".join(a) + b">"
            b_offsets = 1 + np.cumsum([0] + [len(x) for x in b])
            a_offsets = b_offsets[-1] + 1 + np.cumsum([0] + [len(x) for x in a])
            leaves = [PackedStrings(blob, a_offsets).reshape(2, 2), PackedStrings(blob, b_offsets)]
        batches.append({"a": leaves[0], "b": leaves[1], "n": np.arange(4) + i})
    return batches


class _Batches(PacksStrings):
    """A map function giving batch ``i`` unpacked, with a ``packing_strings`` variant giving ``packed[i]`` (as
    ``make_batched_features_dataset``'s parser has one), which ``as_tf_dataset`` uses."""

    def __init__(self, plain, packed=None):
        self.plain, self.packed = plain, packed

    def __call__(self, i):
        return (self.packed or self.plain)[int(i)]

    def packing_strings(self):
        return _Batches(self.plain, self.packed_variant)


@pytest.mark.parametrize("layout", ["own blobs", "shared blob"])
@pytest.mark.usefixtures("cut_strings_mode")
def test_packed_strings_are_cut_out_of_their_blobs(tf, layout):
    batches = _packed_batches(layout)
    plain = [{k: np.asarray(v) for k, v in batch.items()} for batch in batches]
    # As packed, a batch whose strings did not come packed after packed ones, and the other way round.
    for packed in (batches, [batches[0], plain[1], batches[2]], [plain[0], batches[1], plain[2]]):
        fn = _Batches(plain)
        fn.packed_variant = packed
        ds = fi.Dataset.range(3).map(fn)
        assert_same_elements(tf_elements(ds.as_tf_dataset()), plain)


def _write_examples(tf, path, count):
    """Examples with dense, var-length and sequence string features (some missing) and a number."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(count):
            feature = {"n": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))}
            if i % 3:
                feature["s"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"s%d" % i, b""]))
            feature["v"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"v\x00" * j for j in range(i % 4)]))
            feature["q"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"q%d" % j for j in range(i % 3)]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def _features(tf):
    return {"n": tf.io.FixedLenFeature([], tf.int64),
            "s": tf.io.FixedLenFeature([2], tf.string, default_value=[b"d", b"dd"]),
            "v": tf.io.VarLenFeature(tf.string), "q": tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)}


@pytest.mark.usefixtures("cut_strings_mode")
def test_parsed_strings_cross_packed_and_unchanged(tf, tmp_path):
    """make_batched_features_dataset's parser leaves strings packed for TensorFlow only; the values match
    both the direct pipeline's and tf.data's own make_batched_features_dataset."""
    _write_examples(tf, tmp_path / "a.tfrecord", 50)
    args = dict(file_pattern=str(tmp_path / "a.tfrecord"), batch_size=8, num_epochs=1, shuffle=False)
    ds = fi.make_batched_features_dataset(features=_features(tf), **args)
    packing = with_strings_packed(ds)
    assert packing is not ds
    first = next(iter(packing))
    assert type(first["s"]) is PackedStrings and type(first["v"].values) is PackedStrings
    assert type(next(iter(ds))["s"]) is np.ndarray  # the user's pipeline is unchanged
    adapted = tf_elements(ds.as_tf_dataset())
    assert_same_elements(adapted, fi_elements(ds))
    reference = tf.data.experimental.make_batched_features_dataset(features=_features(tf), **args)
    assert_same_elements(adapted, tf_elements(reference))


@pytest.mark.usefixtures("cut_strings_mode")
def test_strings_stay_unpacked_when_a_later_stage_looks_at_them(tf, tmp_path):
    _write_examples(tf, tmp_path / "a.tfrecord", 20)
    ds = fi.make_batched_features_dataset(str(tmp_path / "a.tfrecord"), 8, _features(tf), num_epochs=1, shuffle=False)
    for later in (ds.map(lambda x: {**x, "s2": x["s"]}), ds.filter(lambda x: len(x["s"]) > 0), ds.unbatch()):
        assert with_strings_packed(later) is later
    shuffled = ds.shuffle(4, seed=1, reshuffle_each_iteration=False).take(2).prefetch(1)
    assert with_strings_packed(shuffled) is not shuffled
    assert_same_elements(tf_elements(shuffled.as_tf_dataset()), fi_elements(shuffled))


def test_an_error_reaches_tensorflow_where_it_happened(tf):
    def check(x):
        if x == 3:
            raise ValueError("no threes")
        return x

    it = iter(fi.Dataset.range(6).map(check).batch(1).as_tf_dataset())
    assert [next(it).numpy().tolist() for _ in range(3)] == [[0], [1], [2]]
    with pytest.raises(tf.errors.InvalidArgumentError, match="ValueError: no threes"):
        next(it)
    assert [batch.numpy().tolist() for batch in it] == [[4], [5]]  # as in fastinput: reading goes on after it


# The element spec below is learnt from the placeholder calls (elements 0 and 1) and element 2 breaks it: a map
# that declares output_signature= raises such an element itself (``_engine/declared_output.py``), before the adapter.
@pytest.mark.parametrize("size", [2, SOLO_BYTES], ids=["packed with others", "crossing alone"])
def test_a_dtype_other_than_the_first_elements_is_an_error(tf, size):
    batches = [(np.arange(size, dtype=np.int64), np.arange(2, dtype=np.int64))] * 2 + [
        (np.arange(size, dtype=np.int32), np.arange(2, dtype=np.int64)),
        (np.arange(size, dtype=np.int64), np.arange(2, dtype=np.int64))]
    it = iter(fi.Dataset.range(4).map(lambda i: batches[int(i)]).as_tf_dataset())
    next(it), next(it)
    with pytest.raises(tf.errors.InvalidArgumentError, match="a component is int32; the element spec says int64"):
        next(it)
    assert next(it)[0].dtype == tf.int64  # reading goes on after it


def test_a_shape_other_than_the_spec_is_an_error_in_its_place(tf):
    sizes = [2, 2, 3, 2]
    it = iter(fi.Dataset.range(4).map(lambda i: np.arange(sizes[int(i)])).as_tf_dataset())
    assert [next(it).numpy().tolist() for _ in range(2)] == [[0, 1], [0, 1]]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"shape \[3\], which does not fit the element spec \[2\]"):
        next(it)
    assert next(it).numpy().tolist() == [0, 1]


@pytest.mark.skipif(native_kernel is None, reason="the C extension fastinput.readers._example is not built")
def test_the_parsers_outputs_of_one_dtype_cross_without_being_copied_together(tf):
    def example(i):
        feature = {f"i{k}": tf.train.Feature(int64_list=tf.train.Int64List(value=[i * k, i])) for k in range(3)}
        feature |= {f"s{k}": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"s" * (i + k)])) for k in range(2)}
        feature["x"] = tf.train.Feature(float_list=tf.train.FloatList(value=[i / 2]))
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    features = {f"i{k}": fi.FixedLenFeature([2], "int64") for k in range(3)}
    features |= {f"s{k}": fi.FixedLenFeature([], bytes) for k in range(2)} | {"x": fi.FixedLenFeature([], "float32")}
    parsed = ExampleParser(features)([example(i) for i in range(5)], packed_strings=True)
    ints = [parsed[f"i{k}"] for k in range(3)]
    together = gathered(ints, np.dtype(np.int64))
    assert (np.shares_memory(together, ints[0])
            and together.tolist() == np.concatenate([a.ravel() for a in ints]).tolist())
    reordered = gathered(ints[::-1], np.dtype(np.int64))  # not lying in this order: copied
    assert (not np.shares_memory(reordered, ints[0])
            and reordered.tolist() == np.concatenate([a.ravel() for a in ints[::-1]]).tolist())
    blob, offsets = joined_strings([parsed["s0"], parsed["s1"]])
    assert np.shares_memory(offsets, parsed["s0"].offsets) and blob is parsed["s0"].blob


def test_an_empty_pipeline_is_adapted_and_gives_nothing(tf):
    tf_ds = fi.Dataset.range(0).map(lambda x: {"x": x * 2.0}).as_tf_dataset()
    assert tf_ds.element_spec == {"x": tf.TensorSpec([], tf.float64)}  # numpy: int64 * float is float64
    assert list(tf_ds) == []


@pytest.mark.parametrize("sizes", [(0, 0), (0, 3), (3, 0)], ids=["all empty", "first empty", "last empty"])
def test_components_with_a_zero_size_dimension_cross(tf, sizes):
    """Components of one dtype cross in one buffer (``gathered``), empty ones too (a memoryview of one cannot be
    cast: every element was an error; found by the as_tf_dataset conformance, seed 98)."""
    a, b = (np.arange(4 * size, dtype=np.int8).reshape(4, size) for size in sizes)
    ds = fi.Dataset.from_tensor_slices((a, b, np.zeros((4, 2, 0), np.int8))).batch(3)
    assert_same_elements(tf_elements(ds.as_tf_dataset()), fi_elements(ds))


def test_the_spec_comes_from_element_spec_and_nothing_runs(tf):
    """The issue's case: a map after a batch with a partial last batch; and no element is made before
    TensorFlow iterates (a generator with a signature is not called)."""
    tf_ds = fi.Dataset.range(10).batch(4).map(lambda x: x * 2).as_tf_dataset()
    assert tf_ds.element_spec == tf.TensorSpec([None], tf.int64)
    assert [b.numpy().tolist() for b in tf_ds] == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]
    calls = []

    def gen():
        calls.append(1)
        yield from range(3)

    tf_ds = (fi.Dataset.from_generator(gen, output_signature=fi.TensorSpec([], np.int64)).shuffle(3, seed=1)
             .as_tf_dataset())
    assert not calls and tf_ds.element_spec == tf.TensorSpec([], tf.int64)
    assert sorted(int(x) for x in tf_ds) == [0, 1, 2] and calls == [1]


def test_a_spec_that_cannot_be_learnt_or_used_is_a_clear_error():
    with pytest.raises(fi.errors.InvalidArgumentError, match="pass output_signature"):
        fi.Dataset.from_generator(lambda: iter([1])).as_tf_dataset()
    unknown_rank = fi.Dataset.from_generator(lambda: iter([1]), output_types=np.int64)
    with pytest.raises(fi.errors.InvalidArgumentError, match="unknown rank"):
        unknown_rank.as_tf_dataset()


@pytest.mark.slow
def test_keras_fit_trains_on_a_fastinput_pipeline(tf):
    x, y = _examples(512)
    ds = (fi.Dataset.from_tensor_slices((x, y)).shuffle(512, seed=0).repeat()
          .map(lambda a, b: (a * 1.0, b), num_parallel_calls=2).batch(32).prefetch(2))
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(8, activation="relu"),
                                 tf.keras.layers.Dense(2)])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(ds.as_tf_dataset(), epochs=3, steps_per_epoch=20, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert history.history["accuracy"][-1] > 0.8  # a linearly separable problem


def test_input_fn_shards_by_input_context(tf):
    def input_fn(ctx):
        batch = ctx.get_per_replica_batch_size(8)
        return fi.Dataset.range(40).shard(ctx.num_input_pipelines, ctx.input_pipeline_id).batch(batch)

    wrapped = tf_input_fn(input_fn)
    seen = []
    for pipeline in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        batches = [b.numpy().tolist() for b in wrapped(ctx)]
        assert all(len(b) == 4 for b in batches)
        seen += [v for b in batches for v in b]
    assert sorted(seen) == list(range(40))
    with pytest.raises(fi.errors.InvalidArgumentError, match="must return a fastinput Dataset"):
        tf_input_fn(lambda ctx: [1])(None)


def test_tensorflow_side_prefetch_and_dropping_iterators_mid_stream(tf):
    """TensorFlow's own prefetch threads take elements without Python, so dropping an iterator they are
    filling (holding the GIL, as TensorFlow does) neither hangs nor leaves fastinput threads behind."""
    ds = fi.Dataset.range(10**6).map(lambda x: {"x": np.full(3, x), "s": np.array([b"v%d" % x] * 2, dtype=object)})
    adapted = ds.batch(4).prefetch(2).as_tf_dataset().prefetch(tf.data.AUTOTUNE)
    def threads():  # TensorFlow's own threads that ran Python stay listed as dummies: not ours (nor is the reaper)
        return [t for t in threading.enumerate()
                if not isinstance(t, threading._DummyThread) and t.name != REAPER_THREAD_NAME]

    before = len(threads())
    for _ in range(3):
        it = iter(adapted)
        first = next(it)
        assert first["x"].numpy()[:, 0].tolist() == [0, 1, 2, 3] and first["s"].numpy()[0].tolist() == [b"v0", b"v0"]
        time.sleep(0.05)  # TensorFlow's prefetch is now waiting on the queue, or filling it
        del it
    deadline = time.monotonic() + 10
    while len(threads()) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(threads()) <= before, threads()


def test_the_interpreter_exits_while_tensorflow_holds_an_iterator_mid_stream():
    """Nothing closes the iteration before the interpreter stops: exiting must neither hang nor crash."""
    code = textwrap.dedent("""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import numpy as np
        import fastinput as fi
        ds = fi.Dataset.range(10**6).map(lambda x: {"x": np.full(3, x), "s": np.array([b"v"] * 3, dtype=object)})
        it = iter(ds.batch(8).prefetch(2).as_tf_dataset())
        print(next(it)["x"].shape)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "(8, 3)", result.stderr[-2000:]


@pytest.mark.slow
def test_distribute_datasets_from_function_with_two_replicas():
    """MirroredStrategy over two logical CPUs (set up before TF starts, hence a fresh process)."""
    code = textwrap.dedent("""
        import os
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import fastinput as fi
        from fastinput.tf_adapter import tf_input_fn

        def input_fn(ctx):
            return (fi.Dataset.range(64).shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
                    .batch(ctx.get_per_replica_batch_size(16)))

        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        dist = strategy.distribute_datasets_from_function(tf_input_fn(input_fn))
        seen = []
        for per_replica in dist:
            for value in strategy.experimental_local_results(per_replica):
                seen += value.numpy().tolist()
        print(sorted(seen) == list(range(64)), strategy.num_replicas_in_sync)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert result.stdout.split()[-2:] == ["True", "2"], result.stderr[-2000:]


def test_dropping_tensorflow_iterators_mid_stream_does_not_hang(tf):
    """Keras drops an epoch's iterator part-way; TensorFlow destroys it holding the GIL."""
    import gc
    import threading

    def slow(x):
        threading.Event().wait(0.001)
        return x

    tf_ds = fi.Dataset.range(10**6).map(slow, num_parallel_calls=2).batch(4).prefetch(2).as_tf_dataset()
    for _ in range(5):
        it = iter(tf_ds)
        next(it)
        del it
        gc.collect()

    @tf.function
    def consume(iterator):
        for _ in tf.range(3):
            next(iterator)

    for _ in range(3):
        it = iter(tf_ds)
        consume(it)
        del it
        gc.collect()
    # TensorFlow's own threads that ran Python stay registered ("Dummy-N"); every fastinput thread must be gone
    deadline = time.monotonic() + 10
    while fastinput_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not fastinput_threads()


def _run_child(code, cwd, timeout=120):
    """Run ``code`` in a fresh interpreter (this checkout's fastinput first on its path); its result."""
    env = {**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(cwd)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _checkout():
    from pathlib import Path

    return Path(fi.__file__).resolve().parent.parent


@pytest.mark.slow
def test_keras_evaluate_on_a_finite_parsed_pipeline_with_a_partial_last_batch_then_exits(tf, tmp_path):
    """The issue's case: make_batched_features_dataset(num_epochs=1) and a map, 50 rows in batches of 16."""
    path = tmp_path / "a.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(50):
            feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=[i / 50, 1 - i / 50])),
                       "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    result = _run_child(f"""
        import numpy as np, tensorflow as tf, fastinput as fi
        features = {{"x": fi.FixedLenFeature([2], np.float32), "y": fi.FixedLenFeature([], np.int64)}}
        ds = fi.make_batched_features_dataset({str(path)!r}, 16, features, label_key="y", num_epochs=1, shuffle=False)
        ds = ds.map(lambda f, y: (f["x"] * 2, y))
        model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(2)])
        model.compile(loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        adapted = ds.as_tf_dataset()
        print(adapted.element_spec[0].shape.as_list(), len(model.evaluate(adapted, verbose=0)))
    """, _checkout())
    assert result.returncode == 0 and result.stdout.split("\n")[-2] == "[None, 2] 2", result.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("error", ["truncated file", "shape"])
def test_an_uncaught_error_read_through_tensorflow_ends_the_process(tmp_path, error):
    """Issue 14, defect 7: the error ends the script, which must not hang at exit (it did, most runs, when a
    TensorFlow thread waited on a feed whose thread the shutting interpreter had stopped)."""
    path = tmp_path / "a.tfrecord"
    if error == "truncated file":
        code = f"""
            import tensorflow as tf, fastinput as fi
            with tf.io.TFRecordWriter({str(path)!r}) as writer:
                for i in range(10):
                    writer.write(b"x" * 100)
            data = open({str(path)!r}, "rb").read()
            open({str(path)!r}, "wb").write(data[:-50])
            for batch in fi.TFRecordDataset({str(path)!r}).batch(2).as_tf_dataset().prefetch(2):
                pass
        """
        expected = "DataLossError"
    else:
        code = """
            import numpy as np, fastinput as fi
            sizes = [4, 4, 3] * 1000
            ds = fi.Dataset.range(3000).map(lambda i: np.zeros(sizes[int(i)]),
                                            output_signature=fi.TensorSpec([4], np.float64))
            for batch in ds.as_tf_dataset():
                pass
        """
        expected = "not its declared output_signature"  # the map's own check (_engine/declared_output.py)
    for _ in range(3):
        result = _run_child(code, _checkout())
        assert result.returncode == 1 and expected in result.stderr, result.stderr[-3000:]
