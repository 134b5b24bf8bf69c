"""An error a stage keeps for its next call survives a save.

A stage asked for a chunk hands out the elements it made and keeps an error met making the next one for the next
call; its input stands past that error already. A parallel map above pulls such chunks and saves its input's state
after each, so a state saved there lost the error: the restored run went on past it (found by the checkpoint
conformance checker, seed 5079: ``choose_from_datasets -> repeat -> batch -> map(num_parallel_calls=AUTOTUNE)``).
The state now carries the kept error (``with_pending_error``: the base ``get_state``, and ``group_by_window``'s
own), raised again at its place.
"""

import json

import numpy as np
import pytest

import fastinput as fi
from fastinput import errors
from fastinput._engine.checkpoint import pending_error_of, with_pending_error


def _fail_at_7_and_13(x):
    if int(x) in (7, 13):
        raise ValueError(f"bad element {int(x)}")
    return x


def _chosen_batches():
    a = fi.Dataset.from_tensor_slices(np.arange(48, dtype=np.float16).reshape(24, 2))
    b = fi.Dataset.from_tensor_slices(np.arange(100, 116, dtype=np.float16).reshape(8, 2))
    choices = fi.Dataset.from_tensor_slices(np.array([0, -1, 0, 0, 0, 1, 1, 1, 0, -1, 0, 0, 0, 1], "int64"))
    return fi.Dataset.choose_from_datasets([a, b], choices, stop_on_empty_dataset=True).repeat(3).batch(5)


PIPELINES = {
    "choose -> repeat -> batch": _chosen_batches,
    "scan": lambda: fi.Dataset.range(30).map(_fail_at_7_and_13).scan(np.int64(0), lambda s, x: (s + x, s + x)),
    "take_while": lambda: fi.Dataset.range(30).map(_fail_at_7_and_13).take_while(lambda x: x < 25),
    "unique": lambda: fi.Dataset.range(30).map(_fail_at_7_and_13).unique(),
    "group_by_window": lambda: fi.Dataset.range(30).map(_fail_at_7_and_13).group_by_window(
        lambda x: x % 2, lambda key, window: window.batch(2), window_size=2),
}


def _events(it, limit=200):
    out = []
    while len(out) < limit:
        try:
            out.append(np.asarray(next(it)).tolist())
        except StopIteration:
            out.append("end")
            break
        except Exception as exc:  # noqa: BLE001 - which error, at which place, is what is compared
            out.append(f"!{type(exc).__name__}")
    return out


@pytest.mark.parametrize("name", list(PIPELINES))
def test_a_state_saved_anywhere_restores_the_errors_after_it(name):
    def build():
        return PIPELINES[name]().map(lambda x: x, num_parallel_calls=2)

    with iter(build()) as it:
        uninterrupted = _events(it)
    assert any(str(e).startswith("!") for e in uninterrupted)
    for cut in range(len(uninterrupted)):
        with iter(build()) as it:
            _events(it, cut)
            state = json.loads(json.dumps(it.get_state()))
        with iter(build()) as restored:
            restored.set_state(state)
            assert _events(restored) == uninterrupted[cut:], f"saved after {cut} events"


def test_a_kept_error_is_rebuilt_as_its_own_type_or_named_in_a_fastinput_error():
    class NeedsTwo(Exception):
        def __init__(self, a, b):
            super().__init__(a, b)

    rebuilt = pending_error_of(json.loads(json.dumps(with_pending_error({}, ValueError("bad 7")))))
    assert type(rebuilt) is ValueError and str(rebuilt) == "bad 7"
    rebuilt = pending_error_of(with_pending_error({}, errors.DataLossError("file f, offset 12")))
    assert type(rebuilt) is errors.DataLossError
    rebuilt = pending_error_of(with_pending_error({}, NeedsTwo(1, 2)))
    assert type(rebuilt) is errors.FastInputError and "NeedsTwo" in str(rebuilt)
    assert pending_error_of({"pending_error": None}) is None and with_pending_error({"a": 1}, None) == {"a": 1}
    with pytest.raises(errors.InvalidArgumentError, match="damaged"):
        pending_error_of({"pending_error": {"type": 3}})
