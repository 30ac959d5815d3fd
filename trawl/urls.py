"""URL scope for the crawler: what a URL is, whose it is, and whether to follow it.

This module owns the canonical form of a URL (so that dedupe compares like with
like), the page key derived from it (`url_hash`), the registered-domain test
behind the job option `same_domain`, the crawler-trap guards and the list
of file extensions that are not web pages (`non_page_extension`). It also
answers `is_public_tld` for the email extractor, since both read the same
public-suffix list (shipped inside the `publicsuffixlist` package; nothing is
ever downloaded).

`canonicalize` is on the crawler's hot path (every link of every page goes
through it), so it avoids `urllib.parse`: a URL that is already in canonical
shape is recognised by one regex, and relative links are resolved against a
cached parse of the base URL.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import Counter
from functools import lru_cache

from publicsuffixlist import PSLFILE, PublicSuffixList

MAX_URL_LENGTH = 2048

# Trap guard limits (see looks_like_trap).
MAX_PATH_SEGMENTS = 15
MAX_SEGMENT_REPEATS = 2
MAX_QUERY_PARAMS = 10
MAX_PATH_LENGTH = 1024
MAX_QUERY_LENGTH = 1024
# URLs of one site that differ only in their digits (/cal/2026/01/02, ...):
# more than this many of one shape are a generated space, not pages.
MAX_DIGIT_VARIANTS = 100
DIGIT_TRAP_DEPTH_SPREAD = 5

# Links to these are files, not web pages: never fetched (spec, "Job options").
NON_PAGE_EXTENSIONS = frozenset(
    # archives and packages
    "zip tar gz tgz bz2 tbz tbz2 xz txz zst lz lzma z 7z rar cab arj deb rpm apk dmg iso img msi exe "
    "bin jar war whl egg gem crx xpi torrent "
    # signatures and checksums
    "sig asc gpg pgp md5 sha1 sha256 sha512 "
    # images
    "jpg jpeg png gif bmp tif tiff webp ico svg svgz heic heif avif psd ai eps raw "
    # audio and video
    "mp3 wav ogg oga opus flac aac m4a wma mid midi aiff mp4 m4v mkv webm avi mov wmv flv mpg mpeg "
    "3gp ogv m3u8 swf "
    # fonts
    "woff woff2 ttf otf eot "
    # documents, office files, data
    "pdf ps epub mobi doc docx dot xls xlsx ppt pptx pps ppsx odt ods odp odg rtf csv "
    # styles and scripts
    "css js mjs map".split()
)

_DEFAULT_PORTS = {"http": "80", "https": "443"}

# Absolute and relative URLs that are already in canonical shape apart from
# a fragment or dot segments: only safe characters, a lower-case host without
# port. Most links on real pages look like this, so they skip the full parse.
_PATH_CHARS = r"A-Za-z0-9\-._~!$&'()*+,;=:@/\[\]%"
_FAST_ABSOLUTE = re.compile(
    rf"(https?://[a-z0-9\-]+(?:\.[a-z0-9\-]+)*)(/[{_PATH_CHARS}]*)?(\?[{_PATH_CHARS}?]*)?(?:#[!-~]*)?\Z"
)
# No ":" in a relative path: "x:y" may be a scheme, so it takes the slow road.
_FAST_RELATIVE = re.compile(
    rf"(?!//)([{_PATH_CHARS.replace(':', '')}]*)(\?[{_PATH_CHARS}?]*)?(?:#[!-~]*)?\Z"
)
_SHORT_LABELS = re.compile(r"[a-z0-9\-.]{0,253}://(?:[a-z0-9\-]{1,63}\.)*[a-z0-9\-]{1,63}\Z")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# Control characters and any whitespace but the plain space make a URL invalid.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f]|[^\S ]")
_C0_AND_SPACE = "".join(map(chr, range(0x21)))
# Characters that must be percent-encoded in a path or query; a "%" that does
# not start an escape is one of them.
_UNSAFE = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%\[\]]")
_LOWER_ESCAPE = re.compile(r"%(?:[a-f][0-9A-Fa-f]|[0-9A-F][a-f])")
_HOST_LABELS = re.compile(r"[a-z0-9_\-]{1,63}(?:\.[a-z0-9_\-]{1,63})*")


# ---------------------------------------------------------------- canonical form


def canonicalize(url: str, base: str | None = None) -> str | None:
    """Resolve `url` against `base` and return its canonical absolute form.

    Returns None when the result is not http(s), cannot be parsed, contains
    control characters or whitespace other than a plain space, or is longer
    than MAX_URL_LENGTH. Canonical means: lower-case scheme and host, IDN host
    in punycode, default port dropped, fragment dropped, empty path "/",
    dot-segments resolved, query kept as it is (an empty "?" is dropped),
    unsafe characters percent-encoded (a space becomes %20) and escapes in
    upper case. Surrounding whitespace is ignored, as browsers do.
    """
    if len(url) > 4 * MAX_URL_LENGTH:
        return None
    canonical = _canonicalize_quickly(url, base)
    if canonical is not None:
        return canonical if len(canonical) <= MAX_URL_LENGTH else None
    try:
        canonical = _canonicalize_slowly(url, base)
    except (ValueError, UnicodeError):
        return None
    if canonical is None or len(canonical) > MAX_URL_LENGTH:
        return None
    return canonical


def _canonicalize_quickly(url: str, base: str | None) -> str | None:
    """The common cases, or None to say "take the full parse"."""
    match = _FAST_ABSOLUTE.match(url)
    if match is not None:
        origin, path, query = match.groups()
        if not _SHORT_LABELS.match(origin):
            return None
        path = path or "/"
    elif base is None:
        return None
    elif url.startswith("//"):
        base_parts = _base_parts(base)
        return _canonicalize_quickly(f"{base_parts[0]}:{url}", None) if base_parts else None
    else:
        match = _FAST_RELATIVE.match(url)
        base_parts = _base_parts(base) if match is not None else None
        if base_parts is None:
            return None
        scheme, authority, base_path, base_query = base_parts
        origin = f"{scheme}://{authority}"
        path, query = match.groups()
        if not path:
            path = base_path
            if query is None and base_query is not None:
                query = "?" + base_query
        elif path[0] != "/":
            path = base_path[: base_path.rfind("/") + 1] + path
    if "%" in url and _needs_escaping(path + (query or "")):
        return None
    if "/." in path:
        path = _remove_dot_segments(path)
    if query is None or query == "?":
        return origin + path
    return origin + path + query


def _needs_escaping(part: str) -> bool:
    return _UNSAFE.search(part) is not None or _LOWER_ESCAPE.search(part) is not None


def _canonicalize_slowly(url: str, base: str | None) -> str | None:
    url = url.strip().strip(_C0_AND_SPACE)
    if _FORBIDDEN.search(url):
        return None
    has_scheme = _SCHEME.match(url)
    scheme = has_scheme.group(1).lower() if has_scheme else None
    if scheme is not None and scheme not in _DEFAULT_PORTS:
        return None
    rest = url[has_scheme.end():] if has_scheme else url
    # Browsers read a backslash before the query as a slash in http(s) URLs.
    if "\\" in rest:
        before, mark, after = rest.partition("?")
        rest = before.replace("\\", "/") + mark + after
    if scheme is not None and rest.startswith("//"):
        authority, path, query = _split_reference(rest[2:])
        return _assemble(scheme, authority, path, query)
    base_parts = _base_parts(base) if base is not None else None
    if base_parts is None or (scheme is not None and scheme != base_parts[0]):
        return None
    return _assemble(*_resolve(base_parts, rest))


def _split_reference(rest: str) -> tuple[str, str, str | None]:
    """Split "authority/path?query#fragment" (after the "//"); drop the fragment."""
    rest = rest.partition("#")[0]
    rest, mark, query = rest.partition("?")
    slash = rest.find("/")
    if slash == -1:
        return rest, "", query if mark else None
    return rest[:slash], rest[slash:], query if mark else None


def _resolve(base_parts: tuple[str, str, str, str | None], ref: str) -> tuple:
    """RFC 3986 section 5.2 for a reference without a scheme."""
    scheme, authority, base_path, base_query = base_parts
    if ref.startswith("//"):
        return (scheme, *_split_reference(ref[2:]))
    ref = ref.partition("#")[0]
    path, mark, query = ref.partition("?")
    query = query if mark else None
    if not path:
        return scheme, authority, base_path, query if mark else base_query
    if not path.startswith("/"):
        path = base_path[: base_path.rfind("/") + 1] + path
    return scheme, authority, path, query


@lru_cache(maxsize=1024)
def _base_parts(base: str) -> tuple[str, str, str, str | None] | None:
    """(scheme, authority, path, query) of a base URL, cached: a page's links share it."""
    canonical = canonicalize(base)
    if canonical is None:
        return None
    scheme, _, rest = canonical.partition("://")
    authority, path, query = _split_reference(rest)
    return scheme, authority, path, query


