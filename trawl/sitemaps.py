"""Sitemaps: the URLs a site lists for crawlers join the frontier at depth 1.

When a job obeys robots.txt and `use_sitemaps` is on, the first time a
worker meets an origin it fetches that origin's sitemaps after its
robots.txt: the `Sitemap:` lines of robots.txt, or `/sitemap.xml` when
there are none. A sitemap index (`<sitemapindex>`) names more sitemaps,
which are fetched in turn. The worker holds the origin's pages back until
discovery is over (like it does for robots.txt), then hands the URLs found
to its usual link filter: scope (`same_domain`), `max_depth`, the trap
guard and the Bloom filter, at depth 1, with their contact-first priority.

Bounds, per origin: at most MAX_SITEMAPS fetched (indexes included) and
nested at most MAX_NESTING deep, at most MAX_URLS URLs kept, each sitemap
at most the fetcher's byte cap as sent and MAX_INFLATED_BYTES once
gunzipped (a `.xml.gz` is inflated here, with a limit, so a gzip bomb
stops at it). Sitemaps on another registered domain are not fetched. A
sitemap that is missing, too big or not a sitemap (HTML, garbage, broken
XML) adds nothing; the crawl goes on without it.

Parsing is a regex over `<loc>` elements, not an XML parser: it never
expands entities (no billion laughs), shrugs at namespaces and broken
markup, and reads plain-text sitemaps (one URL per line) too.
"""

from __future__ import annotations

import html
import re
import zlib
from dataclasses import dataclass, field

from trawl.urls import canonicalize, host_of, registered_domain

MAX_SITEMAPS = 10
MAX_NESTING = 2  # robots.txt -> index -> sitemap
MAX_URLS = 5000
MAX_INFLATED_BYTES = 10 * 1024 * 1024
_LOC = re.compile(r"<(?:[\w.-]+:)?loc\b[^>]*>\s*(?:<!\[CDATA\[)?\s*([^<\]\s]+)", re.IGNORECASE)
_INDEX = re.compile(r"<(?:[\w.-]+:)?sitemapindex\b", re.IGNORECASE)
_URLSET = re.compile(r"<(?:[\w.-]+:)?urlset\b", re.IGNORECASE)


@dataclass(frozen=True)
class SitemapFetch:
    """The fetcher key of a sitemap request."""

    origin: str
    url: str
    nesting: int


@dataclass
class _Origin:
    fetching: int = 0  # sitemap requests out
    fetched: int = 0  # sitemap requests made, all told
    seen: set[str] = field(default_factory=set)
    urls: list[str] = field(default_factory=list)
    done: bool = False


class SitemapDiscovery:
    """Sitemap state of every origin one job's worker meets; see the module docstring."""

    def __init__(self):
        self._origins: dict[str, _Origin] = {}

    def ready(self, origin: str) -> bool:
        """True when the origin's sitemaps are read (or failed): its pages may go."""
        state = self._origins.get(origin)
        return state is not None and state.done

    def start(self, origin: str, listed: list[str]) -> list[SitemapFetch]:
        """The first fetches for an origin (robots.txt's Sitemap: lines, else /sitemap.xml); [] after."""
        if origin in self._origins:
            return []
        state = self._origins[origin] = _Origin()
        fetches = self._admit(origin, state, listed or [origin + "/sitemap.xml"], 1)
        state.done = not fetches
        return fetches

    def record(self, fetch: SitemapFetch, status: int | None, body: bytes | None) -> list[SitemapFetch]:
        """Read one sitemap's answer; returns the nested sitemaps to fetch next."""
        state = self._origins.get(fetch.origin)
        if state is None:
            return []
        state.fetching -= 1
        more: list[SitemapFetch] = []
        if status is not None and 200 <= status < 300 and body:
            kind, locations = parse(body)
            if kind == "index" and fetch.nesting < MAX_NESTING:
                more = self._admit(fetch.origin, state, locations, fetch.nesting + 1)
            elif kind == "urls":
                room = MAX_URLS - len(state.urls)
                state.urls.extend(locations[:max(0, room)])
        state.done = state.fetching == 0
        return more

    def take_urls(self, origin: str) -> list[str]:
        """The page URLs found for a finished origin, once (the caller stores them)."""
        state = self._origins.get(origin)
        if state is None or not state.done:
            return []
        urls, state.urls = state.urls, []
        return urls

    def forget(self, origin: str) -> None:
        """Discovery of this origin was cut short (cancel, shutdown): start over next time."""
        self._origins.pop(origin, None)

    def _admit(self, origin: str, state: _Origin, urls: list[str], nesting: int) -> list[SitemapFetch]:
        site = registered_domain(host_of(origin + "/"))
        fetches = []
        for raw in urls:
            url = canonicalize(raw)
            if url is None or url in state.seen or state.fetched >= MAX_SITEMAPS:
                continue
            if registered_domain(host_of(url)) != site:
                continue  # another site's file: not ours to fetch on this site's behalf
            state.seen.add(url)
            state.fetched += 1
            state.fetching += 1
            fetches.append(SitemapFetch(origin, url, nesting))
        return fetches


def parse(body: bytes) -> tuple[str, list[str]]:
    """("index" | "urls" | "none", locations) of a sitemap body, gzipped or not."""
    data = inflate(body) if body[:2] == b"\x1f\x8b" else body
    if data is None:
        return "none", []
    text = data.decode("utf-8", errors="replace")
    if _INDEX.search(text):
        return "index", _locations(text)
    if _URLSET.search(text):
        return "urls", _locations(text)
    if "<" not in text:  # a plain-text sitemap: one URL per line
        return "urls", [line.strip() for line in text.splitlines() if line.strip().startswith(("http://", "https://"))]
    return "none", []


def _locations(text: str) -> list[str]:
    return [html.unescape(m.group(1)) if "&" in m.group(1) else m.group(1) for m in _LOC.finditer(text)]


def inflate(body: bytes, limit: int = MAX_INFLATED_BYTES) -> bytes | None:
    """gunzip at most `limit` bytes; None when the data is broken or inflates past it."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit)
    except zlib.error:
        return None
    if inflater.unconsumed_tail:
        return None  # more than `limit` bytes: refused whole, not cut at an arbitrary URL
    return data
