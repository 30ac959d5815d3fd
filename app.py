"""Trawl's web layer and CLI: routes, validation, the early response, SSE.

Nothing here crawls or writes SQL: requests are validated, handed to the
store (`trawl.store`), and the workers are triggered only after the
response has left (`trawl.trigger`). Run `python app.py --help` for the CLI.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import secrets
import socket
import sys
import time
import weakref
from collections import OrderedDict
from urllib.parse import quote, urlsplit

import bottle
import gevent
from bottle import Bottle, HTTPResponse, request, response

from trawl import config, notify, progress, trigger
from trawl.config import Settings
from trawl.early_close import EARLY_CLOSE_ROUTES, closes_early
from trawl.health import run_checks
from trawl.jobs import InvalidOptions, Status, TransitionRefused, parse_options
from trawl.netcheck import is_allowed_host
from trawl.store import Database, open_database
from trawl.store import deliveries, job_rows, registry, results, sites
from trawl.store.job_rows import JobNotFound


class _OfThisApp:
    """The settings or database of the application answering the current request.

    Each app from `create_app` carries its own (in `app.config`), so two apps
    with different settings can live in one process (the tests do). Route
    code reads `SETTINGS.x` / `DB` as before. Outside a request (a thread the
    request started) they mean the process's only app, as under gunicorn;
    with several apps that is ambiguous and refused: such code should be
    handed `SETTINGS.get()`, the object itself.
    """

    def __init__(self, key: str, name: str):
        self._key, self._name = key, name

    def get(self):
        try:
            return request.app.config[self._key]
        except RuntimeError:  # Bottle: "Request context not initialized." (another thread)
            pass
        apps = list(_APPS)
        if len(apps) == 1:
            return apps[0].config[self._key]
        raise RuntimeError(f"{self._name} read outside a request with {len(apps)} apps in this process: "
                           f"pass {self._name}.get(), the object itself, to code that runs in another thread")

    def __getattr__(self, name: str):
        return getattr(self.get(), name)


SETTINGS: Settings = _OfThisApp("trawl.settings", "SETTINGS")  # type: ignore[assignment]
DB: Database = _OfThisApp("trawl.db", "DB")  # type: ignore[assignment]

_APPS: weakref.WeakSet[Bottle] = weakref.WeakSet()  # every app create_app made (one under gunicorn)

# Routes are declared on this template and copied into every app that
# create_app builds (Bottle.merge); the hooks and error pages are per app.
routes = Bottle()


# -- JSON answers and errors ---------------------------------------------------


def json_response(data, status: int = 200, headers: dict | None = None) -> HTTPResponse:
    body = json.dumps(data, separators=(",", ":")).encode()
    out = HTTPResponse(body, status=status, headers=headers or {})
    out.content_type = "application/json"
    out.set_header("Content-Length", str(len(body)))
    return out


def fail(status: int, error: str, fields: dict | None = None) -> HTTPResponse:
    """Raise this to leave a handler with a 4xx JSON error naming the fields."""
    return json_response({"error": error, "fields": fields or {}}, status)


ERROR_MESSAGES = {400: "bad request", 403: "forbidden", 404: "not found", 405: "method not allowed",
                  408: "request timeout", 411: "length required", 413: "request body too large",
                  415: "unsupported content type", 500: "internal error", 503: "service unavailable"}


def error_page(err: bottle.HTTPError):
    """Bottle's own errors (unknown route, unparsable body, crash) as JSON, like ours."""
    fields = {"body": str(err.body)} if err.status_code in (400, 413) and err.body else {}
    response.content_type = "application/json"
    return json.dumps({"error": ERROR_MESSAGES.get(err.status_code, err.status_line), "fields": fields})