def _assemble(scheme: str, authority: str, path: str, query: str | None) -> str:
    authority = _normalize_authority(scheme, authority)
    path = _quote_unsafe(_remove_dot_segments(path or "/")) if path else "/"
    if path[0] != "/":
        path = "/" + path
    if query:
        return f"{scheme}://{authority}{path}?{_quote_unsafe(query)}"
    return f"{scheme}://{authority}{path}"


def _normalize_authority(scheme: str, authority: str) -> str:
    userinfo, _, hostport = authority.rpartition("@")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1:
            raise ValueError("unclosed IPv6 literal")
        host = "[" + ipaddress.IPv6Address(hostport[1:end]).compressed + "]"
        after = hostport[end + 1 :]
        if after and after[0] != ":":
            raise ValueError("junk after IPv6 literal")
        port = after[1:]
    else:
        host, _, port = hostport.partition(":")
        host = _normalize_host(host)
    if port:
        if not (port.isascii() and port.isdigit()) or int(port) > 65535:
            raise ValueError("bad port")
        port = str(int(port))
        host = host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    if userinfo:
        host = f"{_quote_unsafe(userinfo)}@{host}"
    return host


def _normalize_host(host: str) -> str:
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if len(host) > 253 or not _HOST_LABELS.fullmatch(host):
        raise ValueError("bad host")
    return host


