"""``ds.map(fn)``: apply a function to every element, in the consumer's thread or on worker threads."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from fastinput._engine import conversion
from fastinput._engine.arguments import (
    AUTOTUNE,
    check_bool,
    check_callable,
    check_parallelism,
    check_workers,
    fn_name,
    format_arg,
)
from fastinput._engine.buffer import Failure, ItemQueue
from fastinput._engine.checkpoint import stage_state
from fastinput._engine.declared_output import output_checker, output_fits
from fastinput._engine.function_spec import output_spec
from fastinput._engine.iterator import DatasetIterator, IteratorContext
from fastinput._engine.processes import RemoteChunks, pickled_function
from fastinput._engine.resume import InputMarks, drop_units, marked
from fastinput._engine.traits import StageKind, StageTraits
from fastinput.dataset import Dataset
from fastinput.errors import FunctionStopIterationError
from fastinput.ops.parallel import PROCESS_TARGET_CHUNK_NS, AdaptiveChunks, ParallelChunkIterator
from fastinput.options import available_cpus
from fastinput.spec import as_spec

_PLAIN_OUTPUT_TYPES = (np.int64, np.int32, np.float32, np.float64, np.bool_, bytes)


def call_on_element(fn: Callable, element: Any, out: Any = None) -> Any:
    """``fn(*element)`` for tuples, as tf.data unpacks them; ``fn(element)`` otherwise (see ``function_error``).
    ``out``: passed as ``fn``'s ``out=`` keyword unless None (``map_and_batch``'s batch row)."""
    try:
        if out is not None:
            return fn(*element, out=out) if type(element) is tuple else fn(element, out=out)
        return fn(*element) if type(element) is tuple else fn(element)
    except StopIteration as exc:
        raise function_error(fn, exc) from exc


def function_error(fn: Callable, exc: Exception) -> Exception:
    """The error a user function's exception becomes: itself, but a ``StopIteration`` (which would read as the
    end of the data) becomes ``FunctionStopIterationError`` with the ``StopIteration`` as its cause."""
    if not isinstance(exc, StopIteration):
        return exc
    error = FunctionStopIterationError(
        f"the function {fn_name(fn)} raised StopIteration; inside a pipeline that would end the data silently, "
        "so it is raised as an error at this element and the elements after it follow"
    )
    error.__cause__ = exc
    return error


def normalize_output(value: Any) -> Any:
    """A map function's output as an element, converted as tf.data converts it (``conversion.normalize_output``).

    The one place a map output is normalised; numpy in, numpy out costs one type check.
    """
    kind = type(value)
    if kind in _PLAIN_OUTPUT_TYPES or (kind is np.ndarray and value.dtype.kind not in "US"):
        return value
    return conversion.normalize_output(value)


def map_chunk(fn: Callable, chunk: list[Any], out: list[Any] | None = None, wanted: list[None] | tuple = (),
              wake: Callable[[], None] | None = None, stop_at_failure: bool = False) -> list[Any]:
    """``fn`` over a chunk, appended to ``out``; an element whose call raises becomes a ``Failure`` in its place
    (and, with ``stop_at_failure``, the last output: ``fn`` is not called on the elements after it).

    ``wanted``/``wake``: the parallel engine's hand-off (``ParallelChunkIterator``): while ``wanted`` is
    non-empty, a consumer waits for this chunk's results; it is cleared and ``wake()`` called after the next one.
    """
    out = [] if out is None else out
    append = out.append
    unpack = bool(chunk) and type(chunk[0]) is tuple
    base = len(out)

    def hand_off() -> None:
        wanted.clear()  # type: ignore[union-attr]
        wake()  # type: ignore[misc]

    position = 0
    while position < len(chunk):
        try:
            if unpack:
                for element in chunk[position:] if position else chunk:
                    append(normalize_output(fn(*element)))
                    if wanted:
                        hand_off()
            else:
                for element in chunk[position:] if position else chunk:
                    append(normalize_output(fn(element)))
                    if wanted:
                        hand_off()
        except Exception as exc:
            append(Failure(function_error(fn, exc)))
            if wanted:
                hand_off()
            if stop_at_failure:
                break
        position = len(out) - base
    return out


def declared(fn: Callable, output_signature: Any, where: str) -> Callable:
    """``fn``, or (with an ``output_signature``) ``fn`` whose normalised outputs are checked against it: one of
    another structure, dtype or shape raises ``InvalidArgumentError`` (``_engine/declared_output.py``). The
    wrapper keeps ``fn``'s name and, for ``inspect.signature``, its parameters (``map_and_batch``'s ``out=``)."""
    if output_signature is None:
        return fn
    fits, check = output_fits(output_signature), output_checker(output_signature, where)

    def checked(*args: Any, **kwargs: Any) -> Any:  # an output of numpy values that fits is taken as it comes
        output = fn(*args, **kwargs)
        return output if fits(output) else check(normalize_output(output))

    checked.__name__ = checked.__qualname__ = fn_name(fn)
    checked.__wrapped__ = fn  # type: ignore[attr-defined]
    return checked


def resolve_parallelism(num_parallel_calls: int) -> tuple[int, bool]:
    """(worker count, whether the autotuner owns it) for a checked ``num_parallel_calls``."""
    if num_parallel_calls == AUTOTUNE:
        return available_cpus(), True
    return num_parallel_calls, False


def in_processes(op: str, fn: Callable, workers: str) -> bool:
    """Whether ``workers`` asks for worker processes; if so, ``fn`` must pickle (checked now, while building)."""
    if check_workers(op, workers) != "process":
        return False
    pickled_function(op, fn)
    return True


def resolve_deterministic(deterministic: bool | None, ctx: IteratorContext) -> bool:
    """The stage's own setting, else the pipeline's ``Options.deterministic`` (resolved: True unless set)."""
    return ctx.options.deterministic if deterministic is None else deterministic


def mapped_spec(stage: Dataset, map_func: Callable, output_signature: Any) -> Any:
    """The spec of ``map_func``'s outputs on the elements of ``stage``'s input: declared, or learnt by tracing
    it on placeholders (normalised as the outputs are when the pipeline runs)."""
    if output_signature is not None:
        return output_signature
    input_spec = stage.inputs[0].element_spec
    return output_spec(lambda element: normalize_output(call_on_element(map_func, element)), input_spec, str(stage))


class MapDataset(Dataset):
    traits = StageTraits("map", StageKind.MAP, parallel_argument="num_parallel_calls")

    def __init__(self, input_dataset: Dataset, map_func: Callable, num_parallel_calls: int | None,
                 deterministic: bool | None, label: str | None = None, output_signature: Any = None,
                 workers: str = "thread") -> None:
        super().__init__([input_dataset])
        self.map_func = check_callable("map", "map_func", map_func)
        self.num_parallel_calls = check_parallelism("map", "num_parallel_calls", num_parallel_calls)
        self.deterministic = check_bool("map", "deterministic", deterministic, allow_none=True)
        self.in_processes = in_processes("map", map_func, workers)
        """``workers="process"``: the function runs in worker processes (``_engine/processes.py``)."""
        self.label = label or fn_name(map_func)
        self.output_signature = None if output_signature is None else as_spec(output_signature, "map: output_signature")
        """The declared spec of ``map_func``'s outputs (a nest of fastinput specs), or None: learnt."""

    def compute_element_spec(self) -> Any:
        return mapped_spec(self, self.map_func, self.output_signature)

    def checked_func(self) -> Callable:
        """What the stage calls: ``map_func``, its outputs checked against ``output_signature`` if declared."""
        return declared(self.map_func, self.output_signature, str(self))

    def cardinality(self) -> int:
        return self.inputs[0].cardinality()

    def __str__(self) -> str:
        args = [self.label]
        if self.num_parallel_calls is not None:
            args.append(f"num_parallel_calls={format_arg(self.num_parallel_calls)}")
        if self.deterministic is not None:
            args.append(f"deterministic={self.deterministic}")
        if self.in_processes:
            args.append('workers="process"')
        return f"map({', '.join(args)})"

    def make_iterator(self, ctx: IteratorContext) -> DatasetIterator:
        source = self.inputs[0].make_iterator(ctx)
        deterministic = resolve_deterministic(self.deterministic, ctx)
        fn = self.checked_func()
        chunk_fn = functools.partial(map_chunk, fn)
        if self.in_processes:  # one process when sequential: the function still leaves the consumer's GIL
            parallelism, autotuned = resolve_parallelism(self.num_parallel_calls or 1)
            remote = RemoteChunks(pickled_function("map", chunk_fn), per_element=True)
            return ParallelChunkIterator(self, ctx, source, remote, parallelism, autotuned, deterministic,
                                         AdaptiveChunks(PROCESS_TARGET_CHUNK_NS))
        if self.num_parallel_calls is None:
            return _MapIterator(self, ctx, source, fn)
        parallelism, autotuned = resolve_parallelism(self.num_parallel_calls)
        return ParallelChunkIterator(self, ctx, source, chunk_fn, parallelism, autotuned, deterministic,
                                     AdaptiveChunks(), incremental=True)


