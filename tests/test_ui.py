"""The browser UI, driven by Playwright in Debian's Chromium, plus its HTTP-level contract.

Each test starts its own gunicorn (tests.conftest.start_server) on a free
port with a temporary SQLite database. Workers are not started
(TRAWL_AUTOSTART_WORKERS=0): the test moves the job itself by writing to the
store, the way workers do, so each step is deterministic. One test at the
end runs the real engine against the local test website.

Without /usr/bin/chromium the browser tests skip saying so; under CI=true
they fail instead. Screenshots of the home and job pages go to artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, skip_or_fail, start_server
from tests.http import call
from tests.site import TestSite, generate_site

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "artifacts"
XSS = "<script>window.__pwned=1</script>"


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        skip_or_fail(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


class Trawl:
    """A test's own server and a handle on its database."""

    def __init__(self, tmp: Path, **env: str):
        from trawl.store import open_database

        self.access_log = tmp / "access.log"
        self.server = start_server(tmp, TRAWL_ACCESS_LOG=str(self.access_log), **env)
        self.db = open_database(self.server.database_url)

    def url(self, path: str) -> str:
        return self.server.url(path)

    def stop(self) -> None:
        self.db.close()
        self.server.stop()

    # The writes a worker would make ------------------------------------------------

    def action(self, job_id: str, action: str) -> None:
        from trawl.store import job_rows

        job_rows.apply_action(self.db, job_id, action)

    def progress(self, job_id: str, **counters: int) -> None:
        columns = ", ".join(f"{name} = ?" for name in counters)
        with self.db.transaction() as s:
            s.execute(f"UPDATE jobs SET {columns}, version = version + 1, updated_at = ? WHERE id = ?",
                      (*counters.values(), time.time(), job_id))

    def add_emails(self, job_id: str, rows: list[tuple[str, str]]) -> None:
        """rows: (email, first_url); stored the way the worker stores them."""
        now = time.time()
        with self.db.transaction() as s:
            for email, url in rows:
                s.execute(
                    "INSERT INTO emails (job_id, email, domain, first_url, pages, sources, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (job_id, email, email.rpartition("@")[2], url, 1, "mailto,text", now))

    def add_failed_page(self, job_id: str, url: str, status: int | None, error: str) -> None:
        from trawl.urls import url_hash

        with self.db.transaction() as s:
            s.execute(
                "INSERT INTO pages (job_id, url, url_hash, host, depth, state, http_status, error, fetched_at) "
                "VALUES (?, ?, ?, ?, 0, 'failed', ?, ?, ?)",
                (job_id, url, url_hash(url), "example.org", status, error, time.time()))

    def access_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []


@pytest.fixture
def trawl(tmp_path):
    t = Trawl(tmp_path)
    yield t
    t.stop()


@pytest.fixture
def page(browser, trawl):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.errors = []
    pg.requests = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on("console", lambda msg: msg.type == "error" and pg.errors.append(msg.text))
    pg.on("request", lambda req: pg.requests.append(req.url))
    yield pg
    context.close()


def set_live_mode(page, trawl, mode: str) -> None:
    """Choose polling or SSE the way a user does: the checkbox on the home page."""
    page.goto(trawl.url("/"))
    box = page.get_by_label("Live updates (SSE)")
    box.set_checked(mode == "sse")


def create_job_via_form(page, trawl, urls: str, name: str = "", **fields: str) -> str:
    page.goto(trawl.url("/"))
    page.get_by_label("Seed URLs").fill(urls)
    if name:
        page.get_by_label("Name", exact=True).fill(name)
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)
    page.get_by_role("button", name="Start crawl").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f]+$"), timeout=5_000)
    return page.url.rsplit("/", 1)[1]


def status_of(page) -> str:
    return page.locator("#status").inner_text()


