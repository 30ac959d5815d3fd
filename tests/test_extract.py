"""Links and email addresses from one page: every published form, every trap."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trawl.extract import (
    SOURCE_KINDS,
    PageContent,
    extract,
    extract_emails,
    extract_links,
    normalize_email,
)

PAGE_URL = "https://www.acme.com/about/team.html"


def cloudflare_hex(address: str, key: int = 0x5A) -> str:
    """What Cloudflare's email protection writes for `address`."""
    return f"{key:02x}" + "".join(f"{byte ^ key:02x}" for byte in address.encode())


def entities(text: str, style: str = "dec") -> str:
    return "".join(f"&#{ord(c)};" if style == "dec" else f"&#x{ord(c):x};" for c in text)


# ---------------------------------------------------------------- one form at a time

FOUND = [
    # text
    ("Contact: info@acme.com.", "info@acme.com", {"text"}),
    ("WRITE TO INFO@ACME.COM", "info@acme.com", {"text"}),
    ("(sales@acme.co.uk)", "sales@acme.co.uk", {"text"}),
    ("first.last+tag@mail.acme.org;", "first.last+tag@mail.acme.org", {"text"}),
    ('"o\'brien@acme.ie"', "o'brien@acme.ie", {"text"}),
    ("<td>jobs@acme.com</td>", "jobs@acme.com", {"text"}),
    ("联系我们info@acme.cn谢谢", "info@acme.cn", {"text"}),
    ("Email:info@acme.com", "info@acme.com", {"text"}),
    ("Sales: sales@acme.com: call us", "sales@acme.com", {"text"}),
    ("<input value='desk@acme.com'>", "desk@acme.com", {"text"}),
    ("write to support@acme.com, please", "support@acme.com", {"text"}),
    ("a@163.com", "a@163.com", {"text"}),
    ("info@xn--bcher-kva.de", "info@xn--bcher-kva.de", {"text"}),
    # mailto
    ('<a href="mailto:info@acme.com">Email us</a>', "info@acme.com", {"mailto"}),
    ('<a href="MAILTO:Info@Acme.com">x</a>', "info@acme.com", {"mailto"}),
    ('<a href="mailto:info%40acme.com">x</a>', "info@acme.com", {"mailto"}),
    ('<a href="mailto:%20info@acme.com">x</a>', "info@acme.com", {"mailto"}),
    ('<a href="mailto:info@acme.com?subject=Hi%20there&amp;cc=boss@acme.com">', "info@acme.com", {"mailto"}),
    ("<a href=mailto:info@acme.com>x</a>", "info@acme.com", {"mailto"}),
    ('<a href="mailto:info@acme.com">info@acme.com</a>', "info@acme.com", {"mailto", "text"}),
    # entity
    ("info&#64;acme.com", "info@acme.com", {"entity"}),
    ("info&#064;acme.com", "info@acme.com", {"entity"}),
    ("info&#x40;acme.com", "info@acme.com", {"entity"}),
    ("info&#X40;acme.com", "info@acme.com", {"entity"}),
    ("info&commat;acme&period;com", "info@acme.com", {"entity"}),
    ("info@acme&#46;com", "info@acme.com", {"entity"}),
    (entities("info@acme.com"), "info@acme.com", {"entity"}),
    (entities("info@acme.com", "hex"), "info@acme.com", {"entity"}),
    ("&#105;nfo@acme.com", "info@acme.com", {"entity"}),
    ("info@acme.co&#46;uk", "info@acme.co.uk", {"entity"}),
    ("&nbsp;info@acme.com&nbsp;", "info@acme.com", {"text"}),
    ("E-mail:&#160;info@acme.com&#8203;", "info@acme.com", {"text"}),
    ('<a href="mailto:' + entities("info@acme.com") + '">', "info@acme.com", {"entity", "mailto"}),
    # obfuscated
    ("info[at]acme[dot]com", "info@acme.com", {"obfuscated"}),
    ("info [at] acme [dot] com", "info@acme.com", {"obfuscated"}),
    ("info [ at ] acme [ dot ] co [ dot ] uk", "info@acme.co.uk", {"obfuscated"}),
    ("info(at)acme(dot)com", "info@acme.com", {"obfuscated"}),
    ("info (AT) acme (DOT) com", "info@acme.com", {"obfuscated"}),
    ("info{at}acme{dot}com", "info@acme.com", {"obfuscated"}),
    ("info(at)acme.com", "info@acme.com", {"obfuscated"}),
    ("INFO [AT] ACME.COM", "info@acme.com", {"obfuscated"}),
    ("info[@]acme.com", "info@acme.com", {"obfuscated"}),
    ("john.smith at acme dot com", "john.smith@acme.com", {"obfuscated"}),
    ("John AT acme DOT co DOT uk", "john@acme.co.uk", {"obfuscated"}),
    ("info at acme [dot] com", "info@acme.com", {"obfuscated"}),
    # cfemail
    (f'<a href="/cdn-cgi/l/email-protection" data-cfemail="{cloudflare_hex("cf@acme.com")}">'
     "[email&#160;protected]</a>", "cf@acme.com", {"cfemail"}),
    (f'<a href="/cdn-cgi/l/email-protection#{cloudflare_hex("cf@acme.com", 0x13)}">mail</a>',
     "cf@acme.com", {"cfemail"}),
    (f"<span data-cfemail='{cloudflare_hex('CF@ACME.COM').upper()}'></span>", "cf@acme.com", {"cfemail"}),
    # js
    ('var e = "info\\u0040acme.com";', "info@acme.com", {"js"}),
    ("var e = 'info\\x40acme.com';", "info@acme.com", {"js"}),
    ('{"e":"info\\u0040acme\\u002ecom"}', "info@acme.com", {"js"}),
    ('"info@acme\\u002Ecom"', "info@acme.com", {"js"}),
    ('"\\u0069nfo\\u0040acme.com"', "info@acme.com", {"js"}),
    ('{"html": "Contact:\\ninfo@acme.com\\u003c/p\\u003e"}', "info@acme.com", {"text"}),
    ('"Contact:\\tinfo@acme.com"', "info@acme.com", {"text"}),
    # jsonld
    ('<script type="application/ld+json">{"@type":"Organization","email":"ld@acme.com"}</script>',
     "ld@acme.com", {"jsonld"}),
    ('<script type="application/ld+json">{"email":"mailto:ld@acme.com"}</script>',
     "ld@acme.com", {"jsonld"}),
    ('<script type="application/ld+json">{"email":["ld@acme.com"]}</script>',
     "ld@acme.com", {"jsonld"}),
    ("<SCRIPT TYPE='application/ld+json'>{\"email\":\"ld\\u0040acme.com\"}</SCRIPT>",
     "ld@acme.com", {"jsonld", "js"}),
    # itemprop
    ('<span itemprop="email">ip@acme.com</span>', "ip@acme.com", {"itemprop", "text"}),
    ('<a itemprop="email" href="mailto:ip@acme.com">Mail</a>', "ip@acme.com", {"itemprop", "mailto"}),
    ("<span itemprop=email>ip&#64;acme.com</span>", "ip@acme.com", {"itemprop", "entity"}),
    ('<meta itemprop="email" content="ip@acme.com">', "ip@acme.com", {"itemprop", "meta"}),
    # meta
    ('<meta name="author" content="Boss@Acme.co.uk">', "boss@acme.co.uk", {"meta"}),
    ("<META CONTENT='reply@acme.com' NAME=reply-to>", "reply@acme.com", {"meta"}),
]


