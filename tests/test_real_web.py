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
from tests.site import TestSite, generate_contact_site, generate_site
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


def paths_of(truth) -> set[str]:
    return {url[len(truth.root.rstrip("/")):] for url in truth.urls}


def page_hits(site: TestSite) -> dict[str, int]:
    return site.page_hits()


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


# ---------------------------------------------------------------- a page budget per site, contact pages first


def sites_of(db, job_id: str) -> dict[str, dict]:
    from trawl.store import sites

    return {r["site"]: r for r in sites.list_sites(db, job_id, 100, 0)[0]}


def test_a_site_that_reaches_its_budget_stops_while_the_others_finish(db):
    big, small, other = (TestSite(host=f"127.0.0.{i}").start() for i in (1, 2, 3))
    try:
        generate_site(big, pages=60, seed=5)
        truths = [generate_site(s, pages=6, seed=6 + i) for i, s in enumerate((small, other))]
        job_id = job_rows.insert_job(db, JobOptions(urls=[big.url("/"), small.url("/"), other.url("/")],
                                                    max_depth=10, max_pages_per_site=10))["id"]
        crawl(db, job_id)
        assert sum(page_hits(big).values()) == 10
        for s, truth in zip((small, other), truths):
            assert set(page_hits(s)) == paths_of(truth) and set(page_hits(s).values()) == {1}
        pages = pages_of(db, job_id)
        big_pages = [p for url, p in pages.items() if url.startswith(big.origin)]
        assert sum(p["state"] == "done" for p in big_pages) == 10
        skipped = [p for p in big_pages if p["state"] == "skipped"]
        assert skipped and {p["error"] for p in skipped} == {"site page budget reached"}
        by_site = sites_of(db, job_id)
        assert (by_site["127.0.0.1"]["state"], by_site["127.0.0.1"]["note"]) == ("done", "site page budget reached")
        assert by_site["127.0.0.1"]["pages"] == {"done": 10, "failed": 0, "skipped": len(skipped)}
        assert [(by_site[h]["state"], by_site[h].get("note")) for h in ("127.0.0.2", "127.0.0.3")] == [("done", None)] * 2
        with db.read() as s:
            claimed = s.scalar("SELECT pages_claimed FROM sites WHERE job_id = ? AND site = '127.0.0.1'", (job_id,))
        assert claimed == 10
        row = job_rows.load_job(db, job_id)
        assert row["pages_done"] + row["pages_skipped"] + row["pages_failed"] == row["pages_discovered"]
    finally:
        for s in (big, small, other):
            s.stop()


def test_contact_pages_first_reach_the_addresses_within_the_budget(db):
    with TestSite() as site:
        generated = generate_contact_site(site, seed=11)
        job_id = job_rows.insert_job(db, JobOptions(urls=[site.url("/")], max_depth=3, max_pages_per_site=20,
                                                    concurrency=4))["id"]
        crawl(db, job_id)
        assert sum(page_hits(site).values()) == 20
        assert emails_of(db, job_id) == generated.emails
        for path in generated.address_paths:
            assert site.hits(path) == 1
