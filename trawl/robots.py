"""robots.txt for one job: fetched once per site, parsed with Protego.

The worker asks `needs_fetch(url)` before a site's pages; when it gets a
robots.txt URL back it fetches it through the job's Fetcher (so the SSRF
guard applies to it too) and hands the result to `record()`. Until then
`ready(url)` is False and the site's pages wait.

Fetch errors follow the convention Google and Scrapy use: 2xx is parsed,
4xx means there are no rules (allow all), and 429/5xx or a network error
means "try again later"; after the second such failure the site counts as
disallowed, since its owner may be in trouble and we cannot read the rules.
Rules are kept per origin (scheme, host, port), as robots.txt is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from trawl.fetch import FetchResult

MAX_CRAWL_DELAY_S = 10.0
REFUSED = "disallowed by robots.txt"  # the error of a page the rules refuse (trawl/store/sites.py)
FAILED_TRIES_BEFORE_DISALLOW = 2
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass
class _SiteRules:
    parser: Protego | None = None  # parsed rules, when the file was read
    allow_all: bool = False
    disallow_all: bool = False
    fetching: bool = False
    failures: int = 0
    retry_at: float = 0.0
    failure: str | None = None  # why the file could not be read, once that means disallow all

    @property
    def known(self) -> bool:
        return self.parser is not None or self.allow_all or self.disallow_all


class RobotsPolicy:
    """robots.txt rules of every site one job visits."""

    def __init__(self, user_agent: str, obey: bool, retry_after_s: float = 10.0):
        self.user_agent = user_agent
        self.obey = obey
        self.retry_after_s = retry_after_s
        self._sites: dict[str, _SiteRules] = {}

    def needs_fetch(self, url: str) -> str | None:
        """The robots.txt URL to fetch now for `url`'s site, or None.

        None when rules are not obeyed, already known, being fetched, or a
        failed fetch is waiting for its retry time. A returned URL is
        marked as being fetched, so it is handed out only once.
        """
        if not self.obey:
            return None
        origin = _origin(url)
        rules = self._sites.setdefault(origin, _SiteRules())
        if rules.known or rules.fetching or time.monotonic() < rules.retry_at:
            return None
        rules.fetching = True
        return origin + "/robots.txt"

    def record(self, robots_url: str, result: FetchResult) -> None:
        rules = self._sites.setdefault(_origin(robots_url), _SiteRules())
        rules.fetching = False
        if result.outcome == "cancelled":
            return  # not an answer from the site; fetch again when asked
        status = result.status
        if result.outcome in ("ok", "not_html", "too_large") and status and 200 <= status < 300:
            if result.text is None:
                rules.allow_all = True  # unreadable as text: no rules we can follow
            else:
                rules.parser = Protego.parse(result.text)
        elif result.outcome in ("refused", "tls"):
            # The guard (or the TLS check) refuses the site's pages too, each
            # with its own reason.
            rules.allow_all = True
        elif status and 400 <= status < 500 and status != 429:
            rules.allow_all = True
        else:
            self._record_failure(rules, result.error or (f"HTTP {status}" if status else result.outcome))

    def _record_failure(self, rules: _SiteRules, reason: str) -> None:
        rules.failures += 1
        if rules.failures >= FAILED_TRIES_BEFORE_DISALLOW:
            rules.disallow_all = True
            rules.failure = reason
        else:
            rules.retry_at = time.monotonic() + self.retry_after_s

    def ready(self, url: str) -> bool:
        """True when `allowed(url)` can answer: rules known, or not obeyed."""
        if not self.obey:
            return True
        rules = self._sites.get(_origin(url))
        return rules is not None and rules.known

    def allowed(self, url: str) -> bool:
        """May we fetch `url`? Only meaningful once `ready(url)`."""
        if not self.obey or urlsplit(url).path == "/robots.txt":
            return True
        rules = self._known_rules(url)
        if rules.parser is not None:
            return rules.parser.can_fetch(url, self.user_agent)
        return rules.allow_all

    def refusal(self, url: str) -> str:
        """Why `allowed(url)` said no: the site's rules, or a robots.txt we could not read."""
        rules = self._known_rules(url)
        if rules.failure:
            # Not REFUSED: the site never answered, which makes it unreachable, not blocked.
            return f"robots.txt could not be fetched ({rules.failure}), so nothing was crawled"[:500]
        return REFUSED

    def sitemaps(self, url: str) -> list[str]:
        """The Sitemap: URLs of `url`'s robots.txt (only meaningful once `ready(url)`)."""
        rules = self._sites.get(_origin(url))
        return list(rules.parser.sitemaps) if rules is not None and rules.parser is not None else []

    def crawl_delay(self, url: str) -> float | None:
        """Seconds between requests the site asks of us, at most 10 s."""
        if not self.obey:
            return None
        rules = self._known_rules(url)
        if rules.parser is None:
            return None
        delay = rules.parser.crawl_delay(self.user_agent)
        return None if delay is None else min(float(delay), MAX_CRAWL_DELAY_S)

    def _known_rules(self, url: str) -> _SiteRules:
        rules = self._sites.get(_origin(url))
        if rules is None or not rules.known:
            raise LookupError(f"robots.txt rules for {url} are not known yet")
        return rules


def _origin(url: str) -> str:
    """scheme://host[:port], lower-cased, default port dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"