@pytest.mark.parametrize("body, address, kinds", FOUND)
def test_each_published_form_is_found_with_its_kinds(body, address, kinds):
    assert extract_emails(body) == {address: kinds}


NOT_ADDRESSES = [
    "logo@2x.png",
    "<img srcset='image@3x.jpg 3x, icon@2x.webp 2x'>",
    "hero@2x.ai",
    "npm i lodash@4.17.21",
    "https://cdn.jsdelivr.net/npm/bootstrap@5.3.0/dist/css/bootstrap.min.css",
    "react@18.2.0",
    "style@media.css",
    "@media screen and (max-width: 600px) { a@b }",
    "foo@bar",
    "admin@localhost",
    "root@localhost.localdomain",
    "info@acme.notarealtld",
    "info@acme.zip",
    "https://abc123@o123.ingest.sentry.io/1",
    'Sentry.init({dsn:"https://0123456789abcdef0123456789abcdef@o45.ingest.sentry.io/6"})',
    "0123456789abcdef0123456789abcdef@sentry.wixpress.com",
    "5f3a9c1b2d4e7a8b@acme.com",
    "123e4567-e89b-12d3-a456-426614174000@acme.com",
    "http://user:secret@acme.com/private",
    '{"dsn":"https:\\/\\/publickey@o45.ingest.acme.io\\/6"}',
    "git clone git@github.com:acme/repo.git",
    "ftp://anonymous@acme.com",
    "you@example.com",
    "info@example.org",
    "sales@shop.example.co.uk",
    "name@domain.com",
    "jane@yourdomain.com",
    "yourname@acme.com",
    "name@acme.com",
    "user@acme.com",
    "your@acme.com",
    "test@test.com",
    "hello@email.com",
    "a" * 65 + "@acme.com",
    "info@" + "a" * 64 + ".com",
    "info@acme..com",
    "in..fo@acme.com",
    "follow @acme on twitter",
    "[email&#160;protected]",
    "5@10.00",
    "Meet us at acme.com for details",
    "We met at the office. Dot the i's.",
    "look at the dot com era",
    "Find us at acme dot com",
    "info@acme-.com",
    "info@-acme.com",
    "<a href='mailto:'>x</a>",
    "mailto:?subject=hi",
]


