"""``fastinput-bench``: each subcommand on a tiny synthetic set, its JSON output, tf.data comparison, and errors.

Successful runs go through ``main()`` in this process (TensorFlow is imported
once); bad command lines run the CLI as a subprocess, to see exactly what a
user sees on stderr and the exit status.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastinput_bench.cli import main
from fastinput_bench.report import JSON_FORMAT
from fastinput_bench.synthetic import SIZES, synthetic_files

REPO = Path(__file__).resolve().parents[2]
BATCH, STEPS, INTERVALS = 8, 4, 2
UNITS = {"images": "images", "tabular": "examples", "csv": "rows"}


def tiny_run(subcommand: str, cache_dir: Path, *extra: str) -> list[str]:
    """Arguments for a run on the small synthetic set: a few batches of 8."""
    return [subcommand, "--synthetic", "--synthetic-size", "small", "--cache-dir", str(cache_dir),
            "--batch-size", str(BATCH), "--steps", str(STEPS), "--warmup", "1", "--intervals", str(INTERVALS),
            "--quiet", *extra]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastinput_bench.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=240, env={**os.environ, **(env or {})})


def check_result(result: dict, examples: int) -> None:
    """One pipeline's figures: every interval timed, rates ordered, CPU and memory recorded."""
    assert result["examples"] == examples
    assert len(result["interval_rates"]) == INTERVALS
    assert all(rate > 0 for rate in result["interval_rates"])
    assert result["min_per_second"] <= result["median_per_second"] <= result["max_per_second"]
    assert result["seconds"] > 0 and result["cpu_utilization"] > 0
    assert result["peak_memory_bytes"] > 0


