"""fastinput without TensorFlow: the engine, the readers, the image kernels and the profiler work; what needs
TensorFlow says so (``MissingDependencyError`` with the ``pip install "fastinput[tf]"`` line).

The child interpreter makes ``import tensorflow`` (and ``keras``) fail as in an environment without them, so a
stray import of TensorFlow fails here even where it is installed. ``.ci/run`` also runs the engine, reader,
image and profiler tests in a virtual environment that has no TensorFlow at all.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_child

WITHOUT_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = sys.modules["keras"] = None  # what `import tensorflow` meets where it is not installed
"""


def run_without_tensorflow(script: str) -> dict:
    """Run ``script`` (which prints one JSON line last) in a child where TensorFlow cannot be imported."""
    result = run_child(WITHOUT_TENSORFLOW + script, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_pipelines_readers_parser_and_profiler_run_without_tensorflow(tmp_path):
    outcome = run_without_tensorflow(f"""
import json, sys
import numpy as np
import fastinput as fi
from fastinput.readers.framing import frame
from tests.protobuf_wire import entry, feature, int64_list, wire_example

path = {str(tmp_path)!r} + "/data.tfrecord"
with open(path, "wb") as f:
    for i in range(10):
        f.write(frame(wire_example(entry("x", feature("int64", int64_list([i]))))))
with open({str(tmp_path)!r} + "/data.csv", "w") as f:
    f.write("a,b\\n" + "".join(f"{{i}},{{i * 2}}\\n" for i in range(6)))
features = {{"x": fi.FixedLenFeature([], np.int64)}}
ds = (fi.Dataset.list_files(path).interleave(fi.TFRecordDataset, num_parallel_calls=fi.AUTOTUNE)
      .shuffle(4, seed=0).batch(5).map(lambda records: fi.parse_example(records, features)["x"],
                                      num_parallel_calls=fi.AUTOTUNE).prefetch(fi.AUTOTUNE))
xs = sorted(int(v) for batch in ds for v in batch)
csv = [int(row[1]) for row in fi.CsvDataset({str(tmp_path)!r} + "/data.csv", [0, 0], header=True)]
report = fi.Dataset.range(1000).map(lambda x: x * 2, num_parallel_calls=fi.AUTOTUNE).batch(10).profile(
    steps=20, warmup=2, print_report=False)
print(json.dumps({{"xs": xs, "csv": csv, "report": type(report).__name__,
                  "tensorflow": [m for m in sys.modules if m.startswith(("tensorflow", "keras")) and sys.modules[m]]}}))
""")
    assert outcome["xs"] == list(range(10))
    assert outcome["csv"] == [i * 2 for i in range(6)]
    assert outcome["tensorflow"] == []


def test_what_needs_tensorflow_says_so_without_it():
    outcome = run_without_tensorflow("""
import json
import numpy as np
import fastinput as fi
from fastinput.errors import InvalidArgumentError, MissingDependencyError
from tests.protobuf_wire import entry, feature, int64_list, wire_example

def error_of(call):
    try:
        call()
    except (MissingDependencyError, InvalidArgumentError) as exc:
        return [type(exc).__name__, str(exc)]
    return None

duplicate = wire_example(entry("x", feature("int64", int64_list([1]))), entry("x", feature("int64", int64_list([2]))))
features = {"x": fi.FixedLenFeature([], np.int64)}
print(json.dumps({
    "as_tf_dataset": error_of(lambda: fi.Dataset.range(3).as_tf_dataset()),
    "InputCheckpoint": error_of(lambda: fi.InputCheckpoint),
    "parse_example, left to TensorFlow": error_of(lambda: fi.parse_example([duplicate], features)),
    "parse_example, missing": error_of(lambda: fi.parse_example([wire_example()], features)),
    "prefetch_to_device /gpu:0": error_of(lambda: list(fi.Dataset.range(3).prefetch_to_device("/gpu:0"))),
}))
""")
    for what in ("as_tf_dataset", "InputCheckpoint", "parse_example, left to TensorFlow", "prefetch_to_device /gpu:0"):
        kind, message = outcome[what]
        assert kind == "MissingDependencyError" and 'pip install "fastinput[tf]"' in message, (what, message)
    assert outcome["parse_example, missing"][0] == "InvalidArgumentError"  # found without TensorFlow
    assert "feature 'x' is required" in outcome["parse_example, missing"][1]


@pytest.mark.parametrize("kernel", ["as built", "not built"])
def test_image_kernels_without_tensorflow(kernel):
    """With the JPEG kernel built, fi.image needs no TensorFlow; without it, the error says how to build it."""
    hide = 'sys.modules["fastinput.fused_ops._jpeg"] = None' if kernel == "not built" else ""
    outcome = run_without_tensorflow(hide + """
import io, json
import numpy as np
from PIL import Image
import fastinput as fi
from fastinput.errors import MissingDependencyError
from fastinput.fused_ops import jpeg_kernel

buffer = io.BytesIO()
Image.fromarray(np.full((32, 48, 3), 128, np.uint8)).save(buffer, format="JPEG")
try:
    shape = list(fi.image.decode_crop_resize(buffer.getvalue(), size=(8, 8)).shape)
except MissingDependencyError as exc:
    shape = str(exc)
print(json.dumps({"built": jpeg_kernel._jpeg is not None, "shape": shape}))
""")
    if outcome["built"]:
        assert outcome["shape"] == [8, 8, 3]
    else:
        assert "libjpeg" in outcome["shape"] and 'pip install "fastinput[tf]"' in outcome["shape"]