@pytest.mark.parametrize("body", NOT_ADDRESSES)
def test_false_positives_are_rejected(body):
    assert extract_emails(body) == {}


def test_bare_at_needs_an_obfuscated_dot():
    assert extract_emails("Meet us at acme.com today") == {}
    assert list(extract_emails("write: sales at acme dot com")) == ["sales@acme.com"]


def test_an_address_in_several_forms_keeps_every_kind():
    body = (
        '<a href="mailto:info@acme.com">info@acme.com</a> info&#64;acme.com '
        "info [at] acme [dot] com <meta content='info@acme.com'>"
    )
    assert extract_emails(body) == {"info@acme.com": {"mailto", "text", "entity", "obfuscated", "meta"}}


def test_mailto_with_several_recipients_and_a_query():
    body = '<a href="mailto:a@acme.com,b@acme.com;c@acme.com%2Cd@acme.com?cc=e@acme.com&bcc=f@acme.com">'
    assert extract_emails(body) == {
        f"{name}@acme.com": {"mailto"} for name in "abcd"
    }


# ---------------------------------------------------------------- the normaliser

@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Info@Acme.COM. ", "info@acme.com"),
        ("mailto:Info@Acme.com", "info@acme.com"),
        ("MAILTO:info@acme.com?subject=x", "info@acme.com"),
        ("<info@acme.com>", "info@acme.com"),
        ("'info@acme.com'", "info@acme.com"),
        ('"info@acme.com",', "info@acme.com"),
        ("(info@acme.com);", "info@acme.com"),
        ("o'brien@acme.ie", "o'brien@acme.ie"),
        ("a" * 64 + "@acme.com", "a" * 64 + "@acme.com"),
        ("info@xn--bcher-kva.de", "info@xn--bcher-kva.de"),
        ("info@@acme.com", None),
        ("info@acme", None),
        ("info@acme.c0m", None),
        ("", None),
        ("@acme.com", None),
        ("info@", None),
        ("a" * 65 + "@acme.com", None),
        ("info@" + ".".join(["a" * 63] * 4) + ".com", None),
        ("in fo@acme.com", None),
        ("info@acme.com/x", None),
        ("http://user@acme.com", None),
        ("logo@2x.png", None),
        ("user@localhost", None),
    ],
)
def test_normalize_email(raw, expected):
    assert normalize_email(raw) == expected


ADDRESS_PIECES = st.tuples(
    st.sampled_from(["", " ", "mailto:", "MailTo:", "<", "(", "'", '"', "."]),
    st.text(alphabet="abcXYZ09._+-'", min_size=1, max_size=12),
    st.sampled_from(["@", "@@", "", "@ "]),
    st.text(alphabet="abcXY09-.", min_size=1, max_size=12),
    st.sampled_from([".com", ".CO.UK", ".png", ".de", "", ".xn--p1ai", ".21"]),
    st.sampled_from(["", ".", ">", ")", ",", "?subject=x", " ", "'"]),
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=60), ADDRESS_PIECES.map("".join)))
def test_normalize_email_is_idempotent_lower_case_with_one_at(raw):
    address = normalize_email(raw)
    if address is not None:
        assert normalize_email(address) == address
        assert address == address.lower()
        assert address.count("@") == 1


# ---------------------------------------------------------------- links

def test_links_are_canonical_deduplicated_and_in_page_order():
    body = """
    <a href="b.html">1</a> <A HREF='/c?x=1&amp;y=2#frag'>2</A> <a class=x href=b.html>dup</a>
    <area shape=rect href="https://Other.ORG:443/map">  <frame src="/frame.html">
    <iframe title="t" src="//cdn.acme.net/embed"></iframe> <a data-href="no" href="./d/../e">
    <a href="#top">skip</a> <a href="javascript:void(0)">skip</a> <a href="mailto:x@acme.com">
    <a href="tel:+123">skip</a> <a href="data:text/html,hi">skip</a> <a href="">empty</a>
    <a href=" /spaced ">s</a> <a data-src="x" href="/real">r</a> <link href="/style.css">
    <img src="/img.png"> <a href="/cdn-cgi/l/email-protection#abcd">cf</a>
    <script>var t = "<a href=\\"/escaped\\">" + '<a href="{{ url }}">' + `<a href="${u}">`;</script>
    """
    assert extract_links(body, PAGE_URL) == [
        "https://www.acme.com/about/b.html",
        "https://www.acme.com/c?x=1&y=2",
        "https://other.org/map",
        "https://www.acme.com/frame.html",
        "https://cdn.acme.net/embed",
        "https://www.acme.com/about/e",
        "https://www.acme.com/spaced",
        "https://www.acme.com/real",
    ]


