"""robots.txt for one job: fetched once per site, parsed with Protego (RFC 9309).

The worker asks `needs_fetch(url)` before a site's pages; when it gets a
robots.txt URL back it fetches it through the job's Fetcher (so the SSRF
guard applies to it too), with `FETCH_OPTIONS`: whatever its Content-Type,
and only its first ROBOTS_MAX_BYTES (500 KiB, the least RFC 9309 asks a
crawler to parse), also when the file is larger than the page cap. It hands
the result to `record()`. Until then `ready(url)` is False and the site's
pages wait; the worker releases them the moment the answer is recorded.

Answers, as RFC 9309 section 2.3.1 has them: 2xx is parsed (after up to
five redirects, libcurl's limit); 4xx means the file is "unavailable":
no rules, allow all; 5xx (and 429) or no answer at all (timeout, refused
connection, unknown name) means "unreachable": disallow all, and every page
of the site records why ("robots.txt unavailable: HTTP 503",
"robots.txt unavailable: timed out"). The fetcher has already retried
such failures with backoff, so the answer is final for the job.
Rules are kept per origin (scheme, host, port), as robots.txt is.

`meta_nofollow(html)` reads `<meta name="robots" content="nofollow">` (or
"none") in a page's head, a cheap scan so the extractor stays untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from trawl.fetch import FetchResult

MAX_CRAWL_DELAY_S = 10.0
ROBOTS_MAX_BYTES = 500 * 1024
FETCH_OPTIONS = {"any_type": True, "max_bytes": ROBOTS_MAX_BYTES, "truncate": True}
REFUSED = "disallowed by robots.txt"  # the error of a page the rules refuse (trawl/store/sites.py)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TOO_MANY_REDIRECTS = "too many redirects"


@dataclass
class _SiteRules:
    parser: Protego | None = None  # parsed rules, when the file was read
    allow_all: bool = False
    refusal: str | None = None  # every page refused, for this reason
    fetching: bool = False

    @property
    def known(self) -> bool:
        return self.parser is not None or self.allow_all or self.refusal is not None


class RobotsPolicy:
    """robots.txt rules of every site one job visits."""

    def __init__(self, user_agent: str, obey: bool):
        self.user_agent = user_agent
        self.obey = obey
        self._sites: dict[str, _SiteRules] = {}

    def needs_fetch(self, url: str) -> str | None:
        """The robots.txt URL to fetch now for `url`'s site, or None.

        None when rules are not obeyed, already known or being fetched. A
        returned URL is marked as being fetched, so it is handed out once.
        """
        if not self.obey:
            return None
        origin = _origin(url)
        rules = self._sites.setdefault(origin, _SiteRules())
        if rules.known or rules.fetching:
            return None
        rules.fetching = True
        return origin + "/robots.txt"

    def record(self, robots_url: str, result: FetchResult) -> None:
        rules = self._sites.setdefault(_origin(robots_url), _SiteRules())
        rules.fetching = False
        if result.outcome == "cancelled":
            return  # not an answer from the site; fetch again when asked
        status = result.status
        if result.outcome == "ok" and status and 200 <= status < 300:
            rules.parser = Protego.parse(result.text or "")
        elif result.outcome in ("refused", "tls"):
            # The guard (or the TLS check) refuses the site's pages too, each
            # with its own reason.
            rules.allow_all = True
        elif status and 400 <= status < 500 and status != 429:
            rules.allow_all = True  # unavailable: no rules
        elif result.error and result.error.startswith(_TOO_MANY_REDIRECTS):
            rules.allow_all = True  # RFC 9309: may be taken as unavailable
        elif status and status >= 300 and result.outcome != "failed":
            rules.refusal = f"robots.txt unavailable: HTTP {status}"
        else:
            rules.refusal = f"robots.txt unavailable: {_short(result.error or result.outcome)}"

    def ready(self, url: str) -> bool:
        """True when `allowed(url)` can answer: rules known, or not obeyed."""
        if not self.obey:
            return True
        rules = self._sites.get(_origin(url))
        return rules is not None and rules.known

    def refusal(self, url: str) -> str | None:
        """Why `url` may not be fetched, or None when it may. Only meaningful once `ready(url)`."""
        if not self.obey or urlsplit(url).path == "/robots.txt":
            return None
        rules = self._known_rules(url)
        if rules.parser is not None:
            return None if rules.parser.can_fetch(url, self.user_agent) else REFUSED
        return rules.refusal

    def allowed(self, url: str) -> bool:
        """May we fetch `url`? Only meaningful once `ready(url)`."""
        return self.refusal(url) is None

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


def _short(error: str) -> str:
    """ "timed out (curl error 28: ...)" -> "timed out": the reason without libcurl's detail."""
    return error.split(" (curl error", 1)[0]


_META_ROBOTS = re.compile(r"<meta\b[^>]*>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([a-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.IGNORECASE)
_HEAD_BYTES = 64 * 1024


def meta_nofollow(html: str) -> bool:
    """True when the page's head has <meta name="robots"> with "nofollow" or "none"."""
    head = html[:_HEAD_BYTES]
    end = head.find("</head")
    if end == -1:
        end = head.find("</HEAD")
    if end != -1:
        head = head[:end]
    if "robots" not in head and "ROBOTS" not in head and "Robots" not in head:
        return False  # the cheap answer for nearly every page
    for tag in _META_ROBOTS.findall(head):
        attributes = {m.group(1).lower(): (m.group(2) or m.group(3) or m.group(4) or "")
                      for m in _ATTRIBUTE.finditer(tag)}
        if attributes.get("name", "").strip().lower() != "robots":
            continue
        words = {w.strip().lower() for w in attributes.get("content", "").split(",")}
        if "nofollow" in words or "none" in words:
            return True
    return False
