"""Per-record ``fi.parse_example([record], features)`` calls answered from one batch parse made ahead.

A user's per-record function (the README's ``preprocess``) starts with
``fi.parse_example([record], features)``; inside ``map_and_batch`` that is
one kernel call per record, each letting go of the GIL twice (a hand-off to
another thread each time, which with a busy core beside waits for a core) and
running several microseconds of Python between JPEG decodes that leave the
caches cold. ``map_and_batch`` instead runs each row of a batch through
``BatchParse.run``, which marks the row's record as the thread's current one;
``parse_example`` asks ``take`` first:

- on the batch's first row, ``take`` learns the parser the call compiles to
  (a traced first call: the function is not inspected, its call is seen);
- then ``BatchParse.parse`` parses the other rows' records in one native call;
- on those rows, a call that is exactly ``parse_example([record], features)``
  with the row's record itself and a mapping compiling to that same parser gets
  the record's row of the batch parse, once, as fresh arrays; any other call
  parses as before.

Why that is invisible: only parsers whose features are all
``FixedLenFeature`` parse ahead, so a record's row of the batch is what
parsing it alone gives (a ``VarLenFeature``'s shape or a sequence feature's
padding would depend on the batch's longest); the native kernel declines a
batch if any record is one it would decline alone, and then no row is parsed
ahead: every call parses its own record, so a corrupt record raises its own
error at its own row, and the rows before it are made as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fastinput.readers.example import ExampleParser, Parsed

MIN_RECORDS = 2
"""Fewer records left than this are not worth a batch parse: each call parses its own."""

_local = threading.local()


class BatchParse:
    """One batch's parse-ahead: learns the parser from its first row's call (``parser``), then ``parse`` parses
    the other rows' records in one native call and ``run`` serves each row its own."""

    def __init__(self) -> None:
        self.parser: ExampleParser | None = None
        self._parsed: Parsed | None = None
        self._positions: dict[int, int] = {}  # row of the batch -> row of the batch parse, until served
        self._strings: list[np.ndarray] = []  # the string columns of the batch parse

    def run(self, call: Callable[[Any, Any], Any], element: Any, out: Any, row: int) -> Any:
        """``call(element, out)``, run as row ``row`` of the batch (its calls may be served by ``take``)."""
        if type(element) is not bytes:
            return call(element, out)
        outer = getattr(_local, "current", None)  # a row of another stage iterated inside this one's function
        _local.current = (element, row, self)
        try:
            return call(element, out)
        finally:
            _local.current = outer

    def parse(self, elements: list[Any], first: int) -> None:
        """Parse the records (the ``bytes``) of ``elements[first:]`` in one call with the learnt parser; nothing if
        none was learnt, too few records, features whose rows depend on the batch, or a batch the native kernel
        declines (a corrupt record: each call then parses its own and gets its own error)."""
        rows = [row for row in range(first, len(elements)) if type(elements[row]) is bytes]
        if self.parser is None or len(rows) < MIN_RECORDS:
            return
        parsed = self.parser.parse_rows([elements[row] for row in rows])
        if parsed is not None:
            self._strings = [column for column in parsed.values() if column.dtype == object]
            self._positions = {row: at for at, row in enumerate(rows)}
            self._parsed = parsed

    def _take(self, parser: ExampleParser, row: int) -> Parsed | None:
        if self._parsed is None:  # not parsed ahead (yet): learn the parser from the first call
            if self.parser is None:
                self.parser = parser
            return None
        at = self._positions.pop(row, None) if parser is self.parser else None
        if at is None:
            return None
        parsed = {key: column[at:at + 1].copy() for key, column in self._parsed.items()}
        for column in self._strings:  # the row's strings are the row's alone now: freed with its output
            column[at] = None
        return parsed


def take(serialized: Any, parser: ExampleParser) -> Parsed | None:
    """The row parsed ahead for ``parser(serialized)``, when ``serialized`` is ``[record]`` (or a 1-tuple) holding
    the thread's current row's record itself, parsed ahead by ``parser`` and not served yet; else None (parse it)."""
    current = getattr(_local, "current", None)
    if (current is None or type(serialized) not in (list, tuple) or len(serialized) != 1
            or serialized[0] is not current[0]):
        return None
    return current[2]._take(parser, current[1])
