"""The static rewrites never change results: a table of pipelines run with every rewrite on and off."""

import itertools

import numpy as np
import pytest

import fastinput as fi
from fastinput.structure import SparseArray
from tests.helpers import NO_REWRITES, assert_same_run, elements_and_errors

REWRITES = ("map_fusion", "map_and_batch_fusion", "map_and_batch_out", "noop_elimination", "shuffle_and_repeat_fusion",
            "mix_and_batch_fusion")


def _big(x):
    return np.full(1500, x, np.float64)  # larger than map_and_batch's small-output limit: written into rows


def _fails_at_3(x):
    if int(x) == 3:
        raise ValueError("three")
    return x


def _sparse(x):
    return SparseArray(np.array([[0]]), np.array([x]), np.array([int(x) + 1]))


PIPELINES = {
    "map returns a list, next map unpacks it":
        lambda: fi.Dataset.range(3).map(lambda x: [x, x]).map(lambda a, b: a + b),
    "map returns a Python int, next map divides": lambda: fi.Dataset.range(3).map(lambda x: 7).map(lambda y: y / 2),
    "map returns a tuple with a list": lambda: fi.Dataset.range(3).map(lambda x: (x, [x, 1])).map(lambda a, b: b * a),
    "map returns a str, next map sees bytes": lambda: fi.Dataset.range(3).map(lambda x: "s").map(lambda s: s + b"!"),
    "three maps": lambda: fi.Dataset.range(4).map(lambda x: x + 1).map(lambda x: (x, 2.5)).map(lambda a, b: a * b),
    "parallel maps": lambda: fi.Dataset.range(20).map(lambda x: [x, x], 2).map(lambda a, b: a - b, 2),
    "map -> batch of sparse": lambda: fi.Dataset.range(5).map(_sparse).batch(2),
    "map -> batch of strings": lambda: fi.Dataset.range(5).map(lambda x: f"s{x}").batch(2),
    "map -> batch of nests": lambda: fi.Dataset.range(5).map(lambda x: {"a": (x, [x, x]), "b": b"z"}).batch(2),
    "map -> batch of Python scalars": lambda: fi.Dataset.range(5).map(lambda x: 3).batch(2),
    "map -> batch, mixed shapes": lambda: fi.Dataset.range(5).map(lambda x: np.zeros(int(x))).batch(2),
    "map -> batch, mixed large shapes": lambda: fi.Dataset.range(5).map(lambda x: _big(x)[:1500 - int(x) % 2]).batch(2),
    "map -> batch, mixed large dtypes":
        lambda: fi.Dataset.range(5).map(lambda x: _big(x).astype(np.float32) if x % 2 else _big(x)).batch(2),
    "map -> batch, mixed int dtypes": lambda: fi.Dataset.range(5).map(lambda x: 1 if x % 2 else 2 ** 40).batch(2),
    "map -> batch, mixed structures": lambda: fi.Dataset.range(5).map(lambda x: (x, x) if x % 2 else (x,)).batch(2),
    "map -> batch, bytes then an array":
        lambda: fi.Dataset.range(4).map(lambda x: (_big(x), b"a" if x % 2 else np.zeros(3))).batch(2),
    "map with an out= parameter -> batch": lambda: fi.Dataset.range(5).map(lambda x, out=3: x + out).batch(2),
    "large map with an out= parameter -> batch":
        lambda: fi.Dataset.range(5).map(lambda x, out=3: _big(x) + out).batch(2),
    "map filling its out=None row -> batch with an error":
        lambda: fi.Dataset.range(9).map(lambda x, out=None: np.add(_big(_fails_at_3(x)), 1, out=out)).batch(2),
    "map -> batch with an error": lambda: fi.Dataset.range(10).map(_fails_at_3).batch(4),
    "large map -> batch with an error": lambda: fi.Dataset.range(10).map(lambda x: _big(_fails_at_3(x))).batch(4, True),
    "parallel map -> batch with an error": lambda: fi.Dataset.range(10).map(_fails_at_3, 3).batch(4),
    "map -> map -> batch": lambda: fi.Dataset.range(10).map(lambda x: [x, 2]).map(lambda a, b: a * b).batch(3, True),
    "shuffle -> repeat": lambda: fi.Dataset.range(10).shuffle(4, seed=3).repeat(3),
    "map -> no-ops -> batch with an error":
        lambda: fi.Dataset.range(10).map(_fails_at_3).skip(0).take(-1).repeat(1).shard(1, 0).batch(4),
    "map -> skip(0) -> map -> batch":
        lambda: fi.Dataset.range(10).map(lambda x: x + 1).skip(0).map(_fails_at_3).batch(3),
    "shuffle -> repeat(1) -> repeat": lambda: fi.Dataset.range(10).shuffle(4, seed=3).repeat(1).repeat(2),
    "sample -> batch of strings": lambda: fi.Dataset.sample_from_datasets(
        [fi.Dataset.range(9).map(lambda x: f"s{x}"), fi.Dataset.range(4).map(lambda x: "t")], seed=1).batch(4),
    "sample -> batch with an error": lambda: fi.Dataset.sample_from_datasets(
        [fi.Dataset.range(10).map(_fails_at_3), fi.Dataset.range(10, 15)], seed=2).batch(3),
    "choose -> batch, a choice out of range": lambda: fi.Dataset.choose_from_datasets(
        [fi.Dataset.range(5), fi.Dataset.range(10, 15)], fi.Dataset.range(9).map(lambda x: x % 3)).batch(2, True),
}