def test_base_href_is_honoured():
    body = '<head><base href="https://static.acme.com/docs/"></head><a href="page">x</a><a href="/r">y</a>'
    assert extract_links(body, PAGE_URL) == [
        "https://static.acme.com/docs/page",
        "https://static.acme.com/r",
    ]
    relative_base = '<base href="/v2/"><a href="page">x</a>'
    assert extract_links(relative_base, PAGE_URL) == ["https://www.acme.com/v2/page"]


# ---------------------------------------------------------------- a whole page

REALISTIC_PAGE = """<!DOCTYPE html>
<html lang="en"><head>
<meta charset="utf-8"><title>Acme Ltd &mdash; Contact</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="author" content="webmaster@acme.co.uk">
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/bootstrap@5.3.0/dist/css/bootstrap.min.css">
<link rel="icon" href="/img/logo@2x.png">
<style>@media (max-width: 600px) { .nav { display: none } } @import url("x.css");</style>
<script type="application/ld+json">
{"@context": "https://schema.org", "@type": "Organization", "name": "Acme",
 "email": "mailto:hello@acme.co.uk", "contactPoint": {"@type": "ContactPoint", "email": "press\\u0040acme.co.uk"}}
</script>
<script>
  Sentry.init({ dsn: "https://4f1c2a9be0d34c5f8a7b6c5d4e3f2a1b@o450001.ingest.sentry.io/5500001" });
  var support = "support\\u0040acme.co.uk";
</script>
</head><body>
<nav><a href="/">Home</a> <a href="/products/">Products</a> <a href="/blog/">Blog</a>
<a href="/about/">About</a> <a href="/contact" class="active">Contact</a>
<a href="https://twitter.com/acme">@acme</a></nav>
<main>
<h1>Get in touch</h1>
<p>Sales: <a href="mailto:sales@acme.co.uk?subject=Quote%20request">sales@acme.co.uk</a>.
Accounts: accounts&#64;acme&#46;co&#46;uk. Jobs: jobs [at] acme [dot] co [dot] uk.</p>
<p>Support: <a href="/cdn-cgi/l/email-protection" class="__cf_email__"
 data-cfemail="CFHEX">[email&#160;protected]</a></p>
<p>Our office is at 10 High Street. Look at the dot com boom, or at acme.co.uk.</p>
<p>Write to <span itemprop="email">ceo@acme.co.uk</span>, never to you@example.com.</p>
<p>List admin: list.admin at lists.acme.co.uk. Office: <span>office</span>@<span>acme.co.uk</span>.
<span style="unicode-bidi:bidi-override; direction:rtl">ku.oc.emca@draob</span></p>
<script>document.write('hr' + '@' + 'acme.co.uk');</script>
<p><img src="/img/team@2x.jpg" alt="Team"> Built with lodash@4.17.21.</p>
<ul>
<li><a href="products/widget.html">Widget</a></li>
<li><a href="products/gadget.html?ref=nav&amp;lang=en#details">Gadget</a></li>
<li><a href="../legal/privacy.html">Privacy</a></li>
<li><a href="https://partner.example.net/">Partner</a></li>
<li><a href="javascript:window.print()">Print</a></li>
<li><a href="tel:+441234567890">Call</a></li>
<li><a href="/products/">Products again</a></li>
</ul>
<iframe src="https://www.youtube.com/embed/xyz"></iframe>
</main></body></html>
""".replace("CFHEX", cloudflare_hex("help@acme.co.uk"))

REALISTIC_LINKS = [
    "https://www.acme.com/",
    "https://www.acme.com/products/",
    "https://www.acme.com/blog/",
    "https://www.acme.com/about/",
    "https://www.acme.com/contact",
    "https://twitter.com/acme",
    "https://www.acme.com/about/products/widget.html",
    "https://www.acme.com/about/products/gadget.html?ref=nav&lang=en",
    "https://www.acme.com/legal/privacy.html",
    "https://partner.example.net/",
    "https://www.youtube.com/embed/xyz",
]

