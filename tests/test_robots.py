"""robots.txt conventions, with robots.txt served by the local site and fetched by the real fetcher."""

from __future__ import annotations

import socket

import pytest

from tests.site import TestSite, site  # noqa: F401  (site is a fixture)
from trawl.config import Settings
from trawl.fetch import FetchResult, Fetcher
from trawl.robots import FETCH_OPTIONS, MAX_CRAWL_DELAY_S, ROBOTS_MAX_BYTES, RobotsPolicy, meta_nofollow

SETTINGS = Settings(allow_private_networks=True)
UA = SETTINGS.user_agent


def fetch(url: str, settings: Settings = SETTINGS) -> FetchResult:
    fetcher = Fetcher(settings, retry_backoff_s=0.01)
    try:
        fetcher.submit(url, url, **FETCH_OPTIONS)  # as the worker asks for robots.txt
        for _ in range(300):  # bounded wait, about 30 s at most
            results = fetcher.poll(0.1)
            if results:
                return results[0]
        raise AssertionError("robots.txt fetch never finished")
    finally:
        fetcher.close()


def learn(policy: RobotsPolicy, page_url: str, settings: Settings = SETTINGS) -> FetchResult:
    """What the worker does: ask, fetch robots.txt through the fetcher, record."""
    robots_url = policy.needs_fetch(page_url)
    assert robots_url is not None
    result = fetch(robots_url, settings)
    policy.record(robots_url, result)
    return result


def test_rules_are_fetched_once_and_obeyed(site):
    site.set_robots("User-agent: *\nDisallow: /private\n")
    policy = RobotsPolicy(UA, obey=True)
    page = site.url("/public/page.html")
    assert not policy.ready(page)
    robots_url = policy.needs_fetch(page)
    assert robots_url == site.url("/robots.txt")
    assert policy.needs_fetch(site.url("/other")) is None  # already being fetched
    assert not policy.ready(page)
    policy.record(robots_url, fetch(robots_url))
    assert policy.ready(page)
    assert policy.needs_fetch(page) is None
    assert policy.allowed(page)
    assert not policy.allowed(site.url("/private/secret.html"))
    assert policy.allowed(site.url("/robots.txt"))
    assert site.hits("/robots.txt") == 1


