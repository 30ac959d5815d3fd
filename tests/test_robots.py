"""robots.txt conventions, with robots.txt served by the local site and fetched by the real fetcher."""

from __future__ import annotations

import socket

import pytest

from tests.site import TestSite, site  # noqa: F401  (site is a fixture)
from trawl.config import Settings
from trawl.fetch import FetchResult, Fetcher
from trawl.robots import MAX_CRAWL_DELAY_S, RobotsPolicy

SETTINGS = Settings(allow_private_networks=True)
UA = SETTINGS.user_agent


def fetch(url: str, settings: Settings = SETTINGS) -> FetchResult:
    fetcher = Fetcher(settings, retry_backoff_s=0.01)
    try:
        fetcher.submit(url, url)
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
def test_5xx_retries_later_then_disallows(site, status):
    site.set_robots("User-agent: *\nAllow: /\n", status=status)
    policy = RobotsPolicy(UA, obey=True, retry_after_s=3600)
    learn(policy, site.url("/"))
    assert not policy.ready(site.url("/a"))
    assert policy.needs_fetch(site.url("/a")) is None  # waiting for the retry time

    policy = RobotsPolicy(UA, obey=True, retry_after_s=0)
    learn(policy, site.url("/"))
    assert not policy.ready(site.url("/a"))
    learn(policy, site.url("/a"))  # second failed try
    assert policy.ready(site.url("/a"))
    assert not policy.allowed(site.url("/a"))


def test_5xx_then_success_uses_the_rules(site):
    site.set_robots("User-agent: *\nDisallow: /no\n", status=500)
    policy = RobotsPolicy(UA, obey=True, retry_after_s=0)
    learn(policy, site.url("/"))
    site.set_robots("User-agent: *\nDisallow: /no\n")
    learn(policy, site.url("/"))
    assert policy.allowed(site.url("/yes"))
    assert not policy.allowed(site.url("/no"))


def test_network_error_counts_as_a_failed_try():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        page = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    policy = RobotsPolicy(UA, obey=True, retry_after_s=0)
    assert learn(policy, page).outcome == "failed"
    assert not policy.ready(page)
    learn(policy, page)
    assert not policy.allowed(page)


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
