"""gunicorn settings for `make run` and `python app.py serve` (the same server).

gevent workers, so hundreds of open SSE streams cost a greenlet each and
never starve job creation. The early response of POST /api/jobs closes its
connection here, at the server level: gunicorn ignores an application's
hop-by-hop `Connection` header and decides keep-alive itself.
"""

import os as _os
import sys as _sys

# The engine package sits beside this file, wherever gunicorn is started from.
_sys.path.insert(0, _os.path.dirname(_os.path.abspath(__file__)))

from trawl.config import load as _load_settings
from trawl.early_close import closes_early
from trawl.netcheck import refuse_public_bind_without_token

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
    """TCP_NODELAY on the listeners (accepted sockets inherit it on Linux).

    gunicorn writes the headers and the body with two send() calls; with
    Nagle's algorithm the body would wait in the kernel for the ACK of the
    headers, i.e. after the app's close() has already fired the trigger.
    """
    import socket

    for listener in server.LISTENERS:
        sock = getattr(listener, "sock", listener)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def on_starting(server):
    from trawl.store import open_database

    db = open_database(_settings.database_url, migrate_now=True)
    db.close()
