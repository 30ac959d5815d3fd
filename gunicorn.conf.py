"""gunicorn settings for `make run` and `python app.py serve` (the same server).

gevent workers, so hundreds of open SSE streams cost a greenlet each and
never starve job creation. The early response of POST /api/jobs closes its
connection here, at the server level: gunicorn ignores an application's
hop-by-hop `Connection` header and decides keep-alive itself.

Errors gunicorn answers by itself, before the app sees the request (a
request line over 4094 bytes: 414, a malformed Content-Length, header or
Host: 400, too many headers: 431), are JSON like the app's: gunicorn has no
setting for that page, so `util.write_error`, the one function that writes
it, is replaced below.
"""

import json as _json
import os as _os
import sys as _sys

# The engine package sits beside this file, wherever gunicorn is started from.
_sys.path.insert(0, _os.path.dirname(_os.path.abspath(__file__)))

import gunicorn.util as _gunicorn_util  # noqa: E402 - after the path set-up, like the rest

from trawl.config import load as _load_settings
from trawl.early_close import closes_early
from trawl.netcheck import is_loopback_host, refuse_public_bind_without_token

_settings = _load_settings()
refuse_public_bind_without_token(_settings)

bind = [f"[{_settings.host}]:{_settings.port}" if ":" in _settings.host else f"{_settings.host}:{_settings.port}"]
worker_class = "gevent"
workers = int(_os.environ.get("TRAWL_WEB_WORKERS", "2"))
worker_connections = 2000
backlog = 2048
timeout = 30
graceful_timeout = 10
keepalive = 5
control_socket_disable = True
accesslog = _os.environ.get("TRAWL_ACCESS_LOG") or None
errorlog = "-"
loglevel = _os.environ.get("TRAWL_LOG_LEVEL", "info")
proc_name = "trawl-web"
chdir = _os.path.dirname(_os.path.abspath(__file__))

def pre_request(worker, req):
    # Responses that fire the worker trigger from their close() (the list is
    # trawl/early_close.py): closed so the client is done once it has the body.
    if closes_early(req.method, req.path):
        req.force_close()


def when_ready(server):
    """Refuse a public bind without a token; TCP_NODELAY on the listeners.

    The bind check above only sees TRAWL_HOST; `--bind` on the command line
    or in GUNICORN_CMD_ARGS overrides `bind`, so the addresses gunicorn really
    bound are checked here, before any worker exists to accept a connection.

    TCP_NODELAY (accepted sockets inherit it on Linux): gunicorn writes the
    headers and the body with two send() calls; with Nagle's algorithm the
    body would wait in the kernel for the ACK of the headers, i.e. after the
    app's close() has already fired the trigger.
    """
    import socket

    public = []
    for listener in server.LISTENERS:
        sock = getattr(listener, "sock", listener)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            if not is_loopback_host(sock.getsockname()[0]):
                public.append(str(listener))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if public and not _settings.api_token:
        server.halt(reason=f"refusing to serve on {', '.join(public)}: without TRAWL_API_TOKEN the API would be "
                           "open to the network. Set TRAWL_API_TOKEN=<secret> or bind to 127.0.0.1.", exit_status=1)


def _json_error(sock, status_int, reason, mesg):
    """gunicorn's own error answers (bad request line, headers, Content-Length) as JSON like the app's."""
    body = _json.dumps({"error": reason.lower(), "fields": {"request": mesg} if mesg else {}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    _gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


_gunicorn_util.write_error = _json_error


def on_starting(server):
    from trawl.store import open_database

    db = open_database(_settings.database_url, migrate_now=True)
    db.close()
