"""Links and email addresses from one page: the crawler's hot path.

Nothing here builds a DOM. Links come from one compiled regex over the tags
that carry them (links.py). Email addresses are found from cheap anchors:
`str.find` locates "@" and the marks of each way sites hide an address, and
small regexes run only on the window around an anchor; a pass whose anchors
are absent from the page costs one `in` test (anchors.py lists them all). A
whole-page email regex scans about 39 MB/s in Python's `re`; `str.find`
about 2,500 MB/s.

The modules, one per family of forms:
  address.py  what one plausible address is (normalize_email) and the
              Message-ID, asset, package, hash and placeholder traps
  scan.py     the page scan shared by all passes; the plain family
  archive.py  addresses written with words ("at", "dot", "_at_", "(a)")
  markup.py   what the browser renders from markup between the parts
  scripts.py  what scripts and their decoders assemble

Every address carries the source kinds it was found in (its `sources`
field; kinds.py holds the names, SOURCE_KINDS all of them):
  text        plain in the page: info@acme.com; {alice, bob}@cs.example.edu
  mailto      in a mailto: link, percent-decoded, query (In-Reply-To...) dropped
  entity      with HTML character references: info&#64;acme&#46;com
  obfuscated  "at" bracketed or "dot" spelled out: info [at] acme [dot] com,
              info AT acme DOT com, robert -at- acme -dot- be, info(at)acme(punkt)de,
              info@acme[dot]com; marks a reader drops: john@NOSPAM.acme.com
  archive     mailing-list archive forms: john at example.com (pipermail),
              john_at_example.com (hypermail), john(a)example.org (HyperKitty)
  markup      as rendered: comments, empty, hidden or inline tags, soft
              hyphens and zero-width characters between the parts; spaced
              "earl @ earlhood . com"; full-width info＠acme．com; SpamSpan;
              "@" as an image (at.gif, alt="@") or an icon (fa-at, class="at")
  css         reversed by CSS (unicode-bidi: bidi-override; direction: rtl, or a
              class named for it whose rule is elsewhere: class="eeb-rtl")
  script      assembled by a script or decoded from what a script decodes:
              Joomla cloaking (1.5 to 4), document.write/innerHTML of
              concatenations, reversed strings, String.fromCharCode,
              eval(unescape(...)), ROT13, table ciphers (WordPress "ASCII
              mixer", the coded/key obfuscator), TYPO3 linkTo_UnCryptMailto /
              data-mailto-token, CryptX, data-enc-email, data-user + data-domain
              pairs, data-*mail* values in Base64, SPIP lancerlien and other
              mail-building calls, onclick handlers and javascript: links
  cfemail     Cloudflare's data-cfemail / email-protection#hex (also %23)
  js          JavaScript/JSON escapes: info\\u0040acme.com
  jsonld      inside a <script type="application/ld+json"> block
  itemprop    in an element with itemprop="email"
  meta        in a <meta> tag's attributes
Never reported: what a reader cannot see (HTML comments, commented-out
scripts, hidden elements), the encoded form itself (a ROT13 or shifted
string), Message-IDs, URL user-info and addresses inside URLs,
git@host:path, fediverse handles (@jane@host), placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trawl.extract.address import normalize_email
from trawl.extract.kinds import (
    ARCHIVE,
    CFEMAIL,
    CSS,
    ENTITY,
    ITEMPROP,
    JS,
    JSONLD,
    MAILTO,
    MARKUP,
    META,
    OBFUSCATED,
    SCRIPT,
    SOURCE_KINDS,
    TEXT,
)
from trawl.extract.links import extract_links
from trawl.extract.scan import extract_emails

__all__ = [
    "ARCHIVE", "CFEMAIL", "CSS", "ENTITY", "ITEMPROP", "JS", "JSONLD", "MAILTO", "MARKUP", "META",
    "OBFUSCATED", "SCRIPT", "SOURCE_KINDS", "TEXT", "PageContent", "extract", "extract_emails",
    "extract_links", "normalize_email",
]


@dataclass
class PageContent:
    links: list[str] = field(default_factory=list)  # canonical, de-duplicated, in page order
    emails: dict[str, set[str]] = field(default_factory=dict)  # address -> source kinds


def extract(body: str, base_url: str) -> PageContent:
    """The links and email addresses of one HTML (or text) page."""
    return PageContent(links=extract_links(body, base_url), emails=extract_emails(body))