def expect_status(page, status: str, timeout_ms: int = 15_000) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_have_text(status, timeout=timeout_ms)
    expect(page.locator("#status")).to_have_attribute("data-status", status)


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def run_fake_crawl(trawl, job_id: str, emails: int = 30) -> None:
    """Start, move the counters in a few steps, store addresses, complete."""
    trawl.action(job_id, "start")
    for step in range(1, 4):
        time.sleep(0.4)
        trawl.progress(job_id, pages_discovered=40, pages_done=step * 10, bytes=step * 50_000,
                       emails=step * emails // 3)
    trawl.add_emails(job_id, [(f"person{i:02d}@example{i % 3}.org", f"https://example.org/p{i}")
                              for i in range(emails)])
    trawl.progress(job_id, pages_done=38, pages_failed=2, emails=emails)
    trawl.add_failed_page(job_id, "https://example.org/broken", 500, "HTTP 500 after 3 attempts")
    trawl.action(job_id, "complete")


# -- browser tests ------------------------------------------------------------------------


@pytest.mark.browser
def test_polling_mode_watches_a_job_to_completed_without_an_event_stream(page, trawl):
    set_live_mode(page, trawl, "poll")
    job_id = create_job_via_form(page, trawl, "https://example.org/\nhttps://example.net/", name="Polling demo",
                                 **{"Max depth": "3", "Max pages": "500"})
    expect_status(page, "queued")
    from playwright.sync_api import expect

    expect(page.locator("#live")).to_have_attribute("data-state", "polling")
    run_fake_crawl(trawl, job_id)
    expect_status(page, "completed")
    # Once ended, the first addresses show without any click.
    expect(page.locator("#emails tbody tr")).to_have_count(30)
    assert page.locator("#emails tbody tr").first.inner_text().startswith("person00@example0.org")
    expect(page.locator("[data-counter=done] dd")).to_have_text("38")
    expect(page.locator("#failed tbody tr")).to_have_count(1)
    expect(page.locator("#failed tbody")).to_contain_text("HTTP 500 after 3 attempts")
    assert page.locator("#progress-text").get_attribute("aria-live") == "polite"
    screenshot(page, "job-completed-polling.png")

    events = [u for u in page.requests if u.endswith("/events")]
    assert events == [], f"polling mode opened the event stream: {events}"
    assert not [line for line in trawl.access_lines() if "/events" in line]
    progress_gets = [u for u in page.requests if u.endswith(f"/api/jobs/{job_id}/progress")]
    assert len(progress_gets) >= 2
    assert any('" 304 ' in line for line in trawl.access_lines() if "/progress" in line), \
        "the page never got a 304: If-None-Match is not being sent"
    job = call("GET", trawl.url(f"/api/jobs/{job_id}")).json()
    assert job["name"] == "Polling demo"
    assert job["options"]["max_depth"] == 3 and job["options"]["max_pages"] == 500
    assert page.errors == []


@pytest.mark.browser
def test_sse_mode_listens_on_the_event_stream_until_completed(page, trawl):
    set_live_mode(page, trawl, "sse")
    job_id = create_job_via_form(page, trawl, "https://example.org/", name="SSE demo")
    from playwright.sync_api import expect

    expect(page.locator("#live")).to_have_attribute("data-state", "sse")
    run_fake_crawl(trawl, job_id, emails=25)
    expect_status(page, "completed")
    expect(page.locator("#emails tbody tr")).to_have_count(25)
    expect(page.locator("#live")).to_have_attribute("data-state", "ended")
    assert [u for u in page.requests if u.endswith(f"/api/jobs/{job_id}/events")]
    assert not [u for u in page.requests if u.endswith(f"/api/jobs/{job_id}/progress")], \
        "SSE mode polled although the stream worked"
    assert page.errors == []


@pytest.mark.browser
def test_live_mode_choice_is_remembered_across_a_refresh(page, trawl):
    set_live_mode(page, trawl, "sse")
    page.reload()
    assert page.get_by_label("Live updates (SSE)").is_checked()
    page.get_by_label("Live updates (SSE)").set_checked(False)
    page.reload()
    assert not page.get_by_label("Live updates (SSE)").is_checked()


@pytest.mark.browser
@pytest.mark.parametrize("mode", ["poll", "sse"])
def test_refresh_mid_crawl_resumes_from_the_server_state(page, trawl, mode):
    set_live_mode(page, trawl, mode)
    job_id = create_job_via_form(page, trawl, "https://example.org/")
    trawl.action(job_id, "start")
    trawl.progress(job_id, pages_discovered=100, pages_done=37, emails=5)
    from playwright.sync_api import expect

    expect_status(page, "running")
    expect(page.locator("[data-counter=done] dd")).to_have_text("37")
    page.reload()
    # Straight from the server-rendered state, before any poll.
    assert status_of(page) == "running"
    expect(page.locator("[data-counter=done] dd")).to_have_text("37")
    expect(page.locator("#progress-text")).to_contain_text("37 of 100 pages")
    assert page.locator("#bar").get_attribute("aria-valuenow") == "37"
    trawl.progress(job_id, pages_done=60)
    expect(page.locator("[data-counter=done] dd")).to_have_text("60")
    screenshot(page, f"job-running-{mode}.png")
    assert page.errors == []


@pytest.mark.browser
def test_cancel_button_cancels_the_job(page, trawl):
    set_live_mode(page, trawl, "poll")
    job_id = create_job_via_form(page, trawl, "https://example.org/")
    trawl.action(job_id, "start")
    expect_status(page, "running")
    page.get_by_role("button", name="Cancel").click()
    expect_status(page, "cancelled")
    assert call("GET", trawl.url(f"/api/jobs/{job_id}")).json()["status"] == "cancelled"
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    expect(page.get_by_role("button", name="Delete")).to_be_enabled()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(trawl.url("/"))
    assert call("GET", trawl.url(f"/api/jobs/{job_id}")).status == 404


@pytest.mark.browser
def test_bad_form_input_shows_the_field_errors_from_the_api(page, trawl):
    page.goto(trawl.url("/"))
    page.get_by_label("Seed URLs").fill("ftp://example.org/")
    page.get_by_label("Max depth", exact=True).fill("500")
    page.get_by_role("button", name="Start crawl").click()
    from playwright.sync_api import expect

    expect(page.locator("[data-error-for=urls]")).to_contain_text("scheme must be http or https")
    expect(page.locator("[data-error-for=max_depth]")).to_contain_text("between 0 and 100")
    expect(page.get_by_label("Max depth", exact=True)).to_have_attribute("aria-invalid", "true")
    assert page.url == trawl.url("/")
    screenshot(page, "home-field-errors.png")
    # Fixing the input clears the errors and creates the job.
    page.get_by_label("Seed URLs").fill("https://example.org/")
    page.get_by_label("Max depth", exact=True).fill("1")
    page.get_by_role("button", name="Start crawl").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f]+$"))


