"""Several trainer processes read one job by ``job_name``: each gets a disjoint share of the epoch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import fastinput as fi
from tests.distribute.test_faults import slow

ROOT = Path(__file__).parents[2]
JOB = "test-processes"
ELEMENTS = 1000

SECOND_TRAINER = f"""
import json, sys, ray
import fastinput as fi
from tests.distribute.test_faults import slow
ray.init(address=sys.argv[1])
with iter(fi.Dataset.range({ELEMENTS}).map(slow).distribute(2, "distributed_epoch", job_name="{JOB}")) as it:
    got = [int(next(it))]
    print("attached", flush=True)
    got += [int(x) for x in it]
print(json.dumps(got), flush=True)
"""


@pytest.mark.slow
def test_a_second_process_reads_a_disjoint_share(ray_cluster) -> None:
    address = ray_cluster.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    ds = fi.Dataset.range(ELEMENTS).map(slow).distribute(2, "distributed_epoch", job_name=JOB)
    with iter(ds) as it:
        mine = [int(next(it))]
        other = subprocess.Popen([sys.executable, "-c", SECOND_TRAINER, address], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert other.stdout.readline().strip() == "attached"  # both read the job from here on
            mine += [int(x) for x in it]
            theirs = json.loads(other.stdout.readline())
        finally:
            other.wait(timeout=120)
    assert other.returncode == 0
    assert mine and theirs and not set(mine) & set(theirs)
    assert sorted(mine + theirs) == list(range(ELEMENTS))
