"""Which addresses and names are loopback: the bind check and the Host check.

Without TRAWL_API_TOKEN the server may listen only on loopback addresses
(checked on the settings before start and on the sockets gunicorn actually
bound). Whatever the token, it answers only to loopback names and addresses
and the names in TRAWL_ALLOWED_HOSTS (the DNS-rebinding guard).
"""

from __future__ import annotations

import ipaddress

from trawl.config import Settings


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_public_bind_without_token(settings: Settings) -> None:
    if not settings.api_token and not is_loopback_host(settings.host):
        raise SystemExit(
            f"refusing to listen on {settings.host}: without TRAWL_API_TOKEN the API would be "
            "open to the network. Set TRAWL_API_TOKEN=<secret> or use TRAWL_HOST=127.0.0.1."
        )


def host_name_of(host_header: str) -> str | None:
    """The name or address of a Host header (`name`, `name:port`, `[v6]:port`), or None if malformed."""
    if host_header.startswith("["):
        name, bracket, port = host_header[1:].partition("]")
        port = port[1:] if port.startswith(":") else (None if port else "")
    else:
        name, _, port = host_header.partition(":") if host_header.count(":") <= 1 else ("", "", "")
    if not name or port is None or not (port == "" or port.isdigit()):
        return None
    if not all(ch.isascii() and (ch.isalnum() or ch in "-._:") for ch in name):
        return None
    return name.lower().rstrip(".")


def is_allowed_host(host_header: str, allowed_names: frozenset[str]) -> bool:
    name = host_name_of(host_header)
    if name is None:
        return False
    if ":" in name and not host_header.startswith("["):
        return False  # an IPv6 address is only valid in brackets
    return is_loopback_host(name) or name in allowed_names
