"""Refuse to serve an unauthenticated API on a non-loopback address."""

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
