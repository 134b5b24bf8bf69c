"""``fastinput-bench images --pipeline`` (the hand-built, README and map -> batch pipelines) and ``--busy-cores``.

Runs are short synthetic ones; the tests look at the output's structure and
at the processes left behind, never at timings.
"""

from __future__ import annotations

import inspect
import json
import re
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from fastinput_bench import readme_pipeline, results
from fastinput_bench.busy import busy_cores
from fastinput_bench.cli import main
from fastinput_bench.synthetic import synthetic_files
from tests.benchmarks.test_cli import BATCH, STEPS, check_result, run_cli, tiny_run

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_code() -> str:
    """The README's pipeline code block (the first Python block under "## A pipeline")."""
    section = README.read_text().split("## A pipeline", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_variant_runs_the_readmes_own_code():
    code = readme_code()
    assert inspect.getsource(readme_pipeline.preprocess) in code
    features_line = next(line for line in inspect.getsource(readme_pipeline).splitlines()
                         if line.startswith("features = "))
    assert features_line in code
    assert ".interleave(fi.TFRecordDataset, num_parallel_calls=fi.AUTOTUNE)" in code
    assert ".map_and_batch(preprocess, 64)" in code


@pytest.mark.parametrize("variant", ["tuned", "readme", "map-batch"])
def test_each_variant_is_named_in_the_table_and_the_json(variant, cache_dir, tmp_path, capsys):
    out = tmp_path / "images.json"
    assert main(tiny_run("images", cache_dir, "--pipeline", variant, "--json", str(out))) == 0

    lines = capsys.readouterr().out.splitlines()
    assert f"uint8, {variant} pipeline" in lines[1]
    row = next(line for line in lines if line.startswith("fastinput "))
    assert row.startswith(f"fastinput ({variant}) ") and len(row.split()) == 8  # the spread's share: (x%)
    document = json.loads(out.read_text())
    assert document["config"]["pipeline"] == variant and document["config"]["busy_cores"] == 0
    check_result(document["results"]["fastinput"], BATCH * STEPS)
    markdown = results.render([(str(out), document)])
    assert f"({variant} pipeline)" in markdown and f"--pipeline {variant}" in markdown


def test_the_user_pipelines_give_readme_batches(cache_dir):
    """Both user variants batch the README function's outputs: uint8 images and int64 labels as stored."""
    files = synthetic_files("images", "small", cache_dir)
    for dataset in (readme_pipeline.readme_images(files, BATCH), readme_pipeline.map_batch_images(files, BATCH)):
        with iter(dataset) as iterator:
            images, labels = next(iterator)
        assert images.shape == (BATCH, 224, 224, 3) and images.dtype == np.uint8
        assert labels.shape == (BATCH,) and labels.dtype == np.int64


def test_a_user_pipeline_with_float32_is_refused(cache_dir):
    result = run_cli(*tiny_run("images", cache_dir, "--pipeline", "readme", "--dtype", "float32"))
    assert result.returncode == 2
    assert "--pipeline readme decodes uint8 images" in result.stderr and "Traceback" not in result.stderr


def test_busy_cores_are_recorded_and_gone_after_the_run(cache_dir, tmp_path, capsys):
    out = tmp_path / "csv.json"
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    assert main(tiny_run("csv", cache_dir, "--busy-cores", "2", "--json", str(out))) == 0

    assert "2 busy core(s) beside" in capsys.readouterr().out
    assert {child.pid for child in psutil.Process().children(recursive=True)} == before
    document = json.loads(out.read_text())
    assert document["config"]["busy_cores"] == 2
    shares = [found["beside_share"] for found in document["results"].values()]
    assert all(share is not None and 0 <= share for share in shares)  # what the busy processes did while timed
    markdown = results.render([(str(out), document)])
    assert "--busy-cores 2" in markdown and "busy processes' work, of alone (fi / tf)" in markdown
    assert re.search(r"\| \d+% \|", markdown)  # fastinput alone: no --compare


def test_busy_processes_count_their_work_and_their_rate_alone_is_measured():
    with busy_cores(1) as busy:
        assert busy.rate_alone and busy.rate_alone > 0
        before, deadline = busy.work(), time.monotonic() + 60
        while busy.work() == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert busy.work() > before and busy.alone_seconds() > 0


def test_busy_processes_spin_until_the_block_ends_even_on_an_error():
    with pytest.raises(KeyboardInterrupt), busy_cores(2) as busy:
        processes = busy.processes
        assert len(processes) == 2 and all(process.poll() is None for process in processes)
        raise KeyboardInterrupt
    assert all(process.returncode is not None for process in processes)  # stopped and reaped (wait() returned)


def test_no_busy_cores_starts_nothing():
    with busy_cores(0) as busy:
        assert busy.processes == [] and busy.alone_seconds() is None
