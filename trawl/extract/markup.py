"""What the browser renders: addresses whose parts the source keeps apart.

A person reads "info@acme.com" where the source says
`info<!-- -->&#64;<!-- -->acme.com`, `<span>info</span>@<span>acme.com</span>`,
`info<b>@</b>acme.com`, `in&shy;fo@acme.com`, `info@<span style="display:none">x</span>acme.com`,
`earl @ earlhood . com`, `info＠acme．com`, `info<img src="at.gif">acme.com`,
`info<i class="fa fa-at"></i>acme.com`, Drupal SpamSpan's
`<span class="u">info</span> [at] <span class="d">acme [dot] com</span>`
("markup"), or `<span style="unicode-bidi:bidi-override; direction:rtl">moc.emca@ofni</span>`
("css"). Nothing builds a DOM: a window of a few hundred characters around an
anchor is rendered to text (`render`) and read like plain text.

Rendering rules (what keeps precision): comments, empty elements, hidden
elements (display:none, visibility:hidden, the hidden attribute) and
invisible characters vanish; an inline tag joins its neighbours only where
it touches "@" or "." (so `<b>Email</b>info@acme.com` stays two words);
every other tag is a space.
"""

from __future__ import annotations

import html
import re

from trawl.extract import anchors
from trawl.extract.address import (
    CHAR_REF,
    DOMAIN_AFTER,
    LOCAL_BEFORE,
    addresses_in,
    inside_a_word,
    is_message_id,
    normalize_email,
)
from trawl.extract.archive import OBFUSCATED_ADDRESS, PROSE_BEFORE_AT, merged_windows, read_match
from trawl.extract.kinds import CSS, MARKUP, TEXT
from trawl.urls import is_public_tld

_REACH = 300
_INLINE = frozenset({
    "a", "abbr", "b", "bdi", "cite", "code", "data", "em", "font", "i", "kbd", "mark", "q", "samp",
    "small", "span", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr", "ins", "nobr", "big",
})
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_HIDDEN_ELEMENT = re.compile(
    r"<(span|div|b|i|em|strong|small|font|a|u|code|tt|sup|sub|label|ins)\b[^>]*?"
    r"(?:display\s*:\s*none|visibility\s*:\s*hidden|\shidden(?=[\s>/=]))[^>]*>.*?</\1\s*>",
    re.I | re.S,
)
_HIDDEN_VOID = re.compile(r"<(?:img|input|br)\b[^>]*?(?:display\s*:\s*none|type\s*=\s*[\"']?hidden)[^>]*>", re.I)
_IMAGE = re.compile(r"<img\b[^>]*>", re.I)
_IMAGE_ALT = re.compile(r"""\balt\s*=\s*["']([^"']{0,12})["']""", re.I)
# An image of "@" by its file name: /img/at.gif, at-sign.png, email_at.svg.
_AT_IMAGE_SOURCE = re.compile(r"""\bsrc\s*=\s*["']?[^"'\s>]*?(?:^|[/_\-"'])at(?:[_\-]?sign)?\.(?:gif|png|jpe?g|svg|webp)""", re.I)
# Icon fonts' "@" (Font Awesome's fa-at), an empty element the stylesheet fills.
# Also SPIP's span.spancrypt and the empty class="at" span a stylesheet fills with "@".
_AT_ICON = re.compile(
    r"<(i|span)\b[^>]*\bclass\s*=\s*[\"']?(?:[^\"'>]*\s)?(?:fa-at|at|at-sign|atsign|arobase|spancrypt)[\"'\s][^>]*>"
    r"(?:\s|&nbsp;)*</\1\s*>",
    re.I,
)
_EMPTY_ELEMENT = re.compile(r"<([a-z]+)\b[^>]*>[ \t]*</\1\s*>", re.I)
_TAG = re.compile(r"<(/?)([a-z][a-z0-9]*)\b[^>]*>", re.I)
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_ALT_TEXT = {"@": "@", "at": " [at] ", "(at)": " [at] ", "[at]": " [at] ", ".": ".", "dot": " [dot] "}
_SPACED_DOMAIN = re.compile(r"[A-Za-z0-9\-]{1,63}(?:(?: \. |\.)[A-Za-z0-9\-]{1,63}){1,6}")
_INVISIBLE_REFS = ("&shy;", "&#173;", "&#xad;", "&#8203;", "&#x200b;", "&zwj;", "&zwnj;", "&#8204;", "&#8205;")
# What may stand right beside "@" and mean the browser shows something else.
_MARKUP_NEIGHBOURS = frozenset("<> \u00ad\u200b\u200c\u200d\u2060\ufeff")
_ADDRESS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-'")
_ADDRESS_SIDE = _ADDRESS_CHARS | frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff;")
_LIST_SEPARATOR = re.compile(r"\s*[,;|]\s*|\s+")
_LIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+\-]{0,63}")
_REVERSING_TAG = re.compile(r"""(?:class|id)\s*=\s*["']?[^"'>]*(?:\brtl\b|-rtl\b|revers|backward)|direction\s*:\s*rtl""")
_RTL_CLASS = re.compile(r"\.([\w-]+)\s*\{([^}]*)\}")
_OPENING_TAG = re.compile(r"<(span|div|p|a|b|i|em|strong|td|li|bdo)\b([^>]*)>")
_CLASS_ATTRIBUTE = re.compile(r"""class\s*=\s*["']?([^"'>]*)""")