@pytest.mark.browser
def test_seed_file_upload_creates_the_job(page, trawl, tmp_path):
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("url,note\nhttps://a.example/,x\nhttps://b.example/,y\n")
    page.goto(trawl.url("/"))
    page.get_by_label("Seed list file (.txt or .csv)").set_input_files(str(seeds))
    page.get_by_role("button", name="Start crawl").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    with trawl.db.read() as s:
        stored = s.scalar("SELECT seeds FROM jobs WHERE id = ?", (job_id,))
    assert stored.splitlines() == ["https://a.example/", "https://b.example/"]


@pytest.mark.browser
def test_csv_download_has_every_address(page, trawl):
    job_id = create_job_via_form(page, trawl, "https://example.org/")
    trawl.action(job_id, "start")
    trawl.add_emails(job_id, [(f"a{i}@example.org", "https://example.org/") for i in range(70)])
    trawl.progress(job_id, emails=70, pages_discovered=1, pages_done=1)
    trawl.action(job_id, "complete")
    expect_status(page, "completed")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == f"trawl-{job_id}-emails.csv"
    lines = Path(download.path()).read_text().splitlines()
    assert lines[0] == "email,domain,site,first_url,pages,sources"
    assert len(lines) == 71
    # Paging: 50 on the first page, the rest on the next.
    from playwright.sync_api import expect

    expect(page.locator("#emails tbody tr")).to_have_count(50)
    page.locator("#emails-pager").get_by_role("button", name="Next").click()
    expect(page.locator("#emails tbody tr")).to_have_count(20)
    page.get_by_label("Filter").fill("a6")
    expect(page.locator("#emails tbody tr")).to_have_count(11)  # a6, a60..a69


