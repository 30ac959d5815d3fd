"""The JSON API: in-process through create_app (both databases), and through gunicorn for what needs the server.

Validation, auth, error mapping and the documents run in-process against
the `db` fixture (SQLite and MariaDB); the early close, keep-alive, the 413
before the body and the trigger log need the real server (gunicorn.conf.py,
gevent workers).
"""

import csv
import io
import json
import socket
import time

import pytest

from tests.http import call
from trawl.store import job_rows


def create(api, body=None, **kw):
    return api.call("POST", "/api/jobs", body if body is not None else {"urls": ["http://a.example/"], **kw})


def job_count(db) -> int:
    with db.read() as s:
        return int(s.scalar("SELECT COUNT(*) FROM jobs"))


def test_create_answers_202_with_location_and_length(api):
    reply = create(api, name="first")
    assert reply.status == 202
    doc = reply.json()
    assert doc["status"] == "queued" and doc["id"]
    assert reply.header("location") == f"/api/jobs/{doc['id']}"
    assert int(reply.header("content-length")) == len(reply.body)
    assert reply.header("content-type").startswith("application/json")
    assert doc["links"]["progress"] == f"/api/jobs/{doc['id']}/progress"
    assert job_rows.load_job(api.db, doc["id"])["name"] == "first"


def test_create_closes_the_connection_on_the_wire(server):
    """Raw socket: the server says Connection: close and then really closes."""
    body = json.dumps({"urls": ["http://a.example/"]}).encode()
    host, port = server.base.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        data = b""
        while chunk := sock.recv(65536):  # ends only when the server closes
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert b"HTTP/1.1 202" in head
    assert b"\r\nConnection: close" in head
    assert json.loads(payload)["status"] == "queued"


def test_other_requests_keep_the_connection_alive(server):
    import http.client

    host, port = server.base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    sockets = []
    for _ in range(2):  # two requests on one connection
        conn.request("GET", "/api/stats")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200 and resp.getheader("Connection") == "keep-alive"
        sockets.append(conn.sock)
    assert sockets[0] is sockets[1] and sockets[0] is not None
    conn.close()


