"""Fixtures of the checkpoint tests: the reader tests' TensorFlow-written TFRecord files, and those files on the
storage servers in a bucket of their own (the reader tests' bucket is made by their own fixture)."""

from pathlib import Path

import pytest

from tests.readers.conftest import TFRecordCorpus, corpus, store  # noqa: F401  (pytest fixtures)


@pytest.fixture(scope="session")
def remote_tfrecords(store, corpus: TFRecordCorpus) -> dict[str, list[str]]:  # noqa: F811  (fixtures by name)
    """The corpus files, uncompressed and GZIP, on ``store``: compression -> URLs in file order."""
    store.make_bucket("checkpoints")
    return {kind: [store.upload(path, "checkpoints", f"{kind or 'plain'}/{Path(path).name}")
                   for path in corpus.files(kind)] for kind in ["", "GZIP"]}
