"""The fetcher against the local test website: decoding, retries, caps, politeness, cancel."""

from __future__ import annotations

import datetime
import email.utils
import socket
import threading

from hypothesis import given
from hypothesis import strategies as st

from tests.site import MiB, TestSite, generate_site, reply, site  # noqa: F401  (site is a fixture)
from trawl.config import Settings
from trawl.fetch import (MAX_ATTEMPTS, FetchResult, Fetcher, curl_reason, decode_body, is_text_type, libcurl_info,
                         parse_retry_after)

SETTINGS = Settings(allow_private_networks=True)


def make_fetcher(**options) -> Fetcher:
    options.setdefault("retry_backoff_s", 0.01)  # keep retry tests quick
    return Fetcher(SETTINGS, **options)


def drain(fetcher: Fetcher, rounds: int = 300) -> list[FetchResult]:
    """Poll until nothing is pending; a bounded wait (about 30 s at most)."""
    results = []
    for _ in range(rounds):
        results += fetcher.poll(0.1)
        if not fetcher.pending:
            return results
    raise AssertionError(f"fetcher still busy: {fetcher.pending} pending")


def fetch_one(url: str, **options) -> FetchResult:
    fetcher = make_fetcher(**options)
    try:
        fetcher.submit(url, "key")
        [result] = drain(fetcher)
        return result
    finally:
        fetcher.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------- plain pages and decoding


def test_normal_page(site):
    site.add_page("/", "<html><body><p>Hello, world</p></body></html>")
    result = fetch_one(site.url("/"))
    assert result.outcome == "ok"
    assert result.status == 200
    assert result.key == "key"
    assert result.final_url == site.url("/")
    assert result.content_type == "text/html; charset=utf-8"
    assert "Hello, world" in result.text
    assert result.attempts == 1
    assert result.error is None
    assert result.bytes == len(result.text.encode())
    assert site.hits("/") == 1


def test_sends_user_agent_and_accepts_compression(site):
    seen = {}

    def handler(h):
        seen.update(h.headers)
        reply(h, 200, b"<p>ok</p>")

    site.add_route("/ua", handler)
    fetch_one(site.url("/ua"))
    assert seen["User-Agent"] == SETTINGS.user_agent
    assert "gzip" in seen["Accept-Encoding"]


def test_gzip_page_is_decoded(site):
    site.add_gzip_page("/gz", "<p>Zipped: gzip@trawl-test.org</p>")
    result = fetch_one(site.url("/gz"))
    assert result.outcome == "ok"
    assert result.text == "<p>Zipped: gzip@trawl-test.org</p>"


def test_latin1_page_decoded_from_meta_charset(site):
    site.add_latin1_page("/latin1", "Café Müller, Größe")
    result = fetch_one(site.url("/latin1"))
    assert result.outcome == "ok"
    assert "Café Müller, Größe" in result.text


def test_header_charset_wins_over_meta(site):
    body = '<meta charset="utf-8"><p>Smørrebrød</p>'.encode("latin-1")
    site.add_page("/p", body, headers={"Content-Type": "text/html; charset=ISO-8859-1"})
    assert "Smørrebrød" in fetch_one(site.url("/p")).text


def test_bad_bytes_and_unknown_charsets_never_raise(site):
    site.add_page("/bad", b"<p>caf\xe9 \xff\xfe ok</p>", headers={"Content-Type": "text/html; charset=utf-8"})
    site.add_page("/odd", b"<p>fine</p>", headers={"Content-Type": "text/html; charset=x-no-such-thing"})
    site.add_page("/b64", b"<p>fine</p>", headers={"Content-Type": "text/html; charset=base64"})
    assert "\ufffd" in fetch_one(site.url("/bad")).text
    assert fetch_one(site.url("/odd")).text == "<p>fine</p>"
    assert fetch_one(site.url("/b64")).text == "<p>fine</p>"


def test_missing_content_type_is_sniffed_as_html(site):
    site.add_route("/bare", lambda h: reply(h, 200, b"<p>no type</p>", {"Content-Type": ""}))
    result = fetch_one(site.url("/bare"))
    assert result.outcome == "ok"
    assert result.text == "<p>no type</p>"


