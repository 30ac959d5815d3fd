"""Links and email addresses from one page: the crawler's hot path.

Nothing here builds a DOM. Links come from one compiled regex over the tags
that carry them (<a>, <area>, <base>, <frame>, <iframe>). Email addresses are
found from cheap anchors: `str.find` locates "@" and the marks of each way
sites hide an address ("&#", "[at]", "cfemail", "\\u0040", "mailto:" ...),
and small regexes run only on the window around an anchor. A pass whose
anchor is absent from the page costs one `in` test. (A whole-page email
regex scans about 39 MB/s in Python's `re`; `str.find` about 2,500 MB/s.)

Every address carries the source kinds it was found in, named by SOURCE_KINDS.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from trawl.urls import canonicalize, is_public_tld

TEXT = "text"  # plain in the page: info@example.org
MAILTO = "mailto"  # in a mailto: link, percent-decoded, query dropped
ENTITY = "entity"  # with HTML character references: info&#64;example.org
OBFUSCATED = "obfuscated"  # info [at] example [dot] org
CFEMAIL = "cfemail"  # Cloudflare's data-cfemail / email-protection#hex
JS = "js"  # JavaScript/JSON escapes: info\u0040example.org
JSONLD = "jsonld"  # inside a <script type="application/ld+json"> block
ITEMPROP = "itemprop"  # in an element with itemprop="email"
META = "meta"  # in a <meta> tag's attributes
SOURCE_KINDS = (TEXT, MAILTO, ENTITY, OBFUSCATED, CFEMAIL, JS, JSONLD, ITEMPROP, META)


@dataclass
class PageContent:
    links: list[str] = field(default_factory=list)  # canonical, de-duplicated, in page order
    emails: dict[str, set[str]] = field(default_factory=dict)  # address -> source kinds


def extract(body: str, base_url: str) -> PageContent:
    """The links and email addresses of one HTML (or text) page."""
    return PageContent(links=extract_links(body, base_url), emails=extract_emails(body))


# ---------------------------------------------------------------- links

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


# ---------------------------------------------------------------- one address
#
# A plausible published address: local part of letters, digits and ._+'-
# (at most 64), a domain of valid labels (at most 253) whose last label is a
# top-level domain of the public-suffix list. Rejected as false positives:
# asset and package names (logo@2x.png, lodash@4.17.21, TLDs that are mostly
# file extensions), hex keys and hashes as the local part (Sentry DSNs,
# webpack), dotless and localhost domains, and placeholders (example.*,
# domain.com, yourname@, user@ ...). URL user-info (https://key@host) is
# rejected by the page scan, which sees the context.

_STRIP = " \t\r\n\f\v\"'`.,;:!?()[]{}<>*|\\/"
_ADDRESS = re.compile(
    r"([a-z0-9_][a-z0-9._+'\-]{0,63})@"
    r"((?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9\-]{0,61}[a-z0-9])?)\Z"
)
# Keys and build hashes (Sentry, webpack): 16+ hex digits mixing letters and
# digits, or a UUID.
_HEX_HASH = re.compile(r"(?=[a-f]*[0-9])(?=[0-9]*[a-f])[0-9a-f]{16,}|"
                       r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Asset and package names that look like addresses: logo@2x.png, lodash@4.17.21.
_RETINA_OR_VERSION = re.compile(r"(?:^|\.)\d+x\.|\d+\.\d+(?:\.|$)")
# Top-level domains that are far more often file extensions in HTML than mail domains.
_FILE_EXTENSION_TLDS = frozenset({"zip", "mov", "map", "java"})
_PLACEHOLDER_DOMAINS = frozenset({
    "domain.com", "yourdomain.com", "your-domain.com", "mydomain.com", "email.com",
    "yoursite.com", "your-site.com", "mysite.com", "yourwebsite.com", "website.com",
    "yourcompany.com", "company.com", "test.com", "sample.com", "domain.tld",
})
_PLACEHOLDER_LOCALS = frozenset({
    "yourname", "your.name", "your_name", "name", "user", "username", "your", "you",
    "youremail", "your.email", "your_email", "yourmail", "someone", "somebody",
    "firstname", "lastname", "firstname.lastname", "first.last", "john.doe",
    "jane.doe", "johndoe", "janedoe",
})
_PLACEHOLDER_LABELS = frozenset({"example", "invalid", "localhost"})


def normalize_email(raw: str) -> str | None:
    """The address in `raw`, lower-cased and trimmed of quotes, brackets,
    punctuation and a "mailto:" prefix, or None when it is not a plausible
    published address (see the rules above)."""
    address = raw.strip().lower()
    if address.startswith("mailto:"):
        address = address[7:]
    address = address.partition("?")[0].strip(_STRIP)
    match = _ADDRESS.match(address)
    if match is None or len(address) > 254:
        return None
    local, domain = match.groups()
    if ".." in local or local.endswith(".") or len(domain) > 253:
        return None
    return None if _is_false_positive(local, domain) else address


def _is_false_positive(local: str, domain: str) -> bool:
    labels = domain.split(".")
    tld = labels[-1]
    return (
        not is_public_tld(tld)
        or tld in _FILE_EXTENSION_TLDS
        or _RETINA_OR_VERSION.search(domain) is not None
        or domain in _PLACEHOLDER_DOMAINS
        or not _PLACEHOLDER_LABELS.isdisjoint(labels[-3:-1])
        or local in _PLACEHOLDER_LOCALS
        or (local == "test" and labels[-2] == "test")
        or _HEX_HASH.fullmatch(local) is not None
    )


# ---------------------------------------------------------------- finding addresses

_LOCAL_BEFORE = re.compile(r"[A-Za-z0-9._+'\-]{1,65}\Z")
_DOMAIN_AFTER = re.compile(r"[A-Za-z0-9.\-]{1,254}")
# A character reference to a character addresses are made of ("&#64;", "&#x2e;",
# "&period;"), not "&nbsp;" or "&#8217;".
_ADDRESS_CHAR_REF = (
    r"&(?:#(?:[xX]0*[2-7][0-9a-fA-F](?![0-9a-fA-F])|0*(?:4[3-9]|[5-9][0-9]|1[01][0-9]|12[0-2])(?![0-9]))"
    r"|commat|period)"
)
_CHAR_REF = re.compile(_ADDRESS_CHAR_REF)
_CHAR_REF_BEFORE = re.compile(_ADDRESS_CHAR_REF + r";?\Z")
# A JS escape of "@" or "." ("\\u0040", "\\x2e"), and the body of any escape.
_ESCAPED_AT_OR_DOT = re.compile(r"\\(?:u00(?:40|2[eE])|x(?:40|2[eE]))")
_ESCAPE_BODY = re.compile(r"u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|[nrtbfv0/]")
_ADDRESS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-'@")


def _around_ats(text: str):
    """(start, end, candidate) for every "@" with address characters either side.

    An address that an escape or character reference continues ("i&#110;fo@",
    "info@acme&#46;com", "info@acme\\u002ecom") is left to the pass that decodes it.
    """
    at = text.find("@")
    while at != -1:
        before = _LOCAL_BEFORE.search(text, max(0, at - 65), at)
        after = _DOMAIN_AFTER.match(text, at + 1)
        start = _local_start(text, before.start()) if before is not None else None
        if (
            start is not None
            and start < at
            and after is not None
            and len(before.group()) <= 64
            and not _inside_a_word(text, before.start() - 1)
            and not _inside_a_word(text, after.end())
            and not _CHAR_REF.match(text, after.end())
            and not _ESCAPED_AT_OR_DOT.match(text, after.end())
        ):
            yield start, after.end(), text[start : after.end()]
        at = text.find("@", at + 1)


def _local_start(text: str, position: int) -> int | None:
    """Where a local part that begins at `position` really begins: after a
    JS escape ("\\ninfo@" -> "info@"), or None when an escaped or referenced
    address character touches it ("\\u0069nfo@", "&#105;nfo@")."""
    if position == 0:
        return position
    if text[position - 1] == "\\":
        escape = _ESCAPE_BODY.match(text, position)
        if escape is None:
            return position
        code = escape.group(1) or escape.group(2)
        if code is not None and chr(int(code, 16)) in _ADDRESS_CHARS:
            return None
        return escape.end()
    if text[position - 1] == ";" and _CHAR_REF_BEFORE.search(text, max(0, position - 12), position):
        return None
    return position


def _inside_a_word(text: str, position: int) -> bool:
    """True when a letter of an alphabetic script touches the address here
    ("müller@" must not become "ller@"); CJK text may touch an address."""
    if position < 0 or position >= len(text):
        return False
    char = text[position]
    return not char.isascii() and char < "\u2e80" and char.isalnum()


def _addresses_in(text: str) -> list[str]:
    """Every plausible address in a short, already decoded piece of text."""
    found = []
    for _, _, candidate in _around_ats(text):
        address = normalize_email(candidate)
        if address is not None:
            found.append(address)
    return found


def extract_emails(text: str) -> dict[str, set[str]]:
    """Normalised address -> the source kinds it was published in (SOURCE_KINDS)."""
    return _EmailScan(text).run()


# A "token" for context checks: the run of characters up to a delimiter.
_TOKEN_REVERSED = re.compile(r"[^\s\"'<>()\[\]{}]*")
_ENTITY_RUN = re.compile(r"[A-Za-z0-9._+\-@&#;]*")
_AT_ENTITY = re.compile(r"&#0*64;?|&#x0*40;?|&commat;", re.IGNORECASE)
_JS_RUN = re.compile(r"[A-Za-z0-9._+\-@\\]*")
_JS_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})")
_MAILTO_VALUE = re.compile(r"[^\s\"'<>`]{1,1024}")
_CFEMAIL = re.compile(r"(?:data-cfemail\s*=\s*[\"']?|email-protection#)([0-9a-f]{4,512})", re.I)
_ITEMPROP_BEFORE = re.compile(r"itemprop\s*=\s*[\"']?\Z")

# Anchors are regexes that start with a literal character, which `re` finds
# with a fast scan (a regex starting with a character class or an alternation
# tries every position and runs ten times slower): _CHAR_REF and
# _ESCAPED_AT_OR_DOT above, and these.
# "at", "@" or "dot" in brackets: "[at]", "( dot )", "{@}"; one regex per
# bracket so that each starts with its literal opening bracket.
_BRACKETED_ANCHORS = tuple(
    (opening, re.compile(rf"\{opening}\s{{0,3}}(?:at|dot|@)\s{{0,3}}\{closing}"))
    for opening, closing in ("[]", "()", "{}")
)
_BARE_DOT = re.compile(r" dot ")
_BRACKETED_AT = r"\s*(?:\[\s*(?:at|@)\s*\]|\(\s*(?:at|@)\s*\)|\{\s*(?:at|@)\s*\})\s*"
_BRACKETED_DOT = r"\s*(?:\[\s*(?:dot|\.)\s*\]|\(\s*(?:dot|\.)\s*\)|\{\s*(?:dot|\.)\s*\})\s*"
_DOT = rf"(?:{_BRACKETED_DOT}|\s+dot\s+|\.)"
_OBFUSCATED = re.compile(
    rf"(?<![\w.+\-])([a-z0-9][a-z0-9._+\-]{{0,63}})({_BRACKETED_AT}|\s+at\s+)"
    rf"([a-z0-9\-]{{1,63}}(?:{_DOT}[a-z0-9\-]{{1,63}}){{1,6}})(?![\w\-])",
    re.IGNORECASE,
)
_DOT_SEPARATOR = re.compile(_DOT, re.IGNORECASE)
# Words around " at " in prose ("find us at acme dot com", "look at the dot
# com era"): never the local part or the first domain label of an address.
_PROSE_BEFORE_AT = frozenset({"us", "me", "you", "him", "her", "them", "it", "we", "is", "are",
                              "was", "be", "look", "looking", "meet", "find", "visit", "here",
                              "there", "online", "available", "arrive", "stay", "out", "up"})
_PROSE_AFTER_AT = frozenset({"the", "a", "an", "this", "that", "our", "my", "your", "his", "her",
                             "their", "its", "home", "work", "least", "all", "first", "last", "once"})


class _EmailScan:
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
        self.found: dict[str, set[str]] = {}

    def run(self) -> dict[str, set[str]]:
        text = self.text
        if "@" in text:
            self._plain()
        mail = _anchors(self.lowered, ("mail",))  # mailto:, cfemail, itemprop="email"
        if mail:
            self._mailto([at for at in mail if self.lowered.startswith("mailto:", at)])
            self._cloudflare(mail)
            self._itemprop(mail)
        if "&" in text:
            self._entities()
        if "\\" in text:
            self._js_escapes()
        self._obfuscated()
        return self.found

    def _add(self, address: str | None, kind: str) -> None:
        if address is not None:
            self.found.setdefault(address, set()).add(kind)

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

    def _in_jsonld(self, position: int) -> bool:
        if self._jsonld is None:
            self._jsonld = self._jsonld_blocks()
        return any(start <= position < end for start, end in self._jsonld)

    def _token_before(self, position: int) -> str:
        """The lower-cased run of non-delimiters that ends at `position`."""
        window = self.lowered[max(0, position - 512) : position][::-1]
        return _TOKEN_REVERSED.match(window).group()[::-1]

    def _in_meta_tag(self, position: int) -> bool:
        lowest = max(0, position - 2048)
        opening = self.text.rfind("<", lowest, position)
        if opening == -1 or self.text.rfind(">", lowest, position) > opening:
            return False
        return self.lowered.startswith("meta", opening + 1)

    def _kind_at(self, position: int, kind: str) -> str:
        return JSONLD if self._in_jsonld(position) else kind

    # -- the passes

    def _plain(self) -> None:
        """Literal "@": plain text, <meta> content, JSON-LD; not URL user-info, not mailto."""
        for start, end, candidate in _around_ats(self.text):
            address = normalize_email(candidate)
            if address is None or _is_scp_like(self.text, end):
                continue
            token = self._token_before(start)
            if "mailto:" in token or _is_url_userinfo(token):
                continue  # the mailto pass owns it, or it is https://key@host
            if self._in_jsonld(start):
                self._add(address, JSONLD)
            else:
                self._add(address, META if self._in_meta_tag(start) else TEXT)

    def _mailto(self, anchors: list[int]) -> None:
        covered = 0
        for anchor in anchors:
            value = _MAILTO_VALUE.match(self.text, anchor + 7) if anchor >= covered else None
            if value is not None:
                covered = value.end()
                kind = self._kind_at(anchor, MAILTO)
                for address in _mailto_addresses(value.group()):
                    self._add(address, kind)

    def _entities(self) -> None:
        text, covered = self.text, 0
        for match in _CHAR_REF.finditer(text):
            anchor = match.start()
            if anchor < covered:
                continue
            start, end = _run_around(text, anchor, _ENTITY_RUN)
            covered = end
            run = text[start:end]
            if "@" in run or _AT_ENTITY.search(run):
                self._add_decoded(html.unescape(run), run, ENTITY)

    def _js_escapes(self) -> None:
        text, covered = self.text, 0
        for match in _ESCAPED_AT_OR_DOT.finditer(text):
            anchor = match.start()
            if anchor < covered:
                continue
            start, end = _run_around(text, anchor, _JS_RUN)
            covered = end
            run = text[start:end]
            decoded = _JS_ESCAPE.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), run)
            self._add_decoded(decoded, run, JS)
            if self._in_jsonld(anchor):
                self._add_decoded(decoded, run, JSONLD)

    def _add_decoded(self, decoded: str, raw: str, kind: str) -> None:
        raw = raw.lower()
        for address in _addresses_in(decoded):
            if address not in raw:  # a plain address next to an escape is not this kind
                self._add(address, kind)

    def _obfuscated(self) -> None:
        lowered = self.lowered
        # The bare form ("info at acme dot com") needs a bare " dot ".
        anchors = [match.start() for match in _BARE_DOT.finditer(lowered)]
        for opening, bracketed in _BRACKETED_ANCHORS:
            if opening in lowered:
                anchors += [match.start() for match in bracketed.finditer(lowered)]
        anchors.sort()
        for start, end in _merged_windows(anchors, before=160, after=400, limit=len(lowered)):
            for match in _OBFUSCATED.finditer(self.text, start, end):
                self._add(_deobfuscate(match), OBFUSCATED)

    def _cloudflare(self, mail: list[int]) -> None:
        lowered = self.lowered
        for at in mail:
            if at >= 8 and lowered.startswith("data-cfemail", at - 8):
                match = _CFEMAIL.match(self.text, at - 8)
            elif at >= 1 and lowered.startswith("email-protection#", at - 1):
                match = _CFEMAIL.match(self.text, at - 1)
            else:
                continue
            if match is not None:
                for address in _addresses_in(_decode_cfemail(match.group(1))):
                    self._add(address, CFEMAIL)

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
            for address in _addresses_in(window):
                self._add(address, ITEMPROP)


# ---------------------------------------------------------------- pass helpers


def _anchors(haystack: str, needles: tuple[str, ...]) -> list[int]:
    """Sorted positions of every occurrence of any needle."""
    positions = []
    for needle in needles:
        at = haystack.find(needle)
        while at != -1:
            positions.append(at)
            at = haystack.find(needle, at + len(needle))
    positions.sort()
    return positions


def _run_around(text: str, position: int, chars: re.Pattern, reach: int = 2048) -> tuple[int, int]:
    """The span of characters matching `chars` on both sides of `position`."""
    before = text[max(0, position - reach) : position][::-1]
    start = position - chars.match(before).end()
    return start, chars.match(text, position, position + reach).end()


def _merged_windows(anchors: list[int], before: int, after: int, limit: int):
    start = end = None
    for anchor in anchors:
        if end is not None and anchor - before <= end:
            end = min(limit, anchor + after)
            continue
        if end is not None:
            yield start, end
        start, end = max(0, anchor - before), min(limit, anchor + after)
    if end is not None:
        yield start, end


def _is_url_userinfo(token: str) -> bool:
    """True when the token before an "@" is "scheme://user[:password]"."""
    token = token.replace("\\/", "/")  # JSON escapes slashes: https:\/\/key@host
    scheme_end = token.rfind("://")
    return scheme_end != -1 and not any(c in token[scheme_end + 3 :] for c in "/?#")


def _is_scp_like(text: str, end: int) -> bool:
    """True for "git@github.com:org/repo.git": a host followed by ":path", not an address."""
    return text[end : end + 1] == ":" and text[end + 1 : end + 2] not in ("", " ", "\n", "<", '"', "'")


def _mailto_addresses(value: str) -> list[str]:
    if "&" in value:
        value = html.unescape(value)
    recipients = unquote(value.partition("?")[0], errors="replace")
    found = []
    for recipient in re.split(r"[,;]", recipients):
        address = normalize_email(recipient)
        if address is not None:
            found.append(address)
    return found


def _deobfuscate(match: re.Match) -> str | None:
    local, at_sign, domain = match.groups()
    obfuscated_dot = any(separator.group() != "." for separator in _DOT_SEPARATOR.finditer(domain))
    if not any(bracket in at_sign for bracket in "[({"):  # a bare " at " needs a clear address shape
        first_label = domain.split()[0].split(".")[0].lower()
        if not obfuscated_dot or first_label in _PROSE_AFTER_AT or local.lower() in _PROSE_BEFORE_AT:
            return None
    return normalize_email(f"{local}@{_DOT_SEPARATOR.sub('.', domain)}")


def _decode_cfemail(hex_digits: str) -> str:
    """Cloudflare email protection: bytes XOR-ed with the first byte."""
    data = bytes.fromhex(hex_digits[: len(hex_digits) // 2 * 2])
    return bytes(byte ^ data[0] for byte in data[1:]).decode("utf-8", "replace")