def test_rules_for_our_user_agent_win_over_the_wildcard(site):
    site.set_robots("User-agent: Trawl\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    mine, other = RobotsPolicy(UA, obey=True), RobotsPolicy("SomeOtherBot/1.0", obey=True)
    learn(mine, site.url("/"))
    learn(other, site.url("/"))
    assert not mine.allowed(site.url("/page"))
    assert other.allowed(site.url("/page"))


@pytest.mark.parametrize("status", [404, 403, 410])
def test_4xx_means_allow_all(site, status):
    site.set_robots("User-agent: *\nDisallow: /\n", status=status)
    policy = RobotsPolicy(UA, obey=True)
    learn(policy, site.url("/"))
    assert policy.ready(site.url("/anything"))
    assert policy.allowed(site.url("/anything"))


def test_missing_robots_means_allow_all(site):
    policy = RobotsPolicy(UA, obey=True)
    result = learn(policy, site.url("/"))
    assert result.status == 404
    assert policy.allowed(site.url("/anything"))


@pytest.mark.parametrize("status", [500, 503, 429])
def test_5xx_means_disallow_all_with_the_reason(site, status):
    """RFC 9309 2.3.1.4: unreachable; the fetcher already retried it (3 attempts)."""
    site.set_robots("User-agent: *\nAllow: /\n", status=status)
    policy = RobotsPolicy(UA, obey=True)
    learn(policy, site.url("/"))
    assert site.hits("/robots.txt") == 3
    assert policy.ready(site.url("/a"))
    assert policy.refusal(site.url("/a")) == f"robots.txt unavailable: HTTP {status}"
    assert policy.needs_fetch(site.url("/a")) is None  # final for the job


def test_network_error_means_disallow_all_with_the_reason():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        page = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    policy = RobotsPolicy(UA, obey=True)
    assert learn(policy, page).outcome == "failed"
    assert policy.ready(page)
    assert policy.refusal(page) == "robots.txt unavailable: could not connect"


def test_a_robots_txt_that_times_out_says_so(site):
    site.add_slow_page("/robots.txt", delay_s=30)
    quick = Settings(allow_private_networks=True, total_timeout_s=0.5, connect_timeout_s=0.5)
    policy = RobotsPolicy(UA, obey=True)
    learn(policy, site.url("/"), quick)
    assert policy.refusal(site.url("/a")) == "robots.txt unavailable: timed out"


def test_rules_are_honoured_whatever_the_content_type(site):
    site.add_page("/robots.txt", b"User-agent: *\nDisallow: /\n",
                  headers={"Content-Type": "application/octet-stream"})
    policy = RobotsPolicy(UA, obey=True)
    learn(policy, site.url("/"))
    assert policy.refusal(site.url("/page")) == "disallowed by robots.txt"


def test_the_head_of_a_huge_robots_txt_is_read_past_the_page_cap(site):
    rules = "User-agent: *\nDisallow: /private/\n"
    body = rules + "# filler line of a generated robots.txt\n" * (7 * 1024 * 1024 // 40)
    site.add_page("/robots.txt", body.encode(), headers={"Content-Type": "text/plain"})
    small_cap = Settings(allow_private_networks=True, max_page_bytes=100_000)
    policy = RobotsPolicy(UA, obey=True)
    result = learn(policy, site.url("/"), small_cap)
    assert result.outcome == "ok" and result.bytes == ROBOTS_MAX_BYTES
    assert policy.refusal(site.url("/private/x.html")) == "disallowed by robots.txt"
    assert policy.allowed(site.url("/public.html"))


def test_refused_robots_leaves_refusal_to_the_fetcher(site):
    """With the SSRF guard on, robots.txt is refused like the pages; no rules are invented."""
    policy = RobotsPolicy(UA, obey=True)
    result = learn(policy, site.url("/"), Settings(allow_private_networks=False))
    assert result.outcome == "refused"
    assert policy.ready(site.url("/"))
    assert site.hits("/robots.txt") == 0


def test_cancelled_fetch_is_asked_for_again(site):
    policy = RobotsPolicy(UA, obey=True)
    robots_url = policy.needs_fetch(site.url("/"))
    cancelled = FetchResult("k", robots_url, robots_url, None, None, None, 0, 0, "cancelled", "cancelled")
    policy.record(robots_url, cancelled)
    assert not policy.ready(site.url("/"))
    assert policy.needs_fetch(site.url("/")) == robots_url


@pytest.mark.parametrize(
    "robots, expected",
    [
        ("User-agent: *\nCrawl-delay: 2\n", 2.0),
        ("User-agent: *\nCrawl-delay: 0.5\n", 0.5),
        ("User-agent: *\nCrawl-delay: 600\n", MAX_CRAWL_DELAY_S),
        ("User-agent: *\nDisallow: /x\n", None),
    ],
)
def test_crawl_delay_is_capped(site, robots, expected):
    site.set_robots(robots)
    policy = RobotsPolicy(UA, obey=True)
    learn(policy, site.url("/"))
    assert policy.crawl_delay(site.url("/page")) == expected


def test_sites_are_separate_origins(site):
    site.set_robots("User-agent: *\nDisallow: /\n")
    with TestSite(host="127.0.0.2") as other:
        policy = RobotsPolicy(UA, obey=True)
        learn(policy, site.url("/"))
        assert not policy.ready(other.url("/"))
        assert policy.needs_fetch(other.url("/page")) == other.url("/robots.txt")
        assert not policy.allowed(site.url("/page"))


def test_not_obeying_needs_nothing(site):
    site.set_robots("User-agent: *\nDisallow: /\n")
    policy = RobotsPolicy(UA, obey=False)
    assert policy.needs_fetch(site.url("/")) is None
    assert policy.ready(site.url("/"))
    assert policy.allowed(site.url("/"))
    assert policy.crawl_delay(site.url("/")) is None
    assert site.hits("/robots.txt") == 0


def test_asking_before_the_rules_are_known_is_a_bug(site):
    policy = RobotsPolicy(UA, obey=True)
    with pytest.raises(LookupError):
        policy.allowed(site.url("/"))



@pytest.mark.parametrize("html, expected", [
    ('<html><head><meta name="robots" content="nofollow"></head><body>x</body></html>', True),
    ("<head><META NAME='Robots' CONTENT='noindex, NoFollow'></head>", True),
    ('<head><meta content="none" name="robots"></head>', True),
    ('<head><meta name="robots" content="noindex"></head>', False),
    ('<head><meta name="googlebot" content="nofollow"></head>', False),
    ('<head><title>robots</title></head><body><meta name="robots" content="nofollow"></body>', False),
    ("<p>no head at all</p>", False),
])
def test_meta_nofollow(html, expected):
    assert meta_nofollow(html) is expected