@pytest.mark.parametrize("subcommand", ["images", "tabular", "csv"])
def test_subcommand_prints_table_and_writes_json(subcommand, cache_dir, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert main(tiny_run(subcommand, cache_dir, "--json", str(out))) == 0

    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith(f"fastinput-bench {subcommand}: ")
    assert f"batch {BATCH}" in lines[1] and f"{STEPS} batches timed in {INTERVALS} intervals" in lines[1]
    header = next(line for line in lines if line.startswith("pipeline"))
    assert f"{UNITS[subcommand]}/s (median)" in header
    row = next(line for line in lines if line.startswith("fastinput "))
    # name (with the image pipeline's variant: "fastinput (tuned)"), median, spread and its share of the median,
    # CPU, peak memory value and unit
    assert len(row.split()) == (8 if subcommand == "images" else 7)
    assert re.search(r" [\d,.]+-[\d,.]+ \(\d+%\) ", row)
    assert "tf.data" not in text and "fastinput / tf.data" not in text
    assert "slowest stage:" in text and "recommendation:" in text
    assert any(line.startswith("machine: ") and "cores" in line for line in lines)

    document = json.loads(out.read_text())
    assert document["format"] == JSON_FORMAT
    assert document["subcommand"] == subcommand and document["unit"] == UNITS[subcommand]
    assert document["config"]["batch_size"] == BATCH and document["config"]["synthetic"] is True
    expected_files = SIZES["small"].image_files if subcommand == "images" else SIZES["small"].row_files
    assert document["config"]["files"] == expected_files
    assert set(document["results"]) == {"fastinput"} and document["ratio"] is None
    check_result(document["results"]["fastinput"], BATCH * STEPS)
    assert document["machine"]["cores"] >= 1 and document["machine"]["memory_bytes"] > 0
    assert document["profile"]["recommendation"]


def test_compare_tf_data_adds_a_row_and_the_ratio(cache_dir, tmp_path, capsys):
    out = tmp_path / "csv.json"
    assert main(tiny_run("csv", cache_dir, "--compare", "tf.data", "--json", str(out))) == 0

    text = capsys.readouterr().out
    assert any(line.startswith("tf.data ") for line in text.splitlines())
    document = json.loads(out.read_text())
    assert set(document["results"]) == {"fastinput", "tf.data"}
    for result in document["results"].values():
        check_result(result, BATCH * STEPS)
    fast, tf = (document["results"][name]["median_per_second"] for name in ("fastinput", "tf.data"))
    assert document["ratio"] == pytest.approx(fast / tf)
    assert f"fastinput / tf.data: {fast / tf:.2f}x" in text


def test_kernel_limit_times_the_decode_kernel_alone_and_gives_fastinputs_share(cache_dir, tmp_path, capsys):
    out = tmp_path / "images.json"
    assert main(tiny_run("images", cache_dir, "--pipeline", "readme", "--kernel-limit", "--json", str(out))) == 0

    document = json.loads(out.read_text())
    assert set(document["results"]) == {"fastinput", "decode kernel"} and document["config"]["kernel_limit"]
    check_result(document["results"]["decode kernel"], BATCH * STEPS)
    fast, kernel = (document["results"][name]["median_per_second"] for name in ("fastinput", "decode kernel"))
    assert document["kernel_share"] == pytest.approx(fast / kernel)
    text = capsys.readouterr().out
    assert any(line.startswith("decode kernel ") for line in text.splitlines())
    assert f"fastinput / decode kernel: {fast / kernel:.1%}" in text


@pytest.mark.slow
def test_images_compare_tf_data_same_dtype(cache_dir, tmp_path, capsys):
    out = tmp_path / "images.json"
    assert main(tiny_run("images", cache_dir, "--compare", "tf.data", "--dtype", "float32", "--json", str(out))) == 0
    document = json.loads(out.read_text())
    assert document["config"]["dtype"] == "float32"
    for result in document["results"].values():
        check_result(result, BATCH * STEPS)
    assert "fastinput / tf.data:" in capsys.readouterr().out


def test_device_puts_batches_on_the_device_for_both_pipelines(cache_dir, tmp_path):
    out = tmp_path / "device.json"
    assert main(tiny_run("tabular", cache_dir, "--device", "/cpu:0", "--compare", "tf.data", "--json", str(out))) == 0
    document = json.loads(out.read_text())
    assert document["config"]["device"] == "/cpu:0"
    assert document["profile"]["pipeline"].endswith("-> prefetch_to_device('/cpu:0', buffer_size=AUTOTUNE)>")
    for result in document["results"].values():
        check_result(result, BATCH * STEPS)


def test_trace_writes_the_profilers_trace(cache_dir, tmp_path):
    trace = tmp_path / "trace.json"
    assert main(tiny_run("csv", cache_dir, "--trace", str(trace))) == 0
    document = json.loads(trace.read_text())
    assert [pipeline["steps"] for pipeline in document["otherData"]["pipelines"]] == [1 + STEPS]
    assert any(event["ph"] == "X" and event["name"].startswith("prefetch(") for event in document["traceEvents"])


def test_report_turns_json_results_into_results_md(cache_dir, tmp_path, capsys):
    bench = tmp_path / "csv.json"
    assert main(tiny_run("csv", cache_dir, "--json", str(bench))) == 0
    other = tmp_path / "core_map.json"
    other.write_text(json.dumps({"machine": {"cores": 2}, "ratio_vs_graph_map": 2.5,
                                 "results": [{"pipeline": "fastinput map", "elements_per_second": 150000.0}]}))
    capsys.readouterr()

    assert main(["report", str(bench), str(other)]) == 0
    text = capsys.readouterr().out
    cores = json.loads(bench.read_text())["machine"]["cores"]
    assert text.startswith("# Benchmark results")
    assert f"Machine: {cores} cores, " in text
    assert "| csv: make_csv_dataset on CSV files |" in text
    assert "fastinput-bench csv --synthetic --synthetic-size small --batch-size 8" in text
    other_section = text.split("## Other benchmarks", 1)[1]
    assert "### core_map" in other_section and "| ratio_vs_graph_map | 2.5 |" in other_section
    assert "| fastinput map | 150,000 |" in other_section


@pytest.fixture
def not_a_tfrecord(tmp_path: Path) -> Path:
    path = tmp_path / "notes" / "train-00000-of-00001"
    path.parent.mkdir()
    path.write_text("this is a text file, not TFRecords\n" * 20)
    return path


@pytest.mark.parametrize(("args", "status", "expected"), [
    (["images", "--data", "/no/such/folder"], 1, "/no/such/folder: no such file or folder"),
    (["tabular", "--data", "/no/such/folder/part-*"], 1, "no files match"),
    (["images", "--synthetic", "--batch-size", "-4"], 2, "argument --batch-size: must be a positive integer, got '-4'"),
    (["csv", "--synthetic", "--steps", "many"], 2, "argument --steps: must be a positive integer, got 'many'"),
    (["tabular"], 2, "one of the arguments --data --synthetic is required"),
    (["images", "--synthetic", "--device", "tpu-please"], 1, "cannot tell which framework"),
    (["images", "--synthetic", "--json", "/no/such/folder/out.json"], 2, "the folder of /no/such/folder/out.json"),
    (["bogus"], 2, "invalid choice: 'bogus'"),
])
def test_bad_arguments_give_one_error_line(args, status, expected):
    completed = run_cli(*args)
    assert completed.returncode == status
    assert_one_error_line(completed, expected)


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "_SUCCESS").write_text("")  # bookkeeping files do not count as data
    completed = run_cli("images", "--data", str(tmp_path))
    assert completed.returncode == 1
    assert_one_error_line(completed, f"{tmp_path}: the folder has no data files")


