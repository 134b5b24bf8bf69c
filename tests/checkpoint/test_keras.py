"""``fi.InputCheckpoint``: a real Keras model trained, interrupted and resumed with ``BackupAndRestore`` sees
exactly the batches it had not trained on, in order."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import fastinput as fi
from tests.checkpoint.conformance import NOT_YET_SAVED
from tests.checkpoint.stages import Batches

keras = pytest.importorskip("keras")

EPOCHS, STEPS = 3, 4


class Interrupted(Exception):
    pass


class _Interrupt(keras.callbacks.Callback):
    """Raises after ``at`` batches (counted over epochs): the job is pre-empted."""

    def __init__(self, at: int | None) -> None:
        super().__init__()
        self.at, self.done = at, 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.done += 1
        if self.done == self.at:
            raise Interrupted


class _Record(keras.layers.Layer):
    """Passes its input on, recording each batch's first value (the batch's index, in ``Batches``)."""

    def __init__(self, seen: list[float]) -> None:
        super().__init__()
        self.record = seen.append  # a bound method: Keras would track (and copy) a list attribute

    def call(self, x: Any) -> Any:
        self.record(float(np.asarray(x)[0, 0]))
        return x

    def compute_output_shape(self, shape: Any) -> Any:
        return shape


def _fit(ds: fi.Dataset, backup: str, save_freq: str | int, interrupt_at: int | None = None,
         steps: int | None = STEPS) -> list[float]:
    """The batches a model trains on in one ``fit`` (``EPOCHS`` epochs of ``steps``), resumed from ``backup``."""
    seen: list[float] = []
    model = keras.Sequential([keras.Input((2,)), _Record(seen), keras.layers.Dense(1)])
    model.compile("sgd", "mse", run_eagerly=True)
    with fi.InputCheckpoint(ds, backup, save_freq=save_freq) as inputs:
        callbacks = [keras.callbacks.BackupAndRestore(backup, save_freq=save_freq), inputs, _Interrupt(interrupt_at)]
        try:
            model.fit(inputs.dataset, epochs=EPOCHS, steps_per_epoch=steps, callbacks=callbacks, verbose=0)
        except Interrupted:
            pass
    return seen


@pytest.mark.parametrize("save_freq,interrupt_at,saved_at,resumed_epoch", [
    (2, 7, 6, 1),        # saved after batch 6 (in epoch 1): the resumed fit reruns epoch 1 from the 7th batch
    (3, 3, 3, 0),        # interrupted right after a save
    ("epoch", 10, 8, 2),  # saved at the end of epoch 1
])
def test_a_resumed_fit_trains_on_the_batches_it_had_not_seen(tmp_path, save_freq, interrupt_at, saved_at,
                                                             resumed_epoch) -> None:
    ds = Batches(100)
    backup = str(tmp_path / "backup")
    first = _fit(ds, backup, save_freq, interrupt_at)
    assert first == list(range(interrupt_at))
    resumed = _fit(ds, backup, save_freq)
    steps = (EPOCHS - resumed_epoch) * STEPS  # BackupAndRestore reruns the epoch it saved in, in full
    assert resumed == list(range(saved_at, saved_at + steps))


def test_an_uninterrupted_fit_leaves_nothing_to_resume(tmp_path) -> None:
    backup = str(tmp_path / "backup")
    assert _fit(Batches(100), backup, 2) == list(range(EPOCHS * STEPS))
    assert _fit(Batches(100), backup, 2) == list(range(EPOCHS * STEPS))  # BackupAndRestore removed the backup


def test_a_pass_that_ends_starts_again_in_the_next_epoch(tmp_path) -> None:
    """An epoch as long as the pipeline (no steps_per_epoch): a pass ending ends the epoch, the next starts a pass."""
    seen = _fit(Batches(STEPS), str(tmp_path / "backup"), "epoch", steps=None)
    assert seen == list(range(STEPS)) * EPOCHS


def test_a_real_pipeline_resumes(tmp_path) -> None:
    def make() -> fi.Dataset:
        x = np.arange(400, dtype=np.float32).reshape(200, 2)
        return fi.Dataset.from_tensor_slices((x, x[:, :1])).shuffle(20, seed=1).batch(4)

    ds = make()
    backup = str(tmp_path / "backup")
    try:
        with iter(make()) as it:
            it.get_state()
    except fi.errors.UnimplementedError as exc:
        if {"from_tensor_slices", "shuffle", "batch"} & NOT_YET_SAVED:
            pytest.skip(f"a stage listed in NOT_YET_SAVED cannot save yet: {exc}")
        raise
    expected = [float(batch[0][0, 0]) for batch in make()]  # the first pass of a copy: each pass shuffles anew
    first = _fit(ds, backup, 2, interrupt_at=7)
    resumed = _fit(ds, backup, 2)
    assert first == expected[:7]
    assert resumed == expected[6:6 + 2 * STEPS]


def test_save_freq_is_checked(tmp_path) -> None:
    for wrong in (0, "batch", True):
        with pytest.raises(ValueError, match="save_freq"):
            fi.InputCheckpoint(Batches(1), str(tmp_path), save_freq=wrong)
