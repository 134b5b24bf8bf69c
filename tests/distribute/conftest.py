"""One local Ray cluster for the whole test session (starting one takes seconds): two CPUs, a small object store,
no dashboard. The machine is shared: tests keep to a few workers."""

from __future__ import annotations

import os

import pytest

OBJECT_STORE_BYTES = 96 << 20


@pytest.fixture(scope="session")
def ray_cluster():
    """The ``ray`` module, joined to a local cluster started for this session (stopped at its end)."""
    import ray

    # Ray starts workers at niceness 15: on a machine shared with other jobs they would get what those leave
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray.init(num_cpus=2, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
             configure_logging=False, log_to_driver=False)
    yield ray
    ray.shutdown()


FILES, RECORDS_PER_FILE = 6, 25


@pytest.fixture(scope="session")
def tfrecord_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """TFRecord files written by TensorFlow: file ``f`` holds records ``b"f-r"`` for ``r`` below 25."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("distribute-tfrecords")
    paths = []
    for f in range(FILES):
        path = str(root / f"part-{f}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for r in range(RECORDS_PER_FILE):
                writer.write(f"{f}-{r}".encode())
        paths.append(path)
    return paths
