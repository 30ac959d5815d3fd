"""trawl/dns.py: names answered by the system resolver, localhost names without it."""

from __future__ import annotations


from trawl import dns


def test_localhost_names_are_loopback_without_a_lookup():
    # glibc does not resolve "x.localhost", so a system lookup would say "no such host".
    for name in ("localhost", "s0.localhost", "WWW.Apex.Localhost.", "a.b.localhost"):
        assert dns.resolve_now(name) == dns.Answer(("127.0.0.1", "::1")), name


def test_names_that_only_end_like_localhost_go_to_the_resolver():
    assert not dns.is_localhost_name("notlocalhost")
    assert not dns.is_localhost_name("localhost.example")


def test_a_name_that_does_not_exist_fails_fast_with_a_clear_reason():
    # A leading hyphen is refused by glibc without asking any server.
    assert dns.resolve_now("-no-such-host-.example").error == dns.NO_SUCH_HOST


def test_ip_literals_are_recognised():
    assert dns.is_ip_literal("127.0.0.1") and dns.is_ip_literal("[::1]")
    assert not dns.is_ip_literal("s0.localhost")
