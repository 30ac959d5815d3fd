"""A broad crawl: ~200 named sites through the system resolver, two worker processes, both databases.

The sites (shop000.com ...) are names in a marked /etc/hosts block
(tests/etc_hosts.py, removed afterwards), so libcurl and our resolver meet
them as real names; one threaded server on 127.0.0.1 answers them all by
`Host` and counts every request per (host, path). What a user would check:

- every page fetched exactly once, every address found, none from pages
  robots.txt disallows (every tenth site), no robots.txt on every third;
- links to a PDF, a .tar.gz, its .asc signature and a PNG never requested;
- a host that answers 429 with Retry-After is left alone that long (one
  connection per host, so the next request can only be the one that waited);
- a calendar that never ends (day, week, month and year links: ~7,700
  dates within max_depth 30) and a nesting relative link are cut off,
  the cut pages skipped with a "trap:" reason;
- a site whose name has only an IPv6 address is crawled like the others;
- names that do not exist fail with "DNS: no such host", every page of
  the site, without a retry. They start with a hyphen, which glibc refuses
  before asking any DNS server: no packet leaves the machine.

Bounds are safety nets for "it stopped", not performance assertions; the
one lower bound on a gap between requests is the politeness promise itself.
"""

from __future__ import annotations

import datetime
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import skip_or_fail
from tests.etc_hosts import HostsUnavailable, hosts_block
from tests.test_worker import found_emails, job_row, page_rows, start_workers, stop_all, wait_for
from trawl.jobs import JobOptions
from trawl.store import job_rows

SITES = 200
V6_ONLY_INDEX = 999  # content like any site's: no robots rule, no special route
RETRY_SITE, TRAP_SITE = 1, 2
RETRY_AFTER_S = 2
GONE = [f"-gone{k}.com" for k in range(3)]  # refused by the resolver: "no such host"
V6_ONLY = "v6only-shop.com"  # only an IPv6 address in /etc/hosts, served on ::1
BINARIES = ("/files/report.pdf", "/files/pkg-1.0.tar.gz", "/files/pkg-1.0.tar.gz.asc", "/img/logo.png")
CALENDAR_START = datetime.date(2026, 1, 1)
CALENDAR_STEPS = (1, 7, 30, 365)  # next day, week, month, year: thousands of dates within 30 links
MAX_DEPTH = 30


def name(i: int) -> str:
    return f"shop{i:03d}.com"


def calendar_path(day: int) -> str:
    d = CALENDAR_START + datetime.timedelta(days=day)
    return f"/cal/{d.year}/{d.month:02d}/{d.day:02d}"


def html(links: list[str], body: str = "") -> bytes:
    nav = " ".join(f'<a href="{href}">{href}</a>' for href in links)
    return f"<html><head><title>t</title></head><body><nav>{nav}</nav>{body}</body></html>".encode()


