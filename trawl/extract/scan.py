"""One page's email search: the shared state of the passes, and the passes of
the plain family (text, mailto, entities, JS escapes, Cloudflare, itemprop).

The other families live beside this module (archive.py, markup.py,
scripts.py) and work through the same `EmailScan`: they read `text` and
`lowered`, and report through `add()`, which drops what a reader cannot see
(HTML comments, hidden elements) and what is only the encoded form of an
address (spans a decoding pass marked with `suppress()`).

Order matters: comments are hidden first, the script decoders run next (they
suppress the encoded strings the text passes would otherwise read), then the
plain family, the archive pass and the markup pass. Positions found once are
shared instead of scanning the page again: `ats` ("@"), `mail`,
`markup_starts` ("<!--", "<script"), `at_entities`, `brackets`, `at_images`.
"""

from __future__ import annotations

import bisect
import codecs
import html
import re
from urllib.parse import unquote

from trawl.extract import anchors, archive, markup, scripts
from trawl.extract.address import CHAR_REF, ESCAPED_AT_OR_DOT, addresses_in, around_ats, at_signs, normalize_email
from trawl.extract.kinds import CFEMAIL, ENTITY, ITEMPROP, JS, JSONLD, MAILTO, MARKUP, META, OBFUSCATED, SCRIPT, TEXT

# A "token" for context checks: the run of characters up to a delimiter.
_TOKEN_REVERSED = re.compile(r"[^\s\"'<>()\[\]{}]*")
_ENTITY_RUN = re.compile(r"[A-Za-z0-9._+\-@&#;]*")
_AT_ENTITY = re.compile(r"&#0*64;?|&#x0*40;?|&commat;", re.IGNORECASE)
_JS_RUN = re.compile(r"[A-Za-z0-9._+\-@\\]*")
_JS_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})")
_MAILTO_VALUE = re.compile(r"[^\s\"'<>`]{1,1024}")
_CFEMAIL = re.compile(r"(?:data-cfemail\s*=\s*\\?[\"']?|email-protection(?:#|%23))([0-9a-f]{4,512})", re.I)
_ITEMPROP_BEFORE = re.compile(r"itemprop\s*=\s*[\"']?\Z")
# Mail headers whose values are Message-IDs, not addresses.
# A header label ("Message-ID:", MHonArc's "<em>Message-id</em>:"), not a URL's "In-Reply-To=".
_MESSAGE_ID_LABEL = re.compile(r"(?:message-id|in-reply-to|references|msg-id|x-reference)\s*(?:</\w+>)?\s*:")
_MESSAGE_ID_WORDS = ("message-id", "in-reply-to", "references", "msg-id", "x-reference")
_LINE_MARKS = ("\n", "<br", "<li", "<p", "<tr", "<td", "<div", "<dt", "<dd", "<h", "</td", "</li", "</p>", "</pre", "</div")
_HIDING_TAG = re.compile(r"<[a-z][^<>]*?(?:display\s*:\s*none|visibility\s*:\s*hidden|\shidden[\s>=/])[^<>]*>[^<>]*\Z")
# An element a script decodes with ROT13: class="rot13", id="rot-13-mail" ...
_ROT13_CLASS = re.compile(r"<[^<>]*rot-?13[^<>]*>[^<>]*\Z")
# A local part right after these is the tail of a longer token (Outlook's
# "001201c61b8a$d2b6e940$6401a8c0@host" Message-IDs, "100%info@..."), or a
# fediverse handle ("@jane@mastodon.social"), not an address.
_JOINED = ("$", "%", "@")
# Marks a reader removes: john@NOSPAM.acme.com, john.nospam@acme.com, john@acme.com.REMOVE-THIS.
_SPAM_MARK = re.compile(r"(?<=@)(?:no[_\-]?spam|remove[_\-]?this)[._\-]|"
                        r"[._\-]?(?:no[_\-]?spam(?:please)?|remove[_\-]?this|spam[_\-]?free|removeme)(?=[@.]|$)", re.I)
_DIGIT_OR_HEX_RUN = re.compile(r"\d{6,}|[0-9a-f]{10,}")


def extract_emails(text: str) -> dict[str, set[str]]:
    """Normalised address -> the source kinds it was published in (SOURCE_KINDS)."""
    return EmailScan(text).run()


