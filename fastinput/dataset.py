"""``fi.Dataset``: an immutable, lazy description of a pipeline, built by method chaining.

Every method returns a new Dataset node whose inputs are the nodes it was
built from; nothing runs until ``iter(ds)`` builds the tree of iterators
(``fastinput._engine.iterator``). Names and semantics follow ``tf.data.Dataset`` so
that switching is a change of import. Each transformation lives in its own
module under ``fastinput/ops``; this class forwards to them,
and the op constructors check their arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fastinput._engine.arguments import AUTOTUNE
from fastinput._engine.cardinality import UNKNOWN_CARDINALITY
from fastinput._engine.iterator import DatasetIterator, Iterator, IteratorContext
from fastinput._engine.row_slices import RowLayout
from fastinput._engine.traits import UNKNOWN, StageTraits
from fastinput.options import Options


class _ZipMethod:
    """``Dataset.zip(a, b)`` zips its arguments; ``ds.zip(b)`` zips ``ds`` with ``b``."""

    def __get__(self, instance: Dataset | None, owner: type) -> Callable[..., Dataset]:
        from fastinput.ops.zip import zip_datasets

        if instance is None:
            return zip_datasets

        def zip_with(*others: Any) -> Dataset:
            return zip_datasets(instance, *others)

        return zip_with


class Dataset:
    """A pipeline description. Iterate it (``for x in ds``) to run it.

    >>> import fastinput as fi
    >>> ds = fi.Dataset.range(8).map(lambda x: x * 2).batch(4)
    >>> [b.tolist() for b in ds]
    [[0, 2, 4, 6], [8, 10, 12, 14]]
    """

    traits: StageTraits = UNKNOWN
    """What kind of stage this node is and what it does with its input's elements (see
    ``fastinput._engine.traits``): each subclass declares its own; the TF adapter, the profiler and the static
    rewrites read it."""

    def __init__(self, inputs: Sequence[Dataset] = ()) -> None:
        self.inputs: tuple[Dataset, ...] = tuple(inputs)
        """The nodes this one reads from (none for a source)."""

    # -- what subclasses provide (the extension point: see ``fastinput.extension``) ----------
    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        """A new running iterator of this stage, reading from ``input.make_iterator(ctx)`` of each of ``inputs``."""
        raise NotImplementedError(f"{type(self).__name__} does not say how to run it (define make_iterator)")

    def __str__(self) -> str:
        """How the stage reads in errors, stats and traces: like the call that made it (``map(parse)``)."""
        return type(self).__name__

    def own_options(self) -> Options | None:
        """Options this node sets for the whole pipeline (``with_options``); None for most nodes."""
        return None

    def records_when_read(self) -> bool:
        """Whether reading this pipeline now does more than hand on its elements: a node of it (this one or one
        upstream) is a ``cache`` or ``snapshot`` that would record, keeping its record (without the input's errors,
        which a replay leaves out) only if its input is read to the end. A stage that reads its inputs ahead of what
        its consumer asks (a mix's per-input buffers) must then read such an input no further than tf.data would,
        or a record tf.data leaves partial (discarded, recomputed with its errors next time) would be completed.
        Datasets a function makes while running (``interleave``'s) are not seen. Recording nodes override this."""
        return any(dataset.records_when_read() for dataset in self.inputs)

    def row_layout(self) -> RowLayout | None:
        """How this dataset's iterators hand on runs of elements as arrays (``get_next_rows``), for a ``batch`` or
        a mix to join or gather them; None (the default) where they hand on elements only
        (``fastinput._engine.row_slices``)."""
        return None

    def compute_element_spec(self) -> Any:
        """This stage's element spec, derived from its inputs' (see ``element_spec``); a stage whose traits say
        ``keeps_spec`` need not define it."""
        if self.traits.keeps_spec:
            return self.inputs[0].element_spec
        raise NotImplementedError(f"{type(self).__name__} does not say what its elements look like")

    # -- what the elements look like ------------------------------------------
    @property
    def element_spec(self) -> Any:
        """What every element looks like, without running the pipeline: a nest shaped like the elements of
        ``fi.TensorSpec(shape, dtype)`` / ``fi.SparseSpec`` leaves, ``None`` for unknown dimensions.

        Derived op by op, as tf.data does; a ``map``'s output spec is learnt by calling its function on
        placeholder elements (see ``fastinput._engine.function_spec``), or declared with ``output_signature=``.
        Raises ``InvalidArgumentError`` (``fastinput.spec.UnknownSpecError``) where it cannot be learnt.

        >>> import fastinput as fi
        >>> fi.Dataset.range(10).batch(4, drop_remainder=True).element_spec
        TensorSpec(shape=(4,), dtype=int64)
        """
        from fastinput.errors import InvalidArgumentError

        cached = self.__dict__.get("_spec_cache")
        if cached is None:
            try:
                cached = (True, self.compute_element_spec())
            except InvalidArgumentError as exc:
                cached = (False, exc.with_traceback(None))
            self._spec_cache = cached
        known, value = cached
        if not known:
            raise value.with_traceback(None)
        return value

    def cardinality(self) -> int:
        """How many elements this dataset has, known without running it: tf.data's rule for this stage applied to
        its inputs' counts. ``fi.INFINITE_CARDINALITY`` (-1) for a dataset that never ends,
        ``fi.UNKNOWN_CARDINALITY`` (-2) where only running it would tell (a filter, a file reader, a stage that
        states no rule: each Dataset class states its own by overriding this method).

        >>> import fastinput as fi
        >>> fi.Dataset.range(10).batch(4).cardinality(), fi.Dataset.range(3).repeat().cardinality()
        (3, -1)
        """
        return UNKNOWN_CARDINALITY

    def _checked(self) -> Dataset:
        """This node, once its element spec is derived: the checks tf.data makes while building (structures
        that do not fit, a function returning None) fail here. A spec that cannot be learnt is no error here."""
        from fastinput.spec import UnknownSpecError, checking_while_building

        if not checking_while_building():
            return self
        try:
            _ = self.element_spec
        except UnknownSpecError:
            pass
        return self

    # -- running ------------------------------------------------------------
    def __iter__(self) -> Iterator:
        from fastinput.fused_ops.rewrites import optimize

        ctx = IteratorContext(self.options())
        options = ctx.options
        it = Iterator(optimize(self, options).make_iterator(ctx))
        # The tuner turns AUTOTUNE knobs; with an explicit RAM budget it also keeps every other buffer within it.
        budget_set = options.autotune.ram_budget is not None
        if options.autotune.enabled and any(k.autotuned or (budget_set and k.shrinkable) for k in it.knobs()):
            # the façade wires the tuner in: the engine imports no tuner
            from fastinput.autotune.tuner import Tuner

            it.attach_tuner(functools.partial(Tuner, options=options.autotune))
        return it

    def as_numpy_iterator(self) -> Iterator:
        """Same as ``iter(ds)`` (elements already are numpy values); kept for tf.data users."""
        return iter(self)

    def options(self) -> Options:
        """The options in force for this pipeline: every ``with_options`` upstream, later ones winning."""
        merged = Options()
        for node in self._upstream_first():
            own = node.own_options()
            if own is not None:
                merged = merged.merge(own)
        return merged

    def _upstream_first(self) -> Iterable[Dataset]:
        for child in self.inputs:
            yield from child._upstream_first()
        yield self

    def __repr__(self) -> str:
        chain = " -> ".join(str(node) for node in self._upstream_first())
        return f"<fastinput.Dataset {chain}>"

    # -- sources --------------------------------------------------------------
    @staticmethod
    def range(*args: int, output_type: Any = None) -> Dataset:
        """``range(stop)``, ``range(start, stop[, step])`` as int64 scalars, like Python's range."""
        from fastinput.ops.sources import RangeDataset

        return RangeDataset(*args, output_type=output_type)

    @staticmethod
    def from_tensor_slices(tensors: Any) -> Dataset:
        """One element per row of the array(s) in ``tensors`` (an array, or a tuple/dict of equally long arrays)."""
        from fastinput.ops.sources import TensorSlicesDataset

        return TensorSlicesDataset(tensors)

    @staticmethod
    def from_tensors(tensors: Any) -> Dataset:
        """A dataset of exactly one element, ``tensors``."""
        from fastinput.ops.sources import TensorSlicesDataset

        return TensorSlicesDataset(tensors, single=True)

    @staticmethod
    def from_generator(
        generator: Callable[..., Iterable[Any]],
        output_types: Any = None,
        output_shapes: Any = None,
        args: Sequence[Any] | None = None,
        output_signature: Any = None,
    ) -> Dataset:
        """Elements from ``generator(*args)``, called anew for each iteration.

        A saved iterator (``Iterator.get_state``) is restored by calling ``generator(*args)`` again and skipping
        the elements already handed out: that needs a generator that yields the same sequence on every call.
        """
        from fastinput.ops.sources import GeneratorDataset

        return GeneratorDataset(generator, output_types, output_shapes, args, output_signature)

    @staticmethod
    def list_files(
        file_pattern: str | Sequence[str], shuffle: bool | None = None, seed: int | None = None,
        storage_options: dict | None = None,
    ) -> Dataset:
        """The files matching a glob pattern (or list of patterns), local or remote (``s3://``, ``gs://``, any
        fsspec URL).

        Shuffled by default, as in tf.data; ``shuffle=False`` gives sorted names.
        """
        from fastinput.readers.files import list_files

        return list_files(file_pattern, shuffle=shuffle, seed=seed, storage_options=storage_options)

    zip = _ZipMethod()

    @staticmethod
    def sample_from_datasets(datasets: Sequence[Dataset], weights: Sequence[float] | Dataset | None = None,
                             seed: int | None = None, stop_on_empty_dataset: bool = False,
                             rerandomize_each_iteration: bool | None = None) -> Dataset:
        """Each element from one of ``datasets``, drawn at random with ``weights`` (equal if None; or a Dataset of
        weight vectors, one per element): how training runs mix their sources.

        With ``stop_on_empty_dataset`` the first input to end ends the mix; else an input that ends is left out
        and the others drawn from in proportion. A ``seed`` gives the same sequence every run (each epoch too,
        unless ``rerandomize_each_iteration``); the draws are fastinput's own, not TensorFlow's random bits.

        >>> import fastinput as fi
        >>> ds = fi.Dataset.sample_from_datasets([fi.Dataset.range(3), fi.Dataset.range(10, 13)], seed=1)
        >>> sorted(int(x) for x in ds)
        [0, 1, 2, 10, 11, 12]
        """
        from fastinput.ops.mixing import SampleFromDatasetsDataset

        return SampleFromDatasetsDataset(datasets, weights, seed, stop_on_empty_dataset,
                                         rerandomize_each_iteration)._checked()

    @staticmethod
    def choose_from_datasets(datasets: Sequence[Dataset], choice_dataset: Dataset,
                             stop_on_empty_dataset: bool = True) -> Dataset:
        """Each element from the input of ``datasets`` that the next element of ``choice_dataset`` (int64 scalars)
        names; with ``stop_on_empty_dataset`` (the default) the first input to end where chosen ends it all.

        >>> import fastinput as fi, numpy as np
        >>> choices = fi.Dataset.from_tensor_slices(np.array([0, 1, 1, 0]))
        >>> [int(x) for x in fi.Dataset.choose_from_datasets([fi.Dataset.range(2), fi.Dataset.range(5, 7)], choices)]
        [0, 5, 6, 1]
        """
        from fastinput.ops.mixing import ChooseFromDatasetsDataset

        return ChooseFromDatasetsDataset(datasets, choice_dataset, stop_on_empty_dataset)._checked()

    def save(self, path: str, compression: str | None = None, shard_func: Callable | None = None,
             checkpoint_args: Any = None) -> None:
        """Run this dataset and write its elements into the folder ``path`` (``fi.Dataset.load`` reads them back).

        fastinput's own format (not tf.data's): shard files of TFRecord-framed, CRC-checked chunks of elements and
        a metadata file written last, so a save that fails or is interrupted leaves the folder as it was.
        ``compression``: None or ``"GZIP"``. ``shard_func(element)`` -> int64 picks each element's shard file
        (by default chunks go round robin over a few files and load gives them back in order).

        >>> import fastinput as fi, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> fi.Dataset.range(5).map(lambda x: {"x": x, "y": x * 1.5}).save(folder)
        >>> [int(e["x"]) for e in fi.Dataset.load(folder)]
        [0, 1, 2, 3, 4]
        """
        from fastinput.ops.load import save_dataset

        save_dataset(self, path, compression, shard_func, checkpoint_args)

    @staticmethod
    def load(path: str, element_spec: Any = None, compression: str | None = None,
             reader_func: Callable[[Dataset], Dataset] | None = None, wait: bool = False) -> Dataset:
        """The dataset ``save`` wrote in the folder ``path``, elements in their saved order.

        ``element_spec`` defaults to the saved one; ``reader_func(datasets)``, given a dataset of the shard
        datasets, returns the pipeline that reads them (tf.data's default interleaves them). Folders tf.data's
        ``save`` wrote are read too (numbers and strings; not its sparse or ragged components). A folder without a
        finished save raises ``NotFoundError``; a damaged shard file ``DataLossError`` naming it. ``wait`` (for
        tf.data's distributed saves) is accepted and ignored.
        """
        from fastinput.ops.load import LoadDataset

        return LoadDataset(path, element_spec, compression, reader_func)

    def fingerprint(self) -> Any:
        """A 64-bit digest (``np.uint64``) of this pipeline, as tf.data's ``fingerprint``: two pipelines with the
        same one give the same elements (while their files and random draws do). It digests each stage's
        description and arguments, its functions' code and the numbers, strings and arrays that code reads
        (closures, defaults, globals); see ``fastinput._engine.fingerprint``. ``snapshot`` names its folder after
        it.

        >>> import fastinput as fi
        >>> fi.Dataset.range(3).fingerprint() == fi.Dataset.range(3).fingerprint()
        np.True_
        >>> fi.Dataset.range(3).fingerprint() == fi.Dataset.range(4).fingerprint()
        np.False_
        """
        import numpy as np

        from fastinput._engine.fingerprint import fingerprint

        return np.uint64(int(fingerprint(self)[:16], 16))

    def snapshot(self, path: str, compression: str | None = "AUTO", reader_func: Callable | None = None,
                 shard_func: Callable | None = None, name: str | None = None) -> Dataset:
        """Write this dataset's elements under ``path`` the first time it is run to its end; later runs read them
        back instead of running it (a preprocessed epoch, reused).

        As in tf.data, a snapshot is keyed by the pipeline's ``fingerprint()`` (its stages, their functions' code
        and the values that code reads), so a changed pipeline writes a new one, and one that did not finish is
        never read. Files are ``save``'s format; ``compression="AUTO"`` writes them uncompressed. ``name`` is
        accepted and ignored.
        """
        from fastinput.ops.snapshot import SnapshotDataset

        return SnapshotDataset(self, path, compression, reader_func, shard_func)

    # -- transformations -----------------------------------------------------
    def map(self, map_func: Callable, num_parallel_calls: int | None = None, deterministic: bool | None = None,
            output_signature: Any = None, workers: str = "thread") -> Dataset:
        """Apply ``map_func`` to every element (tuples are unpacked into arguments).

        ``num_parallel_calls`` runs it on that many workers (``fi.AUTOTUNE``: let fastinput choose).
        The output spec is learnt by calling ``map_func`` twice on placeholder elements while building (as
        tf.data traces it); ``output_signature`` (a nest of ``fi.TensorSpec``) declares it instead, and then an
        output of another structure, dtype or shape (nothing is cast) raises ``InvalidArgumentError`` in its
        element's place, as tf.data does for a ``tf.numpy_function`` output that breaks its declared ``Tout``.

        ``workers="process"`` runs ``map_func`` in worker processes instead of threads: for Python code that holds
        the GIL (PIL, pure-Python loops, tokenizers), which threads run one at a time. The function travels by
        cloudpickle (lambdas and closures work; one that cannot be pickled is an error here), results come back
        through shared memory, and order, errors and saved state are the threads'. A process costs a fresh
        interpreter at the first element and a round trip per work item: for numpy or fastinput kernels, which
        release the GIL, threads are faster.
        """
        from fastinput.ops.map import MapDataset

        mapped = MapDataset(self, map_func, num_parallel_calls, deterministic, output_signature=output_signature,
                            workers=workers)
        return mapped._checked()

    def filter(self, predicate: Callable) -> Dataset:
        """Keep the elements for which ``predicate`` returns True."""
        from fastinput.ops.filter import FilterDataset

        return FilterDataset(self, predicate)._checked()

    def rejection_resample(self, class_func: Callable, target_dist: Any, initial_dist: Any = None,
                           seed: int | None = None, name: str | None = None) -> Dataset:
        """``(class_func(element), element)`` pairs, resampled so that the classes (ints in
        ``[0, len(target_dist))``) come in the shares ``target_dist``, as tf.data's ``rejection_resample``: elements
        are dropped, or taken twice, at random. ``initial_dist`` (the input's shares) is estimated as the input
        streams when not given. ``seed`` gives the same elements every run (fastinput's random numbers, not
        tf.data's); ``name`` is accepted and ignored. See ``fastinput.ops.rejection_resample``.

        >>> import fastinput as fi
        >>> ds = fi.Dataset.range(1000).map(lambda x: x % 4 // 3)  # classes 0, 0, 0, 1, ...
        >>> pairs = list(ds.rejection_resample(lambda x: x, [0.5, 0.5], initial_dist=[0.75, 0.25], seed=1))
        >>> bool(0.4 < np.mean([int(label) for label, _ in pairs]) < 0.6)
        True
        """
        from fastinput.ops.rejection_resample import rejection_resample

        return rejection_resample(self, class_func, target_dist, initial_dist, seed)

    def batch(self, batch_size: int, drop_remainder: bool = False, num_parallel_calls: int | None = None,
              deterministic: bool | None = None) -> Dataset:
        """Stack ``batch_size`` consecutive elements leaf by leaf; the last batch may be smaller unless
        ``drop_remainder``.

        ``num_parallel_calls`` and ``deterministic`` are checked and accepted for tf.data's signature; stacking
        is a copy that runs at memory speed in the consumer's thread, so batches are always made in order.

        An input error is raised in place of the batch it falls in, as in tf.data: after a ``map`` (which
        tf.data fuses into ``map_and_batch``) that batch's ``batch_size`` positions are used up and their
        elements dropped; after anything else the elements gathered before the error are dropped and the
        next batch starts after it.
        """
        from fastinput.ops.batch import BatchDataset

        return BatchDataset(self, batch_size, drop_remainder, num_parallel_calls, deterministic)

    def padded_batch(self, batch_size: int, padded_shapes: Any = None, padding_values: Any = None,
                     drop_remainder: bool = False) -> Dataset:
        """Like ``batch``, padding each leaf to the largest shape in the batch (or to ``padded_shapes``)."""
        from fastinput.ops.batch import PaddedBatchDataset

        return PaddedBatchDataset(self, batch_size, padded_shapes, padding_values, drop_remainder)._checked()

    def map_and_batch(self, map_func: Callable, batch_size: int, num_parallel_calls: int | None = AUTOTUNE,
                      drop_remainder: bool = False, deterministic: bool | None = None,
                      output_signature: Any = None, workers: str = "thread") -> Dataset:
        """``map`` then ``batch``, fused: workers write outputs straight into preallocated batches.

        A ``map_func`` with an ``out=`` keyword receives its row of the batch to fill in place. As in
        tf.data, a batch whose ``batch_size`` input elements meet an error is dropped and its first error raised.
        ``output_signature`` declares the spec of ``map_func``'s output for one element (see ``map``).
        ``workers="process"``: as ``map``'s; the processes write each batch straight into shared memory, which
        the consumer receives without a copy.

        >>> import fastinput as fi
        >>> [b.tolist() for b in fi.Dataset.range(5).map_and_batch(lambda x: x * 10, 2)]
        [[0, 10], [20, 30], [40]]
        """
        from fastinput.fused_ops.map_and_batch import MapAndBatchDataset

        return MapAndBatchDataset(self, map_func, batch_size, num_parallel_calls, drop_remainder, deterministic,
                                  output_signature=output_signature, workers=workers)._checked()

    def unbatch(self) -> Dataset:
        """Split each element along its first dimension into separate elements."""
        from fastinput.ops.unbatch import UnbatchDataset

        return UnbatchDataset(self)._checked()

    # -- the batching family: rebatch, ragged_batch, sparse_batch, group_by_window, bucket_by_sequence_length --
    def rebatch(self, batch_size: int | Sequence[int], drop_remainder: bool = False,
                name: str | None = None) -> Dataset:
        """Cut the batches of this (batched) dataset into batches of ``batch_size`` rows, as
        ``unbatch().batch(batch_size)`` would; a list of sizes is taken in turn. ``name`` is accepted and ignored.

        >>> import fastinput as fi
        >>> [b.tolist() for b in fi.Dataset.range(7).batch(3).rebatch([1, 2])]
        [[0], [1, 2], [3], [4, 5], [6]]
        """
        from fastinput.ops.rebatch import RebatchDataset

        return RebatchDataset(self, batch_size, drop_remainder)._checked()

    def ragged_batch(self, batch_size: int, drop_remainder: bool = False, row_splits_dtype: Any = "int64",
                     name: str | None = None) -> Dataset:
        """Like ``batch``, but components whose first dimension varies (unknown in the element spec) become
        ``fi.RaggedArray``\\ s, as tf.data makes ``tf.RaggedTensor``\\ s. ``name`` is accepted and ignored.

        >>> import fastinput as fi
        >>> ds = fi.Dataset.range(4).map(lambda n: np.arange(n)).ragged_batch(2)
        >>> [b.to_list() for b in ds]
        [[[], [0]], [[0, 1], [0, 1, 2]]]
        """
        from fastinput.ops.ragged_batch import RaggedBatchDataset

        return RaggedBatchDataset(self, batch_size, drop_remainder, row_splits_dtype)._checked()

    def sparse_batch(self, batch_size: int, row_shape: Any, name: str | None = None) -> Dataset:
        """Batch elements of varying shape (each one dense tensor) into ``fi.SparseArray``\\ s of dense shape
        ``[n, *row_shape]`` holding every value, as tf.data's ``sparse_batch``; a ``None`` dimension of
        ``row_shape`` is the batch's largest. ``name`` is accepted and ignored.

        >>> import fastinput as fi
        >>> batch = next(iter(fi.Dataset.range(4).map(lambda n: np.arange(n)).sparse_batch(3, [4])))
        >>> batch.to_dense().tolist()
        [[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]]
        >>> batch.indices.tolist()
        [[1, 0], [2, 0], [2, 1]]
        """
        from fastinput.ops.sparse_batch import SparseBatchDataset

        return SparseBatchDataset(self, batch_size, row_shape)._checked()

    def group_by_window(self, key_func: Callable, reduce_func: Callable[[Any, Dataset], Dataset],
                        window_size: int | None = None, window_size_func: Callable | None = None,
                        name: str | None = None) -> Dataset:
        """Group elements by ``key_func(element)`` (an integer); each time a group holds ``window_size`` elements
        (or ``window_size_func(key)``), hand ``reduce_func(key, window)`` its elements as a Dataset and yield the
        elements of the Dataset it returns. At the end the unfinished groups go the same way, smallest key first.

        >>> import fastinput as fi
        >>> ds = fi.Dataset.range(7).group_by_window(lambda x: x % 2, lambda key, w: w.batch(2), window_size=2)
        >>> [b.tolist() for b in ds]
        [[0, 2], [1, 3], [4, 6], [5]]
        """
        from fastinput.ops.group_by_window import GroupByWindowDataset

        return GroupByWindowDataset(self, key_func, reduce_func, window_size, window_size_func)._checked()

    def bucket_by_sequence_length(self, element_length_func: Callable, bucket_boundaries: Sequence[int],
                                  bucket_batch_sizes: Sequence[int], padded_shapes: Any = None,
                                  padding_values: Any = None, pad_to_bucket_boundary: bool = False,
                                  no_padding: bool = False, drop_remainder: bool = False,
                                  name: str | None = None) -> Dataset:
        """Batch elements of similar length together: each goes to the bucket its ``element_length_func`` length
        falls in (``bucket_boundaries`` split the lengths), and a bucket full with its ``bucket_batch_sizes`` entry
        becomes a padded batch (as ``padded_batch``; ``no_padding``: a plain batch). What the buckets hold at the
        end comes out last, smallest bucket first. ``name`` is accepted and ignored.

        >>> import fastinput as fi
        >>> ds = fi.Dataset.range(1, 6).map(lambda n: np.arange(n))
        >>> [b.tolist() for b in ds.bucket_by_sequence_length(len, [3], [2, 2])]
        [[[0, 0], [0, 1]], [[0, 1, 2, 0], [0, 1, 2, 3]], [[0, 1, 2, 3, 4]]]
        """
        from fastinput.ops.bucket import BucketBySequenceLengthDataset

        return BucketBySequenceLengthDataset(self, element_length_func, bucket_boundaries, bucket_batch_sizes,
                                             padded_shapes, padding_values, pad_to_bucket_boundary, no_padding,
                                             drop_remainder)._checked()

    def shuffle(self, buffer_size: int, seed: int | None = None, reshuffle_each_iteration: bool = True) -> Dataset:
        """Shuffle with a buffer of ``buffer_size`` elements, as tf.data does."""
        from fastinput.ops.shuffle import ShuffleDataset

        return ShuffleDataset(self, buffer_size, seed, reshuffle_each_iteration)

    def repeat(self, count: int | None = None) -> Dataset:
        """Repeat the dataset ``count`` times (``None`` or -1: forever)."""
        from fastinput.ops.repeat import RepeatDataset

        return RepeatDataset(self, count)

    def take(self, count: int) -> Dataset:
        """The first ``count`` elements (-1: all)."""
        from fastinput.ops.slicing import TakeDataset

        return TakeDataset(self, count)

    def skip(self, count: int) -> Dataset:
        """All but the first ``count`` elements (-1: skip everything)."""
        from fastinput.ops.slicing import SkipDataset

        return SkipDataset(self, count)

    def shard(self, num_shards: int, index: int) -> Dataset:
        """Every ``num_shards``-th element, starting at ``index`` (for one worker of many)."""
        from fastinput.ops.slicing import ShardDataset

        return ShardDataset(self, num_shards, index)

    def enumerate(self, start: int = 0) -> Dataset:
        """Pairs ``(index, element)``, index counting from ``start``."""
        from fastinput.ops.zip import zip_datasets

        return zip_datasets(Dataset.range(start, 2**63 - 1), self)

    def concatenate(self, dataset: Dataset) -> Dataset:
        """The elements of this dataset followed by those of ``dataset``."""
        from fastinput.ops.concatenate import ConcatenateDataset

        return ConcatenateDataset(self, dataset)._checked()

    def interleave(self, map_func: Callable[..., Dataset], cycle_length: int | None = AUTOTUNE, block_length: int = 1,
                   num_parallel_calls: int | None = None, deterministic: bool | None = None) -> Dataset:
        """Map each element to a dataset and interleave their elements, ``block_length`` at a time from
        ``cycle_length`` datasets; with ``num_parallel_calls`` the datasets are read on worker threads."""
        from fastinput.ops.interleave import InterleaveDataset

        interleaved = InterleaveDataset(self, map_func, cycle_length, block_length, num_parallel_calls, deterministic)
        return interleaved._checked()

    def flat_map(self, map_func: Callable[..., Dataset]) -> Dataset:
        """Map each element to a dataset and chain their elements in order."""
        return self.interleave(map_func, cycle_length=1, block_length=1)

    def prefetch(self, buffer_size: int | None = AUTOTUNE) -> Dataset:
        """Produce up to ``buffer_size`` elements ahead on a background thread (``None``: ``fi.AUTOTUNE``, as in
        tf.data)."""
        from fastinput.ops.prefetch import PrefetchDataset

        return PrefetchDataset(self, buffer_size)

    def prefetch_to_device(self, device: Any, buffer_size: int | None = AUTOTUNE) -> Dataset:
        """Copy the next ``buffer_size`` elements to ``device`` on a background thread, ahead of the step.

        ``device``: a TensorFlow device string (``"/gpu:0"``), a PyTorch device (``"cuda:0"``,
        ``torch.device``) or a ``jax.Device``; elements come out as that framework's tensors.
        See ``fastinput.device``.
        """
        from fastinput.device import DevicePrefetchDataset

        return DevicePrefetchDataset(self, device, buffer_size)

    def distribute(self, num_workers: int, processing_mode: str = "parallel_epochs", address: str | None = None,
                   worker_resources: dict[str, Any] | None = None, job_name: str | None = None) -> Dataset:
        """Run everything upstream on ``num_workers`` Ray actors and stream their elements here, as tf.data service
        does (needs ``pip install 'fastinput[ray]'``; see the README's "Beyond one machine").

        ``processing_mode``: ``"parallel_epochs"`` (each worker runs the whole pipeline) or ``"distributed_epoch"``
        (the source's files or positions are handed out in splits, so each element is made once). ``address``: a
        ``ray.init`` address (None: ``RAY_ADDRESS``, else a local cluster). ``worker_resources``: Ray actor options
        per worker (``{"num_cpus": 4}``). ``job_name``: consumers naming one job share its workers.
        The pipeline is pickled (cloudpickle) now: one that cannot be raises ``InvalidArgumentError`` here.

        For example, 4 workers making batches of a large set of files, each file read by one of them::

            ds = (fi.Dataset.list_files("/data/train-*.tfrecord").interleave(fi.TFRecordDataset)
                  .map(parse).batch(256).distribute(4, processing_mode="distributed_epoch"))
        """
        from fastinput.distribute.stage import DistributeDataset

        return DistributeDataset(self, num_workers, processing_mode, address, worker_resources, job_name)

    def as_tf_dataset(self) -> Any:
        """This pipeline as a ``tf.data.Dataset`` (for Keras ``model.fit``, ``tf.distribute``), run by fastinput.

        Its ``element_spec`` is this pipeline's ``element_spec`` (nothing runs to learn it); sparse leaves
        become ``tf.SparseTensor``.
        """
        from fastinput.tf_adapter import as_tf_dataset

        return as_tf_dataset(self)

    def cache(self, filename: str = "") -> Dataset:
        """Keep the elements of the first complete iteration in memory (``""``) or in a file, and replay them.

        A saved iterator restored while no complete cache exists (a new process, say) reads its input again from
        the start, recording it, and hands elements on from where it was saved.
        """
        from fastinput.ops.cache import CacheDataset

        return CacheDataset(self, filename)

    # -- the rest of tf.data's surface (issue 19): windows, scans, reductions, endless sources -----------
    def window(self, size: int, shift: int | None = None, stride: int = 1, drop_remainder: bool = False,
               name: str | None = None) -> Dataset:
        """Windows of ``size`` elements, a new one every ``shift`` (default ``size``) elements, taking every
        ``stride``-th; the last ones shorter unless ``drop_remainder``. Each window is a nest shaped like the
        elements whose leaves are small finite datasets, as in tf.data (``name`` is ignored).

        >>> import fastinput as fi
        >>> windows = fi.Dataset.range(5).window(3, shift=2).flat_map(lambda w: w.batch(3))
        >>> [w.tolist() for w in windows]
        [[0, 1, 2], [2, 3, 4], [4]]
        """
        from fastinput.ops.window import WindowDataset

        return WindowDataset(self, size, shift, stride, drop_remainder)._checked()

    def scan(self, initial_state: Any, scan_func: Callable, name: str | None = None) -> Dataset:
        """A map that carries a state: ``scan_func(state, element)`` returns ``(new_state, output)``; the new state
        keeps the initial state's structure and dtypes (``name`` is ignored).

        >>> import fastinput as fi, numpy as np
        >>> [int(x) for x in fi.Dataset.range(5).scan(np.int64(0), lambda s, x: (s + x, s + x))]
        [0, 1, 3, 6, 10]
        """
        from fastinput.ops.scan import ScanDataset

        return ScanDataset(self, initial_state, scan_func)._checked()

    def reduce(self, initial_state: Any, reduce_func: Callable, name: str | None = None) -> Any:
        """Run the pipeline and fold its elements: ``reduce_func(state, element)`` returns the new state; returns
        the last state (a value, not a Dataset; ``name`` is ignored).

        >>> import fastinput as fi, numpy as np
        >>> int(fi.Dataset.range(5).reduce(np.int64(0), lambda s, x: s + x))
        10
        """
        from fastinput.ops.scan import reduce_dataset

        return reduce_dataset(self, initial_state, reduce_func)

    def get_single_element(self, name: str | None = None) -> Any:
        """Run the pipeline and return its one element; ``InvalidArgumentError`` if it has none or more than one.

        >>> import fastinput as fi
        >>> int(fi.Dataset.range(5).skip(4).get_single_element())
        4
        """
        from fastinput.ops.scan import single_element

        return single_element(self)

    def unique(self, name: str | None = None) -> Dataset:
        """Each distinct element once, in order of first appearance; elements must be single int32, int64 or
        string tensors, as in tf.data (``name`` is ignored).

        >>> import fastinput as fi
        >>> [int(x) for x in fi.Dataset.from_tensor_slices([1, 2, 1, 3, 2]).unique()]
        [1, 2, 3]
        """
        from fastinput.ops.unique import UniqueDataset

        return UniqueDataset(self)._checked()

    def take_while(self, predicate: Callable, name: str | None = None) -> Dataset:
        """The elements up to (not including) the first one for which ``predicate`` is False.

        >>> import fastinput as fi
        >>> [int(x) for x in fi.Dataset.range(10).take_while(lambda x: x < 3)]
        [0, 1, 2]
        """
        from fastinput.ops.take_while import TakeWhileDataset

        return TakeWhileDataset(self, predicate)._checked()

    def ignore_errors(self, log_warning: bool = False, name: str | None = None) -> Dataset:
        """Drop the elements whose production raised an error and go on with the next ones (after a corrupt or
        truncated file: the next file); ``log_warning`` logs each error dropped on the ``fastinput`` logger.

        >>> import fastinput as fi
        >>> [int(x) for x in fi.Dataset.range(4).map(lambda x: 10 // int(x - 2)).ignore_errors()]
        [-5, -10, 10]
        """
        from fastinput.ops.ignore_errors import IgnoreErrorsDataset

        return IgnoreErrorsDataset(self, log_warning)

    @staticmethod
    def counter(start: int = 0, step: int = 1, dtype: Any = None, name: str | None = None) -> Dataset:
        """``start, start + step, start + 2 * step, ...`` forever, as scalars of ``dtype`` (default int64).

        >>> import fastinput as fi
        >>> [int(x) for x in fi.Dataset.counter(10, 5).take(3)]
        [10, 15, 20]
        """
        import numpy as np

        from fastinput.ops.endless import CounterDataset

        return CounterDataset(start, step, np.int64 if dtype is None else dtype)

    @staticmethod
    def random(seed: int | None = None, rerandomize_each_iteration: bool | None = None,
               name: str | None = None) -> Dataset:
        """Random int64 scalars in ``[0, 2**32)`` forever, reproducible for a ``seed``; each new iteration draws
        the same sequence unless ``rerandomize_each_iteration``. The values differ from TensorFlow's for the same
        seed (see the README's differences).
        """
        from fastinput.ops.endless import RandomDataset

        return RandomDataset(seed, rerandomize_each_iteration)

    def apply(self, transformation_func: Callable[[Dataset], Dataset]) -> Dataset:
        """``transformation_func(self)``: chain a reusable transformation."""
        from fastinput._engine.arguments import check_callable, not_a_dataset

        check_callable("apply", "transformation_func", transformation_func)
        result = transformation_func(self)
        if not isinstance(result, Dataset):
            raise not_a_dataset("apply: transformation_func's result", result)
        return result

    def profile(self, steps: int = 100, trace_path: str | None = None, warmup: int = 5,
                print_report: bool = True) -> Any:
        """Run ``steps`` steps of this pipeline under the profiler and report what limits it.

        Prints (and returns) the analysis: how input-bound the consumer is, the
        stage that limits throughput and what to change; with ``trace_path``
        also writes the timeline (open it with ``fastinput-trace view``).
        """
        from fastinput.profiler.analysis import profile_dataset

        return profile_dataset(self, steps=steps, trace_path=trace_path, warmup=warmup, print_report=print_report)

    def with_options(self, options: Options) -> Dataset:
        """This pipeline with ``options`` applied to all of it."""
        from fastinput.ops.passthrough import OptionsDataset

        return OptionsDataset(self, options)
