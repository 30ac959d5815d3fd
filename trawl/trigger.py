"""The seam between the web layer and the worker processes.

`fire(settings, reason)` is what the web layer calls after a response has
left: it must cost the request nothing, so it only hands the work to a
background thread (a greenlet under gunicorn's gevent workers) and returns.
What the trigger then does (make sure a supervisor runs on this host) is
`trawl.supervisor.ensure_running`. When `settings.trigger_log` (TRAWL_TRIGGER_LOG) names a file, each
trigger appends one JSON line with the wall-clock time it started, so
operators and tests can see when it ran relative to the response.

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
import socket
import struct
import termios
import threading
import time

from trawl.config import Settings

log = logging.getLogger(__name__)


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
        from trawl import supervisor

        supervisor.ensure_running(settings)
    except Exception:  # a failed trigger must never break the web process
        log.exception("trigger %s failed", reason)


def fire(settings: Settings, reason: str, delivered_on: socket.socket | None = None) -> None:
    """Run the trigger in the background; `delivered_on` is a dup of the client socket."""
    threading.Thread(target=run_trigger, args=(settings, reason, delivered_on), daemon=True,
                     name="trawl-trigger").start()
