"""One address: what a plausible published address is, and where the
characters around an "@" make one.

A plausible published address: local part of letters, digits and ._+'-
(at most 64), a domain of valid labels (at most 253) whose last label is a
top-level domain of the public-suffix list. Rejected as false positives:
asset and package names (logo@2x.png, lodash@4.17.21, TLDs that are mostly
file extensions), hex keys and hashes as the local part (Sentry DSNs,
webpack), Message-IDs (20060117170218.GC335@divmod.com), dotless and
localhost domains, and placeholders (example.*, domain.com, yourname@,
user@ ...). URL user-info (https://key@host) is rejected by the page scan,
which sees the context.
"""

from __future__ import annotations

import re

from trawl.urls import is_public_tld

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
        or is_message_id(local, domain)
    )


# Message-IDs that look like addresses: mutt "20060117170218.GC335@host",
# Thunderbird "4A3B2C1D.5060708@host", Pine "Pine.LNX.4.44.0301011234560.1234-100000@host",
# Exim "E1LmXyz-0001Ab-Cd@host", Gnus "87r5abc.fsf@host", Gmail "CA...@mail.gmail.com".
_MESSAGE_ID_LOCAL = re.compile(
    r"\d{8,}[._\-$=+]|[._\-$=+]\d{8,}|^[0-9a-f]{8}\.[0-9a-f]{6,}$|"
    r"^e?[0-9a-z]{6}-[0-9a-z]{6}-[0-9a-z]{2}$|\.fsf$"
)
_MESSAGE_ID_DOMAINS = frozenset({"mail.gmail.com"})


def is_message_id(local: str, domain: str) -> bool:
    """True for the shapes mail programs give Message-IDs (lower-cased)."""
    return domain in _MESSAGE_ID_DOMAINS or _MESSAGE_ID_LOCAL.search(local) is not None



# ---------------------------------------------------------------- around an "@"

LOCAL_BEFORE = re.compile(r"[A-Za-z0-9._+'\-]{1,65}\Z")
DOMAIN_AFTER = re.compile(r"[A-Za-z0-9.\-]{1,254}")
# A character reference to a character addresses are made of ("&#64;", "&#x2e;",
# "&period;"), not "&nbsp;" or "&#8217;".
ADDRESS_CHAR_REF = (
    r"&(?:#(?:[xX]0*[2-7][0-9a-fA-F](?![0-9a-fA-F])|0*(?:4[3-9]|[5-9][0-9]|1[01][0-9]|12[0-2])(?![0-9]))"
    r"|commat|period)"
)
CHAR_REF = re.compile(ADDRESS_CHAR_REF)
CHAR_REF_BEFORE = re.compile(ADDRESS_CHAR_REF + r";?\Z")
# A JS escape of "@" or "." ("\\u0040", "\\x2e"), and the body of any escape.
ESCAPED_AT_OR_DOT = re.compile(r"\\(?:u00(?:40|2[eE])|x(?:40|2[eE]))")
_ESCAPE_BODY = re.compile(r"u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|[nrtbfv0/]")
_ADDRESS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-'@")


def at_signs(text: str) -> list[int]:
    """Positions of every "@"."""
    found = []
    at = text.find("@")
    while at != -1:
        found.append(at)
        at = text.find("@", at + 1)
    return found


def around_ats(text: str, ats: list[int] | None = None):
    """(start, end, candidate) for every "@" (at `ats`, if given) with address
    characters either side.

    An address that an escape or character reference continues ("i&#110;fo@",
    "info@acme&#46;com", "info@acme\\u002ecom") is left to the pass that decodes it.
    """
    for at in at_signs(text) if ats is None else ats:
        before = LOCAL_BEFORE.search(text, max(0, at - 65), at)
        after = DOMAIN_AFTER.match(text, at + 1)
        start = _local_start(text, before.start()) if before is not None else None
        if (
            start is not None
            and start < at
            and after is not None
            and len(before.group()) <= 64
            and not inside_a_word(text, before.start() - 1)
            and not inside_a_word(text, after.end())
            and not CHAR_REF.match(text, after.end())
            and not ESCAPED_AT_OR_DOT.match(text, after.end())
        ):
            yield start, after.end(), text[start : after.end()]


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
    if text[position - 1] == ";" and CHAR_REF_BEFORE.search(text, max(0, position - 12), position):
        return None
    return position


def inside_a_word(text: str, position: int) -> bool:
    """True when a letter of an alphabetic script touches the address here
    ("müller@" must not become "ller@"); CJK text may touch an address."""
    if position < 0 or position >= len(text):
        return False
    char = text[position]
    return not char.isascii() and char < "\u2e80" and char.isalnum()


def addresses_in(text: str) -> list[str]:
    """Every plausible address in a short, already decoded piece of text."""
    found = []
    for _, _, candidate in around_ats(text):
        address = normalize_email(candidate)
        if address is not None:
            found.append(address)
    return found


