"""The seam between the web layer and the worker processes.

`fire(settings, reason)` is what the web layer calls after a response has
left: it must cost the request nothing, so it only hands the work to a
background thread (a greenlet under gunicorn's gevent workers) and returns.
What the trigger then does (make sure a supervisor runs for this node and
database) is `trawl.hostlock.ensure_running`. When `settings.trigger_log` (TRAWL_TRIGGER_LOG) names a file, each
trigger appends one JSON line with the wall-clock time it started, so
operators and tests can see when it ran relative to the response.

Self-healing: a trigger fired only on job creation leaves a job stranded
when its supervisor dies. So every gunicorn worker also runs `watchdog`, a
greenlet that every `self_heal_s` (2 s, jittered ±25 %) makes one indexed
query and fires the trigger when runnable work exists and no supervisor
of this node and database is alive (fresh heartbeat and running pid: a
kill -9 is noticed on the next look, not when the heartbeat goes stale);
and reads of progress or stats that see a runnable job with no live worker
fire it too, at most once per `READ_NUDGE_EVERY_S` per process
(`nudge_from_read`). Neither runs with TRAWL_AUTOSTART_WORKERS=0.

"Written to the socket" is not yet "received": the kernel may still hold
the last segment (Nagle, or a busy receiver on loopback). So when the web
layer hands over a duplicate of the client connection, the trigger first
waits, off the request path, until the client's TCP stack has acknowledged
every byte (the socket's unacknowledged-output count is zero), for at most
`DELIVERY_WAIT_S`. The duplicate also holds the connection open until then,
so the server's close cannot discard unsent data.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import socket
import struct
import termios
import threading
import time
from typing import Callable

from trawl.config import Settings
from trawl.logs import Every, RepeatLimiter

log = logging.getLogger(__name__)
# The watchdog may fire every few seconds: a trigger that keeps failing the
# same way (an unwritable run directory) is logged once a minute, not each time.
log.addFilter(RepeatLimiter())

READ_NUDGE_EVERY_S = 3.0


def _record(path: str, reason: str, started: float, bytes_acked: int | None) -> None:
    if not path:
        return
    line = json.dumps({"reason": reason, "started_at": started, "pid": os.getpid(),
                       "bytes_acked": bytes_acked})
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


DELIVERY_WAIT_S = 2.0


def unacknowledged_bytes(sock: socket.socket) -> int:
    """Bytes of output the peer has not acknowledged yet (SIOCOUTQ)."""
    raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    return struct.unpack("i", raw)[0]


# struct tcp_info (linux/tcp.h): tcpi_bytes_acked is a u64 at byte 120.
_TCPI_BYTES_ACKED = slice(120, 128)


def acknowledged_bytes(sock: socket.socket) -> int | None:
    """Bytes of output the peer has acknowledged so far (TCP_INFO), if the kernel says."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(raw) < _TCPI_BYTES_ACKED.stop:
        return None
    return struct.unpack("Q", raw[_TCPI_BYTES_ACKED])[0]


def wait_for_delivery(sock: socket.socket, timeout_s: float = DELIVERY_WAIT_S) -> int | None:
    """Wait until the client has acknowledged the whole response; closes `sock`.

    Returns how many bytes the client had acknowledged when the wait ended.
    """
    deadline = time.monotonic() + timeout_s
    try:
        while unacknowledged_bytes(sock) > 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        return acknowledged_bytes(sock)
    except OSError:  # the connection is already gone: nothing left to deliver
        return None
    finally:
        sock.close()


def run_trigger(settings: Settings, reason: str, delivered_on: socket.socket | None = None) -> None:
    acked = wait_for_delivery(delivered_on) if delivered_on is not None else None
    started = time.time()
    _record(settings.trigger_log, reason, started, acked)
    if not settings.autostart_workers:
        return
    try:
        from trawl import hostlock

        hostlock.ensure_running(settings)
    except Exception:  # a failed trigger must never break the web process
        log.exception("trigger %s failed", reason)


def fire(settings: Settings, reason: str, delivered_on: socket.socket | None = None) -> None:
    """Run the trigger in the background; `delivered_on` is a dup of the client socket."""
    threading.Thread(target=run_trigger, args=(settings, reason, delivered_on), daemon=True,
                     name="trawl-trigger").start()


# -- self-healing ------------------------------------------------------------------


_read_nudge = Every(READ_NUDGE_EVERY_S)
_read_nudge_lock = threading.Lock()


def nudge_from_read(settings: Settings, what: str, count_workers: Callable[[], int],
                    status: str | None = None) -> None:
    """A read of progress or stats saw runnable work (`status` runnable, or None when the
    caller knows): if no live worker is on it, fire the trigger. At most one look per
    READ_NUDGE_EVERY_S per process, so a page polling a frozen job (304s) costs one
    extra query every few seconds."""
    from trawl.jobs import RUNNABLE

    if not settings.autostart_workers or (status is not None and status not in RUNNABLE):
        return
    with _read_nudge_lock:
        if not _read_nudge():
            return
    if count_workers() == 0:
        fire(settings, f"read {what}")


def watchdog(settings: Settings, stop: threading.Event) -> None:
    """The periodic self-healing check of one web process, until `stop` is set."""
    from trawl import hostlock
    from trawl.store import Database, registry

    db = Database(settings.database_url, max_connections=1)
    say_error = Every(60.0)
    try:
        while not stop.wait(settings.self_heal_s * random.uniform(0.75, 1.25)):
            try:
                db.dialect.check_present()
                state = registry.supervision_state(db, settings.node, settings.worker_dead_after_s)
            except Exception as exc:  # the database is away: the supervisor copes, and so do we
                if say_error():
                    log.warning("self-healing check cannot read the database (%s); trying again", exc)
                db.close()
                continue
            if hostlock.needs_supervisor(state):
                run_trigger(settings, "self-heal: runnable work, no live supervisor")
    finally:
        db.close()


def start_watchdog(settings: Settings) -> threading.Event | None:
    """Start `watchdog` in the background (a greenlet under gevent); returns its stop event."""
    if not settings.autostart_workers or settings.self_heal_s <= 0:
        return None
    stop = threading.Event()
    threading.Thread(target=watchdog, args=(settings, stop), daemon=True, name="trawl-watchdog").start()
    return stop