def _remove_dot_segments(path: str) -> str:
    if "/." not in path and not path.startswith("."):
        return path
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments[1:] if path.startswith("/") else segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):
        kept.append("")
    return "/" + "/".join(kept)


def _quote_unsafe(part: str) -> str:
    if _UNSAFE.search(part):
        part = _UNSAFE.sub(_escape, part)
    if _LOWER_ESCAPE.search(part):
        part = _LOWER_ESCAPE.sub(lambda m: m.group().upper(), part)
    return part


def _escape(match: re.Match) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


# ---------------------------------------------------------------- whose URL


def host_of(url: str) -> str:
    """Host of a canonical URL, with the port when it is not the default."""
    authority = url.partition("://")[2].split("/", 1)[0]
    return authority.rpartition("@")[2]


@lru_cache(maxsize=1)
def _suffix_list() -> PublicSuffixList:
    # accept_unknown=False: a name under no listed suffix has no registered
    # domain and so matches only itself.
    return PublicSuffixList(accept_unknown=False)


@lru_cache(maxsize=65536)
def registered_domain(host: str) -> str:
    """The registrable domain of `host` ("www.bbc.co.uk" -> "bbc.co.uk").

    IP addresses, localhost and names under no public suffix are returned as
    they are (without the port), so they match only themselves.
    """
    host = _without_port(host.strip().lower()).rstrip(".")
    if not host or host == "localhost" or _is_ip_address(host):
        return host
    return _suffix_list().privatesuffix(host) or host