REALISTIC_EMAILS = {
    "webmaster@acme.co.uk": {"meta"},
    "hello@acme.co.uk": {"jsonld"},
    "press@acme.co.uk": {"jsonld", "js"},
    "support@acme.co.uk": {"js"},
    "sales@acme.co.uk": {"mailto", "text"},
    "accounts@acme.co.uk": {"entity"},
    "jobs@acme.co.uk": {"obfuscated"},
    "help@acme.co.uk": {"cfemail"},
    "ceo@acme.co.uk": {"itemprop", "text"},
    "list.admin@lists.acme.co.uk": {"archive"},
    "office@acme.co.uk": {"markup"},
    "board@acme.co.uk": {"css"},
    "hr@acme.co.uk": {"script"},
}


def test_a_realistic_page_gives_exactly_the_ground_truth():
    content = extract(REALISTIC_PAGE, PAGE_URL)
    assert isinstance(content, PageContent)
    assert content.links == REALISTIC_LINKS
    assert content.emails == REALISTIC_EMAILS
    assert {kind for kinds in content.emails.values() for kind in kinds} == set(SOURCE_KINDS)


def test_a_page_without_anchors_finds_nothing():
    assert extract("<html><body><p>Nothing to see.</p></body></html>", PAGE_URL) == PageContent([], {})


# ---------------------------------------------------------------- odd input

ODD_BODIES = [
    "",
    "@",
    "@@@@@@@@",
    "a@" * 5000,
    "&#" * 5000,
    "&#64;" * 3000,
    "[at]" * 3000,
    "mailto:" * 3000,
    "\\u0040" * 3000,
    "<a href=" * 3000,
    "x" * 100_000 + "@" + "y" * 100_000 + ".com",
    "\x00\x01\x02info@acme.com\x00",
    "caf\u00e9 info@acme.com \u0130stanbul \udcff \U0001f600",
    "\ufeff<a href='/\u00fcber'>\u00fc</a>",
    "<a href='http://[::1'>x</a><a href='http://exa mple.com'>y</a><a href='\\\\\\\\'>z</a>",
    "data-cfemail=\"zz\" data-cfemail=\"00\" /cdn-cgi/l/email-protection#f",
    "<script type=application/ld+json>{\"email\": \"",
    "<span itemprop=email>",
    "info&#1114112;acme.com &#99999999999; &#x110000;",
]


@pytest.mark.parametrize("body", ODD_BODIES)
def test_odd_input_never_raises(body):
    content = extract(body, PAGE_URL)
    for address in content.emails:
        assert normalize_email(address) == address


def test_non_ascii_text_around_addresses():
    body = "Kontakt: m\u00fcller@acme.de? Nein: info@acme.de \u2014 \u0130 \u00c9quipe: equipe@acme.fr\u3002"
    assert extract_emails(body) == {"info@acme.de": {"text"}, "equipe@acme.fr": {"text"}}


HTML_PIECES = st.sampled_from([
    "<a href=\"", "\">", "mailto:", "@", "&#64;", "&#x40;", "&commat;", ".", " [at] ", " (dot) ",
    " at ", " dot ", "info", "acme", "com", "co.uk", "\\u0040", "\\x40", "data-cfemail=\"",
    "5a33343c351a3b39373f74393537", "<script type=\"application/ld+json\">", "</script>",
    "<meta content=\"", "itemprop=\"email\"", "\u00e9", "\x00", " ", "/", "?", "#", "<", ">",
    "_at_", "(a)", " AT ", "-at-", "<!--", "-->", "<span>", "</span>", "<b>", "<wbr>", "<script>",
    "document.write(", "'+'", "'", "String.fromCharCode(105,64,", ")", ".split('').reverse().join('')",
    "linkTo_UnCryptMailto('", "DeCryptX('", "data-user=\"", "data-domain=\"", "<joomla-hidden-mail first=\"",
    "{", "}", ",", "\uff20", "\u200b", "&shy;", "style=\"unicode-bidi:bidi-override;direction:rtl\"",
    "<img src=\"at.gif\">", "onclick=\"", "javascript:", "rot13", "NOSPAM", "\n", "Message-ID: ",
])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(HTML_PIECES, max_size=40).map("".join)))
def test_extract_never_raises_and_returns_normalised_addresses(body):
    content = extract(body, PAGE_URL)
    for address, kinds in content.emails.items():
        assert normalize_email(address) == address
        assert kinds and kinds <= set(SOURCE_KINDS)
    for link in content.links:
        assert link.startswith(("http://", "https://"))
