"""Contact pages first: the claim priority of a page, from its URL, its link text and its depth.

A person looking for a site's addresses opens "Contact", "Team" or
"Impressum" before the blog archive. The frontier does the same: every page
row carries a `priority` (lower is claimed sooner; `frontier.claim_pages`
orders by it, then by id), computed here when the link is stored:

    priority = 0                                       for seeds
    priority = 1 + (TOP_SCORE - score) * 100 + depth   for links (depth <= 99)

so any keyword match beats any plain page, a stronger keyword beats a
weaker one, and among equals the shallower page goes first (then discovery
order). Plain pages (PLAIN_PRIORITY and above, the bulk of a crawl) are
claimed in discovery order, which for a breadth-first frontier is
shallower first too: ordering them all by priority would cost every claim
a sort of every pending page (see frontier.claim_pages). `score` is the best match of one word of the URL's path or of the
link's text against KEYWORDS, the one multilingual list with its scores.

Link text is found without a DOM: one regex scan over the page's
`<a href=...>text</a>` elements; a text without any keyword is dismissed
by one search of a keyword alternation, and only hrefs whose text scores
are resolved. (A first version searched the page for every keyword and
looked back for an enclosing link; on pages whose prose says "team" or
"support" often it cost 1.3 ms a page, ten times this.)
"""

from __future__ import annotations

import html
import re

from trawl.urls import canonicalize

# word -> score; a word of a path or link text matches when it equals the
# keyword or its plural, or (for keywords of 7+ letters) starts with it
# ("kontaktformular", "contactus"). Scores: 10 = where addresses are
# published, 6 = pages that list people, 3 = pages that often carry one.
KEYWORDS: dict[str, int] = {
    # contact and imprint (German law puts an address on the Impressum)
    "contact": 10, "kontakt": 10, "contacto": 10, "contatti": 10, "contato": 10,
    "contactez": 10, "impressum": 10, "imprint": 10, "yhteystiedot": 10, "kontakty": 10,
    # people
    "team": 6, "people": 6, "staff": 6, "about": 6, "mitarbeiter": 6, "equipe": 6, "equipo": 6,
    "ueber": 6, "quienes": 6, "leadership": 6, "board": 6,
    # often an address somewhere
    "legal": 3, "support": 3, "press": 3, "presse": 3, "prensa": 3, "help": 3,
    "datenschutz": 3, "privacy": 3, "mentions": 3,
}
TOP_SCORE = max(KEYWORDS.values())
# Pages below this (seeds and keyword matches) are claimed by priority; the
# rest, the bulk of any crawl, in discovery order (frontier.claim_pages).
PLAIN_PRIORITY = 1 + TOP_SCORE * 100
_LONG_KEYWORDS = tuple((k, s) for k, s in KEYWORDS.items() if len(k) >= 7)
# A quick "no keyword here" for the common case (most URLs and link texts);
# every word that scores contains one of these (plurals and prefixes too).
_ANY_KEYWORD = re.compile("|".join(sorted(map(re.escape, KEYWORDS), key=len, reverse=True)), re.IGNORECASE)
SEED_PRIORITY = 0
MAX_DEPTH_TERM = 99
_WORD = re.compile(r"[a-z0-9]+")
_TEXT_REACH = 200
# An <a ...href...>text</a> whose text is at most _TEXT_REACH characters:
# one scan of the page (most of it is skipped at the speed of a "<a" search).
_ANCHOR = re.compile(
    r"""<a\s[^>]*?(?<![\w-])href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))[^>]*>"""
    rf"""(.{{0,{_TEXT_REACH}}}?)</a""",
    re.IGNORECASE | re.DOTALL,
)


def word_score(text: str) -> int:
    """The best keyword score among the words of `text` (a path, a link text); 0 when none."""
    return max((_score_of_word(word) for word in _WORD.findall(text.lower())), default=0)


def _score_of_word(word: str) -> int:
    score = KEYWORDS.get(word, 0)
    if not score and word.endswith("s"):
        score = KEYWORDS.get(word[:-1], 0)
    if not score and len(word) > 7:
        score = max((s for k, s in _LONG_KEYWORDS if word.startswith(k)), default=0)
    return score


def url_score(url: str) -> int:
    """Keyword score of a canonical URL's path and query (the host is not a hint)."""
    after_host = url.partition("://")[2]
    slash = after_host.find("/")
    if slash == -1 or not _ANY_KEYWORD.search(after_host, slash):
        return 0
    return word_score(after_host[slash:])


def priority(depth: int, score: int) -> int:
    """The claim priority of a link at `depth` with keyword `score` (lower is sooner)."""
    return 1 + (TOP_SCORE - min(score, TOP_SCORE)) * 100 + min(max(depth, 0), MAX_DEPTH_TERM)


def link_text_scores(body: str, base_url: str) -> dict[str, int]:
    """Canonical link URL -> best keyword score of the text of its <a> elements on this page.

    Only links whose text (at most _TEXT_REACH characters) holds a keyword
    are returned; only those hrefs are resolved.
    """
    found: dict[str, int] = {}
    for match in _ANCHOR.finditer(body):
        text = match.group(4)
        if not _ANY_KEYWORD.search(text):
            continue
        score = word_score(text)
        if not score:
            continue
        href = match.group(1) or match.group(2) or match.group(3) or ""
        href = html.unescape(href).strip() if "&" in href else href.strip()
        if not href or href.startswith(("#", "mailto:", "javascript:", "tel:")):
            continue
        url = canonicalize(href, base_url)
        if url is not None and score > found.get(url, 0):
            found[url] = score
    return found
