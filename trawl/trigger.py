"""The seam between the web layer and the worker processes.

`fire(settings, reason)` is what the web layer calls after a response has
left: it must cost the request nothing, so it only hands the work to a
background thread (a greenlet under gunicorn's gevent workers) and returns.
What the trigger then does (make sure a supervisor runs on this host) is
`trawl.supervisor.ensure_running`. When TRAWL_TRIGGER_LOG names a file, each
trigger appends one JSON line with the wall-clock time it started, so
operators and tests can see when it ran relative to the response.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from trawl.config import Settings

log = logging.getLogger(__name__)


def _record(reason: str, started: float) -> None:
    path = os.environ.get("TRAWL_TRIGGER_LOG")
    if not path:
        return
    line = json.dumps({"reason": reason, "started_at": started, "pid": os.getpid()})
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def run_trigger(settings: Settings, reason: str) -> None:
    started = time.time()
    _record(reason, started)
    if not settings.autostart_workers:
        return
    try:
        from trawl import supervisor

        supervisor.ensure_running(settings)
    except Exception:  # a failed trigger must never break the web process
        log.exception("trigger %s failed", reason)


def fire(settings: Settings, reason: str) -> None:
    threading.Thread(target=run_trigger, args=(settings, reason), daemon=True,
                     name="trawl-trigger").start()