def render(fragment: str) -> str:
    """The text a browser shows for an HTML fragment (see the module's rules)."""
    if "<" in fragment:
        fragment = _COMMENT.sub("", fragment)
        if "<" in fragment:
            fragment = CHAR_REF.sub(_char, fragment)
            fragment = _HIDDEN_ELEMENT.sub("", fragment)
            fragment = _HIDDEN_VOID.sub("", fragment)
            fragment = _AT_ICON.sub("@", fragment)
            fragment = _IMAGE.sub(_image_text, fragment)
            fragment = _EMPTY_ELEMENT.sub("", fragment)
            fragment = _join_tags(fragment.translate(_INVISIBLE))
    if "&" in fragment:
        fragment = html.unescape(fragment)
    return fragment.translate(_INVISIBLE).translate(_FULL_WIDTH)


def _image_text(match: re.Match) -> str:
    """What an image stands for in the text: its alt text when that is "@",
    "at", "." or "dot"; "@" for an image file named after it; else a space."""
    tag = match.group()
    alt = _IMAGE_ALT.search(tag)
    if alt is not None and alt.group(1).strip().lower() in _ALT_TEXT:
        return _ALT_TEXT[alt.group(1).strip().lower()]
    return "@" if _AT_IMAGE_SOURCE.search(tag) else " "


def _char(match: re.Match) -> str:
    return html.unescape(match.group() if match.group().endswith(";") else match.group() + ";")


def _join_tags(fragment: str) -> str:
    pieces = _TAG.split(fragment)  # text, slash, name, text, slash, name, ..., text
    out = [pieces[0]]
    for i in range(1, len(pieces) - 1, 3):
        name, after = pieces[i + 1].lower(), pieces[i + 2]
        before = out[-1]
        touches = before.endswith(("@", ".")) or after.startswith(("@", "."))
        out.append("" if name in _INLINE and (touches or name == "wbr") else " ")
        out.append(after)
    return "".join(out)


def touches_markup(text: str, start: int, end: int) -> bool:
    """True when markup or an invisible character that the browser may join
    touches the address text[start:end] ("in<!-- -->fo@", "info@acme<wbr>.com")."""
    before = text[start - 1 : start]
    after = text[end : end + 1]
    if (before == ";" and text.endswith(_INVISIBLE_REFS, max(0, start - 8), start)) or (
        after == "&" and text.startswith(_INVISIBLE_REFS, end)
    ):
        return True
    if before in _MARKUP_NEIGHBOURS and before not in "< " and start > 0:
        if before != ">" or _joining_before(text, start):
            return True
    return after in _MARKUP_NEIGHBOURS and after not in "> " and (after != "<" or _joining_after(text, end))


def _joining_before(text: str, start: int) -> bool:
    """A comment, a closing inline tag or <wbr> ends right before `start`."""
    if text.endswith("-->", 0, start):
        return True
    opening = text.rfind("<", max(0, start - 200), start)
    tag = _TAG.match(text, opening) if opening != -1 else None
    if tag is None or tag.end() != start:
        return False
    name = tag.group(2).lower()
    return (tag.group(1) == "/" and name in _INLINE) or name == "wbr" or _HIDDEN_VOID.match(text, opening) is not None


def _joining_after(text: str, end: int) -> bool:
    """A comment, an opening inline tag or <wbr> starts at `end`."""
    if text.startswith("<!--", end):
        return True
    tag = _TAG.match(text, end)
    return tag is not None and tag.group(1) == "" and tag.group(2).lower() in _INLINE


