"""Links of a page: one compiled regex over the tags that carry them
(<a>, <area>, <base>, <frame>, <iframe>); nothing builds a DOM."""

from __future__ import annotations

import html
import re

from trawl.urls import canonicalize


_LINK = re.compile(
    r"""<(?:(a|area|base)\s[^>]*?(?<![\w-])href|(?:i?frame)\s[^>]*?(?<![\w-])src)"""
    r"""\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""",
    re.IGNORECASE,
)


# Cloudflare's decoy page behind every protected address: nothing to crawl there.
_CLOUDFLARE_EMAIL_PAGE = "/cdn-cgi/l/email-protection"


def extract_links(body: str, base_url: str) -> list[str]:
    """Canonical absolute URLs of the page's links, de-duplicated, in page order."""
    matches = list(_LINK.finditer(body))
    base = base_url
    for match in matches:  # the first <base href> applies to the whole page
        if (match.group(1) or "").lower() == "base":
            base = canonicalize(_attribute_value(match), base_url) or base_url
            break
    links: dict[str, None] = {}
    for match in matches:
        value = _attribute_value(match)
        if _worth_resolving(value) and (match.group(1) or "").lower() != "base":
            url = canonicalize(value, base)
            if url is not None and _CLOUDFLARE_EMAIL_PAGE not in url:
                links[url] = None
    return list(links)


def _worth_resolving(value: str) -> bool:
    """False for same-page fragments and for markup seen inside scripts:
    template placeholders ("{{ url }}", "${url}") and escaped quotes (href=\\"...)."""
    return bool(value) and value[0] not in "#\\" and "{{" not in value and "${" not in value


def _attribute_value(match: re.Match) -> str:
    value = match.group(2) or match.group(3) or match.group(4) or ""
    return html.unescape(value).strip() if "&" in value else value.strip()