def _without_port(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def in_scope(url: str, seed_url: str) -> bool:
    """True when `url` is on the same registered domain as `seed_url`."""
    site = _site_of(url)
    return site is not None and site == _site_of_seed(seed_url)


def _site_of(url: str) -> str | None:
    canonical = canonicalize(url)
    return registered_domain(host_of(canonical)) if canonical else None


_site_of_seed = lru_cache(maxsize=4096)(_site_of)


# ---------------------------------------------------------------- traps and keys


def looks_like_trap(url: str) -> bool:
    """True when a canonical URL has the shape of a crawler trap.

    A URL is a trap when its path has more than MAX_PATH_SEGMENTS segments,
    when one path segment occurs more than MAX_SEGMENT_REPEATS times
    (/a/b/a/b/a/b, /x/x/x: relative links that keep nesting), when its query
    has more than MAX_QUERY_PARAMS parameters (filters that combine without
    end), or when the path is longer than MAX_PATH_LENGTH or the query longer
    than MAX_QUERY_LENGTH characters.
    """
    return trap_reason(url) is not None


_DIGITS = re.compile(r"[0-9]+")


def non_page_extension(url: str) -> str | None:
    """The extension of a canonical URL's last path segment when it names a non-page file."""
    after_host = url.partition("://")[2]
    slash = after_host.find("/")
    if slash == -1:
        return None
    path = after_host[slash:].partition("?")[0]
    name = path[path.rfind("/") + 1:]
    dot = name.rfind(".")
    if dot <= 0:
        return None
    extension = name[dot + 1:].lower()
    return extension if extension in NON_PAGE_EXTENSIONS else None


def trap_reason(url: str) -> str | None:
    """Why a canonical URL has the shape of a crawler trap (see looks_like_trap), or None."""
    after_host = url.partition("://")[2]
    slash = after_host.find("/")
    path, _, query = after_host[slash:].partition("?") if slash != -1 else ("/", "", "")
    if len(path) > MAX_PATH_LENGTH:
        return f"trap: path longer than {MAX_PATH_LENGTH} characters"
    if len(query) > MAX_QUERY_LENGTH:
        return f"trap: query longer than {MAX_QUERY_LENGTH} characters"
    if query and sum(1 for param in query.split("&") if param) > MAX_QUERY_PARAMS:
        return f"trap: more than {MAX_QUERY_PARAMS} query parameters"
    segments = [segment for segment in path.split("/") if segment]
    if len(segments) > MAX_PATH_SEGMENTS:
        return f"trap: more than {MAX_PATH_SEGMENTS} path segments"
    if len(set(segments)) + MAX_SEGMENT_REPEATS <= len(segments):
        segment, times = Counter(segments).most_common(1)[0]
        if times > MAX_SEGMENT_REPEATS:
            return f"trap: path segment {segment[:40]!r} repeated {times} times"
    return None


def digit_shape(url: str) -> str:
    """The URL with every run of digits in its path and query replaced by "0" (the host is kept)."""
    scheme, _, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    return f"{scheme}://{authority}{slash}{_DIGITS.sub('0', tail)}"


class DigitTrapGuard:
    """Counts the URLs of each digit shape one worker fetched for a job, to cut generated spaces off.

    A calendar (/cal/2026/01/02 -> /cal/2026/01/03 -> ...) or an endless
    pager makes URLs of one shape that sit ever deeper: each is a link of
    the one before. Numbered pages a site lists (/p/1.html ... /p/5000.html
    from an index) share a shape too, but at nearly the same depth. So a URL
    is a trap when its shape already had MAX_DIGIT_VARIANTS URLs and it is
    more than DIGIT_TRAP_DEPTH_SPREAD levels below the shallowest of them.

    With host partitioning one worker crawls a host at a time, so its own
    count is the site's (a host that moves to another worker starts afresh
    there: the guard may let a second batch through, never fewer pages).
    """

    def __init__(self, limit: int = MAX_DIGIT_VARIANTS, depth_spread: int = DIGIT_TRAP_DEPTH_SPREAD):
        self.limit = limit
        self.depth_spread = depth_spread
        self._shapes: dict[str, list[int]] = {}  # shape -> [URLs admitted, shallowest depth]

    def admit(self, url: str, depth: int) -> str | None:
        """Count `url`; a reason when it belongs to a generated space, else None."""
        if not any(ch.isdigit() for ch in url.partition("://")[2].partition("/")[2]):
            return None
        shape = digit_shape(url)
        seen = self._shapes.setdefault(shape, [0, depth])
        if seen[0] >= self.limit and depth > seen[1] + self.depth_spread:
            return (f"trap: more than {self.limit} URLs differ only in digits, "
                    f"{depth - seen[1]} levels deep ({shape[:80]})")
        seen[0] += 1
        seen[1] = min(seen[1], depth)
        return None


def url_hash(canonical_url: str) -> str:
    """The page key of a canonical URL: 32 hex chars of blake2b (16 bytes).

    128 bits, because a collision silently drops a URL at the unique key:
    among 10^6 URLs the chance of any collision is about n^2 / 2^129, far
    below one in 10^9 (64 bits would give 2.7e-8).
    """
    return hashlib.blake2b(canonical_url.encode("utf-8"), digest_size=16).hexdigest()


@lru_cache(maxsize=1)
def _top_level_suffixes() -> frozenset[str]:
    labels = set()
    with open(PSLFILE, encoding="utf-8") as lines:
        for line in lines:
            rule = line.strip()
            if rule and not rule.startswith(("//", "!", "*")) and "." not in rule:
                labels.add(rule.lower())
                try:
                    labels.add(rule.encode("idna").decode("ascii"))
                except UnicodeError:
                    pass
    return frozenset(labels)


def is_public_tld(label: str) -> bool:
    """True when `label` is a top-level domain in the shipped public-suffix list."""
    return label.lower() in _top_level_suffixes()
