"""The SSRF guard: address tables, odd IPv4 spellings, and refusals by the real fetcher.

The redirect-hop test needs the guard on while still reaching a local test
server. `Fetcher(allowed_addresses=...)` is that seam: the first site
(127.0.0.1) is admitted explicitly, its redirect points at a second site on
127.0.0.2, which the guard must refuse when libcurl opens the hop's socket.
"""

from __future__ import annotations

import dataclasses
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.site import TestSite, site  # noqa: F401  (site is a fixture)
from trawl.config import Settings
from trawl.fetch import FetchResult, Fetcher
from trawl.ssrf import AddressGuard, AddressRefused, is_public_address, parse_odd_ipv4

GUARDED = Settings(allow_private_networks=False)


def fetch_all(fetcher: Fetcher, urls: list[str]) -> dict[str, FetchResult]:
    for url in urls:
        fetcher.submit(url, url)
    results = {}
    for _ in range(200):  # bounded: about 20 s at most
        for result in fetcher.poll(0.1):
            results[result.key] = result
        if not fetcher.pending:
            return results
    raise AssertionError(f"fetcher still busy: {fetcher.pending} pending")


# ------------------------------------------------------------- address tables


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.5.4", "192.168.1.1",
        "169.254.169.254", "100.64.0.1", "100.127.255.255", "0.0.0.0", "255.255.255.255",
        "224.0.0.1", "239.255.255.250", "240.0.0.1", "192.0.2.1", "198.51.100.7",
        "203.0.113.9", "198.18.0.1", "198.19.255.255", "192.0.0.8",
        "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "fec0::1", "ff02::1",
        "2001:db8::1", "3fff::1", "2001::1", "100::1", "::127.0.0.1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
        "64:ff9b::127.0.0.1", "64:ff9b::a00:1", "2002:7f00:1::1", "2002:a9fe:a9fe::",
        "[::1]", "fe80::1%eth0", "not an address", "",
    ],
)
def test_non_public_addresses(ip):
    assert not is_public_address(ip)


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.0",
        "172.32.0.1", "198.20.0.1", "2606:4700:4700::1111", "2a00:1450:4001::200e",
        "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1",
    ],
)
def test_public_addresses(ip):
    assert is_public_address(ip)


@pytest.mark.parametrize(
    "host, expected",
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0xA9FEA9FE", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("10.0.0.1", "10.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("256.0.0.1", None),
        ("08.0.0.1", None),
        ("4294967296", None),
        ("1..1", None),
        ("+1.2.3.4", None),
        ("١٢٧.0.0.1", None),
        ("", None),
    ],
)
def test_parse_odd_ipv4(host, expected):
    assert parse_odd_ipv4(host) == expected


def _spell(value: int, base: str) -> str:
    return {"dec": str(value), "oct": "0" + format(value, "o"), "hex": "0x" + format(value, "x")}[base]


@st.composite
def ipv4_spellings(draw) -> str:
    count = draw(st.integers(1, 4))
    head = [draw(st.integers(0, 0xFF)) for _ in range(count - 1)]
    last = draw(st.integers(0, (1 << (8 * (5 - count))) - 1))
    bases = st.sampled_from(["dec", "oct", "hex"])
    return ".".join(_spell(n, draw(bases)) for n in [*head, last])


@given(ipv4_spellings())
def test_parse_odd_ipv4_reads_like_inet_aton(host):
    assert parse_odd_ipv4(host) == socket.inet_ntoa(socket.inet_aton(host))


def test_guard_allows_everything_when_private_networks_allowed():
    guard = AddressGuard(allow_private=True)
    for ip in ("127.0.0.1", "169.254.169.254", "::1", "10.1.2.3"):
        guard.check_address(ip)
    guard.check_host("0x7f.1")


def test_guard_refuses_with_a_clear_reason():
    with pytest.raises(AddressRefused, match=r"refused: 127\.0\.0\.1 is not a public address"):
        AddressGuard(allow_private=False).check_host("2130706433")


