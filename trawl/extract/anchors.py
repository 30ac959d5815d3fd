"""The cheap literal anchors that decide which passes run on a page.

A pass whose anchors are all absent costs one `in` test or one `str.find`.
Anchors are literal strings, or regexes that start with a literal character,
which `re` finds with a fast scan (a regex starting with a character class or
an alternation tries every position and runs about ten times slower).
Case-insensitive anchors are looked up in the scan's lower-cased copy.
"""

from __future__ import annotations

import re

# archive.py: "[at]", "(dot)", "{@}": one regex per bracket, each starting
# with its literal opening bracket.
# HyperKitty's "(a)" rides on the "(" regex.
BRACKETED = tuple(
    (opening, re.compile(rf"\{opening}\s{{0,3}}(?:at|dot|@{'|a' if opening == '(' else ''})\s{{0,3}}\{closing}"))
    for opening, closing in ("[]", "()", "{}")
)
# " at " before something dotted ("john at example.com": prose has " at the "),
# hypermail's "john_at_example.com", "robert -at- example -dot- be".
_WORDED_AT = re.compile(r"at(?: (?=[a-z0-9\-]{1,63}\.[a-z0-9])|[_\-](?= ?[a-z0-9]))")

# markup.py: what the browser shows differently from the source.
FULL_WIDTH_AT = "\uff20"  # "＠" (only in non-ASCII pages)
INVISIBLE = ("\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "&shy;", "&#173;", "&#8203;", "&#xad;")
BIDI_OVERRIDE = "bidi-override"  # with direction: rtl, CSS-reversed text

# scripts.py: what scripts assemble; looked up in the lower-cased page.
# Within one <script> block (a page-wide `in` gates the block search).
SCRIPT_LITERALS = (
    "addy", "document.write", "innerhtml", "fromcharcode", "reverse()", "unescape(", "decodeuri",
    "atob(", "eval(", "rot13", "charcodeat", "location.href", "window.location", "mailto",
)
HANDLER = "onclick"  # SPIP's lancerlien() sits in one too
# "<!--" for comments and "<script" for scripts, in one scan.
COMMENT_OR_SCRIPT = re.compile(r"<(?:!--|script)")
# A data-user/data-name ... pair needs its domain half.
ATTRIBUTE_PAIR = re.compile(r"data-(?:domain|host)")
# These contain "mail": found among the positions of "mail" the scan has already.
MAIL_ANCHORS = {name: name.index("mail") for name in ("linkto_uncryptmailto", "data-mailto-token", "data-enc-email")}


def positions(haystack: str, needles: tuple[str, ...]) -> list[int]:
    """Sorted positions of every occurrence of any needle."""
    found = []
    for needle in needles:
        at = haystack.find(needle)
        while at != -1:
            found.append(at)
            at = haystack.find(needle, at + len(needle))
    found.sort()
    return found


def worded_ats(lowered: str) -> list[int]:
    """Positions of " at " before a dotted name, of "_at_" and of "-at-". (One
    regex that starts with "at": `re` scans for a leading space or an
    alternation several times slower than for a literal.)"""
    found = []
    for match in _WORDED_AT.finditer(lowered):
        start = match.start()
        before, after = lowered[start - 1 : start], lowered[start + 2]
        if before == after or (before, after) == ("_", "_"):
            found.append(start - 1)
    return found


def any_in(haystack: str, needles: tuple[str, ...]) -> bool:
    return any(needle in haystack for needle in needles)