@pytest.mark.browser
def test_script_in_crawled_text_renders_inert(page, trawl):
    name = f"evil {XSS}"
    job_id = create_job_via_form(page, trawl, "https://example.org/", name=name)
    trawl.action(job_id, "start")
    evil_email = f'"{XSS}"@example.org'
    evil_url = f"https://example.org/?q={XSS}"
    trawl.add_emails(job_id, [(evil_email, evil_url), ("ok@example.org", "javascript:window.__pwned=2")])
    trawl.add_failed_page(job_id, evil_url, None, f"failed: {XSS}")
    trawl.progress(job_id, emails=2, pages_discovered=1, pages_failed=1)
    trawl.action(job_id, "complete")
    expect_status(page, "completed")
    from playwright.sync_api import expect

    expect(page.locator("#emails tbody tr")).to_have_count(2)
    assert page.locator("#job-name").inner_text() == name
    assert XSS in page.locator("#emails tbody").inner_text()
    assert XSS in page.locator("#failed tbody").inner_text()
    assert page.locator("#emails script, #failed script, #job-name script").count() == 0
    assert page.evaluate("window.__pwned") is None
    # A javascript: URL from a crawled page is shown, never made clickable.
    assert page.locator('#emails a[href^="javascript:"]').count() == 0
    page.goto(trawl.url("/"))
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    assert page.locator("#jobs tbody a").inner_text() == name
    assert page.evaluate("window.__pwned") is None
    assert page.errors == []


@pytest.mark.browser
def test_home_lists_recent_jobs_and_totals_and_the_health_page_renders(page, trawl):
    from playwright.sync_api import expect

    first = create_job_via_form(page, trawl, "https://example.org/", name="First job")
    create_job_via_form(page, trawl, "https://example.net/", name="Second job")
    trawl.action(first, "start")
    trawl.progress(first, pages_discovered=10, pages_done=4, emails=3)
    page.goto(trawl.url("/"))
    rows = page.locator("#jobs tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Second job")
    expect(rows.nth(1)).to_contain_text("First job")
    expect(rows.nth(1).locator(".status")).to_have_attribute("data-status", "running")
    expect(page.locator("[data-stat=running]")).to_have_text("1")
    expect(page.locator("[data-stat=emails]")).to_have_text("3")
    page.wait_for_timeout(300)
    screenshot(page, "home.png")
    assert not [u for u in page.requests if u.endswith("/events")], "the job list must not open streams"

    page.goto(trawl.url(f"/jobs/{first}"))
    expect(page.locator("#status")).to_have_text("running")
    screenshot(page, "job.png")

    resp = page.goto(trawl.url("/health"))
    assert resp.status == 200
    expect(page.locator("[data-check=database]")).to_have_attribute("data-ok", "true")
    screenshot(page, "health.png")
    page.goto(trawl.url("/workers"))
    expect(page.locator("#workers-empty")).to_be_visible()
    assert page.errors == []