def test_guard_admits_only_the_listed_addresses():
    guard = AddressGuard(allow_private=False, allowed_addresses={"127.0.0.1"})
    guard.check_address("127.0.0.1")
    with pytest.raises(AddressRefused):
        guard.check_address("127.0.0.2")


# ------------------------------------------------------------- the real fetcher


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1", "localhost", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1",
        "[::1]", "[::ffff:127.0.0.1]", "169.254.169.254", "10.0.0.1", "192.168.0.1",
        "100.64.0.1",
    ],
)
def test_fetcher_refuses_every_spelling_of_a_private_address(site, host):
    site.add_page("/", "<p>secret</p>")
    fetcher = Fetcher(GUARDED)
    try:
        url = f"http://{host}:{site.port}/"
        result = fetch_all(fetcher, [url])[url]
    finally:
        fetcher.close()
    assert result.outcome == "refused"
    assert "is not a public address" in result.error
    assert result.text is None
    assert site.hits("/") == 0


def test_names_are_checked_at_connect_time(site):
    """`localhost` passes the literal check; the socket check refuses what it resolves to."""
    fetcher = Fetcher(GUARDED)
    try:
        url = f"http://localhost:{site.port}/"
        result = fetch_all(fetcher, [url])[url]
    finally:
        fetcher.close()
    assert result.outcome == "refused"
    assert result.error in {"refused: 127.0.0.1 is not a public address", "refused: ::1 is not a public address"}
    assert result.attempts == 1  # a refusal is final, never retried


def test_redirect_hop_to_loopback_is_refused(site):
    with TestSite(host="127.0.0.2") as inner:
        inner.add_page("/admin", "<p>internal</p>")
        site.add_redirect("/go", inner.url("/admin"))
        fetcher = Fetcher(GUARDED, allowed_addresses=frozenset({"127.0.0.1"}))
        try:
            result = fetch_all(fetcher, [site.url("/go")])[site.url("/go")]
        finally:
            fetcher.close()
        assert site.hits("/go") == 1  # the admitted first hop was fetched
        assert inner.hits("/admin") == 0  # the hop was refused before connecting
    assert result.outcome == "refused"
    assert result.error == "refused: 127.0.0.2 is not a public address"


def test_redirect_hop_is_followed_when_its_address_is_admitted(site):
    with TestSite(host="127.0.0.2") as inner:
        inner.add_page("/admin", "<p>internal</p>")
        site.add_redirect("/go", inner.url("/admin"))
        admitted = frozenset({"127.0.0.1", "127.0.0.2"})
        fetcher = Fetcher(GUARDED, allowed_addresses=admitted)
        try:
            result = fetch_all(fetcher, [site.url("/go")])[site.url("/go")]
        finally:
            fetcher.close()
        assert inner.hits("/admin") == 1
    assert result.outcome == "ok"
    assert result.final_url == inner.url("/admin")


def test_private_networks_allowed_fetches_loopback(site):
    site.add_page("/", "<p>hello</p>")
    fetcher = Fetcher(dataclasses.replace(GUARDED, allow_private_networks=True))
    try:
        result = fetch_all(fetcher, [site.url("/")])[site.url("/")]
    finally:
        fetcher.close()
    assert result.outcome == "ok"
    assert "hello" in result.text


@given(st.text(max_size=40))
def test_guard_functions_never_raise_on_junk(text):
    import ipaddress

    try:
        ipaddress.ip_address(text)
        is_ip = True
    except ValueError:
        is_ip = False
    verdict = is_public_address(text)
    assert isinstance(verdict, bool)
    if not is_ip:
        assert verdict is False  # what is not an address is never called public
    odd = parse_odd_ipv4(text)
    assert odd is None or ipaddress.ip_address(odd).version == 4
    try:
        AddressGuard(allow_private=False).check_host(text)
    except AddressRefused as refused:
        assert "refused" in str(refused)
