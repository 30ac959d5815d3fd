"""SSRF guard: which addresses the crawler may connect to.

Crawled pages choose the URLs we fetch, so a hostile page can point us at
the machine's own services (127.0.0.1:3306), the LAN, or a cloud metadata
endpoint (169.254.169.254). The fetcher therefore checks the address it is
about to connect to, on every connection and every redirect hop, rather than
the host name in the URL: a name can resolve to anything, and resolve
differently the second time (DNS rebinding).

The address tables are written out here instead of relying on
`ipaddress.is_global`, whose answers changed between Python versions and
which counts multicast as global.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address

_V4_BLOCKED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network", includes the unspecified address
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata endpoints
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes broadcast 255.255.255.255
    )
)

# Only 2000::/3 is handed out as global unicast; inside it these are not.
_V6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_V6_BLOCKED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments, incl. Teredo and benchmarking
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: judged by its embedded IPv4 address instead
        "3fff::/20",  # documentation
    )
)
# Forms that carry an IPv4 address inside; the IPv4 address decides.
_V6_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """The crawler may not connect to this address."""


def is_public_address(ip: str) -> bool:
    """True when `ip` (IPv4 or IPv6 text, brackets allowed) is globally routable."""
    try:
        addr = ipaddress.ip_address(ip.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, IPv6):
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            return _is_public_v4(embedded)
        return addr in _V6_GLOBAL_UNICAST and not any(addr in net for net in _V6_BLOCKED)
    return _is_public_v4(addr)


def _is_public_v4(addr: IPv4) -> bool:
    return not any(addr in net for net in _V4_BLOCKED)


def _embedded_ipv4(addr: IPv6) -> IPv4 | None:
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _V6_NAT64:
        return IPv4(int(addr) & 0xFFFFFFFF)
    return None


def parse_odd_ipv4(host: str) -> str | None:
    """The dotted quad that inet_aton would read `host` as, or None.

    Accepts every spelling inet_aton does: 1 to 4 parts, each decimal, octal
    (leading 0) or hex (0x); the last part fills the remaining bytes, so
    `2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` all mean 127.0.0.1.
    Browsers and libcurl accept these in URLs, so the guard must too. Like
    the URL standard (and unlike inet_aton) it also takes one trailing dot
    and a bare "0x"; refusing a little more is the safe side.
    """
    parts = host.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_parse_ipv4_part(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    *head, last = numbers
    if any(n > 0xFF for n in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return str(IPv4(value))


_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def _parse_ipv4_part(part: str) -> int | None:
    if not _IPV4_PART.fullmatch(part):
        return None
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if part.startswith("0"):
        return int(part, 8)
    return int(part)


class AddressGuard:
    """The policy the fetcher applies to each address and literal host.

    `allowed_addresses` are let through even when private networks are not;
    tests use it to admit one loopback test server while the guard is on.
    """

    def __init__(self, allow_private: bool, allowed_addresses: Iterable[str] = ()):
        self.allow_private = allow_private
        self.allowed_addresses = frozenset(allowed_addresses)

    def check_address(self, ip: str) -> None:
        """Raise AddressRefused unless we may connect to `ip`."""
        if self.allow_private or ip in self.allowed_addresses or is_public_address(ip):
            return
        raise AddressRefused(f"refused: {ip} is not a public address")

    def check_host(self, host: str) -> None:
        """Refuse a URL host that is an IP literal in any spelling, before any transfer.

        Names are left to `check_address` at connect time, when we know
        what they really resolve to.
        """
        host = host.strip("[]")
        if ":" in host:
            self.check_address(host.split("%", 1)[0])
            return
        literal = parse_odd_ipv4(host)
        if literal is not None:
            self.check_address(literal)