def rendered_at(scan, at: int, width: int = 1) -> tuple[str | None, bool]:
    """(the address a browser shows around the "@" at text[at:at+width], spaced)."""
    text = scan.text
    left = render(text[max(0, at - _REACH) : at] + "@")[:-1]
    right = render("@" + text[at + width : at + width + _REACH])[1:]
    spaced = left.endswith((" ", "\u3000")) and right.startswith((" ", "\u3000"))
    if spaced:
        left, right = left.rstrip(" \u3000"), right.lstrip(" \u3000")
    local = LOCAL_BEFORE.search(left)
    domain = (_SPACED_DOMAIN if spaced else DOMAIN_AFTER).match(right)
    if local is None or domain is None or inside_a_word(left, local.start() - 1):
        return None, spaced
    if inside_a_word(right, domain.end()) or right[domain.end() : domain.end() + 1] == ":":
        return None, spaced  # git@host:path
    before = left[: local.start()]
    if before.lower().endswith(("mailto:", "://")) or before.rstrip().endswith(("<", "&lt;")) and (
        right[domain.end() :].lstrip().startswith((">", "&gt;"))
        and re.search(r"\d{6,}|[0-9a-f]{10,}", local.group().lower())
    ):
        return None, spaced
    if spaced and (local.group().lower() in PROSE_BEFORE_AT or local.group().isdigit()):
        return None, spaced
    address = normalize_email(f"{local.group()}@{domain.group().replace(' . ', '.')}")
    if address is not None and is_message_id(*address.split("@")):
        return None, spaced
    return address, spaced


def run(scan) -> None:
    text, lowered = scan.text, scan.lowered
    if "@" in text:
        _around_literal_ats(scan)
    for start, end in scan.at_entities:  # the entity pass noted each "&#64;"
        if _neighbours_markup(text, start, end):
            _report(scan, start, end - start)
    if not text.isascii():
        for at in anchors.positions(text, (anchors.FULL_WIDTH_AT,)):
            _report(scan, at, 1)
    _worded_across_markup(scan)
    if any(_looks_reversed(lowered, at) for at in scan.ats) and anchors.BIDI_OVERRIDE in lowered:
        _reversed_by_css(scan)


def _around_literal_ats(scan) -> None:
    """Each "@" that markup, a space or an invisible character touches; each
    "{alice, bob}@host" list; each "@" in an element named for reversed text."""
    text = scan.text
    for at in scan.ats:
        if _neighbours_markup(text, at, at + 1):
            _report(scan, at, 1)
        elif text[at - 1 : at] == "}":
            _brace_list(scan, at)
        else:
            _reversed_by_class(scan, at)


def _brace_list(scan, at: int) -> None:
    """"{alice, bob.k}@cs.example.edu": one address per name in the braces."""
    text = scan.text
    opening = text.rfind("{", max(0, at - 300), at)
    domain = DOMAIN_AFTER.match(text, at + 1)
    if opening == -1 or domain is None or scan.hidden(at):
        return
    names = _LIST_SEPARATOR.split(text[opening + 1 : at - 1].strip())
    if len(names) < 2 or not all(_LIST_NAME.fullmatch(name) for name in names):
        return
    for name in names:
        scan.add(normalize_email(f"{name}@{domain.group()}"), TEXT, at)


def _reversed_by_class(scan, at: int) -> None:
    """The text of an element whose class or style says it is shown reversed
    (WordPress encoders' class="eeb-rtl", whose rule sits in a stylesheet)."""
    lowered = scan.lowered
    opening = lowered.rfind("<", max(0, at - 300), at)
    if opening == -1 or lowered.find(">", opening, at) == -1 or lowered[opening + 1 : opening + 2] == "/":
        return
    tag = lowered[opening : lowered.find(">", opening) + 1]
    if not _REVERSING_TAG.search(tag):
        return
    local, domain = LOCAL_BEFORE.search(lowered, max(0, at - 65), at), DOMAIN_AFTER.match(lowered, at + 1)
    if local is not None and domain is not None and normalize_email(f"{local.group()}@{domain.group()}"):
        return  # a plain address in right-to-left text (an Arabic page's contact line) reads as it stands
    close = lowered.find("<", at)
    shown = render(scan.text[opening + len(tag) : close if close != -1 else at + 300])[::-1]
    for address in addresses_in(shown):
        scan.add(address, CSS, at)