class EmailScan:
    """One page's email search: each pass runs only when its anchor is present."""

    def __init__(self, text: str):
        self.text = text
        # Lower-cased for case-insensitive anchors; one character per character
        # so positions match (str.lower() may lengthen some non-ASCII letters).
        if text.isascii():
            self.lowered = text.lower()
        else:
            self.lowered = text.encode("ascii", "replace").decode("ascii").lower()
        self._jsonld: list[tuple[int, int]] | None = None
        self._hidden_starts: list[int] = []  # sorted, non-overlapping spans no reader sees
        self._hidden_ends: list[int] = []
        self.found: dict[str, set[str]] = {}
        self.mail: list[int] = []  # positions of "mail" (mailto:, cfemail, TYPO3 ...)
        self.at_entities: list[tuple[int, int]] = []  # spans of "&#64;" and the like
        self.brackets: list[tuple[int, int]] = []  # spans of "[at]", "(dot)" ... found by the archive pass
        self.markup_starts: list[int] = []  # positions of "<!--" and "<script"
        self.at_images: list[int] = []  # "@" as an image or icon, found by the archive pass
        self.ats: list[int] = []  # positions of "@"

    def run(self) -> dict[str, set[str]]:
        text, lowered = self.text, self.lowered
        self.markup_starts = [m.start() for m in anchors.COMMENT_OR_SCRIPT.finditer(lowered)]
        if any(text.startswith("<!--", at) for at in self.markup_starts):
            self._hide_comments()
        self.mail = mail = anchors.positions(lowered, ("mail",))  # mailto:, cfemail, itemprop="email"
        # Decoders first: they mark the encoded strings the other passes must not report.
        scripts.run(self)
        if "@" in text:
            self.ats = at_signs(text)
            self._plain()
        if mail:
            self._mailto([at for at in mail if lowered.startswith("mailto:", at)])
            self._cloudflare(mail)
            self._itemprop(mail)
        if "&" in text:
            self._entities()
        if "\\" in text:
            self._js_escapes()
        archive.run(self)
        markup.run(self)
        return self.found

    # -- reporting

    def add(self, address: str | None, kind: str, at: int | None = None) -> None:
        """Record `address` as published in `kind`, unless position `at` is hidden."""
        if address is not None and (at is None or not self.hidden(at)):
            self.found.setdefault(address, set()).add(kind)

    def suppress(self, start: int, end: int) -> None:
        """Mark text[start:end] as unseen: an encoded form, never reported as it stands."""
        index = bisect.bisect_right(self._hidden_starts, start)
        self._hidden_starts.insert(index, start)
        self._hidden_ends.insert(index, end)

    def hidden(self, position: int) -> bool:
        index = bisect.bisect_right(self._hidden_starts, position) - 1
        # Spans may nest or overlap (a comment inside a suppressed script): look back a little.
        for i in range(index, max(-1, index - 4), -1):
            if self._hidden_starts[i] <= position < self._hidden_ends[i]:
                return True
        return False

    def visible_from(self, position: int) -> int:
        """`position`, or the end of the hidden span it lies in (a window must
        not start inside a comment, whose tail would read as text)."""
        index = bisect.bisect_right(self._hidden_starts, position) - 1
        for i in range(index, max(-1, index - 4), -1):
            if self._hidden_starts[i] <= position < self._hidden_ends[i]:
                return self._hidden_ends[i]
        return position

    def add_decoded(self, decoded: str, raw: str, kind: str, at: int | None = None) -> None:
        """Addresses of a decoded run, except those already plain in its raw form."""
        raw = raw.lower()
        for address in addresses_in(decoded):
            if address not in raw:  # a plain address next to an escape is not this kind
                self.add(address, kind, at)

    def _hide_comments(self) -> None:
        """HTML comments outside scripts: MHonArc's X-Message-Id, hypermail's
        id=, commented-out markup. (Old scripts wrap their code in "<!--".)"""
        text, lowered = self.text, self.lowered
        covered = 0  # the end of the last comment or script seen
        for at in self.markup_starts:
            if at < covered:
                continue
            if text.startswith("<!--", at):
                end = text.find("-->", at + 4)
                covered = len(text) if end == -1 else end + 3
                self.suppress(at, covered)
            else:
                end = lowered.find("</script", at)
                covered = len(text) if end == -1 else end

    # -- where an anchor sits

    def _jsonld_blocks(self) -> list[tuple[int, int]]:
        blocks, lowered = [], self.lowered
        at = lowered.find("ld+json")
        while at != -1:
            start = lowered.find(">", at) + 1
            end = lowered.find("</script", start)
            if start == 0 or end == -1:
                break
            blocks.append((start, end))
            at = lowered.find("ld+json", end)
        return blocks

    def in_jsonld(self, position: int) -> bool:
        if self._jsonld is None:
            self._jsonld = self._jsonld_blocks()
        return any(start <= position < end for start, end in self._jsonld)

    def token_before(self, position: int) -> str:
        """The lower-cased run of non-delimiters that ends at `position`."""
        window = self.lowered[max(0, position - 512) : position][::-1]
        return _TOKEN_REVERSED.match(window).group()[::-1]

    def _in_meta_tag(self, position: int) -> bool:
        lowest = max(0, position - 2048)
        opening = self.text.rfind("<", lowest, position)
        if opening == -1 or self.text.rfind(">", lowest, position) > opening:
            return False
        return self.lowered.startswith("meta", opening + 1)

    def _in_hidden_element(self, position: int) -> bool:
        """True when the tag right before the text at `position` hides its
        element (a honeypot address no reader sees)."""
        opening = self.lowered.rfind("<", max(0, position - 512), position)
        if opening == -1 or self.lowered.find(">", opening, position) == -1:
            return False
        return _HIDING_TAG.match(self.lowered, opening, position) is not None

    def _kind_at(self, position: int, kind: str) -> str:
        return JSONLD if self.in_jsonld(position) else kind

    def message_id_context(self, start: int, end: int, local: str) -> bool:
        """True when the address at text[start:end] is a Message-ID by its
        surroundings: after a Message-ID/In-Reply-To/References label, or
        in angle brackets with a long digit or hex run in the local part."""
        lowered = self.lowered
        if _MESSAGE_ID_LABEL.search(self._header_line(start)):
            return True
        bracketed = lowered.endswith(("<", "&lt;"), max(0, start - 4), start) and lowered.startswith(
            (">", "&gt;"), end
        )
        return bracketed and _DIGIT_OR_HEX_RUN.search(local) is not None

    def _header_line(self, position: int) -> str:
        """The lower-cased line before `position`, with the lines it continues
        (a header's folded lines start with white space)."""
        segment = self.lowered[max(0, position - 1200) : position]
        if not any(label in segment for label in _MESSAGE_ID_WORDS):
            return ""
        for _ in range(6):
            cut = max(segment.rfind(mark) for mark in _LINE_MARKS)
            if cut <= 0 or segment[cut : cut + 1] != "\n" or segment[cut + 1 : cut + 2] not in (" ", "\t"):
                return segment[max(cut, 0) :]
            segment, line = segment[:cut], segment[cut:]
            if _MESSAGE_ID_LABEL.search(line):
                return line
        return segment

    # -- the plain family

    def _plain(self) -> None:
        """Literal "@": plain text, <meta> content, JSON-LD; not URL user-info, not mailto."""
        text = self.text
        for start, end, candidate in around_ats(text, self.ats):
            address = normalize_email(candidate)
            if markup.touches_markup(text, start, end):
                at = start + candidate.find("@")
                shown, _ = markup.rendered_at(self, at)
                if shown != address:  # the browser joins more than the source shows
                    self.add(shown, MARKUP, at)
                    continue
            if "rot" in self.lowered[max(0, start - 120) : start] and _ROT13_CLASS.search(
                self.lowered, max(0, start - 120), start
            ):
                self.add(normalize_email(codecs.decode(candidate, "rot13")), SCRIPT, start)
                continue  # the ROT13 text a script decodes: only the decoded address is real
            lower = candidate.lower()
            if ("spam" in lower or "remove" in lower) and _SPAM_MARK.search(candidate):
                self.add(normalize_email(_SPAM_MARK.sub("", candidate)), OBFUSCATED, start)
                continue  # "john@NOSPAM.acme.com": the reader drops the mark
            if address is None or _is_scp_like(text, end) or self.hidden(start) or text[start - 1 : start] in _JOINED:
                continue
            token = self.token_before(start)
            if "mailto:" in token or "://" in token.replace("\\/", "/"):
                continue  # the mailto pass owns it, or it is part of a URL (https://key@host/...)
            if self.message_id_context(start, end, address.partition("@")[0]) or self._in_hidden_element(start):
                continue
            if self.in_jsonld(start):
                self.add(address, JSONLD)
            else:
                self.add(address, META if self._in_meta_tag(start) else TEXT)

    def _mailto(self, positions: list[int]) -> None:
        covered = 0
        for anchor in positions:
            value = _MAILTO_VALUE.match(self.text, anchor + 7) if anchor >= covered else None
            if value is not None:
                covered = value.end()
                kind = self._kind_at(anchor, MAILTO)
                for address in mailto_addresses(value.group()):
                    self.add(address, kind, anchor)

    def _entities(self) -> None:
        text, covered = self.text, 0
        for match in CHAR_REF.finditer(text):
            anchor = match.start()
            at_sign = _AT_ENTITY.match(text, anchor)
            if at_sign is not None:
                self.at_entities.append(at_sign.span())
            if anchor < covered:
                continue
            start, end = run_around(text, anchor, _ENTITY_RUN)
            covered = end
            run = text[start:end]
            if "@" in run or _AT_ENTITY.search(run):
                decoded = html.unescape(run)
                for address in addresses_in(decoded):
                    local = address.partition("@")[0]
                    if address not in run.lower() and not self.message_id_context(start, end, local):
                        self.add(address, ENTITY, anchor)

    def _js_escapes(self) -> None:
        text, covered = self.text, 0
        for match in ESCAPED_AT_OR_DOT.finditer(text):
            anchor = match.start()
            if anchor < covered:
                continue
            start, end = run_around(text, anchor, _JS_RUN)
            covered = end
            run = text[start:end]
            decoded = _JS_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), run)
            self.add_decoded(decoded, run, JS, anchor)
            if self.in_jsonld(anchor):
                self.add_decoded(decoded, run, JSONLD, anchor)

    def _cloudflare(self, mail: list[int]) -> None:
        lowered = self.lowered
        for at in mail:
            if at >= 8 and lowered.startswith("data-cfemail", at - 8):
                match = _CFEMAIL.match(self.text, at - 8)
            elif at >= 1 and lowered.startswith("email-protection", at - 1):
                match = _CFEMAIL.match(self.text, at - 1)
            else:
                continue
            if match is not None:
                decoded = decode_cfemail(match.group(1))
                for address in addresses_in(unquote(decoded) if "%" in decoded else decoded):
                    self.add(address, CFEMAIL, at)

    def _itemprop(self, mail: list[int]) -> None:
        text, lowered = self.text, self.lowered
        for at in mail:
            if lowered[at - 1 : at] != "e" or not _ITEMPROP_BEFORE.search(lowered, max(0, at - 40), at - 1):
                continue
            anchor = at - 1
            tag_start = lowered.rfind("<", max(0, anchor - 1024), anchor)
            tag_end = lowered.find(">", anchor)
            content_end = lowered.find("<", tag_end, tag_end + 1024) if tag_end != -1 else -1
            window = text[max(tag_start, 0) : content_end if content_end != -1 else anchor + 1024]
            window = html.unescape(window) if "&" in window else window
            for address in addresses_in(window):
                self.add(address, ITEMPROP, anchor)


