"""Call a Trawl WSGI app in-process, with the environ a real server would build.

Headers may be given as bytes: they reach the app as latin-1 text, exactly
as gunicorn hands over a header byte >= 0x80 (PEP 3333), so tests can send
what a hostile client sends without a socket. Whatever the app writes to
`wsgi.errors` (Bottle's tracebacks) is kept on the reply.
"""

from __future__ import annotations

import io
import json
from urllib.parse import unquote_to_bytes

from tests.http import Reply


class WSGIReply(Reply):
    errors: str = ""


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def environ_for(method: str, target: str | bytes, body: bytes, headers: dict) -> dict:
    target = _text(target)
    path, _, query = target.partition("?")
    env = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        # Servers percent-decode the path and pass its bytes as latin-1.
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "HTTP_HOST": "127.0.0.1:8080",
    }
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            env[key] = _text(value)
        else:
            env["HTTP_" + key] = _text(value)
    return env


def call_wsgi(app, method: str, target: str | bytes, body=None, headers: dict | None = None) -> WSGIReply:
    headers = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    raw = body.encode() if isinstance(body, str) else (body or b"")
    env = environ_for(method, target, raw, headers)
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"] = int(status.split(" ", 1)[0])
        started["headers"] = {k.lower(): v for k, v in response_headers}

    result = app(env, start_response)
    try:
        data = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    reply = WSGIReply(started["status"], started["headers"], data)
    reply.errors = env["wsgi.errors"].getvalue()
    return reply
