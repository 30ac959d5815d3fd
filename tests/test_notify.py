"""The completion webhook over real HTTP: a local receiver, real jobs, SQLite and MariaDB.

The receiver records every request it gets (headers and raw body) and
answers with scripted statuses, so retries and their count are seen at the
wire. The restart test runs real supervisors (`python app.py workers`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.processes import Foreground, assert_nothing_left, make_settings, wait_for
from tests.site import TestSite, generate_site
from trawl.config import Settings
from trawl.jobs import InvalidOptions, JobOptions, parse_options
from trawl.notify import Notifier, notify_document
from trawl.store import deliveries, job_rows
from trawl.worker import run_inline

TOKEN = "webhook-test-token"


class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs and answers `statuses` in turn, then 200."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict, bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=()):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.stop()


@pytest.fixture
def small_site():
    with TestSite(host="127.0.0.2") as site:
        generate_site(site, pages=3, links_per_page=2, emails_per_page=1, seed=3)
        yield site


def settings_for(db, **overrides) -> Settings:
    return Settings(**{"database_url": db.url, "allow_private_networks": True, "api_token": TOKEN,
                       "notify_retry_s": 0.3, **overrides})


def crawled_job(db, settings, url: str, notify_url: str) -> str:
    job_id = job_rows.insert_job(db, JobOptions(urls=[url], max_depth=1, notify_url=notify_url))["id"]
    run_inline(settings, db, job_id, lambda: False)
    return job_id


def send_until(notifier: Notifier, db, job_id: str, states: set[str], timeout: float = 20.0) -> dict:
    def settled():
        notifier.step(db)
        row = deliveries.delivery_for(db, job_id)
        return row if row and row["state"] in states and not notifier.in_flight else None

    return wait_for(settled, timeout, f"delivery of {job_id} to reach {states}", every=0.02)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", ["ftp://example.com/hook", "example.com/hook", "http:///nohost", 42,
                                 "http://exa mple.com/", "javascript:alert(1)"])
def test_only_http_and_https_urls_are_accepted(bad):
    with pytest.raises(InvalidOptions) as err:
        parse_options({"urls": ["http://a.example/"], "notify_url": bad})
    assert set(err.value.fields) == {"notify_url"}


def test_a_valid_notify_url_is_kept_and_null_means_none():
    assert parse_options({"urls": ["http://a.example/"], "notify_url": "https://hooks.example/x?y=1"}
                         ).notify_url == "https://hooks.example/x?y=1"
    assert parse_options({"urls": ["http://a.example/"], "notify_url": None}).notify_url is None


def test_the_api_refuses_a_bad_notify_url_with_400_naming_it(server):
    from tests.http import call

    reply = call("POST", server.url("/api/jobs"), {"urls": ["http://a.example/"], "notify_url": "file:///etc"})
    assert reply.status == 400 and set(reply.json()["fields"]) == {"notify_url"}
    job = call("POST", server.url("/api/jobs"), {"urls": ["http://a.example/"],
                                                  "notify_url": "http://hooks.example/"}).json()
    doc = call("GET", server.url(f"/api/jobs/{job['id']}")).json()
    assert doc["options"]["notify_url"] == "http://hooks.example/"
    assert doc["notify"] == {"state": "pending", "attempts": 0, "last_error": None, "delivered_at": None}
    plain = call("POST", server.url("/api/jobs"), {"urls": ["http://a.example/"]}).json()
    assert call("GET", server.url(f"/api/jobs/{plain['id']}")).json()["notify"] is None


# ---------------------------------------------------------------- delivery


def test_one_signed_post_of_the_final_job_per_job_end(db, receiver, small_site):
    hook = receiver()
    settings = settings_for(db)
    job_id = crawled_job(db, settings, small_site.url("/"), hook.url)
    notifier = Notifier(settings, "sender-1")
    row = send_until(notifier, db, job_id, {"delivered"})
    for _ in range(30):  # more steps, later claims: nothing is sent twice
        notifier.step(db)
        time.sleep(0.05)
    notifier.close(db)
    assert hook.count() == 1 and row["attempts"] == 1
    headers, body = hook.requests[0]
    expected = "sha256=" + hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-trawl-signature"], expected)
    assert headers["user-agent"] == settings.user_agent
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    job = job_rows.load_job(db, job_id)
    assert doc["id"] == job_id and doc["status"] == "completed"
    assert doc["pages"]["done"] == job["pages_done"] == 3 and doc["emails"] == job["emails"]
    assert doc["finished_at"] is not None and doc["options"]["notify_url"] == hook.url


def test_a_cancelled_job_is_announced_too_and_unsigned_without_a_token(db, receiver):
    hook = receiver()
    settings = settings_for(db, api_token=None)
    job_id = job_rows.insert_job(db, JobOptions(urls=["http://a.example/"], notify_url=hook.url))["id"]
    job_rows.apply_action(db, job_id, "cancel")
    notifier = Notifier(settings, "sender-1")
    send_until(notifier, db, job_id, {"delivered"})
    notifier.close(db)
    headers, body = hook.requests[0]
    assert hook.count() == 1 and json.loads(body)["status"] == "cancelled"
    assert "x-trawl-signature" not in headers


def test_a_receiver_failing_twice_gets_it_on_the_third_try(db, receiver, small_site):
    hook = receiver([500, 503])
    settings = settings_for(db)
    job_id = crawled_job(db, settings, small_site.url("/"), hook.url)
    notifier = Notifier(settings, "sender-1")
    row = send_until(notifier, db, job_id, {"delivered"})
    notifier.close(db)
    assert hook.count() == 3 and row["attempts"] == 3 and row["last_error"] is None
    bodies = {body for _, body in hook.requests}
    assert len(bodies) == 1  # the same final job object each time
    assert [h["x-trawl-attempt"] for h, _ in hook.requests] == ["1", "2", "3"]


def test_retries_stop_when_the_hour_is_up(db, receiver):
    hook = receiver([500] * 10)
    settings = settings_for(db, notify_give_up_s=1.0, notify_retry_s=0.3)
    job_id = job_rows.insert_job(db, JobOptions(urls=["http://a.example/"], notify_url=hook.url))["id"]
    job_rows.apply_action(db, job_id, "cancel")
    notifier = Notifier(settings, "sender-1")
    row = send_until(notifier, db, job_id, {"failed"})
    notifier.close(db)
    assert row["last_error"].startswith("HTTP 500") and "given up" in row["last_error"]
    assert hook.count() == row["attempts"] >= 2


def test_a_loopback_receiver_is_refused_without_private_networks(db, receiver):
    hook = receiver()
    settings = settings_for(db, allow_private_networks=False)
    job_id = job_rows.insert_job(db, JobOptions(urls=["http://a.example/"], notify_url=hook.url))["id"]
    job_rows.apply_action(db, job_id, "cancel")
    notifier = Notifier(settings, "sender-1")
    row = send_until(notifier, db, job_id, {"failed"})
    notifier.close(db)
    assert hook.count() == 0
    assert "refused" in row["last_error"] and "127.0.0.1" in row["last_error"]
    doc = notify_document(job_rows.load_job(db, job_id), row)
    assert doc["state"] == "failed" and doc["last_error"] == row["last_error"]


def test_a_supervisor_restart_between_attempts_neither_loses_nor_repeats(tmp_path, receiver, small_site):
    """Attempt 1 (a 500) by one supervisor, which then stops; the next supervisor sends attempt 2."""
    from trawl.store import open_database

    url = f"sqlite:///{tmp_path / 'notify.db'}"
    db = open_database(url, migrate_now=True)
    hook = receiver([500])
    settings = make_settings(tmp_path, url, notify_retry_s=4.0, api_token=TOKEN, supervisor_idle_s=30.0)
    job_id = job_rows.insert_job(db, JobOptions(urls=[small_site.url("/")], max_depth=1,
                                                notify_url=hook.url))["id"]
    try:
        with Foreground(settings, count=1) as first:
            wait_for(lambda: hook.count() == 1, 30, "the first attempt")
            wait_for(lambda: deliveries.delivery_for(db, job_id)["attempts"] == 1, 10, "attempt 1 recorded")
            first.terminate()
        row = deliveries.delivery_for(db, job_id)
        assert (row["state"], row["lease_owner"]) == ("pending", None) and hook.count() == 1
        with Foreground(settings, count=1, name="second"):
            wait_for(lambda: deliveries.delivery_for(db, job_id)["state"] == "delivered", 30, "the delivery")
            time.sleep(2.5)  # a few more ticks of the new supervisor: nothing more is sent
        assert hook.count() == 2
        assert deliveries.delivery_for(db, job_id)["attempts"] == 2
        assert [h["x-trawl-attempt"] for h, _ in hook.requests] == ["1", "2"]
    finally:
        db.close()
        assert_nothing_left(settings.run_dir)