def map_job_errors(callback):
    """Bottle plugin: the store's "no such job" is a 404 and a refused transition a 409, on every route."""

    def wrapper(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except JobNotFound as exc:
            raise fail(404, "no such job", {"id": str(exc.args[0]) if exc.args else ""}) from None
        except TransitionRefused as exc:
            hint = "; only a finished job can be deleted, cancel it first" if exc.action == "delete" else ""
            raise fail(409, str(exc) + hint, {"status": exc.status.value}) from None

    return wrapper


routes.install(map_job_errors)


# -- what the request says ----------------------------------------------------------


def header(name: str, default: str = "") -> str:
    """A request header as text, whatever bytes the client sent.

    Servers hand header bytes over as latin-1 (PEP 3333); Bottle's
    `get_header` re-decodes them as UTF-8 and raises on anything else, which
    made `Authorization: Bearer \\xe9` a 500. Bytes that are not UTF-8 become
    U+FFFD here, so they simply fail whatever check reads them.
    """
    key = name.upper().replace("-", "_")
    raw = request.environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key)
    if raw is None:
        return default
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def require_known_host():
    """DNS-rebinding guard: only loopback names and TRAWL_ALLOWED_HOSTS are answered, with or without a token.

    A page on evil.example can re-point its name at 127.0.0.1; its requests
    then reach us with `Host: evil.example` and a matching Origin, so the
    Origin check alone cannot tell. A request without Host (HTTP/1.0) names
    no other site and is answered.
    """
    host = header("Host")
    if host and not is_allowed_host(host, SETTINGS.allowed_host_names):
        raise fail(421, "this server does not answer to that host name",
                   {"Host": "use 127.0.0.1 or localhost, or add the name to TRAWL_ALLOWED_HOSTS"})


def read_body_in_time():
    """Read the request body within TRAWL_BODY_READ_TIMEOUT_S, or answer 408 and drop the connection.

    A client announcing a 1 MB body and sending 12 bytes would otherwise hold
    its connection (and a greenlet) until it gave up. The deadline covers the
    whole body under gevent and every single read under any worker class.
    gunicorn has already undone a chunked transfer coding, so the route gets
    the plain bytes with their length (Bottle would decode the chunks again);
    framing gunicorn cannot parse is a 400, more than TRAWL_MAX_BODY_BYTES a
    413. Bodies announced above the limit are left unread for their route's 413.
    """
    environ = request.environ
    sock = environ.get("gunicorn.socket")
    length = request.content_length
    chunked = "chunked" in header("Transfer-Encoding").lower()
    limit = SETTINGS.max_body_bytes
    if sock is None or not (length > 0 or chunked) or length > limit:
        return
    budget = SETTINGS.body_read_timeout_s
    previous = sock.gettimeout()
    sock.settimeout(budget)
    try:
        with gevent.Timeout(budget, TimeoutError):
            body = _read_up_to(environ["wsgi.input"], limit + 1)
    except OSError:  # socket.timeout is a TimeoutError
        # Nothing more will be read: the server finds the stream at its end and closes.
        _shutdown_reading(sock)
        raise fail(408, "request body not received in time", {"body": f"not received within {budget:g} s"}) from None
    except Exception as exc:  # gunicorn's parse errors: what the client sent is not HTTP framing
        _shutdown_reading(sock)
        raise fail(400, "malformed request body", {"body": str(exc)[:200] or type(exc).__name__}) from None
    finally:
        sock.settimeout(previous)
    if len(body) > limit:
        _shutdown_reading(sock)
        raise fail(413, "request body too large", {"body": f"at most {limit} bytes"})
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)