class _MapIterator(DatasetIterator):
    """Sequential map: runs the function in the consumer's thread, a chunk at a time.

    A chunk whose outputs hold a failed call waits in an ``ItemQueue``: the
    error is handed out at its place, after the outputs before it, and the
    outputs after it follow (each element's function is called once).

    Saved while it holds such a chunk, it saves the input's state before the
    chunk and how many of its outputs went out (the error not yet, while it
    waits): a restore pulls them again and drops them, then meets the error.
    """

    def __init__(self, dataset: MapDataset, ctx: IteratorContext, source: DatasetIterator, fn: Callable) -> None:
        super().__init__(dataset, ctx, [source])
        self._fn = fn
        self._source = source
        self._outputs = ItemQueue()
        self._marks = InputMarks(source)
        self._mark: dict[str, Any] | None = None  # the input's state before the chunk whose outputs are held
        self._held = 0  # that chunk's outputs
        self._skip = 0  # after a restore: input elements whose outputs went out

    def produce(self) -> Any:
        if self._outputs or self._skip:
            return self.produce_chunk(1)[0]
        return normalize_output(call_on_element(self._fn, self._source.get_next()))

    def produce_chunk(self, n: int) -> list[Any]:
        if self._skip:
            drop_units(self._source, self._skip)
            self._skip = 0
        if not self._outputs:
            mark = self._marks.take()
            outputs = map_chunk(self._fn, self._source.get_next_chunk(n))
            if not any(type(output) is Failure for output in outputs):
                return outputs  # the usual case, handed on as it is: the queue only holds a chunk that met an error
            self._outputs.put(outputs)
            self._mark, self._held = mark, len(outputs)
        out = self._outputs.take(n)
        if type(out[0]) is Failure:
            raise out[0].exc
        return out

    def get_state(self) -> dict[str, Any]:
        if self._outputs:
            return stage_state(self.op, {"skip": self._held - len(self._outputs)}, [marked(self._source, self._mark)])
        return stage_state(self.op, {"skip": self._skip}, [self._source.get_state()])

    def restore_own_state(self, state: dict[str, Any]) -> None:
        self._skip = state["skip"]
