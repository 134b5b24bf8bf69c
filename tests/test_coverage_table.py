"""The README's "tf.data coverage" table lists every method of tf.data.Dataset and every tf.data reader, so a
TensorFlow release that adds one shows up here; and each row says truly whether fastinput has it."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import fastinput as fi

README = Path(__file__).parents[1] / "README.md"


def table_rows() -> dict[str, str]:
    """tf.data name (``Dataset.map``, ``TextLineDataset``, ``experimental.CsvDataset``) -> fastinput column."""
    text = README.read_text()
    section = text[text.index("## tf.data coverage"):]
    section = section[:section.index("\n## ")]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\| `([\w.]+)` \| (.+?) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


def tf_readers(tf) -> list[str]:
    """The readers tf.data exports: its classes named ``*Dataset`` (and their ``experimental`` ones), and the
    ``make_*_dataset`` one-liners, as the table names them."""
    names = [name for name in dir(tf.data) if name.endswith("Dataset") and name != "Dataset"]
    experimental = [f"experimental.{name}" for name in dir(tf.data.experimental)
                    if (name.endswith("Dataset") and inspect.isclass(getattr(tf.data.experimental, name)))
                    or re.fullmatch(r"make_\w+_dataset", name) or name == "Counter"]
    return names + experimental


def test_every_tf_data_method_and_reader_is_in_the_table() -> None:
    tf = pytest.importorskip("tensorflow")
    rows = table_rows()
    methods = [f"Dataset.{name}" for name in dir(tf.data.Dataset) if not name.startswith("_")]
    missing = [name for name in methods + tf_readers(tf) if name not in rows]
    assert not missing, f"README's tf.data coverage table lacks {missing}"
    assert len(methods) > 40 and "experimental.CsvDataset" in rows and "TextLineDataset" in rows


def fastinput_names(cell: str) -> list[str]:
    """The fastinput names a row's cell gives (``ds.map``, ``fi.Dataset.range``, ``fi.TFRecordDataset``)."""
    return re.findall(r"`((?:ds|fi)\.[\w.]+)`", cell)


def exists(name: str) -> bool:
    owner, *path = name.split(".")
    obj = fi.Dataset if owner == "ds" else fi
    for part in path:
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def test_a_gap_is_one_fastinput_really_lacks() -> None:
    """A row marked "—" (none is, today) names nothing fastinput has."""
    gaps = [name.split(".")[-1] for name, cell in table_rows().items() if cell == "—"]
    assert not [name for name in gaps if hasattr(fi.Dataset, name) or hasattr(fi, name)]


def test_every_name_the_table_gives_exists() -> None:
    named = [name for cell in table_rows().values() for name in fastinput_names(cell)]
    assert len(named) > 50
    assert [name for name in named if not exists(name)] == []
