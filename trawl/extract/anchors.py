"""The cheap literal anchors that decide which passes run on a page.

A pass whose anchors are all absent costs one `in` test or one `str.find`.
Anchors are literal strings, or regexes that start with a literal character,
which `re` finds with a fast scan (a regex starting with a character class or
an alternation tries every position and runs about ten times slower).
Case-insensitive anchors are looked up in the scan's lower-cased copy.
"""

from __future__ import annotations

import re

# archive.py and markup.py: the word "at" in brackets ("[at]", "( at )",
# "&lt;at&gt;"), " at " before something dotted or a dot word ("john at
# example.com", "john at example dot com": prose has " at the "), hypermail's
# "john_at_example.com", "robert -at- example -dot- be", "&nbsp;at&nbsp;", and
# images or icons of "@" (at.gif, at-sign.png, fa-at, alt="at"). One regex
# that starts with the word itself: `re` scans for a leading space, bracket
# or alternation several times slower than for a literal.
_AT_WORD = re.compile(
    r"at(?=[\s_\-.\])}&\"'])(?: (?=[a-z0-9\-]{1,63}(?:\.[a-z0-9]| dot |\s?[\[({]))|(?:[_\-]sign)?\.(?:gif|png|jpe?g|svg|webp)"
    r"|[_\-](?= ?[a-z0-9])|\s{0,3}(?:[\])}]|&gt;)|(?=[\"'])|&nbsp;)"
)
_AT_IMAGE_BEFORE = ("/", "_", "-", '"', "'", "fa-", "alt=")
# (A worded "dot" is read in the windows of the "at" anchors and of "@": no page-wide scan.)
_DOT_WORD = re.compile(r"(?: dot |[\[({]\s{0,3}(?:dot|punkt|point|punto)\s{0,3}[\])}])")
_OPENING = {"]": "[", ")": "(", "}": "{", ";": "&lt;"}
HYPERKITTY_AT = re.compile(r"\(a\)")  # (`re` finds a literal that starts with a rare character faster than `str.find`)

# markup.py: what the browser shows differently from the source.
FULL_WIDTH_AT = "\uff20"  # "＠" (only in non-ASCII pages)
BIDI_OVERRIDE = "bidi-override"  # with direction: rtl, CSS-reversed text

# scripts.py: what scripts assemble; looked up in the lower-cased page.
# Within one <script> block (a page-wide `in` gates the block search).
SCRIPT_LITERALS = (
    "addy", "document.write", "innerhtml", "fromcharcode", "reverse()", "unescape(", "decodeuri",
    "atob(", "eval(", "rot13", "charcodeat", "location.href", "window.location", "mailto",
)
# ... and something of an address: a library that writes innerHTML has none of these.
SCRIPT_ADDRESS_MARKS = (
    "mail", "@", "&#", "%40", "fromcharcode", "reverse", "charcodeat", "unescape", "decodeuri", "atob", "\\x", "\\u",
)
HANDLER = "onclick"  # SPIP's lancerlien() sits in one too
JAVASCRIPT_URL = re.compile(r"javascript:")  # href="javascript:DeCryptX('...')" ("j" is rare: `re` beats `str.find`)
# "<!--" for comments and "<script" for scripts, in one scan.
COMMENT_OR_SCRIPT = re.compile(r"<(?:!--|script)")
# A data-user/data-name ... pair needs its domain half.
ATTRIBUTE_PAIR = "data-domain"
# These contain "mail": found among the positions of "mail" the scan has already.
MAIL_ANCHORS = {
    name: name.index("mail")
    for name in ("linkto_uncryptmailto", "data-mailto-token", "data-enc-email", "joomla-hidden-mail")
}


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


def worded(lowered: str, ats: list[int]) -> tuple[list[int], list[tuple[int, int]], list[int]]:
    """(positions of every worded "at"/"dot" anchor, spans of the bracketed
    ones, positions of "@" shown as an image or icon: at.gif, fa-at, alt="at").
    `ats` are the positions of "@", for "[@]", "(@)" and alt="@"."""
    found, brackets, images = [], [], []
    for match in _AT_WORD.finditer(lowered):
        start, closing = match.start(), lowered[match.end() - 1]
        if match.group().endswith("&nbsp;"):
            if lowered.endswith("&nbsp;", 0, start):
                found.append(start - 6)  # "john&nbsp;at&nbsp;example.com"
            continue
        if match.end() == start + 2 or "." in match.group():  # at" at' at.gif ... : an image or icon?
            before = lowered[max(0, start - 5) : start]
            if before.endswith(_AT_IMAGE_BEFORE) and (match.end() > start + 2 or before[-1:] in "\"'-"):
                images.append(start)
            continue
        if closing in _OPENING:
            opening = _bracket_before(lowered, start, _OPENING[closing])
            if opening != -1:
                brackets.append((opening, match.end()))
                found.append(opening)
            continue
        if lowered[start - 1 : start] == closing:  # " at ", " dot ", "_at_", "-at-"
            found.append(start - 1)

    for at in ats:
        if lowered.endswith(("alt=\"", "alt='"), 0, at):
            images.append(at)
        if _DOT_WORD.search(lowered, at, at + 80):  # "info@acme[dot]com"
            found.append(at)
        closing = lowered[at + 1 : at + 5].lstrip()[:1]
        opening = _bracket_before(lowered, at, _OPENING[closing]) if closing and closing in "])}" else -1
        if opening != -1:
            brackets.append((opening, lowered.find(closing, at) + 1))
            found.append(opening)
    # "john(a)example.org", not "function(a){" nor "option (a) ..."
    found += [
        match.start()
        for match in HYPERKITTY_AT.finditer(lowered)
        if lowered[match.start() - 1 : match.start()].isalnum() and lowered[match.end() : match.end() + 1].isalnum()
    ]
    found.sort()
    return found, brackets, images


def _bracket_before(lowered: str, position: int, opening: str) -> int:
    """Where `opening` stands before `position`, past at most three spaces; or -1."""
    start = max(0, position - 3 - len(opening))
    head = lowered[start:position].rstrip()
    return start + len(head) - len(opening) if head.endswith(opening) else -1


def any_in(haystack: str, needles: tuple[str, ...]) -> bool:
    return any(needle in haystack for needle in needles)


def word_boundary(lowered: str, start: int) -> int:
    """Where a window meant to start at `start` may start: at the beginning of
    its text (after the last tag end or line break before it, within 200
    characters), else just past the next space; a window cut inside a word
    or a bracketed name would invent a local part ("ugs at ...", "smith [at] ...")."""
    if start == 0 or lowered[start - 1] in "\n>":
        return start
    back = max(lowered.rfind(">", max(0, start - 200), start), lowered.rfind("\n", max(0, start - 200), start))
    if back != -1:
        return back + 1
    ends = [at for at in (lowered.find(mark, start, start + 64) for mark in (" ", ">", "\n")) if at != -1]
    return min(ends) + 1 if ends else start
