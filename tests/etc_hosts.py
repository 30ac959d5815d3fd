"""Names for local servers, answered by the system resolver through /etc/hosts.

Broad-crawl tests and bench/broad.py crawl thousands of real-looking names
(firm0000.com ...) the way real crawls do: libcurl asks the system
resolver, which reads /etc/hosts. IP literals or `*.localhost` would skip
that path (libcurl short-circuits them), and so would hide its costs.

The names live in one block marked `# trawl-issue-9 begin` / `end`. The
block is added on entry and removed on exit; a stale block left by a
killed run is removed first. Other lines and blocks are never touched.
The file is rewritten in place (one write), since in containers it is
often a bind mount that cannot be replaced by a rename.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable, Iterator

HOSTS_FILE = "/etc/hosts"
BEGIN, END = "# trawl-issue-9 begin", "# trawl-issue-9 end"


class HostsUnavailable(RuntimeError):
    """/etc/hosts cannot be written here (not root, read-only)."""


def without_block(text: str) -> str:
    """`text` with every line of our marked block(s) taken out."""
    kept, inside = [], False
    for line in text.splitlines(keepends=True):
        mark = line.strip()
        if mark == BEGIN:
            inside = True
        elif mark == END:
            inside = False
        elif not inside:
            kept.append(line)
    return "".join(kept)


def _write(path: str, text: str) -> None:
    with open(path, "r+", encoding="utf-8") as f:
        f.seek(0)
        f.write(text)
        f.truncate()


def remove_block(path: str = HOSTS_FILE) -> bool:
    """Remove our block (e.g. a stale one); True when there was one."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    stripped = without_block(text)
    if stripped != text:
        _write(path, stripped)
    return stripped != text


@contextlib.contextmanager
def hosts_block(names: Iterable[str], address: str = "127.0.0.1", path: str = HOSTS_FILE,
                extra: dict[str, str] | None = None) -> Iterator[None]:
    """Map `names` to `address` (and `extra` names to theirs) in /etc/hosts for the duration of the block."""
    if not os.access(path, os.W_OK):
        raise HostsUnavailable(f"{path} is not writable by this user")
    lines = "".join(f"{address} {name}\n" for name in names)
    lines += "".join(f"{addr} {name}\n" for name, addr in (extra or {}).items())
    remove_block(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        text += "\n"
    # SIGTERM would skip the finally below and leave the block behind.
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(ValueError):  # not the main thread: no handler
        signal.signal(signal.SIGTERM, _raise_exit)
    try:
        _write(path, f"{text}{BEGIN}\n{lines}{END}\n")
        yield
    finally:
        remove_block(path)
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)


def _raise_exit(signum, frame) -> None:
    raise SystemExit(128 + signum)
