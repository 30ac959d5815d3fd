"""Logging for the supervisor and its workers: one format, and no flood of identical errors.

A database that is gone for good used to make every worker log the same
traceback every 2 s (6 MB in 25 minutes). `RepeatLimiter` is a handler
filter: the first record of a kind passes, identical ones within
`window_s` (60 s) are counted and dropped, and the first one after the
window passes with the count of those held back. So one repeating error
costs at most one record a minute per process, whatever its rate.

"Identical" = same logger, level, message template, the arguments that are
not floats (a backoff delay or a duration differs every time and is not
what makes two errors different) and the exception's type and text.
Workers are forked from the supervisor and inherit its handler and filter.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import OrderedDict
from typing import Callable

LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
REPEAT_WINDOW_S = 60.0
MAX_KINDS = 512  # distinct kinds remembered; the oldest is forgotten first


def _kind(record: logging.LogRecord) -> tuple:
    args = record.args if isinstance(record.args, tuple) else ()
    exc = record.exc_info[1] if record.exc_info else None
    return (record.name, record.levelno, str(record.msg),
            tuple(str(a) for a in args if not isinstance(a, float)),
            None if exc is None else (type(exc).__name__, str(exc)))


class RepeatLimiter(logging.Filter):
    def __init__(self, window_s: float = REPEAT_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.window_s = window_s
        self.clock = clock
        self._kinds: OrderedDict[tuple, list] = OrderedDict()  # kind -> [passed_at, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        kind, now = _kind(record), self.clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self.window_s:
            seen[1] += 1
            return False
        held = seen[1] if seen else 0
        self._kinds[kind] = [now, 0]
        self._kinds.move_to_end(kind)
        while len(self._kinds) > MAX_KINDS:
            self._kinds.popitem(last=False)
        if held:
            record.msg = f"{record.getMessage()} [{held} identical messages held back in the last {self.window_s:.0f} s]"
            record.args = ()
        return True


def configure(stream=None) -> None:
    """Root logging to stderr (the supervisor's log file) with repeats limited."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("TRAWL_LOG_LEVEL", "INFO").upper())


class Every:
    """True at most once per `every_s`: for a loop that would otherwise say the same thing each turn."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic):
        self.every_s = every_s
        self.clock = clock
        self._last: float | None = None

    def __call__(self) -> bool:
        now = self.clock()
        if self._last is not None and now - self._last < self.every_s:
            return False
        self._last = now
        return True
