"""The deliberate differences from tf.data, as the table cases compare them.

Each is listed in the README's "Where fastinput differs from tf.data" (``readme`` is a phrase of its
bullet; a test checks it is there). A case that meets one still compares fastinput exactly, against the
tf.data pipeline that gives fastinput's documented behaviour, or with tf.data's error kinds read as the
kinds fastinput documents.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.conformance.pipeline import Pipeline


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


SHUFFLE_REPEAT_ERRORS = Difference("shuffle -> repeat with errors", tf_shuffle_and_repeat_fusion=False)
STOP_ITERATION_IN_FILTER = Difference("a user function raising `StopIteration`",  # tf.data: an InternalError
                                      tf_kinds=(("Unknown", "InvalidArgument"),))
PADDED_SHAPE_TOO_SMALL = Difference("A padded shape smaller than an element", tf_kinds=(("DataLoss", "InvalidArgument"),))


def padding_value_cast(tf_pipeline: Pipeline) -> Difference:
    """``padding_values`` of another numeric dtype are cast: fastinput equals tf.data given the cast value."""
    return Difference("`padding_values`", tf_pipeline=tf_pipeline)


ALL = (SHUFFLE_REPEAT_ERRORS, STOP_ITERATION_IN_FILTER, PADDED_SHAPE_TOO_SMALL, padding_value_cast(None))
