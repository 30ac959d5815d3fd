"""Sitemaps: parsing (plain, index, gzip, text, too big, broken) and discovery in a real crawl."""

from __future__ import annotations

import gzip
import os

import pytest

from tests.site import TestSite, reply, site  # noqa: F401  (site is a fixture)
from trawl.config import Settings
from trawl.jobs import JobOptions
from trawl.sitemaps import MAX_INFLATED_BYTES, MAX_SITEMAPS, SitemapDiscovery, SitemapFetch, inflate, parse
from trawl.store import job_rows, results
from trawl.worker import Worker


def urlset(*urls: str) -> bytes:
    locs = "".join(f"<url><loc>{u}</loc><lastmod>2026-01-01</lastmod></url>" for u in urls)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>').encode()


def index(*urls: str) -> bytes:
    locs = "".join(f"<sitemap><loc>{u}</loc></sitemap>" for u in urls)
    return f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</sitemapindex>'.encode()


# ---------------------------------------------------------------- parsing


def test_parse_reads_urlsets_indexes_gzip_and_text():
    assert parse(urlset("http://a.example.com/x", "http://a.example.com/y?a=1&amp;b=2")) == (
        "urls", ["http://a.example.com/x", "http://a.example.com/y?a=1&b=2"])
    assert parse(index("http://a.example.com/s1.xml")) == ("index", ["http://a.example.com/s1.xml"])
    assert parse(gzip.compress(urlset("http://a.example.com/z"))) == ("urls", ["http://a.example.com/z"])
    assert parse(b"http://a.example.com/t1\nhttp://a.example.com/t2\n") == (
        "urls", ["http://a.example.com/t1", "http://a.example.com/t2"])
    # namespaced prefixes and CDATA
    assert parse(b"<sm:urlset><sm:url><sm:loc><![CDATA[http://a.example.com/c]]></sm:loc></sm:url></sm:urlset>") == (
        "urls", ["http://a.example.com/c"])


def test_broken_and_foreign_bodies_add_nothing():
    assert parse(b"<html><body><a href='/x'>not a sitemap</a></body></html>") == ("none", [])
    assert parse(b"\x1f\x8b\x08garbage") == ("none", [])
    assert parse(b"<urlset><url><loc>http://a.example.com/ok</loc>")[1] == ["http://a.example.com/ok"]  # cut short
    billion_laughs = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><urlset><url><loc>&a;</loc></url></urlset>'
    assert parse(billion_laughs) == ("urls", ["&a;"])  # entities are never expanded


def test_a_gzip_bomb_is_refused_whole():
    bomb = gzip.compress(b"<urlset>" + b" " * (MAX_INFLATED_BYTES + 10))
    assert inflate(bomb) is None
    assert parse(bomb) == ("none", [])


def test_discovery_bounds_the_count_nesting_and_sites_of_sitemaps():
    d = SitemapDiscovery()
    origin = "http://a.example.com"
    first = d.start(origin, ["http://a.example.com/index.xml", "http://other.example.org/s.xml"])
    assert [f.url for f in first] == ["http://a.example.com/index.xml"]  # another site's file is not fetched
    assert d.start(origin, []) == [] and not d.ready(origin)
    many = [f"http://a.example.com/s{n}.xml" for n in range(50)]
    nested = d.record(first[0], 200, index(*many))
    assert len(nested) == MAX_SITEMAPS - 1 and all(f.nesting == 2 for f in nested)
    # an index two levels down is not followed
    assert d.record(nested[0], 200, index("http://a.example.com/deeper.xml")) == []
    for f in nested[1:]:
        d.record(f, 200, urlset(f.url.replace(".xml", ".html")))
    assert d.ready(origin)
    assert len(d.take_urls(origin)) == MAX_SITEMAPS - 2 and d.take_urls(origin) == []


def test_without_sitemap_lines_sitemap_xml_is_tried():
    d = SitemapDiscovery()
    [fetch] = d.start("https://a.example.com", [])
    assert fetch == SitemapFetch("https://a.example.com", "https://a.example.com/sitemap.xml", 1)
    assert d.record(fetch, 404, b"<html>not found</html>") == [] and d.ready("https://a.example.com")
    assert d.take_urls("https://a.example.com") == []


# ---------------------------------------------------------------- discovery in a crawl


