"""Names under a real public suffix for tests, pointed at loopback in a marked /etc/hosts block.

Scope rules need real registered domains: `apex.localhost` and
`www.apex.localhost` are two sites (no public suffix), while
`trawl-apex.example.org` and `www.trawl-apex.example.org` are one
(`example.org`). libcurl resolves through getaddrinfo, which reads
/etc/hosts, so a block there is all it takes.

    with hosts_block(["trawl-apex.example.org", "www.trawl-apex.example.org"]):
        ...

The block is marked `# trawl-issue-13 begin` / `# trawl-issue-13 end`; a
stale one is replaced, other lines are never touched, and it is removed
afterwards. Needs write access to /etc/hosts (root); without it the test
skips saying why (and fails under CI=true).
"""

from __future__ import annotations

import contextlib
import os

from tests.conftest import skip_or_fail

HOSTS = "/etc/hosts"
BEGIN, END = "# trawl-issue-13 begin", "# trawl-issue-13 end"


def _without_block(text: str) -> list[str]:
    kept, inside = [], False
    for line in text.splitlines():
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            kept.append(line)
    return kept


def _write(lines: list[str]) -> None:
    # Written in place (not renamed over): /etc/hosts may be a bind mount.
    with open(HOSTS, "w") as out:
        out.write("\n".join(lines) + "\n")


@contextlib.contextmanager
def hosts_block(names: list[str], address: str = "127.0.0.1"):
    if not os.access(HOSTS, os.W_OK):
        skip_or_fail(f"{HOSTS} is not writable: the test maps {names[0]} to {address} there")
    with open(HOSTS) as f:
        lines = _without_block(f.read())
    _write(lines + [BEGIN, *(f"{address} {name}" for name in names), END])
    try:
        yield
    finally:
        with open(HOSTS) as f:
            _write(_without_block(f.read()))
