"""Page bodies to text: which Content-Types are pages, and their charset.

Owned here: the media types parsed as pages (HTML, XHTML, plain text; a
missing type is sniffed as HTML) and the decoding rule the fetcher applies
to a body: BOM, then the header's charset, then <meta>, then UTF-8 with
replacement. It never raises: a page with bad bytes or an unknown charset
still becomes text. Labels browsers read as windows-1252 are read so here.
"""

from __future__ import annotations

import codecs
import re

TEXT_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain"})

_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# Browsers read these labels as windows-1252 (WHATWG Encoding), and so do we.
_AS_WINDOWS_1252 = {"latin_1", "ascii", "iso8859_1"}


def is_text_type(content_type: str | None) -> bool:
    """HTML, XHTML and plain text are parsed; a missing type is sniffed as HTML."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return not media_type or media_type in TEXT_TYPES


def decode_body(body: bytes, content_type: str | None) -> str:
    """Text of a page: BOM, then the header's charset, then <meta>, then UTF-8."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, errors="replace")
    encoding = _charset_param(content_type) or _meta_charset(body[:4096]) or "utf-8"
    try:
        return body.decode(encoding, errors="replace")
    except LookupError:  # a known codec that is not a text encoding, e.g. "base64"
        return body.decode("utf-8", errors="replace")


def _charset_param(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return _known_encoding(value.strip().strip("\"'"))
    return None


def _meta_charset(head: bytes) -> str | None:
    match = _META_CHARSET.search(head)
    if not match:
        return None
    encoding = _known_encoding(match.group(1).decode("ascii"))
    # A <meta> cannot honestly declare UTF-16: the bytes that spell it are ASCII.
    return "utf-8" if encoding and encoding.startswith("utf_16") else encoding


def _known_encoding(label: str) -> str | None:
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    name = name.replace("-", "_")
    return "cp1252" if name in _AS_WINDOWS_1252 else name