# ---------------------------------------------------------------- pass helpers


def run_around(text: str, position: int, chars: re.Pattern, reach: int = 2048) -> tuple[int, int]:
    """The span of characters matching `chars` on both sides of `position`."""
    before = text[max(0, position - reach) : position][::-1]
    start = position - chars.match(before).end()
    return start, chars.match(text, position, position + reach).end()


def _is_scp_like(text: str, end: int) -> bool:
    """True for "git@github.com:org/repo.git": a host followed by ":path", not an address."""
    return text[end : end + 1] == ":" and text[end + 1 : end + 2] not in ("", " ", "\n", "<", '"', "'")


def mailto_addresses(value: str) -> list[str]:
    """The recipients of a mailto: link's value (after "mailto:"), query dropped."""
    if "&" in value:
        value = html.unescape(value)
    recipients = unquote(value.partition("?")[0], errors="replace")
    found = []
    for recipient in re.split(r"[,;]", recipients):
        address = normalize_email(recipient)
        if address is not None:
            found.append(address)
    return found


def decode_cfemail(hex_digits: str) -> str:
    """Cloudflare email protection: bytes XOR-ed with the first byte."""
    data = bytes.fromhex(hex_digits[: len(hex_digits) // 2 * 2])
    return bytes(byte ^ data[0] for byte in data[1:]).decode("utf-8", "replace")
