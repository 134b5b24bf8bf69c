"""``ds.distribute(...)``: run a pipeline on Ray actors and stream its elements to the consumer.

One concept per module:

- ``stage``: the ``distribute`` Dataset node and the consumer's iterator (chunks in flight, the worker's saved
  positions it resumes from, the per-worker figures ``it.stats()`` shows);
- ``job``: starting (or, by ``job_name``, joining) the worker and coordinator actors on a Ray cluster;
- ``worker``: the worker actor: builds the shipped pipeline, runs it with fastinput's iterator, hands out chunks;
- ``coordinator``: the coordinator actor: hands out splits of the source (``distributed_epoch``), counts consumers;
- ``splits``: finding the pipeline's splittable source, cutting it into splits, the source that reads them;
- ``shipping``: a pipeline description to bytes (cloudpickle) and back, with an error naming what cannot go;
- ``cluster``: importing Ray (an optional extra) and joining or starting a cluster.

Nothing here imports Ray at import time: ``import fastinput`` never does.
"""
