"""Addresses written out in words: the archive and obfuscated forms.

Mailing-list archives and hand-made pages replace "@" and "." with words:
pipermail "john at example.com", hypermail "john_at_example.com",
HyperKitty "john(a)example.org", and "info [at] acme [dot] com",
"info (AT) acme (DOT) com", "robert -AT- example -DOT- be" everywhere.
Brackets around "at" (or "-at-", "<at>") make the intent plain; a bare
" at " is prose far more often ("look at example.com", "hosted at
github.com"), so it is read as an address only when the words around it are
not prose: see `_bare_at_is_prose`.

Dots are ".", " dot ", "[dot]", "(punkt)", "[point]", "(punto)", "-dot-",
"_dot_" (also after a real "@": "info@acme[dot]com"); no-break spaces count
as spaces. Anchors (anchors.worded) find "at" in these shapes; each window
around one is matched with OBFUSCATED_ADDRESS.

Kinds: "obfuscated" when "at" is bracketed or "dot" is spelled out
(the pre-existing forms), "archive" for the forms with a literal "." after a
bare " at ", "_at_" or "(a)".
"""

from __future__ import annotations

import re

from trawl.extract import anchors
from trawl.extract.address import normalize_email
from trawl.extract.kinds import ARCHIVE, OBFUSCATED

