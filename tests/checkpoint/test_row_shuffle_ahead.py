"""The row shuffle's next step run ahead on a helper thread (``row_shuffle.Ahead``) is invisible: the shuffled
Parquet and CSV one-liners give the same batches, the same input error at the same place, and resume exactly from a
state saved at every batch (while a step runs ahead, after it, and while an error it met waits to be raised), with
steps run ahead after every drawn block (``AHEAD_ROWS = 1``) as with none.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

import fastinput as fi
from fastinput.ops import row_shuffle
from tests.checkpoint.test_row_shuffle import BUILDERS, plain

NEVER = 1 << 62


def with_errors(it: fi.Iterator, limit: int | None = None) -> list[Any]:
    """The batches (as ``plain`` lists) and errors (as their type and message) ``it`` gives, up to ``limit``."""
    out: list[Any] = []
    while limit is None or len(out) < limit:
        try:
            out.append(plain(next(it)))
        except StopIteration:
            break
        except fi.errors.InvalidArgumentError as exc:
            out.append(f"{type(exc).__name__}: {exc}")
    return out


def bad_csv_files(folder: str) -> str:
    """Three CSV files of 23 rows; row 5 of the second holds a value that is not a number."""
    for f in range(3):
        with open(os.path.join(folder, f"part-{f}.csv"), "w") as out:
            out.write("id,x\n" + "".join(f"{f * 100 + i},{'oops' if (f, i) == (1, 5) else i / 4}\n"
                                         for i in range(23)))
    return os.path.join(folder, "part-*.csv")


def bad_csv(folder: str) -> fi.Dataset:
    return fi.make_csv_dataset(bad_csv_files(folder), 4, label_name="id", num_epochs=2, shuffle_seed=3,
                               shuffle_buffer_size=5, num_parallel_reads=2, column_defaults=[0, 0.0])


def resumes_at_every_batch(make: Callable[[], fi.Dataset], expected: list[Any]) -> None:
    """A pipeline from ``make()``, saved (through JSON) after each of its batches and errors and restored in a new
    one, gives the rest of ``expected``."""
    for cut in range(len(expected) + 1):
        with iter(make()) as it:
            assert with_errors(it, cut) == expected[:cut]
            state = json.loads(json.dumps(it.get_state()))
        with iter(make()) as resumed:
            resumed.set_state(state)
            assert with_errors(resumed) == expected[cut:], f"resumed after {cut} batches"


def ahead_rows(monkeypatch: pytest.MonkeyPatch, ahead: bool) -> None:
    monkeypatch.setattr(row_shuffle, "AHEAD_ROWS", 1 if ahead else NEVER)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
@pytest.mark.parametrize("buffer, reads", [(5, 2), (1000, 3)])
def test_steps_run_ahead_give_the_same_batches(tmp_path, monkeypatch, kind, buffer, reads):
    make = lambda: BUILDERS[kind](str(tmp_path), buffer, reads)  # noqa: E731
    ahead_rows(monkeypatch, False)
    expected = with_errors(iter(make()))
    ahead_rows(monkeypatch, True)
    threads = []
    start = row_shuffle.Ahead.__init__

    def counted(self: row_shuffle.Ahead, *args: Any) -> None:
        start(self, *args)
        threads.append(self._thread)

    monkeypatch.setattr(row_shuffle.Ahead, "__init__", counted)
    assert with_errors(iter(make())) == expected
    assert threads and not any(thread.is_alive() for thread in threads)


@pytest.mark.parametrize("ahead", [True, False], ids=["ahead", "in_turn"])
def test_an_input_error_met_ahead_comes_in_its_place_and_resumes(tmp_path, monkeypatch, ahead):
    ahead_rows(monkeypatch, False)
    expected = with_errors(iter(bad_csv(str(tmp_path))))
    assert sum(isinstance(item, str) for item in expected) == 2  # once per epoch
    ahead_rows(monkeypatch, ahead)
    assert with_errors(iter(bad_csv(str(tmp_path)))) == expected
    resumes_at_every_batch(lambda: bad_csv(str(tmp_path)), expected)


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_shuffled_one_liner_resumes_at_every_batch_with_steps_ahead(tmp_path, monkeypatch, kind):
    ahead_rows(monkeypatch, True)
    make = lambda: BUILDERS[kind](str(tmp_path), 16, 3)  # noqa: E731
    resumes_at_every_batch(make, with_errors(iter(make())))


def test_closing_while_a_step_runs_ahead_joins_its_thread(tmp_path, monkeypatch):
    ahead_rows(monkeypatch, True)
    before = set(threading.enumerate())
    it = iter(BUILDERS["parquet"](str(tmp_path), 5, 2))
    next(it)
    it.close()
    assert not [thread for thread in set(threading.enumerate()) - before if "exchange" in thread.name]
