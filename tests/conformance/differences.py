"""The deliberate differences from tf.data, as the table cases compare them.

Each is listed in the README's "Where fastinput differs from tf.data" (``readme`` is a phrase of its
bullet; a test checks it is there). A case that meets one still compares fastinput exactly, against the
tf.data pipeline that gives fastinput's documented behaviour, or with tf.data's error kinds read as the
kinds fastinput documents.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.conformance.pipeline import Pipeline, Step


@dataclass(frozen=True)
class Difference:
    readme: str
    """A phrase of the README bullet that documents the difference."""
    tf_pipeline: Pipeline | None = None
    """The tf.data pipeline whose output fastinput's must equal (None: the case's own)."""
    tf_kinds: tuple[tuple[str, str], ...] = ()
    """tf.data's error kinds, each with the kind fastinput raises in its place."""
    tf_shuffle_and_repeat_fusion: bool = True
    """False: tf.data runs with its shuffle-and-repeat fusion off."""

    def __repr__(self) -> str:
        return f"differs: {self.readme}"


def concatenated_mix(tf_pipeline: Pipeline) -> Difference:
    """tf.data cannot concatenate a mix of non-scalar elements (TensorFlow 2.21 refuses it as the iterator is made):
    fastinput equals ``tf_pipeline``, the same elements without the mix."""
    return Difference("A mix of elements that are not scalars can be concatenated", tf_pipeline=tf_pipeline)


SHUFFLE_REPEAT_ERRORS = Difference("shuffle -> repeat with errors", tf_shuffle_and_repeat_fusion=False)
STOP_ITERATION_IN_FILTER = Difference("a user function raising `StopIteration`",  # tf.data: an InternalError
                                      tf_kinds=(("Unknown", "InvalidArgument"),))
PADDED_SHAPE_TOO_SMALL = Difference("A padded shape smaller than an element",
                                    tf_kinds=(("DataLoss", "InvalidArgument"),))


def padding_value_cast(tf_pipeline: Pipeline) -> Difference:
    """``padding_values`` of another numeric dtype are cast: fastinput equals tf.data given the cast value."""
    return Difference("`padding_values`", tf_pipeline=tf_pipeline)




def _prefetched_before_interleaves(value: object) -> object:
    """``value`` with a ``prefetch(1)`` before every ``interleave`` / ``flat_map``, nested pipelines included."""
    if isinstance(value, Pipeline):
        steps: list[Step] = []
        for step in value.steps:
            if step.op in ("interleave", "flat_map"):
                steps.append(Step("prefetch", (1,)))
            steps.append(Step(step.op, tuple(_prefetched_before_interleaves(a) for a in step.args), step.kwargs))
        return Pipeline(tuple(steps))
    if isinstance(value, tuple):
        return tuple(_prefetched_before_interleaves(v) for v in value)
    return value


def interleave_input_errors(pipeline: Pipeline, shuffle_and_repeat_fusion: bool = False) -> Difference:
    """tf.data loses an error in some synchronous nestings of an interleave over a concatenation that ends in
    another interleave (its interleave reads the input's end-of-sequence flag after an error); read through a
    ``prefetch(1)`` it delivers every error, as fastinput does. Compare with that pipeline."""
    return Difference("error from an interleave's input", tf_pipeline=_prefetched_before_interleaves(pipeline),
                      tf_shuffle_and_repeat_fusion=shuffle_and_repeat_fusion)


def _prefetched_before_zips(value: object) -> object:
    """``value`` with a ``prefetch(1)`` before every ``enumerate`` and after each input of every ``zip``, nested
    pipelines included."""
    if isinstance(value, Pipeline):
        steps: list[Step] = []
        for step in value.steps:
            args = tuple(_prefetched_before_zips(a) for a in step.args)
            if step.op == "enumerate":
                steps.append(Step("prefetch", (1,)))
            elif step.op == "zip_datasets":
                inputs = args[0]
                args = ({k: p.prefetch(1) for k, p in inputs.items()} if isinstance(inputs, dict)
                        else tuple(p.prefetch(1) for p in inputs),)
            steps.append(Step(step.op, args, step.kwargs))
        return Pipeline(tuple(steps))
    if isinstance(value, tuple):
        return tuple(_prefetched_before_zips(v) for v in value)
    return value


def stop_iteration_at_an_input_start(pipeline: Pipeline) -> Difference:
    """tf.data ends a ``zip``/``enumerate`` where a map that it runs in parallel (``num_parallel_calls``, or its
    default ``map_parallelization`` of a stateless function) raises ``StopIteration`` at the first element of a
    new input iterator (a ``repeat``'s next epoch, a ``concatenate``'s second part): the zip appears to read
    the end-of-sequence flag the input before left. Read through a ``prefetch(1)`` it raises the error and goes on, as
    fastinput does (and tf.data for every other error). Compare with that pipeline."""
    return Difference("A `StopIteration` where a new input starts", tf_pipeline=_prefetched_before_zips(pipeline),
                      tf_shuffle_and_repeat_fusion=False)


def sampled_through_choices(tf_pipeline: Pipeline) -> Difference:
    """``sample_from_datasets`` draws its own random numbers: fastinput equals ``tf_pipeline``, where each such step
    is a ``choose_from_datasets`` of its inputs by the choices fastinput's mix made (``tests.conformance.sample``)."""
    return Difference("`sample_from_datasets` draws its own random choices", tf_pipeline=tf_pipeline,
                      tf_shuffle_and_repeat_fusion=False)


ALL = (SHUFFLE_REPEAT_ERRORS, STOP_ITERATION_IN_FILTER, PADDED_SHAPE_TOO_SMALL, padding_value_cast(None),
       interleave_input_errors(Pipeline(())), stop_iteration_at_an_input_start(Pipeline(())),
       sampled_through_choices(Pipeline(())))