def _neighbours_markup(text: str, start: int, end: int) -> bool:
    """True when the "@" at text[start:end] may join its parts across markup:
    spaced on both sides, or each side an address character, an invisible
    one, or an inline tag or comment ("<style>@media" is not)."""
    before, after = text[start - 1 : start] if start else "", text[end : end + 1]
    if before == " " or after == " ":
        return before == after
    left = before in _ADDRESS_SIDE or (before == ">" and _inline_before(text, start))
    right = after in _ADDRESS_SIDE or (after == "<" and _inline_after(text, end))
    return left and right and not (before in _ADDRESS_CHARS and after in _ADDRESS_CHARS)


def _inline_before(text: str, end: int) -> bool:
    if text.endswith("-->", 0, end):
        return True
    opening = text.rfind("<", max(0, end - 200), end)
    tag = _TAG.match(text, opening) if opening != -1 else None
    return tag is not None and tag.end() == end and (tag.group(2).lower() in _INLINE or tag.group(2).lower() == "img")


def _inline_after(text: str, start: int) -> bool:
    if text.startswith("<!--", start):
        return True
    tag = _TAG.match(text, start)
    return tag is not None and (tag.group(2).lower() in _INLINE or tag.group(2).lower() == "img")


def _report(scan, at: int, width: int) -> None:
    if scan.hidden(at):
        return
    address, _ = rendered_at(scan, at, width)
    if address is None:
        return
    raw = scan.lowered[max(0, at - 80) : at + width + 260]
    scan.add(address, TEXT if address in raw else MARKUP, at)


def _worded_across_markup(scan) -> None:
    """"[at]"-style forms whose parts markup separates (SpamSpan)."""
    lowered = scan.lowered
    found = list(scan.at_images)  # "@" as an image or an icon (the archive pass found them)
    for start, end in scan.brackets:  # the archive pass found them
        before = lowered[max(0, start - 3) : start].rstrip()
        after = lowered[end : end + 3].lstrip()
        if before.endswith(">") or after.startswith("<"):
            found.append(start)
    if not found:
        return
    found.sort()
    visible = [at for at in found if not scan.hidden(at)]  # an anchor in a comment or a decoded script
    for start, end in merged_windows(visible, before=200, after=400, limit=len(lowered)):
        start = scan.visible_from(anchors.word_boundary(lowered, start))  # not inside a comment or a word
        window = render(scan.text[start:end])
        for match in OBFUSCATED_ADDRESS.finditer(window):
            _, address = read_match(match, window)
            if address is not None and address not in scan.found:
                scan.add(address, MARKUP)
        if scan.at_images and "@" in window:
            raw = lowered[start:end]
            for address in addresses_in(window):
                if address not in raw and address not in scan.found:
                    scan.add(address, MARKUP)


def _looks_reversed(lowered: str, at: int) -> bool:
    """"moc.emca@ofni": the local part starts with a reversed top-level domain
    and the text does not read as an address as it stands. (Cheaper than
    looking for the CSS on every page.)"""
    head = lowered[max(0, at - 65) : at]
    local = LOCAL_BEFORE.search(head)
    if local is None or "." not in local.group():
        return False
    if not is_public_tld(local.group().split(".", 1)[0][::-1]):
        return False
    domain = DOMAIN_AFTER.match(lowered, at + 1)
    return domain is None or normalize_email(f"{local.group()}@{domain.group()}") is None


def _reversed_by_css(scan) -> None:
    """Text shown right-to-left by unicode-bidi: bidi-override (inline style,
    or a class of a <style> rule): read reversed."""
    text, lowered = scan.text, scan.lowered
    classes = {
        match.group(1)
        for match in _RTL_CLASS.finditer(lowered)
        if "rtl" in match.group(2) and "bidi-override" in match.group(2)
    }
    for match in _OPENING_TAG.finditer(lowered):
        attributes = match.group(2)
        styled = "rtl" in attributes and "bidi-override" in attributes
        named = classes and any(name in classes for name in _class_names(attributes))
        if styled or named:
            close = lowered.find(f"</{match.group(1)}", match.end())
            content = text[match.end() : close if close != -1 else match.end() + 512]
            for address in addresses_in(render(content)[::-1]):
                scan.add(address, CSS, match.start())


def _class_names(attributes: str) -> list[str]:
    found = _CLASS_ATTRIBUTE.search(attributes)
    return found.group(1).split() if found else []