def test_non_html_bodies_are_not_downloaded(site):
    site.add_page("/logo.png", b"\x89PNG" + bytes(100_000), headers={"Content-Type": "image/png"})
    result = fetch_one(site.url("/logo.png"))
    assert result.outcome == "not_html"
    assert result.text is None
    assert result.bytes == 0
    assert result.status == 200


def test_text_types():
    assert is_text_type("text/html; charset=utf-8")
    assert is_text_type("Application/XHTML+XML")
    assert is_text_type("text/plain")
    assert is_text_type(None)
    assert not is_text_type("application/pdf")
    assert not is_text_type("image/svg+xml")


def test_decode_body_prefers_bom_then_header_then_meta():
    assert decode_body("\ufeffé".encode("utf-8"), "text/html; charset=latin-1") == "é"
    assert decode_body("é".encode("utf-8"), None) == "é"
    assert decode_body(b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">\x93', None).endswith("\u201c")
    assert decode_body(b'<meta charset="utf-16"><p>\xc3\xa9</p>', None) == '<meta charset="utf-16"><p>é</p>'


@given(st.binary(max_size=300), st.one_of(st.none(), st.text(max_size=60)))
def test_decode_body_never_raises(body, content_type):
    assert isinstance(decode_body(body, content_type), str)


# ------------------------------------------------------------- retries and final errors


def test_500_then_200_is_retried(site):
    site.add_flaky_page("/flaky", failures=1, status=500, text="<p>recovered</p>")
    result = fetch_one(site.url("/flaky"))
    assert result.outcome == "ok"
    assert result.text == "<p>recovered</p>"
    assert result.attempts == 2
    assert site.hits("/flaky") == 2


def test_429_is_retried(site):
    site.add_flaky_page("/busy", failures=2, status=429)
    result = fetch_one(site.url("/busy"))
    assert result.outcome == "ok"
    assert result.attempts == 3


def test_persistent_5xx_gives_up_after_three_attempts(site):
    site.add_flaky_page("/down", failures=100, status=503)
    result = fetch_one(site.url("/down"))
    assert result.outcome == "http_error"
    assert result.status == 503
    assert result.attempts == MAX_ATTEMPTS == 3
    assert site.hits("/down") == 3


def test_404_is_final(site):
    result = fetch_one(site.url("/missing"))
    assert result.outcome == "http_error"
    assert result.status == 404
    assert result.error == "HTTP 404"
    assert result.text is None
    assert result.attempts == 1
    assert site.hits("/missing") == 1


def test_connection_refused_is_retried_then_failed():
    result = fetch_one(f"http://127.0.0.1:{closed_port()}/")
    assert result.outcome == "failed"
    assert result.attempts == 3
    assert "curl error 7" in result.error


def test_unsupported_scheme_fails_without_a_transfer():
    result = fetch_one("ftp://127.0.0.1/file")
    assert result.outcome == "failed"
    assert result.attempts == 0


# ------------------------------------------------------------- size caps


def test_oversized_page_stops_at_the_cap(site):
    site.add_oversized_page("/big", size=6 * MiB)
    result = fetch_one(site.url("/big"))
    assert result.outcome == "too_large"
    assert result.text is None
    assert SETTINGS.max_page_bytes < result.bytes < SETTINGS.max_page_bytes + MiB


def test_gzip_bomb_stops_at_the_cap(site):
    site.add_gzip_bomb("/bomb", size=64 * MiB)
    result = fetch_one(site.url("/bomb"))
    assert result.outcome == "too_large"
    # Counted after decompression: it stopped near 5 MiB, far from 64 MiB.
    assert SETTINGS.max_page_bytes < result.bytes < SETTINGS.max_page_bytes + MiB
    assert result.attempts == 1


def test_cap_can_be_lowered(site):
    site.add_page("/p", "<p>" + "x" * 5000 + "</p>")
    assert fetch_one(site.url("/p"), max_bytes=1000).outcome == "too_large"


# ------------------------------------------------------------- redirects


def test_redirect_loop_fails(site):
    site.add_redirect_loop("/loop/a", "/loop/b")
    result = fetch_one(site.url("/loop/a"))
    assert result.outcome == "failed"
    assert "redirect" in result.error.lower()
    assert result.attempts == 1
    assert site.hits("/loop/a") + site.hits("/loop/b") == 6  # the first request and 5 redirects


def test_redirect_to_another_host_is_followed(site):
    with TestSite(host="127.0.0.2") as other:
        other.add_page("/landing", "<p>landed</p>")
        site.add_redirect("/moved", other.url("/landing"), status=301)
        result = fetch_one(site.url("/moved"))
    assert result.outcome == "ok"
    assert result.url == site.url("/moved")
    assert result.final_url == other.url("/landing")
    assert result.text == "<p>landed</p>"


def test_redirect_to_other_protocols_is_not_followed(site):
    site.add_redirect("/ftp", "ftp://127.0.0.1/file")
    result = fetch_one(site.url("/ftp"))
    assert result.outcome == "failed"


# ------------------------------------------------------------- politeness, cancel, volume


def test_per_host_connection_cap(site):
    site.add_slow_page("/slow", delay_s=0.2)
    with TestSite(host="127.0.0.2") as other:
        other.add_slow_page("/slow", delay_s=0.2)
        fetcher = make_fetcher(concurrency=20, per_host_connections=2)
        try:
            for n in range(8):
                fetcher.submit(site.url(f"/slow?n={n}"), ("a", n))
                fetcher.submit(other.url(f"/slow?n={n}"), ("b", n))
            results = drain(fetcher)
        finally:
            fetcher.close()
        assert other.peak_concurrency() <= 2
    assert len(results) == 16 and all(r.outcome == "ok" for r in results)
    assert site.peak_concurrency() <= 2


def test_host_delay_holds_back_the_next_request(site):
    site.add_page("/a", "<p>a</p>")
    site.add_page("/b", "<p>b</p>")
    fetcher = make_fetcher()
    fetcher.set_host_delay("127.0.0.1", 30.0)
    try:
        fetcher.submit(site.url("/a"), "a")
        fetcher.submit(site.url("/b"), "b")
        first = []
        for _ in range(100):
            first += fetcher.poll(0.1)
            if first:
                break
        for _ in range(5):  # the second request must stay queued meanwhile
            assert fetcher.poll(0.1) == []
        rest = fetcher.cancel_all()
    finally:
        fetcher.close()
    assert [r.key for r in first] == ["a"]
    assert [(r.key, r.outcome) for r in rest] == [("b", "cancelled")]
    assert site.hits("/b") == 0


def test_cancel_all_stops_slow_transfers(site):
    site.add_slow_page("/slow", delay_s=60)
    arrived = threading.Event()
    fetcher = make_fetcher(concurrency=4, per_host_connections=4)
    try:
        for n in range(10):  # 4 in flight, 6 queued
            fetcher.submit(site.url(f"/slow?n={n}"), n)
        for _ in range(100):
            fetcher.poll(0.1)
            if sum(site.all_hits().values()) == 4:
                arrived.set()
                break
        assert arrived.is_set(), "the slow requests never reached the server"
        results = fetcher.cancel_all()
        assert fetcher.pending == 0
        assert fetcher.poll(0.1) == []
        # The fetcher is reusable after a cancel.
        site.add_page("/after", "<p>after</p>")
        fetcher.submit(site.url("/after"), "after")
        [after] = drain(fetcher)
    finally:
        fetcher.close()
    assert sorted(r.key for r in results) == list(range(10))
    assert {r.outcome for r in results} == {"cancelled"}
    assert after.outcome == "ok"


def test_many_pages_each_fetched_once(site):
    truth = generate_site(site, pages=150, links_per_page=8, emails_per_page=(0, 3), seed=7)
    fetcher = make_fetcher(concurrency=20, per_host_connections=8)
    try:
        for url in sorted(truth.urls):
            fetcher.submit(url, url)
        results = drain(fetcher)
    finally:
        fetcher.close()
    assert {r.key for r in results} == truth.urls
    assert all(r.outcome == "ok" for r in results)
    assert set(site.all_hits().values()) == {1}
    found = {email for r in results for email in truth.emails_by_url[r.url] if email in r.text}
    assert found == truth.emails


def test_libcurl_info_reports_features():
    info = libcurl_info()
    assert set(info) == {"pycurl", "libcurl", "tls", "async_dns", "http2"}
    assert info["async_dns"] is True  # the pinned wheel's libcurl resolves asynchronously


# ------------------------------------------------------------- names, unreachable hosts, Retry-After


def test_a_name_that_does_not_exist_fails_at_once_without_a_transfer():
    # A leading hyphen: glibc's resolver refuses the name before asking any server.
    fetcher = make_fetcher()
    try:
        fetcher.submit("http://-gone.example.com/", "a")
        fetcher.submit("http://-gone.example.com/b", "b")
        results = drain(fetcher)
        fetcher.submit("http://-gone.example.com/c", "c")  # known now: fails on submit
        results += drain(fetcher)
    finally:
        fetcher.close()
    assert [(r.key, r.outcome, r.error, r.attempts) for r in sorted(results, key=lambda r: r.key)] == [
        (key, "failed", "DNS: no such host", 0) for key in "abc"]


def test_names_are_resolved_by_the_system_resolver(site):
    site.add_page("/", "<p>by name</p>")
    result = fetch_one(f"http://localhost:{site.port}/")  # /etc/hosts: 127.0.0.1 (and ::1)
    assert (result.outcome, result.text) == ("ok", "<p>by name</p>")


def test_an_unreachable_host_is_recorded_once():
    port = closed_port()
    down: dict[str, str] = {}
    fetcher = make_fetcher(hosts_down=down)
    try:
        fetcher.submit(f"http://127.0.0.1:{port}/a", "a")
        [first] = drain(fetcher)
        fetcher.submit(f"http://127.0.0.1:{port}/b", "b")
        [second] = drain(fetcher)
    finally:
        fetcher.close()
    assert first.attempts == MAX_ATTEMPTS and first.error.startswith("could not connect (curl error 7")
    assert (second.outcome, second.error, second.attempts) == ("failed", first.error, 0)
    assert down == {"127.0.0.1": first.error}  # the caller keeps it for the next Fetcher


def test_retry_after_holds_back_the_whole_host(site):
    site.add_page("/busy", "<p>later</p>", status=429, headers={"Retry-After": "30"})
    site.add_page("/other", "<p>other</p>")
    fetcher = make_fetcher(per_host_connections=1)
    try:
        fetcher.submit(site.url("/busy"), "busy")
        for _ in range(100):
            fetcher.poll(0.1)
            if site.hits("/busy"):
                break
        fetcher.submit(site.url("/other"), "other")
        for _ in range(5):  # neither the page nor another page of the host may start meanwhile
            assert fetcher.poll(0.1) == []
        rest = fetcher.cancel_all()
    finally:
        fetcher.close()
    assert sorted((r.key, r.outcome) for r in rest) == [("busy", "cancelled"), ("other", "cancelled")]
    assert (site.hits("/busy"), site.hits("/other")) == (1, 0)


def test_retry_after_values():
    assert parse_retry_after("120") == 120.0
    soon = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=90),
                                       usegmt=True)
    assert 80 <= parse_retry_after(soon) <= 91
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: at once
    assert parse_retry_after("soon") is None


def test_huge_response_headers_get_a_readable_reason(site):
    site.add_route("/headers", lambda h: reply(h, 200, b"x", {"X-Padding": "a" * (2 * MiB)}))
    result = fetch_one(site.url("/headers"))
    assert result.outcome == "failed"
    assert result.error.startswith("response headers too large (curl error 100")


def test_curl_reasons_are_readable():
    assert curl_reason(6, "Could not resolve host: x") == "DNS: no such host"
    assert curl_reason(28, "Resolving timed out after 10000 milliseconds") == "DNS: timed out"
    assert curl_reason(28, "Operation timed out after 30000 milliseconds") == (
        "timed out (curl error 28: Operation timed out after 30000 milliseconds)")
    assert curl_reason(999, "") == "network error (curl error 999)"