def test_form_bodies_are_accepted(api):
    reply = api.call("POST", "/api/jobs",
                 "urls=http%3A%2F%2Fa.example%2F%0Ahttp%3A%2F%2Fb.example%2F&max_depth=1&same_domain=on",
                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 202
    job = api.call("GET", f"/api/jobs/{reply.json()['id']}").json()
    assert job["options"]["max_depth"] == 1 and job["options"]["same_domain"] is True


def test_upload_of_a_csv_list(api):
    boundary = "XyZ"
    csv_text = "name,url\nA,http://a.example/\nB,https://b.example/x\n"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"urls_file\"; filename=\"s.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\n{csv_text}\r\n--{boundary}--\r\n")
    reply = api.call("POST", "/api/jobs", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status == 202, reply.body
    assert job_rows.load_seeds(api.db, reply.json()["id"]) == ["http://a.example/", "https://b.example/x"]


BAD_BODIES = [
    ("not json", "application/json", "body", 400),
    ("[1,2]", "application/json", "body", 400),
    ('{"urls": []}', "application/json", "urls", 400),
    ('{"urls": ["gopher://x/"]}', "application/json", "urls", 400),
    ('{"urls": ["http://a.example/\\u0000"]}', "application/json", "urls", 400),
    ('{"urls": ["http://a.example/"], "max_pages": 0}', "application/json", "max_pages", 400),
    ('{"urls": ["http://a.example/"], "max_pages": 2000000}', "application/json", "max_pages", 400),
    ('{"urls": ["http://a.example/"], "concurrency": "lots"}', "application/json", "concurrency", 400),
    ('{"urls": ["http://a.example/"], "workers": -3}', "application/json", "workers", 400),
    ('{"urls": ["http://a.example/"], "bogus": 1}', "application/json", "bogus", 400),
    ("urls=http%3A%2F%2Fa.example%2F&max_depth=x", "application/x-www-form-urlencoded", "max_depth", 400),
    ("<xml/>", "application/xml", "Content-Type", 415),
]


@pytest.mark.parametrize("body, ctype, field, status", BAD_BODIES, ids=[b[2] + str(i) for i, b in enumerate(BAD_BODIES)])
def test_bad_input_is_a_4xx_naming_the_field_and_stores_nothing(api, body, ctype, field, status):
    before = job_count(api.db)
    reply = api.call("POST", "/api/jobs", body, {"Content-Type": ctype})
    assert reply.status == status
    doc = reply.json()
    assert doc["error"] and field in doc["fields"]
    assert job_count(api.db) == before


def test_oversized_body_is_413_before_it_is_read(server, store_of_server):
    """The server answers from the Content-Length alone; the client need not send 5 MiB."""
    before = job_count(store_of_server)
    host, port = server.base.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n{\"urls\": [" % (5 * 1024 * 1024))
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert "body" in json.loads(payload)["fields"]
    assert job_count(store_of_server) == before


def test_broken_multipart_body_is_a_400_naming_the_body(api):
    before = job_count(api.db)
    reply = api.call("POST", "/api/jobs", "--X\r\nContent-Disposition: garbage",
                 {"Content-Type": "multipart/form-data; boundary=X"})
    assert reply.status == 400 and reply.header("content-type").startswith("application/json")
    assert "body" in reply.json()["fields"]
    assert job_count(api.db) == before


def test_several_urls_fields_in_a_form_add_up(api):
    reply = api.call("POST", "/api/jobs", "urls=http%3A%2F%2Fa.example%2F&urls=http%3A%2F%2Fb.example%2F",
                 {"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 202
    assert job_rows.load_seeds(api.db, reply.json()["id"]) == ["http://a.example/", "http://b.example/"]


def test_malformed_origin_is_refused_not_a_crash(api):
    before = job_count(api.db)
    reply = api.call("POST", "/api/jobs", {"urls": ["http://a.example/"]}, {"Origin": "http://["})
    assert reply.status == 403 and "Origin" in reply.json()["fields"]
    assert job_count(api.db) == before


@pytest.mark.parametrize("query, field", [("status=bogus", "status"), ("before=zzz", "before"),
                                          ("limit=999", "limit")])
def test_list_query_parameters_are_checked(api, query, field):
    reply = api.call("GET", f"/api/jobs?{query}")
    assert reply.status == 400 and field in reply.json()["fields"]


def test_etag_without_quotes_still_matches(api):
    job_id = create(api).json()["id"]
    version = api.call("GET", f"/api/jobs/{job_id}/progress").json()["version"]
    assert api.call("GET", f"/api/jobs/{job_id}/progress", headers={"If-None-Match": str(version)}).status == 304


def test_too_many_urls(api):
    before = job_count(api.db)
    reply = create(api, {"urls": [f"http://h{i}.example/" for i in range(10_001)]})
    assert reply.status == 400 and "10000" in reply.json()["fields"]["urls"]
    assert job_count(api.db) == before


def test_ten_thousand_urls_are_accepted(api):
    reply = create(api, {"urls": [f"http://h{i}.example/p" for i in range(10_000)]})
    assert reply.status == 202
    assert len(job_rows.load_seeds(api.db, reply.json()["id"])) == 10_000


def test_get_list_and_paginate(api):
    ids = [create(api, name=f"list-{i}").json()["id"] for i in range(3)]
    first = api.call("GET", "/api/jobs?limit=2").json()
    assert [j["id"] for j in first["jobs"]] == ids[::-1][:2]
    second = api.call("GET", f"/api/jobs?limit=2&before={first['next']}").json()
    assert second["jobs"][0]["id"] == ids[0]
    one = api.call("GET", f"/api/jobs/{ids[1]}").json()
    assert one["name"] == "list-1" and one["options"]["max_pages"] == 1000 and one["status"] == "queued"
    assert api.call("GET", "/api/jobs?limit=0").status == 400
    assert api.call("GET", "/api/jobs?limit=abc").json()["fields"] == {"limit": "must be a whole number from 1 to 200"}


def test_unknown_job_is_a_json_404(api):
    for method, path in [("GET", "/api/jobs/nope"), ("GET", "/api/jobs/nope/progress"),
                         ("POST", "/api/jobs/nope/cancel"), ("DELETE", "/api/jobs/nope"),
                         ("GET", "/api/jobs/nope/emails"), ("GET", "/api/jobs/nope/events")]:
        reply = api.call(method, path)
        assert reply.status == 404 and reply.json()["fields"] == {"id": "nope"}
    assert api.call("GET", "/api/nothing-here").json()["error"] == "not found"


def test_every_state_transition_through_the_api(api):
    job_id = create(api).json()["id"]

    def act(action, expect):
        reply = api.call("POST", f"/api/jobs/{job_id}/{action}")
        assert reply.status == expect, (action, reply.body)
        return reply

    act("resume", 409)                         # queued cannot resume
    assert act("pause", 200).json()["status"] == "paused"
    act("pause", 409)
    assert act("resume", 202).json()["status"] == "queued"
    job_rows.apply_action(api.db, job_id, "start")   # a worker would do this
    act("resume", 409)                         # running cannot resume
    assert act("pause", 200).json()["status"] == "paused"
    assert api.call("DELETE", f"/api/jobs/{job_id}").status == 409  # not finished
    assert act("cancel", 200).json()["status"] == "cancelled"
    act("cancel", 409)                         # cancelling twice
    act("retry", 409)                          # no failed pages
    assert api.call("DELETE", f"/api/jobs/{job_id}").json()["deleted"] is True
    assert api.call("GET", f"/api/jobs/{job_id}").status == 404


def test_completed_job_cannot_be_cancelled(api):
    job_id = create(api).json()["id"]
    job_rows.apply_action(api.db, job_id, "start")
    job_rows.apply_action(api.db, job_id, "complete")
    reply = api.call("POST", f"/api/jobs/{job_id}/cancel")
    assert reply.status == 409 and reply.json()["fields"]["status"] == "completed"


def test_progress_etag_and_304(api):
    job_id = create(api).json()["id"]
    first = api.call("GET", f"/api/jobs/{job_id}/progress")
    doc = first.json()
    assert first.status == 200 and first.header("etag") == f'"{doc["version"]}"'
    assert first.header("cache-control") == "no-cache"
    assert set(doc) >= {"id", "status", "version", "pages", "emails", "bytes", "rate", "eta_s", "workers",
                        "created_at", "started_at", "updated_at", "finished_at", "error"}
    assert set(doc["pages"]) == {"discovered", "done", "failed", "skipped", "in_flight"}
    same = api.call("GET", f"/api/jobs/{job_id}/progress", headers={"If-None-Match": first.header("etag")})
    assert same.status == 304 and same.body == b""
    job_rows.apply_action(api.db, job_id, "start")
    changed = api.call("GET", f"/api/jobs/{job_id}/progress", headers={"If-None-Match": first.header("etag")})
    assert changed.status == 200 and changed.json()["version"] == doc["version"] + 1
    assert changed.json()["status"] == "running" and changed.json()["started_at"]


def seed_results(db, job_id):
    with db.transaction() as s:
        for i, (email, sources) in enumerate([("b@shop.example", "text"), ("a@shop.example", "mailto,entity"),
                                              ("x<script>@evil.example", "text")]):
            s.execute("INSERT INTO emails (job_id, email, domain, first_url, pages, sources, created_at, site) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, 'shop.example')",
                      (job_id, email, email.split("@")[1], f"http://shop.example/{i}", i + 1, sources, time.time()))
        for i, state in enumerate(["done", "failed", "done"]):
            s.execute("INSERT INTO pages (job_id, url, url_hash, host, depth, state, http_status, bytes, error) "
                      "VALUES (?, ?, ?, 'shop.example', 1, ?, ?, 100, ?)",
                      (job_id, f"http://shop.example/{i}", f"{i:016x}", state, 200 if state == "done" else 503,
                       None if state == "done" else "HTTP 503"))


def test_emails_json_csv_and_filter(api):
    job_id = create(api).json()["id"]
    seed_results(api.db, job_id)
    doc = api.call("GET", f"/api/jobs/{job_id}/emails?limit=2").json()
    assert doc["total"] == 3 and [e["email"] for e in doc["emails"]] == ["a@shop.example", "b@shop.example"]
    assert doc["emails"][0] == {"email": "a@shop.example", "domain": "shop.example", "site": "shop.example",
                                "first_url": "http://shop.example/1", "pages": 2, "sources": ["mailto", "entity"]}
    assert api.call("GET", f"/api/jobs/{job_id}/emails?q=B@").json()["total"] == 1
    reply = api.call("GET", f"/api/jobs/{job_id}/emails?format=csv")
    assert reply.header("content-type").startswith("text/csv")
    rows = list(csv.reader(io.StringIO(reply.body.decode())))
    assert rows[0] == ["email", "domain", "site", "first_url", "pages", "sources"]
    assert rows[1] == ["a@shop.example", "shop.example", "shop.example", "http://shop.example/1", "2",
                       "mailto;entity"]
    assert len(rows) == 4
    assert api.call("GET", f"/api/jobs/{job_id}/emails?format=xml").status == 400
    assert api.call("GET", f"/api/jobs/{job_id}/emails?offset=-1").status == 400


def test_pages_log_and_state_filter(api):
    job_id = create(api).json()["id"]
    seed_results(api.db, job_id)
    doc = api.call("GET", f"/api/jobs/{job_id}/pages").json()
    assert doc["total"] == 3 and set(doc["pages"][0]) == {"url", "depth", "state", "http_status", "bytes", "error"}
    failed = api.call("GET", f"/api/jobs/{job_id}/pages?state=failed").json()
    assert failed["total"] == 1 and failed["pages"][0]["error"] == "HTTP 503"
    assert api.call("GET", f"/api/jobs/{job_id}/pages?state=weird").json()["fields"] == {
        "state": "one of pending, leased, done, failed, skipped"}


def test_stats_workers_health_metrics(api):
    stats = api.call("GET", "/api/stats").json()
    assert set(stats) >= {"jobs", "pages", "workers", "emails", "pages_per_s"}
    assert set(stats["jobs"]) == {"queued", "running", "paused", "completed", "failed", "cancelled"}
    assert api.call("GET", "/api/workers").json() == {"workers": []}
    health = api.call("GET", "/health", headers={"Accept": "application/json"})
    assert health.status == 200 and health.json()["status"] == "ok"
    assert {c["name"] for c in health.json()["checks"]} >= {"database", "pycurl", "workers", "queue"}
    metrics = api.call("GET", "/metrics").body.decode()
    assert 'trawl_jobs{status="queued"}' in metrics and "# TYPE trawl_workers_live gauge" in metrics


def test_trigger_endpoint_answers_at_once_and_fires(server):
    before = len(server.triggers())
    reply = call("POST", server.url("/api/workers/trigger"))
    assert reply.status == 202 and reply.json() == {"triggered": True}
    deadline = time.monotonic() + 5
    while len(server.triggers()) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.triggers()[-1]["reason"] == "api trigger"


# -- auth ---------------------------------------------------------------------


def test_token_is_required_when_set(locked_web):
    assert locked_web.call("GET", "/api/jobs").status == 401
    wrong = locked_web.call("GET", "/api/jobs", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401 and "Authorization" in wrong.json()["fields"]
    assert locked_web.call("POST", "/api/jobs", {"urls": ["http://a.example/"]}).status == 401
    ok = locked_web.call("POST", "/api/jobs", {"urls": ["http://a.example/"]}, {"Authorization": "Bearer s3cret"})
    assert ok.status == 202


def test_no_token_needed_when_unset(api):
    assert api.call("GET", "/api/jobs").status == 200


def test_two_apps_in_one_process_keep_their_own_settings_and_database(web, locked_web):
    job_id = create(web).json()["id"]
    assert locked_web.call("GET", f"/api/jobs/{job_id}").status == 401
    assert locked_web.call("GET", f"/api/jobs/{job_id}", headers={"Authorization": "Bearer s3cret"}).status == 404
    assert web.call("GET", f"/api/jobs/{job_id}").status == 200


def test_settings_outside_a_request_mean_the_only_app_or_are_refused(web):
    """A thread a request starts (the worker trigger) may read SETTINGS when the process has one app."""
    import os
    import subprocess
    import sys
    import threading

    import app as app_module
    from tests.conftest import ROOT

    seen = []
    reader = threading.Thread(target=lambda: seen.append(_outcome(lambda: app_module.SETTINGS.port)))
    reader.start()
    reader.join()
    assert "apps in this process" in seen[0]  # the test process has several
    code = ("import threading, app; out = []; t = threading.Thread(target=lambda: out.append(app.SETTINGS.port)); "
            "t.start(); t.join(); print(out[0])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "TRAWL_PORT": "18123"})
    assert out.stdout.strip() == "18123", out.stderr


def _outcome(fn) -> str:
    try:
        return repr(fn())
    except RuntimeError as exc:
        return str(exc)


# -- one place for error mapping and for the early-close routes ------------------


def test_store_errors_map_to_404_and_409_on_every_job_route(api):
    job_id = create(api).json()["id"]
    refused = api.call("DELETE", f"/api/jobs/{job_id}")
    assert refused.status == 409 and refused.json()["fields"] == {"status": "queued"}
    assert "cancel it first" in refused.json()["error"]
    reply = api.call("POST", f"/api/jobs/{job_id}/resume")
    assert reply.status == 409 and reply.json()["fields"] == {"status": "queued"}
    for method, path in [("GET", "/api/jobs/{}"), ("GET", "/api/jobs/{}/progress"), ("POST", "/api/jobs/{}/pause"),
                         ("POST", "/api/jobs/{}/resume"), ("POST", "/api/jobs/{}/retry"),
                         ("GET", "/api/jobs/{}/pages"), ("GET", "/api/jobs/{}/emails?format=csv")]:
        reply = api.call(method, path.format("gone"))
        assert reply.status == 404 and reply.json() == {"error": "no such job", "fields": {"id": "gone"}}, path


def test_the_early_close_list_is_exactly_the_routes_that_answer_early(api):
    from app import create_app
    from trawl.early_close import EARLY_CLOSE_ROUTES, closes_early

    job_id = create(api).json()["id"]
    api.call("POST", f"/api/jobs/{job_id}/pause")
    early = {"/api/jobs": create(api), "/api/workers/trigger": api.call("POST", "/api/workers/trigger"),
             f"/api/jobs/{job_id}/resume": api.call("POST", f"/api/jobs/{job_id}/resume")}
    for path, reply in early.items():
        assert reply.status == 202 and reply.header("connection") == "close" and closes_early("POST", path), path
    late = {f"/api/jobs/{job_id}/pause": api.call("POST", f"/api/jobs/{job_id}/pause"),
            f"/api/jobs/{job_id}/cancel": api.call("POST", f"/api/jobs/{job_id}/cancel")}
    for path, reply in late.items():
        assert reply.status == 200 and reply.header("connection") is None and not closes_early("POST", path), path
    assert len(EARLY_CLOSE_ROUTES) == 3
    rules = {r.rule for r in create_app(api.settings, api.db).routes if r.method == "POST"}
    assert set(EARLY_CLOSE_ROUTES) <= rules


def test_serve_refuses_a_public_address_without_token(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "TRAWL_HOST": "0.0.0.0", "TRAWL_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    env.pop("TRAWL_API_TOKEN", None)
    out = subprocess.run([sys.executable, "app.py", "serve"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "TRAWL_API_TOKEN" in out.stderr