class _Error:
    """An error in a run: equal to another of the same type and message."""

    def __init__(self, exc: Exception) -> None:
        self.kind, self.message = type(exc), str(exc)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Error) and (self.kind, self.message) == (other.kind, other.message)

    def __repr__(self) -> str:
        return f"{self.kind.__name__}({self.message!r})"


def _options(disabled):
    return fi.Options(optimization=fi.OptimizationOptions(**{name: False for name in disabled}))


@pytest.mark.parametrize("name", list(PIPELINES))
def test_rewrites_never_change_results(name):
    reference = elements_and_errors(PIPELINES[name]().with_options(_options(REWRITES)), _Error)
    for count in range(len(REWRITES)):
        for disabled in itertools.combinations(REWRITES, count):
            actual = elements_and_errors(PIPELINES[name]().with_options(_options(disabled)), _Error)
            assert_same_run(actual, reference, _Error, f"{disabled} off: ")


def test_map_then_batch_of_large_outputs_with_string_arrays_is_the_same_fused_or_not():
    """Outputs over the small-output size are written into preallocated rows; an object (string) array
    among them must get a batch array of objects, as stacking gives."""

    def row(i):
        return {"image": np.full(5000, i, np.uint8), "tags": np.array([b"a", b"b%d" % i], dtype=object)}

    fused = [b for b in fi.Dataset.range(4).map(row).batch(3)]
    plain = [b for b in fi.Dataset.range(4).map(row).batch(3).with_options(NO_REWRITES)]
    for got, want in zip(fused, plain, strict=True):
        assert got["tags"].dtype == object and got["tags"].tolist() == want["tags"].tolist()
        np.testing.assert_array_equal(got["image"], want["image"])


def test_noop_stages_are_removed_so_map_and_batch_fuses_through_them():
    ds = fi.Dataset.range(10).map(lambda x: x * 2).skip(0).take(-1).repeat(1).shard(1, 0).batch(4)
    with iter(ds) as it:
        batches = list(it)
        names = [stage.name for stage in it.stats()]
    assert [b.tolist() for b in batches] == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]
    assert not any(name.startswith(("skip", "take", "repeat", "shard")) for name in names), names
    assert names[0].startswith("map_and_batch(") and len(names) == 2, names
    with iter(ds.with_options(_options(["noop_elimination"]))) as it:
        assert [b.tolist() for b in it] == [b.tolist() for b in batches]
        kept = [stage.name for stage in it.stats()]
    assert {"shard(1, 0)", "repeat(1)"} <= set(kept), kept
