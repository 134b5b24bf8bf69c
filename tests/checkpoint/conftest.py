"""Fixtures the checkpoint tests share with the reader tests: TensorFlow-written TFRecord files, and the same files
on the storage servers."""

from tests.readers.conftest import corpus, remote_files, store  # noqa: F401  (pytest fixtures)
