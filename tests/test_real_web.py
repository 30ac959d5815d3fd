"""Crawling the way the real web is served: redirects across scheme and www., contact pages first,
a page budget per site, sitemaps.

Real servers on 127.0.0.1 (tests/site.py, over TLS with tests/tls.py's CA
where a test needs https), a real Worker on this thread, SQLite and
MariaDB through the `db` fixture. Requests are counted at the servers.
"""

from __future__ import annotations

import os

import pytest

from tests.hosts import hosts_block
from tests.site import TestSite, reply
from tests.tls import TestCA
from trawl.config import Settings
from trawl.jobs import JobOptions
from trawl.store import job_rows, results
from trawl.worker import Worker

APEX, WWW = "trawl-apex.example.org", "www.trawl-apex.example.org"


def crawl(db, job_id: str, **settings) -> None:
    worker = Worker(Settings(database_url=db.url, allow_private_networks=True, **settings), db,
                    f"real-{os.getpid()}", "test")
    worker.run(lambda: job_rows.load_job(db, job_id)["status"] in ("completed", "cancelled"), idle_exit_s=0.5)
    assert job_rows.load_job(db, job_id)["status"] == "completed"


def pages_of(db, job_id: str) -> dict[str, dict]:
    return {p["url"]: p for p in results.list_pages(db, job_id, 100_000, 0)[0]}


def emails_of(db, job_id: str) -> set[str]:
    return {e["email"] for e in results.list_emails(db, job_id, 100_000, 0)[0]}


def page_hits(site: TestSite) -> dict[str, int]:
    return {path: n for path, n in site.all_hits().items() if path != "/robots.txt"}


# ---------------------------------------------------------------- redirects across scheme and www.


@pytest.fixture(scope="module")
def apex_and_www(tmp_path_factory):
    """http://trawl-apex.example.org:P1 redirecting everything to https://www.trawl-apex.example.org:P2."""
    ca = TestCA(tmp_path_factory.mktemp("ca"))
    with hosts_block([APEX, WWW]):
        apex = TestSite(name=APEX).start()
        www = TestSite(ssl_context=ca.issue([WWW, APEX]).server_context(), name=WWW).start()
        try:
            yield apex, www, ca
        finally:
            apex.stop()
            www.stop()


def test_http_apex_seed_redirecting_to_https_www_keeps_its_scope_and_fetches_each_page_once(db, apex_and_www):
    apex, www, ca = apex_and_www
    apex.reset_hits()
    www.reset_hits()
    for path in ("/", "/about", "/team"):
        apex.add_redirect(path, www.url(path), status=301)
    www.add_page("/", f'<a href="/about">About</a> <a href="{apex.url("/team")}">Team</a> '
                      f'<a href="{apex.url("/")}">Home</a> <a href="/">Home</a> <p>home@acme-widgets.com</p>')
    www.add_page("/about", f'<a href="{apex.url("/about")}">About</a> <a href="/team">Team</a> '
                           '<p>about@acme-widgets.com</p>')
    www.add_page("/team", '<a href="/">Home</a> <p>team@acme-widgets.com</p>')
    job_id = job_rows.insert_job(db, JobOptions(urls=[apex.url("/")]))["id"]

    crawl(db, job_id, ca_bundle=str(ca.bundle))

    assert emails_of(db, job_id) == {f"{n}@acme-widgets.com" for n in ("home", "about", "team")}
    assert page_hits(www) == {"/": 1, "/about": 1, "/team": 1}
    assert page_hits(apex) == {"/": 1}  # the apex spellings of /about and /team were never fetched
    pages = pages_of(db, job_id)
    assert pages[apex.url("/")]["state"] == "done"
    assert pages[www.url("/")]["state"] == "skipped"
    assert pages[www.url("/")]["error"].startswith(f"same page as {apex.url('/')}")
    assert {url for url, p in pages.items() if p["state"] == "done"} == {
        apex.url("/"), www.url("/about"), www.url("/team")}
    row = job_rows.load_job(db, job_id)
    assert (row["pages_discovered"], row["pages_done"], row["pages_skipped"], row["pages_failed"]) == (4, 3, 1, 0)