@pytest.mark.parametrize("subcommand", ["images", "tabular"])
def test_a_file_that_is_not_a_tfrecord_is_an_error(subcommand, not_a_tfrecord):
    completed = run_cli(subcommand, "--data", str(not_a_tfrecord.parent), "--steps", "2", "--warmup", "0")
    assert completed.returncode == 1
    assert_one_error_line(completed, f"{not_a_tfrecord}: corrupted record at offset 0")
    assert "is this a TFRecord file" in completed.stderr


def test_report_of_a_file_that_is_not_json_is_an_error(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("images/s: many")
    completed = run_cli("report", str(path))
    assert completed.returncode == 1
    assert_one_error_line(completed, f"{path}: not a JSON file")


def assert_one_error_line(completed: subprocess.CompletedProcess, expected: str) -> None:
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("fastinput-bench: error: ") and expected in lines[0], lines[0]
    assert completed.stdout == ""


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_remote_folder_as_data(scheme, cache_dir, request, tmp_path):
    """``--data s3://bucket/folder/`` and ``gs://...``: the store configured the fsspec way, by environment
    variables."""
    store = request.getfixturevalue("s3_server" if scheme == "s3" else "gcs_server")
    bucket = f"bench-{scheme}"
    store.make_bucket(bucket)
    for path in synthetic_files("tabular", "small", cache_dir):
        store.upload(path, bucket, f"criteo/{Path(path).name}")
    env = ({"AWS_ENDPOINT_URL": store.endpoint} if scheme == "s3"
           else {"STORAGE_EMULATOR_HOST": store.endpoint, "FSSPEC_GCS_TOKEN": "anon", "FSSPEC_GCS_PROJECT": "test"})
    out = tmp_path / "remote.json"
    completed = run_cli("tabular", "--data", f"{scheme}://{bucket}/criteo/", "--batch-size", str(BATCH),
                        "--steps", str(STEPS), "--warmup", "1", "--intervals", str(INTERVALS), "--json", str(out),
                        env=env)
    assert completed.returncode == 0, completed.stderr
    document = json.loads(out.read_text())
    assert document["config"]["files"] == SIZES["small"].row_files
    check_result(document["results"]["fastinput"], BATCH * STEPS)