@pytest.mark.browser
def test_login_session_cookie_and_csrf(browser, tmp_path):
    t = Trawl(tmp_path, TRAWL_API_TOKEN="s3cret-token")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(t.url("/"))
        assert "/login" in page.url
        page.get_by_label("API token").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        assert page.get_by_role("alert").inner_text() == "That token is not right."
        page.get_by_label("API token").fill("s3cret-token")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(t.url("/"))
        cookie = next(c for c in context.cookies() if c["name"] == "trawl_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        job_id = create_job_via_form(page, t, "https://example.org/")
        expect_status(page, "queued")
        page.get_by_role("button", name="Pause").click()
        expect_status(page, "paused")
        # The cookie alone does not authorise a write: the CSRF token must come too.
        session = f"trawl_session={cookie['value']}"
        assert call("POST", t.url(f"/api/jobs/{job_id}/resume"), headers={"Cookie": session}).status == 403
        assert call("GET", t.url(f"/api/jobs/{job_id}"), headers={"Cookie": session}).status == 200
        assert call("GET", t.url(f"/api/jobs/{job_id}")).status == 401
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(re.compile(r"/login"))
        page.goto(t.url(f"/jobs/{job_id}"))
        assert "/login" in page.url
    finally:
        context.close()
        t.stop()


@pytest.mark.browser
def test_polling_shows_reconnecting_on_errors_and_recovers(page, trawl):
    from playwright.sync_api import expect

    set_live_mode(page, trawl, "poll")
    job_id = create_job_via_form(page, trawl, "https://example.org/")
    expect(page.locator("#live")).to_have_attribute("data-state", "polling")
    page.route("**/progress", lambda route: route.fulfill(status=503, body="down"))
    expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting", timeout=10_000)
    expect(page.locator("#live")).to_contain_text("reconnecting")
    page.unroute("**/progress")
    trawl.action(job_id, "start")
    expect_status(page, "running", timeout_ms=20_000)
    expect(page.locator("#live")).to_have_attribute("data-state", "polling")


@pytest.mark.browser
def test_sse_failure_falls_back_to_polling(page, trawl):
    from playwright.sync_api import expect

    set_live_mode(page, trawl, "sse")
    page.route("**/events", lambda route: route.fulfill(status=500, body="no"))
    job_id = create_job_via_form(page, trawl, "https://example.org/")
    expect(page.locator("#live")).to_have_attribute("data-state", re.compile("fallback|polling"))
    trawl.action(job_id, "start")
    expect_status(page, "running")
    assert [u for u in page.requests if u.endswith(f"/api/jobs/{job_id}/progress")]


@pytest.mark.browser
def test_polling_pauses_while_the_tab_is_hidden(page, trawl):
    from playwright.sync_api import expect

    set_live_mode(page, trawl, "poll")
    job_id = create_job_via_form(page, trawl, "https://example.org/")
    expect(page.locator("#live")).to_have_attribute("data-state", "polling")
    page.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    expect(page.locator("#live")).to_have_attribute("data-state", "hidden")
    page.wait_for_timeout(2500)  # let an already scheduled poll pass
    before = len([u for u in page.requests if u.endswith("/progress")])
    trawl.action(job_id, "start")
    page.wait_for_timeout(4500)
    assert len([u for u in page.requests if u.endswith("/progress")]) == before
    assert status_of(page) == "queued"
    page.evaluate("""() => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    expect_status(page, "running", timeout_ms=3_000)


# -- the real engine, end to end --------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.slow
def test_real_crawl_of_the_local_site_completes_in_both_modes(browser, tmp_path):
    with TestSite() as site:
        truth = generate_site(site, pages=40, seed=5)
        t = Trawl(tmp_path, TRAWL_AUTOSTART_WORKERS="1", TRAWL_ALLOW_PRIVATE_NETWORKS="1",
                  TRAWL_MAX_WORKERS="2")
        context = browser.new_context()
        try:
            page = context.new_page()
            page.requests, page.errors = [], []
            page.on("request", lambda req: page.requests.append(req.url))
            page.on("pageerror", lambda exc: page.errors.append(str(exc)))
            for mode in ("poll", "sse"):
                set_live_mode(page, t, mode)
                # A small per-host delay makes the crawl last a few seconds, long
                # enough to see it running and to draw the throughput chart.
                job_id = create_job_via_form(page, t, site.url("/"), name=f"local site ({mode})",
                                             **{"Max depth": "10", "Host connections": "1", "Host delay (ms)": "100"})
                expect_status(page, "running", timeout_ms=20_000)
                page.wait_for_timeout(3000)
                screenshot(page, f"job-real-crawl-{mode}-running.png")
                expect_status(page, "completed", timeout_ms=60_000)
                from playwright.sync_api import expect

                want = min(20, len(truth.emails))
                expect(page.locator("#emails tbody tr")).to_have_count(min(50, len(truth.emails)))
                shown = set(page.locator("#emails tbody td.email").all_inner_texts())
                assert len(shown) >= want and shown <= truth.emails
                streams = [u for u in page.requests if u.endswith(f"/api/jobs/{job_id}/events")]
                assert bool(streams) == (mode == "sse")
                screenshot(page, f"job-real-crawl-{mode}.png")
                assert page.errors == []
        finally:
            context.close()
            t.stop()


# -- HTTP-level contract of the pages (no browser needed) --------------------------------------


def test_pages_send_a_strict_content_security_policy(trawl):
    for path in ("/", "/workers", "/login"):
        reply = call("GET", trawl.url(path))
        if path == "/login":
            assert reply.status == 303  # no token configured: nothing to log in to
            continue
        assert reply.status == 200
        csp = reply.header("Content-Security-Policy")
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert reply.header("X-Content-Type-Options") == "nosniff"
    assert call("GET", trawl.url("/jobs/nope")).status == 404
    assert call("GET", trawl.url("/static/common.js")).status == 200
    assert call("GET", trawl.url("/static/../app.py")).status in (403, 404)


def test_health_negotiates_html_for_browsers_and_json_otherwise(trawl):
    as_json = call("GET", trawl.url("/health"), headers={"Accept": "application/json"})
    bare = call("GET", trawl.url("/health"))
    assert as_json.status == bare.status == 200
    assert as_json.header("Content-Type") == bare.header("Content-Type") == "application/json"
    report = json.loads(bare.body)
    assert report["status"] == "ok"
    names = {c["name"] for c in report["checks"]}
    assert {"database", "queue", "workers", "pycurl", "bloom", "disk", "spawn"} <= names
    page = call("GET", trawl.url("/health"), headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status == 200 and page.header("Content-Type").startswith("text/html")
    for name in names:
        assert f'data-check="{name}"' in page.body.decode()


def test_cross_site_writes_are_refused_without_a_token(trawl):
    body = {"urls": ["https://example.org/"]}
    evil = call("POST", trawl.url("/api/jobs"), body, headers={"Origin": "http://evil.example"})
    assert evil.status == 403
    same = call("POST", trawl.url("/api/jobs"), body,
                headers={"Origin": trawl.url(""), "Host": trawl.url("").split("//")[1]})
    assert same.status == 202
    assert call("POST", trawl.url("/api/jobs"), body).status == 202  # curl, scripts: no Origin
    proxied = call("POST", trawl.url("/api/jobs"), body,
                   headers={"Origin": "https://trawl.example", "X-Forwarded-Host": "trawl.example"})
    assert proxied.status == 202  # behind a reverse proxy that passes the public host on
    other_port = call("POST", trawl.url("/api/jobs"), body, headers={"Origin": "http://127.0.0.1:1"})
    assert other_port.status == 403


def test_bearer_token_still_works_and_bad_cookies_do_not(tmp_path):
    t = Trawl(tmp_path, TRAWL_API_TOKEN="tok")
    try:
        ok = call("POST", t.url("/api/jobs"), {"urls": ["https://example.org/"]},
                  headers={"Authorization": "Bearer tok", "Origin": "http://evil.example"})
        assert ok.status == 202  # a bearer token is never sent by a browser on its own
        for cookie in ("9999999999.abc.def", "\u00b2.abc.def", "9999999999.abc.d\u00e9f", "junk", ""):
            forged = call("GET", t.url("/api/jobs"), headers={"Cookie": f"trawl_session={cookie}".encode("latin-1")})
            assert forged.status == 401, cookie
        assert call("GET", t.url("/")).status == 303
        assert call("GET", t.url("/health")).status == 200
    finally:
        t.stop()


def test_run_again_prefills_the_form_with_the_seeds_and_options(trawl):
    created = call("POST", trawl.url("/api/jobs"), {"urls": ["https://a.example/", "https://b.example/"],
                                                    "name": "again", "max_depth": 7, "same_domain": False})
    job_id = created.json()["id"]
    html = call("GET", trawl.url(f"/?from={job_id}")).body.decode()
    assert "https://a.example/\nhttps://b.example/</textarea>" in html
    assert 'name="max_depth" data-int value="7"' in html
    assert 'id="f-same_domain" name="same_domain" value="1" data-bool >' in html  # unchecked
    assert 'id="f-obey_robots" name="obey_robots" value="1" data-bool checked>' in html


def test_unhealthy_is_503_in_both_forms_and_the_page_marks_the_failing_check(trawl):
    with trawl.db.transaction() as s:  # as if someone restored a database from before a migration
        s.execute("DELETE FROM schema_migrations")
    as_json = call("GET", trawl.url("/health"))
    assert as_json.status == 503 and as_json.json()["status"] == "unhealthy"
    page = call("GET", trawl.url("/health"), headers={"Accept": "text/html"})
    assert page.status == 503
    html = page.body.decode()
    assert 'data-check="database" data-ok="false"' in html and "python app.py migrate" in html


@pytest.mark.browser
def test_sites_table_shows_a_mixed_crawl_filters_and_downloads(page, trawl):
    """A real crawl (the engine on the test's thread) of the mixed site set of tests/test_sites.py."""
    import threading

    from playwright.sync_api import expect

    from tests.test_sites import start_mixed_sites
    from trawl.config import Settings
    from trawl.worker import run_inline

    seeds, truth, servers = start_mixed_sites()
    try:
        job_id = call("POST", trawl.url("/api/jobs"), {"urls": list(seeds.values()), "name": "mixed sites",
                                                       "max_depth": 3}).json()["id"]
        page.goto(trawl.url(f"/jobs/{job_id}"))
        settings = Settings(database_url=trawl.server.database_url, allow_private_networks=True,
                            connect_timeout_s=3.0)
        crawl = threading.Thread(target=run_inline, args=(settings, trawl.db, job_id, lambda: False))
        crawl.start()
        expect(page.locator("#sites tbody tr")).to_have_count(5)
        screenshot(page, "job-sites-running.png")
        crawl.join(timeout=60)
        expect_status(page, "completed", timeout_ms=20_000)
        rows = page.locator("#sites tbody tr")
        expect(page.locator('#sites tbody tr[data-state="unreachable"]')).to_have_count(2, timeout=10_000)
        states = dict(zip(rows.locator("td.site").all_inner_texts(),
                          rows.locator(".site-state").all_inner_texts()))
        assert states == {"127.0.0.2": "done", "127.0.0.3": "blocked", "127.0.0.4": "unreachable",
                          "127.0.0.5": "done", "no-such-host.trawl-test.invalid": "unreachable"}
        blocked = page.locator('#sites tbody tr[data-site="127.0.0.3"]')
        expect(blocked.locator(".site-error")).to_have_text("disallowed by robots.txt")
        expect(page.locator("#site-states button[data-state=unreachable] [data-count]")).to_have_text("2")
        screenshot(page, "job-sites-completed.png")

        page.locator("#site-states").get_by_role("button", name="unreachable").click()
        expect(page.locator("#sites tbody tr")).to_have_count(2)
        assert set(page.locator("#sites .site-state").all_inner_texts()) == {"unreachable"}
        assert page.locator('#sites tr[data-site="no-such-host.trawl-test.invalid"] .site-error'
                            ).inner_text() == "DNS: no such host"
        screenshot(page, "job-sites-unreachable.png")

        with page.expect_download() as info:
            page.get_by_role("link", name="Download the sites as CSV").click()
        lines = Path(info.value.path()).read_text().splitlines()
        assert info.value.suggested_filename == f"trawl-{job_id}-sites.csv"
        assert lines[0].startswith("site,seed,state,") and len(lines) == 3  # the filter applies

        page.locator("#site-states").get_by_role("button", name="all").click()
        expect(page.locator("#sites tbody tr")).to_have_count(5)
        page.locator("#sites").get_by_role("button", name="127.0.0.5").click()
        expect(page.locator("#emails tbody tr")).to_have_count(2)
        assert set(page.locator("#emails tbody td.email").all_inner_texts()) == {
            "hello@northwind-mail.com", "sales@northwind-mail.com"}
        expect(page.locator("#e-site")).to_be_visible()
        screenshot(page, "job-sites-filtered-addresses.png")
        with page.expect_download() as info:
            page.get_by_role("link", name="Download JSON").click()
        records = [json.loads(line) for line in Path(info.value.path()).read_text().splitlines()]
        assert {r["email"] for r in records} == {"hello@northwind-mail.com", "sales@northwind-mail.com"}
        page.locator("#e-site-clear").click()
        expect(page.locator("#emails tbody tr")).to_have_count(min(50, len(truth.emails) + 2))
        assert page.errors == []
    finally:
        for server in servers:
            server.stop()


@pytest.mark.browser
def test_sites_table_pages_ten_thousand_sites_on_the_server(page, trawl):
    from playwright.sync_api import expect

    from trawl.store import frontier

    job_id = call("POST", trawl.url("/api/jobs"),
                  {"urls": [f"http://site{i:05d}.com/" for i in range(10_000)]}).json()["id"]
    frontier.expand_seeds(trawl.db, job_id)
    page.goto(trawl.url(f"/jobs/{job_id}"))
    expect(page.locator("#sites-pager [data-range]")).to_have_text("1–25 of 10,000")
    expect(page.locator("#sites tbody tr")).to_have_count(25)
    page.locator("#sites-pager").get_by_role("button", name="Next").click()
    expect(page.locator("#sites tbody tr").first).to_have_attribute("data-site", "site00025.com")
    page.locator("#sites thead").get_by_role("button", name="Site").click()  # Z to A
    expect(page.locator("#sites tbody tr").first).to_have_attribute("data-site", "site09999.com")
    expect(page.locator("#site-states button[data-state=pending] [data-count]")).to_have_text("10,000")
    site_calls = [u for u in page.requests if "/sites?" in u]
    assert site_calls and all("limit=25" in u for u in site_calls)  # never the whole list
    assert page.errors == []


@pytest.mark.browser
def test_job_page_shows_the_webhook_delivery(page, trawl):
    from playwright.sync_api import expect

    from tests.test_notify import Receiver
    from trawl.config import Settings
    from trawl.notify import Notifier

    hook = Receiver()
    try:
        job_id = call("POST", trawl.url("/api/jobs"), {"urls": ["https://example.org/"],
                                                       "notify_url": hook.url}).json()["id"]
        page.goto(trawl.url(f"/jobs/{job_id}"))
        line = page.locator("#notify-line")
        expect(line).to_contain_text("pending")
        expect(line).to_contain_text("sent when the job ends")
        trawl.action(job_id, "cancel")
        expect_status(page, "cancelled")
        notifier = Notifier(Settings(database_url=trawl.server.database_url, allow_private_networks=True),
                            "ui-test")
        deadline = time.monotonic() + 10
        while hook.count() == 0 and time.monotonic() < deadline:
            notifier.step(trawl.db)
            time.sleep(0.05)
        while notifier.in_flight:
            notifier.step(trawl.db)
        notifier.close(trawl.db)
        expect(line).to_contain_text("delivered", timeout=10_000)
        expect(line).to_contain_text("after 1 attempt")
        assert json.loads(hook.requests[0][1])["status"] == "cancelled"
        screenshot(page, "job-webhook-delivered.png")
        assert page.errors == []
    finally:
        hook.stop()
