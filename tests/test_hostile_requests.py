"""The outside attack pass as a test suite: hostile input never gets a 5xx, a trace or a half-stored job.

Each finding of issue 12 is a case here. Most run in-process against an app
from `create_app` (tests/wsgi.py builds the environ a server would, header
bytes >= 0x80 included); what only the real server shows (bind checks, body
read time, gunicorn's own errors, the end of an SSE stream on the wire) runs
against gunicorn, and the `/login?next=` cases also run in Chromium.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from urllib.parse import quote, urlencode, urljoin, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import ROOT, free_port, skip_or_fail, start_server
from tests.http import call
from trawl.store import job_rows

ORIGIN = "http://127.0.0.1:8080"  # what tests/wsgi.py presents as the server
TOKEN = "s3cret"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


# -- helpers ----------------------------------------------------------------------------


def job_ids(db) -> set:
    with db.read() as s:
        return {r["id"] for r in s.all("SELECT id FROM jobs")}


def assert_sane(reply) -> None:
    """No 5xx, no stack trace anywhere, and a JSON error body for every JSON 4xx."""
    assert reply.status < 500, (reply.status, reply.body[:300])
    assert "Traceback" not in reply.errors, reply.errors
    assert b"Traceback" not in reply.body
    if reply.status >= 400 and (reply.header("content-type") or "").startswith("application/json"):
        doc = reply.json()
        assert doc["error"] and isinstance(doc["fields"], dict)


def assert_nothing_half_stored(web, before: set, reply) -> None:
    after = job_ids(web.db)
    if reply.status == 202 and "id" in reply.json() and reply.json().get("status") == "queued":
        new = after - before
        assert new == {reply.json()["id"]}
        assert job_rows.load_seeds(web.db, reply.json()["id"])
    else:
        assert after == before


def multipart(filename: str, content: bytes, fields: dict | None = None) -> tuple[bytes, dict]:
    boundary = "TrawlBoundary7"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in (fields or {}).items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="urls_file"; filename="{filename}"\r\n'
                 "Content-Type: text/plain\r\n\r\n".encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def browser_resolves(location: str, base: str = ORIGIN + "/login") -> str:
    """Where a browser goes for this Location (WHATWG URL parsing of a special scheme).

    Leading and trailing C0 controls and spaces are dropped, tabs and
    newlines anywhere are removed, and a backslash counts as a slash.
    """
    cleaned = re.sub(r"[\t\n\r]", "", location.strip("".join(map(chr, range(0x21)))))
    return urljoin(base, cleaned.replace("\\", "/"))


def same_origin(url: str) -> bool:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" == ORIGIN


def api_targets(job_id: str) -> list[tuple[str, str]]:
    """(method, path) of every /api route, on a real job id (SSE excluded: it streams)."""
    j = f"/api/jobs/{job_id}"
    return [("POST", "/api/jobs"), ("GET", "/api/jobs"), ("GET", j), ("GET", f"{j}/progress"),
            ("GET", f"/api/jobs/nope/events"), ("POST", f"{j}/cancel"), ("POST", f"{j}/pause"),
            ("POST", f"{j}/resume"), ("POST", f"{j}/retry"), ("DELETE", "/api/jobs/nope"),
            ("GET", f"{j}/emails"), ("GET", f"{j}/emails?format=csv"), ("GET", f"{j}/pages"),
            ("GET", "/api/workers"), ("POST", "/api/workers/trigger"), ("GET", "/api/stats"),
            ("GET", "/api/nothing-here"), ("PUT", "/api/jobs"), ("GET", f"{j}/sites")]


def new_job(web, **headers) -> str:
    reply = web.call("POST", "/api/jobs", {"urls": ["http://a.example/"]}, headers)
    assert reply.status == 202, reply.body
    return reply.json()["id"]


# -- finding 1: 5xx from input --------------------------------------------------------------


def test_seed_upload_with_cr_only_line_endings_is_read_as_lines(web):
    body, headers = multipart("mac.txt", b"http://a.example/\rhttp://b.example/\r")
    reply = web.call("POST", "/api/jobs", body, headers)
    assert_sane(reply)
    assert reply.status == 202
    assert job_rows.load_seeds(web.db, reply.json()["id"]) == ["http://a.example/", "http://b.example/"]


@pytest.mark.parametrize("content, field", [
    (b'"http://a.example/\x00\r"x"\n\xff\xfe', "urls"),   # a control character inside a seed
    (b'"' + b"a" * 200_000, "urls_file"),                   # one CSV field past the csv module's limit
    (b"\xff\xfe\x00h\x00t\x00", "urls"),                    # UTF-16 without any URL in it
])
def test_seed_upload_that_is_not_a_list_of_urls_is_a_400_naming_the_field(web, content, field):
    before = job_ids(web.db)
    body, headers = multipart("junk.csv", content)
    reply = web.call("POST", "/api/jobs", body, headers)
    assert_sane(reply)
    assert reply.status == 400 and field in reply.json()["fields"], reply.body
    assert job_ids(web.db) == before


@pytest.mark.parametrize("token", [None, TOKEN])
def test_non_utf8_authorization_on_every_api_path(tmp_path, token):
    from tests.conftest import make_in_process

    web = make_in_process(tmp_path, **({"TRAWL_API_TOKEN": token} if token else {}))
    job_id = new_job(web, **(BEARER if token else {}))
    for method, path in api_targets(job_id):
        for value in (b"Bearer \xe9", b"\xe9\xff", b"Bearer " + TOKEN.encode() + b"\xe9"):
            reply = web.call(method, path, headers={"Authorization": value})
            assert_sane(reply)
            if token:
                assert reply.status == 401, (method, path, reply.status)
    web.db.close()


@pytest.mark.parametrize("header", ["Origin", "Sec-Fetch-Site", "X-Forwarded-Host", "X-CSRF-Token", "Cookie"])
def test_non_utf8_request_headers_on_a_post(web, header):
    before = job_ids(web.db)
    for value in (b"http://\xe9", b"\xe9", b"\xc3(", b"cross-site\xff"):
        reply = web.call("POST", "/api/jobs", {"urls": ["http://a.example/"]}, {header: value})
        assert_sane(reply)
        assert_nothing_half_stored(web, before, reply)
        before = job_ids(web.db)


@pytest.mark.parametrize("path", ["/health", "/", "/login", "/workers", "/api/jobs/nope/progress"])
def test_non_utf8_accept_and_friends_on_get(web, path):
    for header in ("Accept", "If-None-Match", "Last-Event-ID", "Cookie"):
        reply = web.call("GET", path, headers={header: b"text/html\xe9"})
        assert_sane(reply)


def test_non_utf8_header_on_a_page_with_a_token(locked_web):
    for header in ("Accept", "Cookie", "Origin", "Authorization"):
        for path in ("/", "/health", "/metrics", "/login"):
            assert_sane(locked_web.call("GET", path, headers={header: b"\xe9\xff"}))
        assert_sane(locked_web.call("POST", "/login", f"token={TOKEN}&next=/",
                                    {header: b"\xe9", "Content-Type": "application/x-www-form-urlencoded"}))


# Numbers that str.isdigit() accepts but int() refuses ("²"), or too long for int() (4300 digits).
ODD_NUMBERS = ["%B2", "%C2%B2", "9" * 5000, "%EF%BC%91", "%D9%A3", "1%00", "-1", "+1", " 1"]


@pytest.mark.parametrize("number", ODD_NUMBERS)
def test_odd_numbers_in_query_parameters_are_a_400_or_ignored(web, number):
    job_id = new_job(web)
    for path in ("/api/jobs?limit=", f"/api/jobs/{job_id}/emails?limit=", f"/api/jobs/{job_id}/emails?offset=",
                 f"/api/jobs/{job_id}/pages?offset=", f"/api/jobs/{job_id}/pages?limit="):
        reply = web.call("GET", path + number)
        assert_sane(reply)
        assert reply.status in (200, 400)


@pytest.mark.parametrize("number", ["²", "9" * 5000, "１", " 1 "])
def test_odd_last_event_ids_start_the_stream_from_scratch(web, number):
    from tests.wsgi import environ_for

    job_id = new_job(web)
    job_rows.apply_action(web.db, job_id, "cancel")  # finished: the stream ends after done
    for env in (environ_for("GET", f"/api/jobs/{job_id}/events", b"", {"Last-Event-ID": number.encode()}),
                environ_for("GET", f"/api/jobs/{job_id}/events?lastEventId={quote(number)}", b"", {})):
        started = {}
        frames = web.app(env, lambda status, headers, exc_info=None: started.setdefault("status", status))
        body = b"".join(frames)
        getattr(frames, "close", lambda: None)()
        assert started["status"].startswith("200"), body
        assert b"event: progress" in body and b"event: done" in body
        assert "Traceback" not in env["wsgi.errors"].getvalue()


# -- finding 1 (login) and 2: the next= of /login ---------------------------------------------

HOSTILE_NEXT = [
    "/\t/127.0.0.1:19004/ok", "/\n/x", "/\r/evil.example/", "/\t\t/evil.example", "//evil.example/",
    "/\\evil.example/", "\\\\evil.example", "https:evil.example", "https://evil.example/", " //evil.example",
    "/\x00/evil", "\t//evil.example", "/ /evil.example", "/%09/evil.example", "javascript:alert(1)",
    "/\u2028/evil", "/é/../x", "/\x7f/evil",
]


@pytest.mark.parametrize("next_value", HOSTILE_NEXT)
def test_login_post_never_redirects_off_the_origin(locked_web, next_value):
    body = urlencode({"token": TOKEN, "next": next_value})
    reply = locked_web.call("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert_sane(reply)
    assert reply.status == 303
    assert same_origin(browser_resolves(reply.header("location"))), reply.header("location")


@pytest.mark.parametrize("next_value", HOSTILE_NEXT)
def test_login_form_never_carries_an_off_origin_next(locked_web, next_value):
    reply = locked_web.call("GET", "/login?next=" + quote(next_value, safe=""))
    assert_sane(reply)
    assert reply.status == 200
    carried = re.search(rb'name="next" value="([^"]*)"', reply.body).group(1).decode()
    import html

    assert same_origin(browser_resolves(html.unescape(carried)))


def test_login_keeps_a_local_next_with_its_query(locked_web):
    body = urlencode({"token": TOKEN, "next": "/jobs/abc?from=x&y=%2F"})
    reply = locked_web.call("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 303 and reply.header("location") == "/jobs/abc?from=x&y=%2F"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(next_value=st.tuples(
    st.sampled_from(["/", "", "\\", " ", "https:", "%2F"]),
    st.lists(st.sampled_from(["/", "\\", "\t", "\n", "\r", " ", "%09", "\x00", "\x7f", "\u2028", "é", "@", ":", "."]),
             max_size=3),
    st.sampled_from(["/evil.example/", "evil.example:81", "/x?y=1", ""]),
).map(lambda parts: parts[0] + "".join(parts[1]) + parts[2]))
def test_any_next_value_stays_on_the_origin(locked_web, next_value):
    body = urlencode({"token": TOKEN, "next": next_value})
    reply = locked_web.call("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert_sane(reply)
    assert same_origin(browser_resolves(reply.header("location"))), repr(reply.header("location"))


# -- finding 3: foreign Host (DNS rebinding) -------------------------------------------------------


@pytest.mark.parametrize("fixture", ["web", "locked_web"])
def test_foreign_host_gets_421_json_and_stores_nothing(request, fixture):
    web = request.getfixturevalue(fixture)
    before = job_ids(web.db)
    headers = {"Host": "evil.example:8080", "Origin": "http://evil.example:8080", **BEARER}
    reply = web.call("POST", "/api/jobs", {"urls": ["http://a.example/"]}, headers)
    assert reply.status == 421 and reply.header("content-type").startswith("application/json")
    assert "Host" in reply.json()["fields"]
    assert job_ids(web.db) == before
    for path in ("/", "/health", "/api/jobs", "/static/app.js", "/login"):
        assert web.call("GET", path, headers={"Host": "evil.example"}).status == 421


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost:8080", "localhost", "[::1]:8080", "127.5.6.7",
                                  "LOCALHOST:8080", "localhost."])
def test_loopback_hosts_are_answered(web, host):
    assert web.call("GET", "/api/jobs", headers={"Host": host}).status == 200


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "localhost.evil.example:8080",
                                  "10.0.0.1:8080", "[::ffff:1.2.3.4]", "127.0.0.1@evil", b"\xe9", "a b", ":8080"])
def test_other_hosts_are_refused(web, host):
    reply = web.call("GET", "/api/jobs", headers={"Host": host})
    assert_sane(reply)
    assert reply.status == 421


def test_allowed_hosts_setting_adds_names(tmp_path):
    from tests.conftest import make_in_process

    web = make_in_process(tmp_path, TRAWL_ALLOWED_HOSTS="trawl.internal, Crawler.Example.com")
    for host, status in (("trawl.internal", 200), ("crawler.example.com:8443", 200), ("evil.example", 421)):
        assert web.call("GET", "/api/jobs", headers={"Host": host}).status == status
    web.db.close()


# -- finding 5: SSE of a deleted job ----------------------------------------------------------------


def test_sse_of_a_job_deleted_while_watched_ends_with_done(web):
    from tests.wsgi import environ_for

    job_id = new_job(web)
    env = environ_for("GET", f"/api/jobs/{job_id}/events", b"", {})
    started = {}
    frames = web.app(env, lambda status, headers, exc_info=None: started.setdefault("status", status))
    stream = iter(frames)
    assert next(stream).startswith(b"retry:")
    assert b"event: progress" in next(stream)
    job_rows.apply_action(web.db, job_id, "cancel")
    job_rows.delete_job(web.db, job_id)
    rest = list(stream)  # ends by itself, without an exception
    frames.close()
    assert started["status"].startswith("200")
    last = rest[-1].decode()
    assert "event: done" in last and json.loads(last.split("data: ", 1)[1])["status"] == "deleted"
    assert "Traceback" not in env["wsgi.errors"].getvalue()


def test_sse_of_a_deleted_job_on_the_wire_has_its_terminating_chunk(tmp_path):
    from trawl.store import open_database

    server = start_server(tmp_path)
    db = open_database(server.database_url)
    try:
        job_id = call("POST", server.url("/api/jobs"), {"urls": ["http://a.example/"]}).json()["id"]
        port = int(server.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(f"GET /api/jobs/{job_id}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            data = b""
            while b"event: progress" not in data:
                data += sock.recv(65536)
            job_rows.apply_action(db, job_id, "cancel")
            job_rows.delete_job(db, job_id)
            while not data.endswith(b"0\r\n\r\n"):
                chunk = sock.recv(65536)
                assert chunk, f"closed without the terminating chunk: {data[-200:]!r}"
                data += chunk
        assert b"event: done" in data and b'"status":"deleted"' in data
    finally:
        db.close()
        server.stop()
    log = (tmp_path / f"gunicorn-{port}.log").read_text()
    assert "Traceback" not in log and "JobNotFound" not in log


# -- finding 6: health and metrics with a token ------------------------------------------------------


def test_health_without_the_token_says_only_the_status(locked_web):
    reply = locked_web.call("GET", "/health")
    assert reply.status in (200, 503)
    assert list(reply.json()) == ["status"]
    detail = locked_web.call("GET", "/health", headers=BEARER)
    assert detail.status in (200, 503) and len(detail.json()) > 1 and "status" in detail.json()


def test_health_page_for_a_browser_without_a_session_shows_nothing_inside(locked_web):
    reply = locked_web.call("GET", "/health", headers={"Accept": "text/html"})
    assert reply.status == 303 and reply.header("location") == "/login?next=%2Fhealth"
    assert b"pycurl" not in reply.body and b"libcurl" not in reply.body


def test_health_without_a_token_set_shows_the_detail(web):
    assert len(web.call("GET", "/health").json()) > 1


def test_metrics_needs_the_token(locked_web):
    reply = locked_web.call("GET", "/metrics")
    assert reply.status == 401 and "Authorization" in reply.json()["fields"]
    assert b"trawl_" not in reply.body
    ok = locked_web.call("GET", "/metrics", headers=BEARER)
    assert ok.status == 200 and b"trawl_jobs" in ok.body


def test_metrics_open_without_a_token_set(web):
    assert web.call("GET", "/metrics").status == 200


# -- property tests: raw header bytes and upload line endings ----------------------------------------

HEADER_NAMES = ["Authorization", "Origin", "Sec-Fetch-Site", "Accept", "Host", "X-Forwarded-Host", "Cookie",
                "X-CSRF-Token", "If-None-Match", "Last-Event-ID", "Content-Type", "X-Forwarded-Proto"]
# Servers refuse CR, LF and NUL in a header value before any app sees it.
header_bytes = st.binary(max_size=24).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b""))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), locked=st.booleans())
def test_raw_header_bytes_never_break_anything(web, locked_web, data, locked):
    target = locked_web if locked else web
    job_id = data.draw(st.sampled_from(["nope", "0000000000000000"]))
    method, path = data.draw(st.sampled_from(api_targets(job_id) + [
        ("GET", "/health"), ("GET", "/metrics"), ("GET", "/"), ("GET", "/login"), ("POST", "/login"),
        ("POST", "/logout"), ("GET", "/workers"), ("GET", "/jobs/nope"), ("GET", "/static/app.js")]))
    headers = data.draw(st.dictionaries(st.sampled_from(HEADER_NAMES), header_bytes, max_size=4))
    if data.draw(st.booleans()):
        headers.update(BEARER)
    body = {"urls": ["http://a.example/"]} if method == "POST" and "Content-Type" not in headers else None
    before = job_ids(target.db)
    reply = target.call(method, path, body, headers)
    assert_sane(reply)
    assert_nothing_half_stored(target, before, reply)


QUERY_TARGETS = ["/api/jobs", "/api/jobs/{}/emails", "/api/jobs/{}/pages", "/api/jobs/{}/sites", "/", "/login",
                 "/api/jobs/nope/events", "/api/jobs/{}/progress"]
QUERY_NAMES = ["limit", "offset", "before", "status", "q", "format", "state", "from", "next", "lastEventId", "site",
               "sort", "order", "counts"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_raw_query_bytes_never_break_anything(web, data):
    from urllib.parse import quote_from_bytes

    job_id = new_job(web)
    path = data.draw(st.sampled_from(QUERY_TARGETS)).format(job_id)
    params = data.draw(st.dictionaries(st.sampled_from(QUERY_NAMES), st.binary(max_size=12) | st.sampled_from(
        [b"9" * 5000, b"\xb2", b"csv", b"json", b"jsonl", b"failed", b"1", b"-emails", job_id.encode()]), max_size=3))
    query = "&".join(f"{k}={quote_from_bytes(v)}" for k, v in params.items())
    reply = web.call("GET", f"{path}?{query}")
    assert_sane(reply)


separators = st.sampled_from(["\r", "\n", "\r\n", "\n\r", ",", ";", "\r\r", " ", "\t", "\x00", "\x0b", "\x0c",
                              "\x1c", "\x85", "\u2028", '"', "\ufeff"])
seed_urls = st.lists(st.sampled_from(["http://a.example/", "https://b.example/x?y=1", "http://c.example/\"q\"",
                                      "ftp://d/", "not a url", "HTTP://E.EXAMPLE/"]), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(urls=seed_urls, seps=st.lists(separators, min_size=1, max_size=6),
       encoding=st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig"]), junk=st.binary(max_size=8))
def test_upload_line_endings_never_break_anything(web, urls, seps, encoding, junk):
    text = "".join(u + seps[i % len(seps)] for i, u in enumerate(urls))
    content = text.encode(encoding, errors="replace") + junk
    body, headers = multipart("seeds.csv", content)
    before = job_ids(web.db)
    reply = web.call("POST", "/api/jobs", body, headers)
    assert_sane(reply)
    assert_nothing_half_stored(web, before, reply)
    if reply.status == 202 and set(seps) <= {"\r", "\n", "\r\n", "\n\r", "\r\r"} and encoding != "utf-16":
        expected = [u for u in urls if u.lower().startswith(("http://", "https://"))]
        assert job_rows.load_seeds(web.db, reply.json()["id"]) == [u.strip() for u in expected]


# -- finding 4: the bind check, whatever configured the bind ---------------------------------------------


def _gunicorn(tmp_path, extra_args: list[str], command: list[str] | None = None,
             **env_extra: str) -> subprocess.Popen:
    env = {**os.environ, "TRAWL_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}", "TRAWL_WEB_WORKERS": "1",
           "TRAWL_AUTOSTART_WORKERS": "0", "TRAWL_RUN_DIR": str(tmp_path / "run"), "TRAWL_HOST": "127.0.0.1",
           "TRAWL_PORT": str(free_port()), **env_extra}
    if "TRAWL_API_TOKEN" not in env_extra:
        env.pop("TRAWL_API_TOKEN", None)
    command = command or [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"),
                          *extra_args, "app:app"]
    return subprocess.Popen(command, cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_or_kill(proc: subprocess.Popen, timeout: float = 30) -> tuple[int | None, str]:
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, out.decode(errors="replace")


@pytest.mark.parametrize("how", ["GUNICORN_CMD_ARGS", "command line", "app.py serve"])
def test_public_bind_without_token_is_refused_however_configured(tmp_path, how):
    port = free_port()
    if how == "GUNICORN_CMD_ARGS":
        proc = _gunicorn(tmp_path, [], GUNICORN_CMD_ARGS=f"--bind 0.0.0.0:{port} --no-control-socket")
    elif how == "command line":
        proc = _gunicorn(tmp_path, ["--bind", f"0.0.0.0:{port}"])
    else:  # the reproduction
        proc = _gunicorn(tmp_path, [], [sys.executable, "app.py", "serve"],
                         GUNICORN_CMD_ARGS=f"--bind 0.0.0.0:{port} --no-control-socket")
    code, out = _wait_or_kill(proc)
    assert code not in (None, 0), f"gunicorn kept serving on 0.0.0.0:{port}: {out[-500:]}"
    assert "refusing to serve" in out and "0.0.0.0" in out


@pytest.mark.parametrize("address, token", [("0.0.0.0", TOKEN), ("127.0.0.2", None)])
def test_bound_sockets_that_pass_the_check_are_served(tmp_path, address, token):
    """A public bind with a token (the API then needs it), or another loopback address without one."""
    import time

    port = free_port()
    proc = _gunicorn(tmp_path, [], GUNICORN_CMD_ARGS=f"--bind {address}:{port} --no-control-socket",
                     **({"TRAWL_API_TOKEN": token} if token else {}))
    try:
        deadline = time.monotonic() + 20
        status = None
        while status is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                status = call("GET", f"http://{'127.0.0.1' if token else address}:{port}/api/jobs", timeout=2).status
            except OSError:
                time.sleep(0.1)
        assert status == (401 if token else 200)
    finally:
        proc.send_signal(signal.SIGQUIT)  # gunicorn's quick shutdown
        _wait_or_kill(proc)


# -- finding 7: gunicorn's own errors and a body that never arrives ------------------------------------------


@pytest.fixture(scope="module")
def slow_body_server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("hostile"), TRAWL_BODY_READ_TIMEOUT_S="1")
    yield s
    s.stop()


def _raw(server, payload: bytes, timeout: float = 30) -> bytes:
    port = int(server.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_a_body_that_never_arrives_is_answered_408_and_closed(slow_body_server):
    from trawl.store import open_database

    db = open_database(slow_body_server.database_url)
    before = job_ids(db)
    data = _raw(slow_body_server, b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                  b"Content-Length: 1000000\r\n\r\n{\"urls\": [1]")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), data[:300]
    assert json.loads(body)["fields"] == {"body": "not received within 1 s"}
    assert job_ids(db) == before
    db.close()


def _chunked(path: bytes, ctype: bytes, chunks: bytes) -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: " + ctype +
            b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)


def test_a_chunked_body_is_read_once_and_accepted(slow_body_server):
    body = b'{"urls": ["http://a.example/", "http://b.example/"]}'
    chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (10, body[:10], len(body) - 10, body[10:])
    data = _raw(slow_body_server, _chunked(b"/api/jobs", b"application/json", chunks))
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 202"), data[:300]
    assert json.loads(payload)["status"] == "queued"


@pytest.mark.parametrize("chunks, status", [(b"zz\r\n", 400), (b"5\r\nabc", 408), (b"-1\r\n\r\n", 400)])
def test_a_broken_chunked_body_is_a_4xx(slow_body_server, chunks, status):
    for path, ctype in ((b"/api/jobs", b"application/json"), (b"/login", b"application/x-www-form-urlencoded")):
        data = _raw(slow_body_server, _chunked(path, ctype, chunks))
        head, _, payload = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d" % status), data[:300]
        assert "body" in json.loads(payload)["fields"]


def test_a_chunked_body_over_the_limit_is_413(tmp_path):
    # A small limit, so gunicorn has taken every byte off the socket before the answer (no RST).
    server = start_server(tmp_path, TRAWL_MAX_BODY_BYTES="1000")
    try:
        chunks = b"".join(b"%x\r\n%s\r\n" % (300, b"x" * 300) for _ in range(5)) + b"0\r\n\r\n"
        data = _raw(server, _chunked(b"/api/jobs", b"application/json", chunks))
    finally:
        server.stop()
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), data[:300]
    assert json.loads(payload)["fields"] == {"body": "at most 1000 bytes"}


@pytest.mark.parametrize("payload, status", [
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
    (b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n", 400),
    (b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: a b\x01\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n", 400),
])
def test_gunicorns_own_errors_are_json(slow_body_server, payload, status):
    data = _raw(slow_body_server, payload)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d" % status), data[:300]
    assert b"Content-Type: application/json" in head
    doc = json.loads(body)
    assert doc["error"] and isinstance(doc["fields"], dict)


@pytest.mark.parametrize("header", [b"Authorization: Bearer \xe9", b"Origin: http://\xe9", b"Sec-Fetch-Site: \xe9",
                                    b"Accept: \xe9", b"Cookie: trawl_session=\xe9\xff", b"Host: \xe9"])
def test_non_utf8_headers_on_the_wire(slow_body_server, header):
    for request_line in (b"GET /health HTTP/1.1", b"GET /api/jobs HTTP/1.1", b"POST /api/jobs HTTP/1.1"):
        extra = b"" if header.startswith(b"Host:") else b"Host: 127.0.0.1\r\n"
        body = b'{"urls": ["http://a.example/"]}' if request_line.startswith(b"POST") else b""
        data = _raw(slow_body_server, request_line + b"\r\n" + extra + header + b"\r\nConnection: close\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        status = int(data.split(b" ", 2)[1])
        assert status < 500, data[:300]
        assert b"Content-Type: application/json" in data.partition(b"\r\n\r\n")[0]


# -- the /login?next= cases in Chromium --------------------------------------------------------------------


class _Elsewhere(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok elsewhere")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def chromium_and_servers(tmp_path_factory):
    from tests.test_ui import CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        skip_or_fail(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    other = http.server.HTTPServer(("127.0.0.1", 0), _Elsewhere)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    trawl = start_server(tmp_path_factory.mktemp("login"), TRAWL_API_TOKEN=TOKEN)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser, trawl, other.server_address[1]
        browser.close()
    trawl.stop()
    other.shutdown()


@pytest.mark.parametrize("template", ["/%09/127.0.0.1:{port}/ok", "/%0a/127.0.0.1:{port}/ok",
                                      "/%0d/127.0.0.1:{port}/ok", "/%5c127.0.0.1:{port}/ok",
                                      "//127.0.0.1:{port}/ok", "%09//127.0.0.1:{port}/ok",
                                      "http://127.0.0.1:{port}/ok", "/%09%09/127.0.0.1:{port}/ok"])
def test_login_next_stays_on_the_origin_in_chromium(chromium_and_servers, template):
    browser, trawl, other_port = chromium_and_servers
    page = browser.new_page()
    try:
        page.goto(trawl.url("/login?next=" + template.format(port=other_port)))
        page.fill("#f-token", TOKEN)
        with page.expect_navigation():
            page.click("button[type=submit]")
        landed = urlsplit(page.url)
        assert f"{landed.scheme}://{landed.netloc}" == trawl.base, page.url
        assert "ok elsewhere" not in page.content()
    finally:
        page.close()
