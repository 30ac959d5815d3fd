"""URL scope: canonical form, registered domains, traps, page keys."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trawl import urls
from trawl.urls import (
    MAX_URL_LENGTH,
    canonicalize,
    host_of,
    in_scope,
    is_public_tld,
    DigitTrapGuard,
    looks_like_trap,
    non_page_extension,
    trap_reason,
    registered_domain,
    url_hash,
)

BASE = "http://Example.COM:80/a/b/c.html?x=1#frag"


@pytest.mark.parametrize(
    "url, base, expected",
    [
        # absolute URLs
        ("http://example.com", None, "http://example.com/"),
        ("HTTP://WWW.Example.COM/Path?Q=A#f", None, "http://www.example.com/Path?Q=A"),
        ("https://example.com:443/x", None, "https://example.com/x"),
        ("http://example.com:80/x", None, "http://example.com/x"),
        ("http://example.com:443/x", None, "http://example.com:443/x"),
        ("https://example.com:0443/x", None, "https://example.com/x"),
        ("http://example.com:8080", None, "http://example.com:8080/"),
        ("http://example.com:/x", None, "http://example.com/x"),
        ("http://example.com./x", None, "http://example.com/x"),
        ("http://example.com?q", None, "http://example.com/?q"),
        ("http://example.com/?", None, "http://example.com/"),
        ("http://example.com/a?b=1&a=2", None, "http://example.com/a?b=1&a=2"),
        ("http://example.com/a/./b/../c/.", None, "http://example.com/a/c/"),
        ("http://example.com/../../x", None, "http://example.com/x"),
        ("http://example.com/a b?c d", None, "http://example.com/a%20b?c%20d"),
        ("http://example.com/%7e%zz", None, "http://example.com/%7E%25zz"),
        ("http://example.com/ü?q=ü", None, "http://example.com/%C3%BC?q=%C3%BC"),
        ("https://Bücher.de/", None, "https://xn--bcher-kva.de/"),
        ("http://[::1]:80/x", None, "http://[::1]/x"),
        ("http://[2001:DB8::0:1]:8080/", None, "http://[2001:db8::1]:8080/"),
        ("http://user:pw@example.com/", None, "http://user:pw@example.com/"),
        ("  http://example.com/x \n", None, "http://example.com/x"),
        ("http:\\\\example.com\\x", None, "http://example.com/x"),
        # relative references
        ("d.html", BASE, "http://example.com/a/b/d.html"),
        ("../d?y", BASE, "http://example.com/a/d?y"),
        ("./", BASE, "http://example.com/a/b/"),
        ("/root", BASE, "http://example.com/root"),
        ("?z=2", BASE, "http://example.com/a/b/c.html?z=2"),
        ("#top", BASE, "http://example.com/a/b/c.html?x=1"),
        ("", BASE, "http://example.com/a/b/c.html?x=1"),
        ("//cdn.Example.org/p#x", BASE, "http://cdn.example.org/p"),
        ("//cdn.example.org", "https://example.com/", "https://cdn.example.org/"),
        ("http:d", BASE, "http://example.com/a/b/d"),
        ("a:b", BASE, None),
        ("/p/../q/./r", "https://example.com/", "https://example.com/q/r"),
        ("x%2fy", "https://example.com/", "https://example.com/x%2Fy"),
        # not crawlable
        ("javascript:void(0)", BASE, None),
        ("mailto:info@example.com", BASE, None),
        ("tel:+4412345", BASE, None),
        ("data:text/html,hi", BASE, None),
        ("ftp://example.com/", None, None),
        ("/relative", None, None),
        ("relative", "mailto:x@y.com", None),
        ("http://", None, None),
        ("http://exa mple.com/", None, None),
        ("http://example.com:99999/", None, None),
        ("http://example.com:8o/", None, None),
        ("http://[::1/", None, None),
        ("http://exam\x00ple.com/", None, None),
        ("http://example.com/a\tb", None, None),
        ("http://example.com/a\nb", None, None),
        ("/a\u2028b", BASE, None),
        ("http://example.com/" + "a" * MAX_URL_LENGTH, None, None),
    ],
)
def test_canonicalize(url, base, expected):
    assert canonicalize(url, base) == expected


def test_url_at_the_length_cap_is_kept():
    url = "http://example.com/" + "a" * (MAX_URL_LENGTH - len("http://example.com/"))
    assert canonicalize(url) == url


URL_PIECES = list("abcXYZ019-._~:/?#[]@!$&'()*+,;=% \\") + ["%2e", "%7e", "..", "ü", "\t", "\x00"]
URL_TEXT = st.lists(st.sampled_from(URL_PIECES), max_size=30).map("".join)
BASES = st.sampled_from(
    ["http://example.com/a/b?q", "https://x.org", "HTTP://X.ORG:80/d/", "mailto:x@y.z", "junk"]
)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80), st.one_of(st.none(), BASES))
def test_canonicalize_never_raises_and_is_idempotent(url, base):
    canonical = canonicalize(url, base)
    if canonical is not None:
        assert canonicalize(canonical) == canonical
        assert canonical.startswith(("http://", "https://"))
        assert len(canonical) <= MAX_URL_LENGTH
        assert canonical.isascii() and not any(c <= " " or c == "\x7f" for c in canonical)
        assert "#" not in canonical


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["", "http://", "https://", "//", "/", "HTTP://"]),
    st.sampled_from(["", "example.com", "Ex.com", "a.b.c", "ex.com:80", "ex.com:8080", "[::1]"]),
    URL_TEXT,
    st.one_of(st.none(), BASES),
)
def test_canonicalize_is_idempotent_on_url_shaped_text(prefix, host, rest, base):
    url = prefix + host + rest
    canonical = canonicalize(url, base)
    if canonical is not None:
        assert canonicalize(canonical) == canonical
        assert canonicalize(canonical, base) == canonical


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["", "http://example.com", "https://ex.org", "//cdn.net", "/", "../"]),
    URL_TEXT,
    BASES,
)
def test_fast_paths_agree_with_the_full_parse(prefix, rest, base):
    url = prefix + rest
    try:
        slow = urls._canonicalize_slowly(url, base)
    except (ValueError, UnicodeError):
        slow = None
    if slow is not None and len(slow) > MAX_URL_LENGTH:
        slow = None
    assert canonicalize(url, base) == slow


@pytest.mark.parametrize(
    "url, host",
    [
        ("https://example.com/x", "example.com"),
        ("http://example.com:8080/", "example.com:8080"),
        ("http://u:p@example.com/", "example.com"),
        ("http://[::1]:81/", "[::1]:81"),
    ],
)
def test_host_of(url, host):
    assert host_of(url) == host


@pytest.mark.parametrize(
    "host, domain",
    [
        ("www.example.com", "example.com"),
        ("a.b.example.co.uk", "example.co.uk"),
        ("Example.COM.", "example.com"),
        ("www.example.com:8080", "example.com"),
        ("example.com", "example.com"),
        ("co.uk", "co.uk"),
        ("user.github.io", "user.github.io"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]:8080", "[::1]"),
        ("::1", "::1"),
        ("localhost", "localhost"),
        ("localhost:5000", "localhost"),
        ("intranet", "intranet"),
        ("foo.bar.internal", "foo.bar.internal"),
    ],
)
def test_registered_domain(host, domain):
    assert registered_domain(host) == domain


@pytest.mark.parametrize(
    "url, seed, expected",
    [
        ("https://shop.example.co.uk/x", "http://www.example.co.uk/", True),
        ("http://example.com:8080/", "https://www.example.com", True),
        ("https://evil.co.uk/", "http://www.example.co.uk/", False),
        ("https://example.com.evil.net/", "http://example.com/", False),
        ("https://a.github.io/", "https://b.github.io/", False),
        ("http://127.0.0.1:8001/a", "http://127.0.0.1:8000/", True),
        ("http://127.0.0.2/", "http://127.0.0.1/", False),
        ("http://localhost/x", "http://localhost:8080/", True),
        ("http://a.intranet/", "http://b.intranet/", False),
        ("javascript:alert(1)", "http://example.com/", False),
    ],
)
def test_in_scope(url, seed, expected):
    assert in_scope(url, seed) is expected


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://example.com/", False),
        ("http://example.com/a/b/c/d", False),
        ("http://example.com/x/y/x", False),
        ("http://example.com/2024/01/01/post", False),
        ("http://example.com/a/b/a/b/a/b", True),
        ("http://example.com/x/x/x", True),
        ("http://example.com/" + "/".join("s%d" % i for i in range(15)), False),
        ("http://example.com/" + "/".join("s%d" % i for i in range(16)), True),
        ("http://example.com/?" + "&".join("p%d=1" % i for i in range(10)), False),
        ("http://example.com/?" + "&".join("p%d=1" % i for i in range(11)), True),
        ("http://example.com/" + "a" * (urls.MAX_PATH_LENGTH + 1), True),
        ("http://example.com/?q=" + "a" * urls.MAX_QUERY_LENGTH, True),
    ],
)
def test_looks_like_trap(url, expected):
    assert looks_like_trap(url) is expected


def test_url_hash_is_32_hex_of_blake2b():
    import hashlib

    url = "https://example.com/a?b=1"
    assert url_hash(url) == hashlib.blake2b(url.encode(), digest_size=16).hexdigest()
    assert len(url_hash(url)) == 32 and url_hash(url) == url_hash(url).lower()
    assert url_hash(url) != url_hash(url + "2")


@pytest.mark.parametrize(
    "label, expected",
    [("com", True), ("COM", True), ("uk", True), ("museum", True), ("xn--p1ai", True),
     ("рф", True), ("png", False), ("jpg", False), ("css", False), ("21", False),
     ("localhost", False), ("", False), ("co.uk", False)],
)
def test_is_public_tld(label, expected):
    assert is_public_tld(label) is expected


# ---------------------------------------------------------------- files that are not pages, trap reasons


@pytest.mark.parametrize("url, expected", [
    ("https://gnu.example.org/pub/tool-1.2.tar.gz", "gz"),
    ("https://gnu.example.org/pub/tool-1.2.tar.gz.sig", "sig"),
    ("https://gnu.example.org/pub/tool-1.2.tar.xz.asc", "asc"),
    ("https://example.com/Brochure.PDF", "pdf"),
    ("https://example.com/img/logo.png?v=3", "png"),
    ("https://example.com/fonts/a.woff2", "woff2"),
    ("https://example.com/report.docx", "docx"),
    ("https://example.com/", None),
    ("https://example.com/about.html", None),
    ("https://example.com/team.php?id=3", None),
    ("https://example.com/v1.2/", None),
    ("https://example.com/.pdf", None),  # a dot file, not an extension
    ("https://example.com/download?file=a.pdf", None),  # judged by the path only
])
def test_non_page_extension(url, expected):
    assert non_page_extension(url) == expected


def test_trap_reasons_name_the_rule():
    assert trap_reason("http://a.example/x/y/x/y/x/") == "trap: path segment 'x' repeated 3 times"
    assert trap_reason("http://a.example/" + "a/" * 16) is not None
    assert trap_reason("http://a.example/?" + "&".join(f"p{i}=1" for i in range(11))) == (
        "trap: more than 10 query parameters")
    assert trap_reason("http://a.example/" + "a" * 1100) == "trap: path longer than 1024 characters"
    assert trap_reason("http://a.example/blog/2026/01/02/post.html") is None


def test_digit_guard_cuts_a_calendar_but_not_a_numbered_catalogue():
    guard = DigitTrapGuard(limit=100, depth_spread=5)
    # A calendar: each day is a link of the day before, one level deeper.
    calendar = [guard.admit(f"http://a.example/cal/{d // 28 + 1}/{d % 28 + 1}", depth=1 + d) for d in range(300)]
    assert calendar[:100] == [None] * 100
    assert all(reason and reason.startswith("trap: more than 100 URLs differ only in digits")
               for reason in calendar[100:])
    # Products listed on index pages: one shape, all about as deep.
    assert [guard.admit(f"http://a.example/p/{n}.html", depth=2 + n % 3) for n in range(1000)] == [None] * 1000
    # Other sites have their own counts: the host is part of the shape.
    assert guard.admit("http://b.example/cal/1/1", depth=400) is None