class Sites:
    """The truth (pages, addresses) and the server that answers every site by Host."""

    def __init__(self, count: int):
        self.count = count
        self.pages: dict[tuple[str, str], bytes] = {}
        self.robots: dict[str, str] = {}
        self.emails: set[str] = set()
        self.forbidden: set[str] = set()
        self.hits: Counter = Counter()
        self.times: dict[tuple[str, str], list[float]] = {}
        self.lock = threading.Lock()
        self.retry_after_answered = threading.Event()
        for i in range(count):
            self._build(i)
        self._build(V6_ONLY_INDEX, host=V6_ONLY)

    def _build(self, i: int, host: str | None = None) -> None:
        host = host or name(i)
        nav = ["/", "/about.html", "/team.html", "/contact.html", "/blog/"]
        extra = list(BINARIES)
        if i % 10 == 0:
            extra.append("/private/staff.html")
            secret = f"hr{i}@{host}"
            self.pages[(host, "/private/staff.html")] = html(nav, f"<p>{secret}</p>")
            self.forbidden.add(secret)
            self.robots[host] = "User-agent: *\nDisallow: /private/\n"
        elif i % 3 != 1:
            self.robots[host] = "User-agent: *\nAllow: /\n"
        if i == TRAP_SITE:
            extra += [calendar_path(0), "/loop/"]
        people = {"about": f"sales{i}@{host}", "team": f"anna{i}@{host}", "contact": f"info{i}@{host}",
                  "post": f"press{i}@{host}"}
        self.emails.update(people.values())
        entity = people["about"].replace("@", "&#64;")
        self.pages[(host, "/")] = html(nav + extra, "<p>Welcome</p>")
        self.pages[(host, "/about.html")] = html(nav, f"<p>Sales: {entity}</p>")
        self.pages[(host, "/team.html")] = html(nav, f"<p>{people['team']}</p>")
        self.pages[(host, "/contact.html")] = html(nav, f'<a href="mailto:{people["contact"]}">mail</a>')
        self.pages[(host, "/blog/")] = html(nav + [f"/blog/{n}.html" for n in (1, 2, 3)])
        for n in (1, 2, 3):
            body = f"<p>{people['post']}</p>" if n == 2 else "<p>news</p>"
            self.pages[(host, f"/blog/{n}.html")] = html(nav + [f"/blog/{n % 3 + 1}.html"], body)

    def page_paths(self, host: str) -> set[str]:
        return {path for h, path in self.pages if h == host and not path.startswith("/private/")}

    # ---------------------------------------------------------------- serving

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        host = (h.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        path = h.path.split("?", 1)[0]
        with self.lock:
            self.hits[(host, path)] += 1
            self.times.setdefault((host, path), []).append(time.monotonic())
            first = self.hits[(host, path)] == 1
        if host == name(RETRY_SITE) and path == "/team.html" and first:
            self.retry_after_answered.set()
            return _reply(h, 429, b"slow down", {"Retry-After": str(RETRY_AFTER_S)})
        if path == "/robots.txt":
            text = self.robots.get(host)
            return _reply(h, 200, text.encode(), {"Content-Type": "text/plain"}) if text else _reply(h, 404)
        if host == name(TRAP_SITE) and path.startswith("/cal/"):
            y, m, d = (int(x) for x in path.split("/")[2:5])
            day = (datetime.date(y, m, d) - CALENDAR_START).days
            links = [calendar_path(day + step) for step in CALENDAR_STEPS]
            return _reply(h, 200, html(links, "<p>no events</p>"))
        if host == name(TRAP_SITE) and path.startswith("/loop/"):
            return _reply(h, 200, html(["next/"], "<p>deeper</p>"))
        body = self.pages.get((host, path))
        return _reply(h, 200, body) if body is not None else _reply(h, 404)


def _reply(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: dict | None = None) -> None:
    h.send_response(status)
    for key, value in {"Content-Type": "text/html; charset=utf-8", **(headers or {})}.items():
        h.send_header(key, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        try:
            self.server.sites.answer(self)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address) -> None:
        pass


class _Server6(_Server):
    address_family = socket.AF_INET6


@pytest.fixture(scope="module")
def served():
    sites = Sites(SITES)
    try:
        server6 = _Server6(("::1", 0), _Handler)
    except OSError as exc:
        skip_or_fail(f"no IPv6 loopback here: {exc}")
    server = _Server(("127.0.0.1", server6.server_address[1]), _Handler)  # one port for both
    try:
        block = hosts_block([name(i) for i in range(SITES)], extra={V6_ONLY: "::1"})
        block.__enter__()
    except (HostsUnavailable, OSError) as exc:
        server.server_close()
        server6.server_close()
        skip_or_fail(f"cannot add names to /etc/hosts here: {exc}")
    for s in (server, server6):
        s.sites = sites
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield sites, server.server_address[1]
    finally:
        for s in (server, server6):
            s.shutdown()
            s.server_close()
        block.__exit__(None, None, None)


@pytest.fixture
def crawl(db, served):
    """One job over every site and the names that do not exist, crawled by two worker processes."""
    sites, port = served
    with sites.lock:
        sites.hits.clear()
        sites.times.clear()
    sites.retry_after_answered.clear()
    gone = [f"http://{host}:{port}{path}" for host in GONE for path in ("/", "/about.html", "/contact.html")]
    seeds = [f"http://{name(i)}:{port}/" for i in range(SITES)] + [f"http://{V6_ONLY}:{port}/"] + gone
    options = JobOptions(urls=seeds, max_depth=MAX_DEPTH, max_pages=20_000, per_host_connections=1)
    job_id = job_rows.insert_job(db, options)["id"]
    workers = start_workers(db, 2)
    try:
        wait_for(lambda: job_row(db, job_id)["status"] == "completed", 180, "the broad job to complete")
    finally:
        stop_all(workers)
    return sites, port, job_id, db


def test_a_broad_crawl_fetches_every_page_once_and_finds_every_address(crawl):
    sites, port, job_id, db = crawl
    for i in range(SITES):
        host = name(i)
        fetched = {path for (h, path) in sites.hits if h == host and path != "/robots.txt"}
        assert sites.page_paths(host) <= fetched, host
        for path in sites.page_paths(host):
            expected = 2 if (i, path) == (RETRY_SITE, "/team.html") else 1  # the 429, then the page
            assert sites.hits[(host, path)] == expected, (host, path)
        # Once per worker that crawled the site: a host may pass to the other
        # worker between a commit and the next claim (never while leased).
        assert 1 <= sites.hits[(host, "/robots.txt")] <= 2, host
    v6_paths = {path for (h, path) in sites.hits if h == V6_ONLY} - {"/robots.txt", "/sitemap.xml"}
    assert v6_paths == sites.page_paths(V6_ONLY)
    found = set(found_emails(db, job_id))
    assert sites.emails <= found
    assert not found & sites.forbidden
    assert not any(path.startswith("/private/") for (_, path) in sites.hits)


def test_links_to_files_are_never_requested(crawl):
    sites, port, job_id, db = crawl
    requested = {path for (_, path) in sites.hits}
    assert not requested & set(BINARIES)
    urls = set(page_rows(db, job_id))
    assert not any(url.endswith(BINARIES) for url in urls)


def test_a_retry_after_host_is_left_alone_that_long(crawl):
    sites, port, job_id, db = crawl
    host = name(RETRY_SITE)
    assert sites.retry_after_answered.is_set()
    refused_at = sites.times[(host, "/team.html")][0]
    later = sorted(t for (h, _), times in sites.times.items() if h == host for t in times if t > refused_at)
    assert later, "the host was never asked again"
    # One connection per host: whatever comes next was held back by Retry-After.
    assert later[0] - refused_at >= RETRY_AFTER_S * 0.95
    assert page_rows(db, job_id)[f"http://{host}:{port}/team.html"]["state"] == "done"


def test_traps_are_cut_off_with_their_reason(crawl):
    sites, port, job_id, db = crawl
    host = name(TRAP_SITE)
    calendar = [path for (h, path) in sites.hits if h == host and path.startswith("/cal/")]
    # 100 dates (MAX_DIGIT_VARIANTS), then those within 5 more levels: a few
    # hundred of the ~7,700 the links reach within max_depth.
    assert 100 <= len(calendar) <= 400
    pages = page_rows(db, job_id)
    reasons = {row["error"] for url, row in pages.items() if row["state"] == "skipped" and host in url}
    assert any(r and r.startswith("trap: more than 100 URLs differ only in digits") for r in reasons)
    assert "trap: path segment 'next' repeated 3 times" in reasons
    loop = [path for (h, path) in sites.hits if h == host and path.startswith("/loop/")]
    assert sorted(loop) == ["/loop/", "/loop/next/", "/loop/next/next/"]


def test_names_that_do_not_exist_fail_per_site_without_retries(crawl):
    sites, port, job_id, db = crawl
    pages = page_rows(db, job_id)
    for host in GONE:
        rows = [row for url, row in pages.items() if f"//{host}:" in url]
        assert len(rows) == 3
        assert {(row["state"], row["error"]) for row in rows} == {("failed", "DNS: no such host")}
    row = job_row(db, job_id)
    assert row["pages_failed"] == 3 * len(GONE)
