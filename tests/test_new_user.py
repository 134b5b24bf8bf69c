"""What a new user tripped over on a fresh machine (issue 18), each said in plain words now.

- a file that is not a TFRecord file: the error asks whether it is one;
- a tf.data dataset given where a fastinput one must be: the error says so and names fastinput's equivalent;
- ``prefetch_to_device("cuda:0")`` on a machine without CUDA: the error says the device is not there, and which are;
- ``fastinput-trace view``: a missing trace file gets ``view``'s usage; serving prints the URL and the ``ssh -L``
  hint for a remote machine;
- ``pytest --no-skips`` (``.ci/run``) fails a run in which a test was skipped.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import fastinput as fi
from fastinput.errors import DataLossError, InvalidArgumentError
from tests.helpers import ROOT, child_command


def test_a_file_that_is_not_a_tfrecord_file_is_asked_about(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are notes, not records\n" * 4)
    with pytest.raises(DataLossError, match=r"corrupted record at offset 0: .*is this a TFRecord file"):
        list(fi.TFRecordDataset(str(path)))


def test_damage_after_the_first_record_does_not_ask(tmp_path):
    from fastinput.readers.framing import frame

    path = tmp_path / "data.tfrecord"
    path.write_bytes(frame(b"fine") + b"garbage that is not a record header")
    with pytest.raises(DataLossError) as info:
        list(fi.TFRecordDataset(str(path)))
    assert "is this a TFRecord file" not in str(info.value)


@pytest.mark.parametrize("build, equivalent", [
    (lambda tf: fi.Dataset.from_tensor_slices([b"f"]).interleave(lambda f: tf.data.TFRecordDataset(f)),
     r"map_func's result must be a fastinput Dataset, got TFRecordDatasetV2, a tf.data dataset.*"
     r"fi.TFRecordDataset in place of tf.data's TFRecordDataset"),
    (lambda tf: fi.Dataset.range(3).concatenate(tf.data.Dataset.range(2)),
     r"concatenate: dataset must be a fastinput Dataset.*a tf.data dataset.*fi.Dataset.range"),
    (lambda tf: fi.Dataset.zip((fi.Dataset.range(3), tf.data.Dataset.range(2))),
     r"zip: every argument must be a fastinput Dataset.*a tf.data dataset"),
    (lambda tf: fi.Dataset.range(3).apply(lambda ds: tf.data.Dataset.range(2)),
     r"apply: transformation_func's result must be a fastinput Dataset.*a tf.data dataset"),
], ids=["interleave", "concatenate", "zip", "apply"])
def test_a_tf_data_dataset_where_a_fastinput_one_must_be_is_named_when_built(tf, build, equivalent):
    with pytest.raises(InvalidArgumentError, match=equivalent):
        build(tf)


def test_prefetch_to_a_cuda_device_that_is_not_there_says_so():
    torch = pytest.importorskip("torch")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(InvalidArgumentError, match=rf"device 'cuda:{count}' is not available on this machine.*"
                                                   r"available: 'cpu'"):
        list(fi.Dataset.range(3).prefetch_to_device(f"cuda:{count}"))


def test_trace_view_of_a_missing_file_shows_views_usage(tmp_path):
    command, env = child_command("from fastinput.profiler.viewer_server import main; main()", "view",
                                 str(tmp_path / "missing.json"))
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert "usage: fastinput-trace view" in result.stderr and "no such trace file" in result.stderr


def test_trace_view_says_where_it_serves_and_how_to_reach_it_remotely(tmp_path):
    trace = tmp_path / "trace.json"
    trace.write_text('{"traceEvents": []}')
    command, env = child_command("from fastinput.profiler.viewer_server import main; main()", "view", str(trace),
                                 "--no-browser")
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) as child:
        try:
            lines = [child.stdout.readline() for _ in range(3)]
        finally:
            child.terminate()
            child.wait(timeout=30)
    assert lines[0].startswith("Serving ") and lines[1].startswith("http://127.0.0.1:")
    port = lines[1].split(":")[2].split("/")[0]
    assert f"ssh -L {port}:127.0.0.1:{port}" in lines[2]


def test_no_skips_fails_a_run_with_a_skipped_test(tmp_path):
    module = tmp_path / "test_skips.py"
    module.write_text("import pytest\n\ndef test_skipped():\n    pytest.skip('not here')\n")
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", ROOT, "-c",
            f"{ROOT}/pyproject.toml", "--confcutdir", ROOT, "-p", "tests.conftest", str(module)]
    assert subprocess.run(base, capture_output=True, cwd=ROOT, timeout=120).returncode == 0
    failed = subprocess.run([*base, "--no-skips"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert failed.returncode == 1 and "--no-skips: 1 test(s) skipped" in failed.stdout
