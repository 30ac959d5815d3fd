"""Contact pages first: the claim priority of a page, from its URL, its link text and its depth.

A person looking for a site's addresses opens "Contact", "Team" or
"Impressum" before the blog archive. The frontier does the same: every page
row carries a `priority` (lower is claimed sooner; `frontier.claim_pages`
orders by it, then by id), computed here when the link is stored:

    priority = 0                                       for seeds
    priority = 1 + (TOP_SCORE - score) * 100 + depth   for links (depth <= 99)

so any keyword match beats any plain page, a stronger keyword beats a
weaker one, and among equals the shallower page goes first (then discovery
order). `score` is the best match of one word of the URL's path or of the
link's text against KEYWORDS, the one multilingual list with its scores.

Link text is found without a DOM, from cheap anchors as extract.py finds
addresses: the lower-cased page is searched for each keyword with
`str.find`, and only around a hit is the enclosing `<a href=...>` parsed.
A page without any keyword costs about one `find` per keyword.
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
_LONG_KEYWORDS = tuple((k, s) for k, s in KEYWORDS.items() if len(k) >= 7)
SEED_PRIORITY = 0
MAX_DEPTH_TERM = 99
_WORD = re.compile(r"[a-z0-9]+")
_HREF = re.compile(r"""\shref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
# How far back from a keyword the opening <a ...> may start.
_TAG_REACH = 1024
_TEXT_REACH = 200


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
    return word_score(after_host[slash:]) if slash != -1 else 0


def priority(depth: int, score: int) -> int:
    """The claim priority of a link at `depth` with keyword `score` (lower is sooner)."""
    return 1 + (TOP_SCORE - min(score, TOP_SCORE)) * 100 + min(max(depth, 0), MAX_DEPTH_TERM)


def link_text_scores(body: str, base_url: str) -> dict[str, int]:
    """Canonical link URL -> best keyword score of the text of its <a> elements on this page.

    Only links whose text (within _TEXT_REACH characters of the opening
    tag) holds a keyword are returned.
    """
    lower = body.lower()
    found: dict[str, int] = {}
    for keyword, score in KEYWORDS.items():
        start = lower.find(keyword)
        while start != -1:
            if _is_word_at(lower, start, keyword):
                url = _enclosing_link(lower, body, start, base_url)
                if url is not None and score > found.get(url, 0):
                    found[url] = score
            start = lower.find(keyword, start + len(keyword))
    return found


def _is_word_at(lower: str, start: int, keyword: str) -> bool:
    """The hit is a whole word as word_score reads words ("steam" holds no "team")."""
    end = start + len(keyword)
    if start > 0 and lower[start - 1].isalnum():
        return False
    word_end = end
    while word_end < len(lower) and lower[word_end].isalnum() and word_end - start < 64:
        word_end += 1
    return _score_of_word(lower[start:word_end]) > 0


def _enclosing_link(lower: str, body: str, position: int, base_url: str) -> str | None:
    """The href of the <a> whose text contains `position`, or None."""
    opening = lower.rfind("<a", max(0, position - _TAG_REACH), position)
    if opening == -1 or lower[opening + 2:opening + 3] not in (" ", "\t", "\n", "\r"):
        return None
    tag_end = lower.find(">", opening, position)
    if tag_end == -1 or position - tag_end > _TEXT_REACH:
        return None  # the keyword is inside the tag (the URL scores it) or too far away
    if lower.find("</a", tag_end, position) != -1:
        return None  # that link closed before the keyword
    match = _HREF.search(body, opening, tag_end + 1)
    if match is None:
        return None
    href = match.group(1) or match.group(2) or match.group(3) or ""
    href = html.unescape(href).strip() if "&" in href else href.strip()
    if not href or href.startswith(("#", "mailto:", "javascript:", "tel:")):
        return None
    return canonicalize(href, base_url)
