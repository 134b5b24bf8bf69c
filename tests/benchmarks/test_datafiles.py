"""``--data``: a file, a pattern or a folder to the list of data files."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastinput.errors import NotFoundError
from fastinput_bench.datafiles import resolve_files


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ["train-00001-of-00002", "train-00000-of-00002", "validation-00000-of-00001", "README",
                 "_SUCCESS", ".hidden", "sub/train-00009-of-00010"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(name)
    return tmp_path


def test_a_folder_gives_its_files_matching_the_preferred_pattern(folder):
    assert resolve_files(str(folder), "train-*") == [str(folder / "train-00000-of-00002"),
                                                     str(folder / "train-00001-of-00002")]


def test_without_matches_a_folder_gives_its_visible_files(folder):
    names = [Path(f).name for f in resolve_files(str(folder), "*.csv")]
    assert names == ["README", "train-00000-of-00002", "train-00001-of-00002", "validation-00000-of-00001"]
    assert resolve_files(str(folder)) == resolve_files(str(folder), "*.csv")


def test_a_file_or_a_pattern_is_taken_as_given(folder):
    assert resolve_files(str(folder / "README"), "train-*") == [str(folder / "README")]
    assert [Path(f).name for f in resolve_files(str(folder / "*-of-00001"))] == ["validation-00000-of-00001"]


def test_missing_and_empty_give_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="no such file or folder"):
        resolve_files(str(tmp_path / "nothing"))
    (tmp_path / "_manifest.json").write_text("{}")
    with pytest.raises(NotFoundError, match="the folder has no data files"):
        resolve_files(str(tmp_path))