_BRACKETED_AT = (
    r"\s*(?:\[\s*(?:at|@)\s*\]|\(\s*(?:at|@)\s*\)|\{\s*(?:at|@)\s*\}|&lt;\s*at\s*&gt;|<\s*at\s*>|-at-)\s*"
)
# "dot" in the languages whose sites write it out: "(punkt)", "[point]", "(punto)".
_DOT_WORDS = r"(?:dot|punkt|point|punto|\.)"
_BRACKETED_DOT = (
    rf"\s*(?:\[\s*{_DOT_WORDS}\s*\]|\(\s*{_DOT_WORDS}\s*\)|\{{\s*{_DOT_WORDS}\s*\}}|&lt;\s*dot\s*&gt;|<\s*dot\s*>|-dot-)\s*"
)
# (a lone spaced " . " only after a bracketed "at": "info (at) acme . de")
_DOT = rf"(?:{_BRACKETED_DOT}|\s+dot\s+|_dot_| \. |\.)"
OBFUSCATED_ADDRESS = re.compile(
    rf"(?<![\w.+\-'$%])([a-z0-9][a-z0-9._+\-]{{0,63}}?(?:{_BRACKETED_DOT}[a-z0-9][a-z0-9._+\-]{{0,63}}?){{0,3}})"
    rf"({_BRACKETED_AT}|\s+at\s+|_at_|\(a\)|@)"
    rf"([a-z0-9\-]{{1,63}}(?:{_DOT}[a-z0-9\-]{{1,63}}){{1,6}})(?![\w\-]|\.[a-z0-9])",
    re.IGNORECASE,
)
_DOT_SEPARATOR = re.compile(_DOT, re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_LOCAL_RUN = re.compile(r"[A-Za-z0-9._+\-]{1,64}\Z")
_DOT_BEFORE = re.compile(_BRACKETED_DOT + r"\Z", re.IGNORECASE)
_LITERAL_DOT_ONLY = re.compile(r"(?:[a-z0-9\-]+\.)+[a-z0-9\-]+\Z", re.IGNORECASE)

# Words around " at " in prose ("find us at acme dot com", "look at the dot
# com era"): never the local part or the first domain label of an address.
PROSE_BEFORE_AT = frozenset({"us", "me", "you", "him", "her", "them", "it", "we", "is", "are",
                             "was", "be", "look", "looking", "meet", "find", "visit", "here",
                             "there", "online", "available", "arrive", "stay", "out", "up"})
# Before a bare " at " with a literal dot ("hosted at github.com") many more words are prose.
_PROSE_BEFORE_BARE_AT = PROSE_BEFORE_AT | frozenset({
    "us", "me", "you", "him", "her", "them", "it", "we", "is", "are", "was", "were", "be", "been",
    "am", "look", "looks", "looked", "looking", "meet", "met", "find", "found", "visit", "visited",
    "here", "there", "online", "available", "arrive", "arrived", "stay", "out", "up", "down", "off",
    "hosted", "host", "located", "based", "live", "lives", "living", "work", "works", "worked",
    "working", "study", "studied", "studies", "shop", "buy", "bought", "sold", "sell", "order",
    "download", "downloads", "downloaded", "published", "posted", "listed", "registered", "read",
    "see", "seen", "saw", "check", "checked", "aim", "aimed", "point", "pointed", "points", "start",
    "started", "starts", "begin", "end", "ends", "ended", "stop", "even", "only", "just", "not",
    "all", "and", "or", "but", "as", "both", "mirror", "mirrored", "mirrors", "served", "running",
    "runs", "run", "open", "opened", "go", "goes", "went", "come", "comes", "came", "accessible",
    "reachable", "reached", "reach", "good", "best", "better", "great", "well", "held", "took",
    "take", "place", "placed", "born", "died", "employed", "job", "jobs", "intern", "position",
    "fellow", "student", "students", "professor", "lecturer", "researcher", "engineer", "engineers",
    "developer", "developers", "team", "staff", "people", "friends", "folks", "guys", "page", "site",
    "website", "blog", "post", "article", "docs", "documentation", "code", "source", "repository",
    "project", "projects", "release", "releases", "version", "mail", "email", "e-mail", "write",
    "reply", "replies", "answer", "answers", "ask", "asked", "reached",
    "copy", "copies", "details", "more", "information", "story", "stories", "tools",
    "also", "now", "currently", "today", "tonight", "yesterday", "tomorrow", "again", "then", "once",
    "that", "this", "which", "who", "what", "where", "when", "how", "why", "so", "too", "very",
    "stayed", "staying", "arrives", "arriving", "hosting", "located", "sitting", "seen", "shown",
    "shopping", "selling", "buying", "ordering", "booking", "booked", "signed", "sign", "log",
    "logged", "login", "parked", "stored", "kept", "saved", "copied", "uploaded", "released",
})
_PROSE_AFTER_AT = frozenset({
    "the", "a", "an", "this", "that", "our", "my", "your", "his", "her", "their", "its", "home",
    "work", "least", "all", "first", "last", "once", "www", "http", "https", "ftp",
})
# A determiner or verb before the local part makes it a word in a sentence:
# "the team at acme.com", "more info at acme.com", "get support at acme.com".
_PROSE_PREVIOUS = frozenset({
    "the", "a", "an", "our", "my", "your", "his", "her", "their", "its", "this", "that", "these",
    "those", "some", "any", "every", "each", "no", "many", "most", "other", "all", "of", "and",
    "more", "further", "additional", "full", "latest", "get", "find", "read", "see", "visit",
    "check", "buy", "order", "available", "free", "online", "is", "are", "was", "be", "with",
})
# Top-level domains that a bare " at " or "_at_" form meets mostly as file names (setup.py, app.js).
_CODE_EXTENSION_TLDS = frozenset({"py", "js", "sh", "md", "rs", "pl", "pm", "rb", "cc", "cs", "ps", "so", "in"})
# Numbers and revision-like tokens ("2 at 3.50", "fixed at r12345 at svn.example.org").
_NOT_A_NAME = re.compile(r"[a-z]?\d+")
_WORD_BEFORE = re.compile(r"([A-Za-z\-]+)[ \t]+\Z")
_ALONE_BEFORE = frozenset(",[{\"'|*")
_INTRODUCING_MARKS = (":", "<", "&lt;", "(")
_ALONE_AFTER = frozenset("\n\r<&)]},;:\"'|*")
# Words after which an address follows in running text: "mail john at acme.com", "or at jdoe at ...".
_ADDRESS_INTRO = frozenset({
    "mail", "email", "e-mail", "contact", "write", "at", "cc", "from", "reply", "address",
    "reach", "via", "maintainer", "author", "by:", "tel", "or",
})


def run(scan) -> None:
    """Find the worded forms in windows around their anchors."""
    lowered = scan.lowered
    found, scan.brackets, scan.at_images = anchors.worded(lowered, scan.ats)
    if not found:
        return
    text, seen = scan.text, set()
    for anchor in found:
        # The address ends its local part at the anchor: match from where that part may start.
        for start in _local_starts(text, anchor):
            match = OBFUSCATED_ADDRESS.match(text, start, min(len(text), anchor + 400))
            if match is None or match.span() in seen:
                continue
            seen.add(match.span())
            kind, address = read_match(match, text)
            if address is not None and not scan.message_id_context(match.start(), match.end(), address.split("@")[0]):
                scan.add(address, kind, match.start())
            break
    if "&nbsp;" in lowered or "&#160;" in lowered:
        visible = [at for at in found if not scan.hidden(at)]
        for start, end in merged_windows(visible, before=160, after=400, limit=len(lowered)):
            if "&nbsp;" in lowered[start:end] or "&#160;" in lowered[start:end]:
                _with_spaces(scan, start, end)


def _local_starts(text: str, anchor: int) -> list[int]:
    """Where a local part ending at `anchor` (spaces before it skipped) may
    start, longest first: "j [dot] smith [at] ..." before "smith [at] ..."."""
    end = anchor
    while end > 0 and text[end - 1] in " \t":
        end -= 1
    starts = []
    for _ in range(4):
        run = _LOCAL_RUN.search(text, max(0, end - 64), end)
        if run is None:
            break
        starts.append(run.start())
        dot = _DOT_BEFORE.search(text, max(0, run.start() - 16), run.start())
        if dot is None:
            break
        end = dot.start()
    return starts[::-1]


def _with_spaces(scan, start: int, end: int) -> None:
    """The window again with its no-break spaces as spaces: "john&nbsp;[at]&nbsp;acme.com"."""
    start = scan.visible_from(anchors.word_boundary(scan.lowered, start))  # not inside a comment or a word
    window = _COMMENT.sub(" ", scan.text[start:end]).replace("&nbsp;", " ").replace("&#160;", " ")
    for match in OBFUSCATED_ADDRESS.finditer(window):
        kind, address = read_match(match, window)
        if address is not None and address not in scan.found:
            scan.add(address, kind)


def read_match(match: re.Match, text: str) -> tuple[str, str | None]:
    """(kind, address or None) for one match of OBFUSCATED_ADDRESS in `text`."""
    local, at_sign, domain = match.groups()
    obfuscated_dot = any(separator.group() != "." for separator in _DOT_SEPARATOR.finditer(domain))
    word_at = at_sign.strip().lower()
    if word_at == "@" and not obfuscated_dot:
        return OBFUSCATED, None  # a plain address: the text pass's
    bare = word_at == "at"
    if bare and not obfuscated_dot and _bare_at_is_prose(match, text):
        return ARCHIVE, None
    if bare and " . " in domain:
        return OBFUSCATED, None  # "look at this . com"
    if bare and obfuscated_dot:
        first_label = domain.split()[0].split(".")[0].lower()
        previous = _WORD_BEFORE.search(text, max(0, match.start() - 40), match.start())
        if first_label in _PROSE_AFTER_AT or local.lower() in PROSE_BEFORE_AT or (
            previous is not None and previous.group(1).lower() in _PROSE_PREVIOUS
        ):
            return OBFUSCATED, None
    if word_at in ("_at_", "(a)") and not obfuscated_dot:
        if domain.rpartition(".")[2].lower() in _CODE_EXTENSION_TLDS:
            return ARCHIVE, None
    address = normalize_email(f"{_DOT_SEPARATOR.sub('.', local)}@{_DOT_SEPARATOR.sub('.', domain)}")
    kind = ARCHIVE if word_at in ("at", "_at_", "(a)") and not obfuscated_dot else OBFUSCATED
    return kind, address


def _bare_at_is_prose(match: re.Match, text: str) -> bool:
    """True unless "x at host.tld" reads as an address rather than a sentence.

    Archives write it where an address stands alone: the text of a link
    (pipermail's header), in "<...>" or "(...)", after "From:" or a comma,
    at the start of a line, before "wrote:". So the words around it must
    not continue a sentence: before it, punctuation, a line start or a word
    that introduces an address ("mail", "at", "is" ...); after it, the end
    of the line, punctuation or markup. The local part must not be a prose
    word, a number, a capitalised word or a verb form ("hosted", "looking"),
    and the domain not a URL (www., a path) or a file name (setup.py).
    """
    local, _, domain = match.groups()
    labels = domain.lower().split(".")
    word = local.lower()
    if not _LITERAL_DOT_ONLY.match(domain) or labels[0] in _PROSE_AFTER_AT or labels[-1] in _CODE_EXTENSION_TLDS:
        return True
    if word in _PROSE_BEFORE_BARE_AT or _NOT_A_NAME.fullmatch(word) or (
        local.isalpha() and len(word) >= 6 and word.endswith(("ed", "ing"))
    ):
        return True
    if local[:1].isupper() and local[1:].islower():
        return True  # a word starting a sentence, or a name in one: "Python at python.org"
    if domain[0].isupper() and domain[1:2].islower():
        return True  # a brand in running text: "Shop at Amazon.com"
    before = _context_before(text, match.start())
    return not (before == "introduced" or (before == "alone" and _stands_alone_after(text, match.end())))


def _context_before(text: str, start: int) -> str:
    """"introduced" after "mail", "From:", "<" or "("; "alone" after markup, a
    line start or other punctuation; else "prose"."""
    head = text[max(0, start - 40) : start]
    stripped = head.rstrip(" \t")
    if not stripped or stripped[-1] in "\n\r>":
        return "alone"  # a line start or markup right before the local part
    if stripped.endswith(_INTRODUCING_MARKS):
        return "introduced"
    if stripped[-1] in _ALONE_BEFORE:
        return "alone"
    previous = _WORD_BEFORE.search(head)
    return "introduced" if previous is not None and previous.group(1).lower() in _ADDRESS_INTRO else "prose"


def _stands_alone_after(text: str, end: int) -> bool:
    tail = text[end : end + 12].lstrip(" \t")
    if not tail or tail[0] in _ALONE_AFTER:
        return True
    if tail[0] == "." and tail[1:2] in ("", " ", "\n", "\r", "\t", "<"):
        return True  # the end of a sentence
    return tail.lower().startswith(("wrote", "writes", "said", "schrieb", "a \u00e9crit"))


def merged_windows(found: list[int], before: int, after: int, limit: int):
    """Windows [anchor - before, anchor + after) of sorted anchors, overlapping ones merged."""
    start = end = None
    for anchor in found:
        if end is not None and anchor - before <= end:
            end = min(limit, anchor + after)
            continue
        if end is not None:
            yield start, end
        start, end = max(0, anchor - before), min(limit, anchor + after)
    if end is not None:
        yield start, end
