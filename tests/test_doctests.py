"""The ``>>>`` examples in fastinput's docstrings run, one test per module that has any.

They run here rather than through ``--doctest-modules`` so that each is an ordinary test under the suite's
leak guard (``tests/conftest.py``: no example may leave a thread behind), and so that the examples can use the
few things a reader is assumed to have, given to every example:

- ``fi`` and ``np``: ``import fastinput as fi`` and ``import numpy as np``;
- ``jpeg_bytes``: an encoded 500x375 RGB JPEG;
- files in the current folder: ``a.tfrecord`` and ``b.tfrecord``, and ``data/*.tfrecord``, each holding
  ``tf.train.Example`` records with a float feature ``x`` and an int64 feature ``y``; ``data.csv`` (an int, a
  float and a string column, first row ``1,2.5,abc``) and ``data/*.csv`` (columns ``x`` and ``label``), the same
  rows as ``data/*.parquet``.
"""

from __future__ import annotations

import doctest
import importlib
import io
from pathlib import Path

import numpy as np
import pytest

import fastinput as fi
from fastinput.readers.framing import frame
from tests.protobuf_wire import entry, feature, float_list, int64_list, wire_example

PACKAGE = Path(fi.__file__).parent
RECORDS_PER_FILE = 40


def modules_with_examples() -> list[str]:
    """Dotted names of fastinput's modules whose source holds a ``>>>`` example (found without importing them)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def write_example_files(folder: Path) -> None:
    """The TFRecord, CSV and Parquet files the examples read (see the module docstring)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    (folder / "data").mkdir()
    for index, name in enumerate(["a.tfrecord", "b.tfrecord", "data/part-0.tfrecord", "data/part-1.tfrecord"]):
        first = index * RECORDS_PER_FILE
        records = [wire_example(entry("x", feature("float", float_list([i / 2]))),
                                entry("y", feature("int64", int64_list([i % 10]))))
                   for i in range(first, first + RECORDS_PER_FILE)]
        (folder / name).write_bytes(b"".join(map(frame, records)))
    (folder / "data.csv").write_text("n,price,name\n1,2.5,abc\n2,3.5,de\n")
    for index in range(2):
        rows = [f"{i / 4},{i % 3}\n" for i in range(index * RECORDS_PER_FILE, (index + 1) * RECORDS_PER_FILE)]
        (folder / f"data/part-{index}.csv").write_text("x,label\n" + "".join(rows))
        pq.write_table(pacsv.read_csv(folder / f"data/part-{index}.csv"), folder / f"data/part-{index}.parquet")


def a_jpeg(height: int = 375, width: int = 500) -> bytes:
    from PIL import Image

    rows, cols = np.mgrid[0:height, 0:width]
    pixels = np.stack([rows * 255 // height, cols * 255 // width, (rows + cols) % 256], axis=-1).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def test_every_module_with_examples_is_found():
    assert {"fastinput", "fastinput.dataset", "fastinput.profiler"} <= set(modules_with_examples())


@pytest.mark.parametrize("module_name", modules_with_examples())
def test_examples_run(module_name, tmp_path, monkeypatch):
    write_example_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(module_name)
    extraglobs = {"fi": fi, "np": np, "jpeg_bytes": a_jpeg()}
    tests = [test for test in doctest.DocTestFinder().find(module, extraglobs=extraglobs) if test.examples]
    assert tests, f"{module_name} has '>>>' in its source but no example doctest finds"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