def _read_up_to(stream, limit: int) -> bytes:
    parts, size = [], 0
    while size < limit and (part := stream.read(min(65536, limit - size))):
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _shutdown_reading(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass


# -- auth ------------------------------------------------------------------------


def token_ok(header: str) -> bool:
    expected = SETTINGS.api_token or ""
    given = header[7:] if header.startswith("Bearer ") else ""
    return hmac.compare_digest(given.encode(), expected.encode())


def require_token():
    """/api/* takes the bearer token, or the UI's login session plus its CSRF token.

    A bearer token is never attached by a browser on its own, so only
    cookie-borne (or unauthenticated, tokenless) writes are checked for
    forgery; see the pages section for the session and CSRF helpers.
    """
    if not (request.path.startswith("/api/") or request.path == "/metrics"):
        return
    if SETTINGS.api_token and token_ok(header("Authorization")):
        return
    unsafe = request.method not in SAFE_METHODS
    if unsafe and cross_site_request():
        raise fail(403, "cross-site request refused", {"Origin": "must be this site"})
    if not SETTINGS.api_token:
        return
    if session_nonce() is None:  # (a session cookie is the UI's token)
        raise fail(401, "missing or wrong bearer token", {"Authorization": "Bearer token required"})
    if unsafe and not csrf_ok():
        raise fail(403, "missing or wrong CSRF token", {"csrf_token": "reload the page and try again"})


def authenticated() -> bool:
    """True when no token is set, or the caller has it (bearer header or login session)."""
    return not SETTINGS.api_token or token_ok(header("Authorization")) or session_nonce() is not None


# -- request parsing ------------------------------------------------------------


def int_param(name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses, and
    # int() refuses more than 4300 digits; no bound here needs more than 12.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or not low <= int(raw) <= high:
        raise fail(400, f"invalid query parameter {name}", {name: f"must be a whole number from {low} to {high}"})
    return int(raw)


def _urls_from_upload(upload) -> list[str]:
    """A .txt or .csv list of seeds: every cell that looks like a URL.

    Any line ending counts as one (CR alone from old Mac exports included):
    the csv module gets the file one line at a time, so it never meets a
    bare CR inside what it thinks is a line.
    """
    text = upload.file.read(SETTINGS.max_body_bytes + 1).decode("utf-8-sig", errors="replace")
    urls = []
    try:
        for row in csv.reader(text.splitlines()):
            urls.extend(cell.strip() for cell in row if cell.strip().lower().startswith(("http://", "https://")))
    except csv.Error as exc:
        raise fail(400, "unreadable seed list", {"urls_file": f"not a text or CSV list: {exc}"}) from None
    return urls


def read_job_body() -> tuple[object, bool]:
    """(body, from_form) of a job-creation request, or raise a 4xx."""
    if (request.content_length or 0) > SETTINGS.max_body_bytes:
        raise fail(413, "request body too large", {"body": f"at most {SETTINGS.max_body_bytes} bytes"})
    ctype = (request.content_type or "").split(";")[0].strip().lower()
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = {k: request.forms.getunicode(k) for k in request.forms.keys()}
            # Several "urls" fields (one per input) add up, like lines of one.
            form["urls"] = "\n".join(request.forms.decode().getall("urls")) if "urls" in form else None
            upload = request.files.get("urls_file")
        except (bottle.HTTPError, ValueError, UnicodeError) as exc:
            raise fail(400, "malformed form body", {"body": str(exc)[:200] or "cannot parse"}) from None
        if form["urls"] is None:
            del form["urls"]
        if upload is not None and upload.filename:
            extra = _urls_from_upload(upload)
            form["urls"] = "\n".join(filter(None, [form.get("urls") or "", *extra]))
        return form, True
    if ctype not in ("application/json", ""):
        raise fail(415, "unsupported content type", {"Content-Type": "use application/json or a form"})
    raw = request.body.read(SETTINGS.max_body_bytes + 1)
    if len(raw) > SETTINGS.max_body_bytes:
        raise fail(413, "request body too large", {"body": f"at most {SETTINGS.max_body_bytes} bytes"})
    try:
        return json.loads(raw.decode("utf-8")), False
    except (ValueError, RecursionError):
        raise fail(400, "body is not valid JSON", {"body": "invalid JSON"}) from None


# -- the early response -----------------------------------------------------------


class BodyThenTrigger:
    """A WSGI body that fires the worker trigger from close().

    The server calls close() only after it has written the whole body to the
    socket, so the trigger can never delay the client. Bottle keeps our
    close() when it wraps the iterable; gunicorn calls it after resp.close().
    The trigger also gets a duplicate of the client socket, to wait (in the
    background) until the client has acknowledged every byte.
    """

    def __init__(self, body: bytes, reason: str, settings: Settings, client_socket=None):
        self.body = body
        self.reason = reason
        self.settings = settings
        self.client_socket = client_socket

    def __iter__(self):
        yield self.body

    def close(self) -> None:
        duplicate = None
        if self.client_socket is not None:
            try:
                duplicate = self.client_socket.dup()
            except OSError:
                duplicate = None
        trigger.fire(self.settings, self.reason, delivered_on=duplicate)


def accepted_with_trigger(data: dict, location: str, reason: str) -> HTTPResponse:
    # The server closes these connections after the body only for the routes it knows.
    assert closes_early(request.method, request.path), f"{request.path} missing from EARLY_CLOSE_ROUTES"
    body = json.dumps(data, separators=(",", ":")).encode()
    out = HTTPResponse(BodyThenTrigger(body, reason, SETTINGS.get(), request.environ.get("gunicorn.socket")),
                       status=202)
    out.content_type = "application/json"
    out.set_header("Content-Length", str(len(body)))
    out.set_header("Location", location)
    # gunicorn drops this hop-by-hop header and closes by itself (see
    # trawl/early_close.py and gunicorn.conf.py pre_request); other servers honour it.
    out.set_header("Connection", "close")
    return out


# -- jobs --------------------------------------------------------------------------


def load_job_or_404(job_id: str) -> dict:
    """The job row; JobNotFound becomes the 404 in map_job_errors."""
    return job_rows.load_job(DB, job_id)


def live_workers_for(job_id: str) -> int:
    return registry.count_live_workers(DB, job_id, SETTINGS.worker_dead_after_s)


@routes.post("/api/jobs")
def create_job():
    body, from_form = read_job_body()
    try:
        options = parse_options(body, from_form=from_form)
    except InvalidOptions as exc:
        raise fail(400, "invalid job options", exc.fields) from None
    row = job_rows.insert_job(DB, options)
    links = progress.job_links(row["id"])
    return accepted_with_trigger(
        {"id": row["id"], "status": row["status"], "links": links},
        location=links["self"], reason=f"job {row['id']}",
    )


@routes.get("/api/jobs")
def list_jobs():
    limit = int_param("limit", 20, 1, 200)
    before = request.query.get("before") or None
    if before and not job_rows.looks_like_job_id(before):
        raise fail(400, "invalid query parameter before", {"before": "a job id from the previous page's next"})
    status = request.query.get("status") or None
    if status and status not in {s.value for s in Status}:
        raise fail(400, "invalid query parameter status", {"status": "one of " + ", ".join(s.value for s in Status)})
    rows, cursor = job_rows.list_jobs(DB, limit, before, status)
    return json_response({"jobs": [progress.job_document(r) for r in rows], "next": cursor})


@routes.get("/api/jobs/<job_id>")
def get_job(job_id: str):
    job = load_job_or_404(job_id)
    doc = progress.job_document(job, live_workers_for(job_id))
    doc["notify"] = job_notify(job)
    return json_response(doc)


def job_notify(job: dict) -> dict | None:
    """The webhook's delivery state (one primary-key read, only for jobs with a notify_url)."""
    if not json.loads(job["options"]).get("notify_url"):
        return None
    return notify.notify_document(job, deliveries.delivery_for(DB, job["id"]))


@routes.get("/api/jobs/<job_id>/progress")
def get_progress(job_id: str):
    version, status = job_rows.job_version(DB, job_id)
    headers = {"ETag": progress.etag(version), "Cache-Control": "no-cache"}
    if progress.etag_matches(header("If-None-Match"), version):
        # A frozen job answers 304 forever: the read itself may revive its workers.
        trigger.nudge_from_read(SETTINGS.get(), job_id, lambda: live_workers_for(job_id), status)
        return HTTPResponse(status=304, headers=headers)
    job = load_job_or_404(job_id)
    headers["ETag"] = progress.etag(int(job["version"]))
    workers = live_workers_for(job_id)
    trigger.nudge_from_read(SETTINGS.get(), job_id, lambda: workers, job["status"])
    return json_response(progress.progress_document(job, workers), headers=headers)


@routes.get("/api/jobs/<job_id>/events")
def stream_events(job_id: str):
    load_job_or_404(job_id)
    last = progress.parse_last_event_id(header("Last-Event-ID") or request.query.get("lastEventId"))

    # The stream outlives the request's handler: it keeps the app's own objects.
    db, dead_after_s = DB.get(), SETTINGS.worker_dead_after_s

    def read_version():
        try:
            return job_rows.job_version(db, job_id)
        except JobNotFound:  # deleted while watched: the stream ends with done
            return None

    def read_progress():
        try:
            job = job_rows.load_job(db, job_id)
        except JobNotFound:
            return None
        return progress.progress_document(job, registry.count_live_workers(db, job_id, dead_after_s))

    response.content_type = "text/event-stream"
    response.set_header("Cache-Control", "no-cache")
    response.set_header("X-Accel-Buffering", "no")
    return progress.watch(read_version, read_progress, last)


def job_action(job_id: str, action: str):
    job = job_rows.apply_action(DB, job_id, action)
    doc = progress.job_document(job)
    if action in ("resume", "retry"):
        return accepted_with_trigger(doc, doc["links"]["self"], reason=f"{action} {job_id}")
    return json_response(doc)


@routes.post("/api/jobs/<job_id>/<action:re:cancel|pause>")
def act_on_job(job_id: str, action: str):
    return job_action(job_id, action)


@routes.post("/api/jobs/<job_id>/<action:re:resume|retry>")  # answers early: see EARLY_CLOSE_ROUTES
def restart_job(job_id: str, action: str):
    return job_action(job_id, action)


@routes.delete("/api/jobs/<job_id>")
def delete_job(job_id: str):
    job_rows.delete_job(DB, job_id)
    return json_response({"id": job_id, "deleted": True})


# -- results -------------------------------------------------------------------------


def stream_csv(rows, fields):
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([";".join(row[f]) if isinstance(row[f], list) else row[f] for f in fields])
        if buf.tell() > 64 * 1024:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


@routes.get("/api/jobs/<job_id>/emails")
def list_emails(job_id: str):
    load_job_or_404(job_id)
    q = (request.query.getunicode("q") or "").strip() or None
    site = site_param()
    fmt = request.query.get("format") or "json"
    if fmt == "csv":
        response.content_type = "text/csv; charset=utf-8"
        response.set_header("Content-Disposition", f'attachment; filename="trawl-{job_id}-emails.csv"')
        return stream_csv(results.iter_emails(DB, job_id, q, site), results.EMAIL_FIELDS)
    if fmt == "jsonl":
        return stream_jsonl(results.iter_emails(DB, job_id, q, site), f"trawl-{job_id}-emails.jsonl")
    if fmt != "json":
        raise fail(400, "unknown format", {"format": "json, csv or jsonl"})
    limit = int_param("limit", 100, 1, 1000)
    offset = int_param("offset", 0, 0, 10**9)
    emails, total = results.list_emails(DB, job_id, limit, offset, q, site)
    return json_response({"emails": emails, "total": total})


def site_param() -> str | None:
    site = request.query.getunicode("site")
    if site is None or site == "":
        return None
    if len(site) > 255 or any(ch in site for ch in "\x00\r\n"):
        raise fail(400, "invalid query parameter site", {"site": "a site name as /sites lists it"})
    return site.strip().lower()


def stream_jsonl(rows, filename: str):
    """One JSON object per line, flushed every ~64 KiB: memory stays at one page of rows."""
    response.content_type = "application/x-ndjson; charset=utf-8"
    response.set_header("Content-Disposition", f'attachment; filename="{filename}"')

    def lines():
        buf = []
        size = 0
        for row in rows:
            line = json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n"
            buf.append(line)
            size += len(line)
            if size > 64 * 1024:
                yield "".join(buf).encode()
                buf, size = [], 0
        yield "".join(buf).encode()

    return lines()


@routes.get("/api/jobs/<job_id>/sites")
def list_sites(job_id: str):
    job = load_job_or_404(job_id)
    state = request.query.get("state") or None
    if state and state not in sites.SITE_STATES:
        raise fail(400, "unknown site state", {"state": "one of " + ", ".join(sites.SITE_STATES)})
    fmt = request.query.get("format") or "json"
    if fmt == "csv":
        response.content_type = "text/csv; charset=utf-8"
        response.set_header("Content-Disposition", f'attachment; filename="trawl-{job_id}-sites.csv"')
        return stream_csv(sites.csv_records(sites.iter_sites(DB, job_id, state)), sites.CSV_FIELDS)
    if fmt != "json":
        raise fail(400, "unknown format", {"format": "json or csv"})
    sort = request.query.get("sort") or "site"
    if sort not in sites.SORTS:
        raise fail(400, "unknown sort", {"sort": "one of " + ", ".join(sites.SORTS)})
    limit = int_param("limit", 100, 1, 1000)
    offset = int_param("offset", 0, 0, 10**9)
    counts = site_counts(job)
    body = {"sites": sites.page_of_sites(DB, job_id, limit, offset, state, sort),
            "total": counts[state] if state else sum(counts.values())}
    if request.query.get("counts") == "1":  # the job page's filter buttons, in the same round trip
        body["states"] = counts
    return json_response(body)


SITE_COUNTS_KEPT = 256


def site_counts(job: dict) -> dict[str, int]:
    """The job's sites by state, counted once per job version in this process.

    Counting walks the job's sites (O(sites): ~10 ms at 20,000 on SQLite),
    while every change to a site row bumps the job's version in the same
    transaction, so (job, version) names one exact answer: a finished job's
    pages cost one index walk of `limit` rows each.
    """
    cache = request.app.config.get("trawl.site_counts")
    if cache is None:
        cache = request.app.config["trawl.site_counts"] = OrderedDict()
    key = (job["id"], int(job["version"]))
    counts = cache.get(key)
    if counts is None:
        counts = cache[key] = sites.count_by_state(DB, job["id"])
        while len(cache) > SITE_COUNTS_KEPT:
            cache.popitem(last=False)
    return counts


@routes.get("/api/jobs/<job_id>/pages")
def list_pages(job_id: str):
    load_job_or_404(job_id)
    state = request.query.get("state") or None
    if state and state not in results.PAGE_STATES:
        raise fail(400, "unknown page state", {"state": "one of " + ", ".join(results.PAGE_STATES)})
    limit = int_param("limit", 100, 1, 1000)
    offset = int_param("offset", 0, 0, 10**9)
    pages, total = results.list_pages(DB, job_id, limit, offset, state)
    return json_response({"pages": pages, "total": total})


# -- workers, stats, health, metrics ------------------------------------------------------


def worker_document(row: dict) -> dict:
    doc = {k: row[k] for k in ("id", "host", "pid", "pages", "rss_bytes", "state")}
    doc["job"] = row["job_id"]
    doc["started_at"] = progress.iso(row["started_at"])
    doc["heartbeat_at"] = progress.iso(row["heartbeat_at"])
    return doc


@routes.get("/api/workers")
def list_workers():
    rows = registry.live_workers(DB, SETTINGS.worker_dead_after_s)
    return json_response({"workers": [worker_document(r) for r in rows]})


@routes.post("/api/workers/trigger")
def trigger_workers():
    return accepted_with_trigger({"triggered": True}, "/api/workers", reason="api trigger")


@routes.get("/api/stats")
def stats():
    data = job_rows.stats(DB, time.time() - SETTINGS.worker_dead_after_s)
    if data["jobs"]["queued"] + data["jobs"]["running"]:
        trigger.nudge_from_read(SETTINGS.get(), "stats", lambda: data["workers"])
    return json_response(data)


@routes.get("/health")
def health():
    """With a token set, callers without it learn only whether Trawl is healthy."""
    if wants_html_page() and not authenticated():
        require_login()
    report = run_checks(DB, SETTINGS)
    code = 200 if report["status"] == "ok" else 503
    if not authenticated():
        return json_response({"status": report["status"]}, code, {"Cache-Control": "no-cache"})
    if wants_html_page():
        return health_page(report, code)
    return json_response(report, code, {"Cache-Control": "no-cache", "Vary": "Accept"})


def prometheus_lines(data: dict) -> list[str]:
    lines = ["# HELP trawl_jobs Jobs by status.", "# TYPE trawl_jobs gauge"]
    lines += [f'trawl_jobs{{status="{k}"}} {v}' for k, v in data["jobs"].items()]
    lines += ["# HELP trawl_pages Pages by state, over all jobs.", "# TYPE trawl_pages gauge"]
    lines += [f'trawl_pages{{state="{k}"}} {v}' for k, v in data["pages"].items()]
    for name, key, help_text in (
        ("trawl_workers_live", "workers", "Live worker processes."),
        ("trawl_emails", "emails", "Distinct addresses found, summed over jobs."),
        ("trawl_bytes", "bytes", "Bytes downloaded, summed over jobs."),
        ("trawl_pages_per_second", "pages_per_s", "Pages fetched per second over the last minute."),
    ):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {data[key]}"]
    return lines


@routes.get("/metrics")  # behind the token like /api/* (Prometheus sends it as a bearer token)
def metrics():
    data = job_rows.stats(DB, time.time() - SETTINGS.worker_dead_after_s)
    body = ("\n".join(prometheus_lines(data)) + "\n").encode()
    return HTTPResponse(body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


# -- pages (HTML) -------------------------------------------------------------------------
# Server-rendered shells from templates/ that static/*.js fills from the JSON
# API above. With TRAWL_API_TOKEN set, /login trades the token for a signed,
# HttpOnly, SameSite=Strict session cookie that /api/* accepts as well; each
# page embeds a CSRF token bound to that session, which every state-changing
# request made with the cookie must echo (X-CSRF-Token header or form field).


HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE_DIR = os.path.join(HERE, "templates")
STATIC_DIR = os.path.join(HERE, "static")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "trawl_session"
SESSION_TTL_S = 12 * 3600
# Scripts and styles only from our own files: crawled text can never run.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _sign(text: str) -> str:
    # Keyed by the API token: changing the token ends every session.
    key = hashlib.sha256(b"trawl-session\0" + (SETTINGS.api_token or "").encode()).digest()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def new_session_cookie() -> str:
    body = f"{int(time.time()) + SESSION_TTL_S}.{secrets.token_hex(16)}"
    return f"{body}.{_sign(body)}"


def session_nonce() -> str | None:
    """The nonce of this request's valid, unexpired session cookie, else None."""
    expires, _, rest = (request.get_cookie(SESSION_COOKIE) or "").partition(".")
    nonce, _, sig = rest.partition(".")
    if not (expires.isascii() and expires.isdigit() and nonce and sig) or int(expires) < time.time():
        return None
    expected = _sign(f"{expires}.{nonce}").encode()
    return nonce if hmac.compare_digest(sig.encode("utf-8", "replace"), expected) else None


def csrf_token() -> str:
    nonce = session_nonce()
    return _sign("csrf." + nonce) if nonce else ""


def csrf_ok() -> bool:
    given = header("X-CSRF-Token")
    if not given and (request.content_type or "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        given = request.forms.get("csrf_token") or ""
    expected = csrf_token()
    return bool(expected) and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _authority(scheme: str, netloc: str) -> str:
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    netloc = netloc.strip().lower()
    return netloc[: -len(default)] if default and netloc.endswith(default) else netloc


def cross_site_request() -> bool:
    """True when the browser says the request was sent by another site (or port).

    A page cannot set X-Forwarded-Host on a cross-origin request without a
    CORS preflight we never grant, so a proxy's value is trusted like Host.
    """
    if header("Sec-Fetch-Site") == "cross-site":
        return True
    origin = header("Origin")
    if not origin:
        return False
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return True  # an Origin we cannot read is not ours
    ours = {_authority(parts.scheme, header(h)) for h in ("Host", "X-Forwarded-Host")}
    return _authority(parts.scheme, parts.netloc) not in ours - {""}


def wants_html_page() -> bool:
    accept = header("Accept")
    return "text/html" in accept and "application/json" not in accept


def render(name: str, status: int = 200, **values) -> HTTPResponse:
    values.setdefault("title", "Trawl")
    body = bottle.template(name, template_lookup=[TEMPLATE_DIR], csrf=csrf_token(),
                           login=bool(SETTINGS.api_token), path=request.path, **values)
    out = HTTPResponse(body.encode(), status=status, headers=dict(PAGE_HEADERS))
    out.content_type = "text/html; charset=utf-8"
    return out


def require_login() -> None:
    """Send a browser without a valid session to /login (only when a token is set)."""
    if SETTINGS.api_token and session_nonce() is None:
        target = request.path + (("?" + request.query_string) if request.query_string else "")
        raise HTTPResponse(status=303, headers={"Location": "/login?next=" + quote(target, safe="")})


def safe_next(raw: str | None) -> str:
    """Only a path on this site, as a browser will read the Location: else "/".

    Browsers drop tabs and newlines anywhere in a URL, trim spaces and
    control characters and read a backslash as a slash, so `/\\t/evil.example`
    and `/\\evil.example` mean `//evil.example`, another origin. So: one
    leading slash, then printable ASCII only (what `require_login` sends is
    percent-encoded), no backslash, no second leading slash.
    """
    if not raw or not raw.startswith("/") or raw.startswith("//"):
        return "/"
    if "\\" in raw or not all("!" <= ch <= "~" for ch in raw):
        return "/"
    return raw


def rerun_prefill(job_id: str | None) -> dict | None:
    """Options and seeds of an earlier job, for "Run again"."""
    if not job_id:
        return None
    try:
        job = job_rows.load_job(DB, job_id)
        seeds = job_rows.load_seeds(DB, job_id)
    except JobNotFound:
        return None
    return {"name": job["name"], "urls": "\n".join(seeds), **json.loads(job["options"])}


@routes.get("/")
def home_page():
    require_login()
    return render("home", title="Trawl · new crawl", prefill=rerun_prefill(request.query.get("from")))


@routes.get("/jobs/<job_id>")
def job_page(job_id: str):
    require_login()
    try:
        job = job_rows.load_job(DB, job_id)
    except JobNotFound:
        return render("missing", 404, title="Trawl · no such job", job_id=job_id)
    doc = progress.job_document(job, live_workers_for(job_id))
    doc["notify"] = job_notify(job)
    return render("job", title=f"Trawl · {job['name'] or job_id}", job=doc,
                  initial=json.dumps(doc, separators=(",", ":")))


@routes.get("/workers")
def workers_page():
    require_login()
    return render("workers", title="Trawl · workers")


def health_page(report: dict, code: int) -> HTTPResponse:
    return render("health", code, title="Trawl · health", report=report)


@routes.get("/login")
def login_form():
    if not SETTINGS.api_token:
        raise HTTPResponse(status=303, headers={"Location": "/"})
    return render("login", title="Trawl · log in", error="", next=safe_next(request.query.get("next")))


@routes.post("/login")
def login():
    next_path = safe_next(request.forms.get("next"))
    if not SETTINGS.api_token or cross_site_request():
        return render("login", 403, title="Trawl · log in", error="Log in from this site's own page.",
                      next=next_path)
    if not token_ok("Bearer " + (request.forms.getunicode("token") or "")):
        time.sleep(0.5)  # a guess costs the guesser, not the server (gevent sleep)
        return render("login", 401, title="Trawl · log in", error="That token is not right.", next=next_path)
    out = HTTPResponse(status=303, headers={"Location": next_path, "Cache-Control": "no-store"})
    out.set_cookie(SESSION_COOKIE, new_session_cookie(), max_age=SESSION_TTL_S, path="/",
                   httponly=True, samesite="Strict", secure=request.urlparts.scheme == "https")
    return out


@routes.post("/logout")
def logout():
    if SETTINGS.api_token and (cross_site_request() or not csrf_ok()):
        return render("login", 403, title="Trawl · log in", error="Log out from this site's own page.",
                      next="/")
    out = HTTPResponse(status=303, headers={"Location": "/login" if SETTINGS.api_token else "/"})
    out.delete_cookie(SESSION_COOKIE, path="/")
    return out


@routes.get("/static/<path:path>")
def static(path: str):
    out = bottle.static_file(path, root=STATIC_DIR)
    out.set_header("X-Content-Type-Options", "nosniff")
    out.set_header("Cache-Control", "no-cache")  # revalidated by Last-Modified: 304s
    return out


# -- the application factory ------------------------------------------------------------


def create_app(settings: Settings | None = None, db: Database | None = None) -> Bottle:
    """A WSGI app over `settings` (default: the TRAWL_* environment) and `db` (default: its database).

    Nothing is connected here: the pool opens connections on first use, so
    importing this module (gunicorn, the tests) costs no database.
    """
    settings = settings or config.load()
    web = Bottle()
    web.config["trawl.settings"] = settings
    # One pool per app; connections are taken per request block, never shared.
    web.config["trawl.db"] = db or open_database(settings.database_url)
    # Bottle reads this per request from the class: the same limit for every app of a process.
    bottle.BaseRequest.MEMFILE_MAX = settings.max_body_bytes
    for code in ERROR_MESSAGES:
        web.error(code)(error_page)
    # In this order: a foreign Host learns nothing, not even whether it needs a token.
    web.add_hook("before_request", require_known_host)
    web.add_hook("before_request", read_body_in_time)
    web.add_hook("before_request", require_token)
    web.merge(routes)
    registered = {(r.method, r.rule) for r in web.routes}
    missing = [rule for rule in EARLY_CLOSE_ROUTES if ("POST", rule) not in registered]
    assert not missing, f"EARLY_CLOSE_ROUTES names routes app.py does not have: {missing}"
    _APPS.add(web)
    return web


app = create_app()


# -- CLI ----------------------------------------------------------------------------------


def cli(argv: list[str]) -> int:
    from trawl import cli as trawl_cli

    settings = config.load()
    return trawl_cli.main(argv, settings, open_database(settings.database_url))


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