def crawl(db, site: TestSite, **options) -> str:
    job_id = job_rows.insert_job(db, JobOptions(urls=[site.url("/")], **options))["id"]
    worker = Worker(Settings(database_url=db.url, allow_private_networks=True), db, f"sm-{os.getpid()}", "test")
    worker.run(lambda: job_rows.load_job(db, job_id)["status"] == "completed", idle_exit_s=0.5)
    assert job_rows.load_job(db, job_id)["status"] == "completed"
    return job_id


def pages_of(db, job_id: str) -> dict[str, dict]:
    return {p["url"]: p for p in results.list_pages(db, job_id, 1000, 0)[0]}


@pytest.fixture
def sitemap_site(site):
    """robots.txt names an index: a gzip sitemap, a plain one, a too big one and a broken one."""
    site.set_robots(f"User-agent: *\nDisallow: /private\nSitemap: {site.url('/sitemap-index.xml')}\n")
    site.add_page("/", "<p>home</p>")  # links to nothing: the sitemaps are the only way in
    site.add_route("/sitemap-index.xml", lambda h: reply(h, 200, index(
        site.url("/a.xml.gz"), site.url("/b.xml"), site.url("/big.xml"), site.url("/broken.xml"),
        site.url("/missing.xml")), {"Content-Type": "application/xml"}))
    site.add_route("/a.xml.gz", lambda h: reply(h, 200, gzip.compress(urlset(
        site.url("/contact"), site.url("/private/x"), "http://elsewhere.example.org/y",
        site.url("/a/a/a/a/trap"))), {"Content-Type": "application/x-gzip"}))
    site.add_route("/b.xml", lambda h: reply(h, 200, urlset(site.url("/team"), site.url("/")),
                                             {"Content-Type": "text/xml"}))
    site.add_route("/big.xml", lambda h: reply(h, 200, urlset(*[site.url(f"/big/{n}") for n in range(200_000)]),
                                               {"Content-Type": "application/xml"}))
    site.add_page("/broken.xml", "<urlset><url><loc>")
    for path in ("/contact", "/team"):
        site.add_page(path, f"<p>{path[1:]}@acme-widgets.com</p>")
    return site


def test_sitemap_urls_join_the_frontier_at_depth_1_with_the_same_rules(db, sitemap_site):
    site = sitemap_site
    job_id = crawl(db, site)
    pages = pages_of(db, job_id)
    assert {u: p["depth"] for u, p in pages.items() if p["state"] == "done"} == {
        site.url("/"): 0, site.url("/contact"): 1, site.url("/team"): 1}
    assert pages[site.url("/private/x")]["state"] == "skipped"  # robots.txt still applies
    assert "http://elsewhere.example.org/y" not in pages
    trap = pages[site.url("/a/a/a/a/trap")]  # stored, and skipped with the reason, never fetched
    assert (trap["state"], trap["error"]) == ("skipped", "trap: path segment 'a' repeated 4 times")
    assert site.hits("/a/a/a/a/trap") == 0
    assert not any("/big/" in u for u in pages)  # bigger than the fetcher's byte cap: ignored
    assert {e["email"] for e in results.list_emails(db, job_id, 100, 0)[0]} == {
        "contact@acme-widgets.com", "team@acme-widgets.com"}
    for path in ("/sitemap-index.xml", "/a.xml.gz", "/b.xml", "/broken.xml", "/missing.xml", "/contact"):
        assert site.hits(path) == 1, path


def test_use_sitemaps_false_and_obey_robots_false_fetch_no_sitemap(db, sitemap_site):
    site = sitemap_site
    for options in ({"use_sitemaps": False}, {"obey_robots": False}):
        site.reset_hits()
        job_id = crawl(db, site, **options)
        assert set(pages_of(db, job_id)) == {site.url("/")}
        assert site.hits("/sitemap-index.xml") == site.hits("/sitemap.xml") == 0


def test_sitemap_xml_is_read_when_robots_txt_names_none(db, site):
    site.add_page("/", "<p>home</p>")
    site.add_route("/sitemap.xml", lambda h: reply(h, 200, urlset(site.url("/kontakt")),
                                                   {"Content-Type": "application/xml"}))
    site.add_page("/kontakt", "<p>kontakt@acme-widgets.com</p>")
    job_id = crawl(db, site)
    assert pages_of(db, job_id)[site.url("/kontakt")]["state"] == "done"
    assert site.hits("/sitemap.xml") == 1
