"""Saving a pipeline's position with a Keras model: ``fi.InputCheckpoint``, a callback that feeds ``model.fit``.

``keras.callbacks.BackupAndRestore`` saves the model's weights and the epoch, and a resumed ``fit`` starts from
them; the input, though, would start again from its first element. ``InputCheckpoint`` is the input's half: it
hands ``fit`` a ``tf.data.Dataset`` that reads the fastinput pipeline, counts the batches the model has trained on,
and whenever the backup is saved (the same ``save_freq``) writes where the input stands into the backup folder; a
resumed job's ``InputCheckpoint`` continues from there, so the model sees exactly the batches it had not seen.

The saved state is the pipeline's ``get_state()`` plus the elements TensorFlow had taken but the model had not
trained on yet (none with ``fit``'s own loop, which takes a batch per step), and it is written atomically.
The ``tf.data.Dataset`` calls Python once per element (a batch): hand it a batched pipeline. Each of its
iterations continues the same stream; one that finds the pipeline at its end starts a new pass.
"""

from __future__ import annotations

import collections
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

from fastinput._engine.checkpoint import decode_value, encode_value
from fastinput.dataset import Dataset
from fastinput.optional import import_optional, tensorflow
from fastinput.tf_adapter import tf_element_spec

keras = import_optional("keras", "tf", "fi.InputCheckpoint")  # a Keras callback: this module needs it at once

STATE_FILE = "fastinput_input_state.json"
"""The file, in the backup folder, that holds the input's state."""


class InputCheckpoint(keras.callbacks.Callback):
    """The input of ``model.fit`` (``.dataset``), saved beside ``BackupAndRestore``'s backup and resumed from it.

    Pass the same ``backup_dir`` and ``save_freq`` as to ``BackupAndRestore``, and both callbacks to ``fit``.

    >>> import keras, tempfile
    >>> ds = fi.Dataset.from_tensor_slices((np.ones((64, 2), np.float32), np.ones((64, 1), np.float32))).batch(8)
    >>> backup = tempfile.mkdtemp()
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> with fi.InputCheckpoint(ds, backup, save_freq=2) as inputs:
    ...     history = model.fit(inputs.dataset, epochs=2, steps_per_epoch=4, verbose=0,
    ...                         callbacks=[keras.callbacks.BackupAndRestore(backup, save_freq=2), inputs])
    >>> len(history.history["loss"])
    2
    """

    def __init__(self, dataset: Dataset, backup_dir: str, save_freq: str | int = "epoch") -> None:
        super().__init__()
        if save_freq != "epoch" and (not isinstance(save_freq, int) or isinstance(save_freq, bool) or save_freq < 1):
            raise ValueError(f"InputCheckpoint: save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self._source = dataset
        self.path = os.path.join(backup_dir, STATE_FILE)
        self.save_freq = save_freq
        self._lock = threading.Lock()
        self._iterator: Any = None
        self._ahead: collections.deque[Any] = collections.deque()  # handed to TensorFlow, not trained on yet
        self._restored: collections.deque[Any] = collections.deque()  # saved as ahead, to hand out first
        self._steps_in_epoch = 0
        self._unsaved_steps = 0
        self._load()

    @property
    def dataset(self) -> Any:
        """The ``tf.data.Dataset`` to pass to ``fit``: the pipeline's elements, from where the saved state stood."""
        tf = tensorflow("InputCheckpoint")

        return tf.data.Dataset.from_generator(self._elements,
                                              output_signature=tf_element_spec(self._source.element_spec))

    def _elements(self) -> Iterator[Any]:
        while True:
            with self._lock:
                if self._restored:
                    element = self._restored.popleft()
                else:
                    if self._iterator is None:
                        self._iterator = iter(self._source)
                    try:
                        element = next(self._iterator)
                    except StopIteration:
                        self._iterator = None  # the next iteration starts a new pass
                        return
                self._ahead.append(element)
            yield element

    # -- the state --------------------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Where the input stands after the batches the model has trained on, JSON-serialisable."""
        with self._lock:
            iterator = None if self._iterator is None else self._iterator.get_state()
            ahead = [encode_value(element) for element in [*self._ahead, *self._restored]]
        return {"iterator": iterator, "ahead": ahead}

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (from ``get_state``) at the next iteration of ``dataset``."""
        with self._lock:
            self.close()
            if state["iterator"] is not None:
                self._iterator = iter(self._source)
                self._iterator.set_state(state["iterator"])
            self._ahead.clear()
            self._restored = collections.deque(decode_value(element) for element in state["ahead"])

    def _load(self) -> None:
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as file:
                self.set_state(json.load(file))

    def save(self) -> None:
        """Write the state into the backup folder (atomically: a crash leaves the previous state whole)."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        temporary = f"{self.path}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(self.get_state(), file)
        os.replace(temporary, self.path)

    def close(self) -> None:
        """Stop the pipeline's threads (``fit`` ending does it; an interrupted ``fit`` leaves it to you)."""
        if self._iterator is not None:
            self._iterator.close()
            self._iterator = None

    def __enter__(self) -> InputCheckpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self.close()

    # -- Keras callback hooks ---------------------------------------------------------------------------------
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._steps_in_epoch = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        trained = batch + 1 - self._steps_in_epoch  # more than one with steps_per_execution
        self._steps_in_epoch = batch + 1
        with self._lock:
            for _ in range(min(trained, len(self._ahead))):
                self._ahead.popleft()
        self._unsaved_steps += trained
        if self.save_freq != "epoch" and self._unsaved_steps >= self.save_freq:
            self._unsaved_steps = 0
            self.save()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.save_freq == "epoch":
            self.save()

    def on_train_end(self, logs: dict | None = None) -> None:
        with self._lock:
            self.close()
