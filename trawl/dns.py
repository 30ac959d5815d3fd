"""Host names to addresses for one Fetcher: one system lookup per name, answers cached.

Why not leave it to libcurl. This libcurl (8.2x, threaded resolver) looks
a new name up twice, A and AAAA, in two threads, for every transfer that
starts before the first answer is cached. A name that /etc/hosts maps to
an IPv4 address has no AAAA line there, so the AAAA lookup goes on to the
DNS server; when that server is slow, unreachable or drops packets under a
burst of thousands of new names, the transfer waits for it and fails with
"Resolving timed out after 10000 milliseconds" although the system answers
the name at once (measured: `strace` shows a DNS query for every
/etc/hosts name). One `getaddrinfo(AF_UNSPEC)` asks the system resolver
the way every other program does: /etc/hosts answers alone when it has the
name, and an IPv6-only site still gets its AAAA addresses.

So the fetcher asks `Resolver.lookup(host)` before a host's first
transfer; a few threads run the lookups (getaddrinfo blocks), each name
once however many transfers wait for it, and the fetcher pins the answer
on its transfers with CURLOPT_RESOLVE, so libcurl never resolves it again.
The SSRF guard still checks the address actually connected to.

A name that does not exist is answered "DNS: no such host" and is not
retried; a lookup that takes longer than the connect timeout is answered
"DNS: timed out". Answers are cached for the Fetcher's life (one visit of
a worker to a job), at most MAX_CACHED names.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from queue import Empty, SimpleQueue

LOOKUP_THREADS = 4
MAX_CACHED = 50_000
NO_SUCH_HOST = "DNS: no such host"
TIMED_OUT = "DNS: timed out"
_NOT_FOUND = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


@dataclass(frozen=True)
class Answer:
    addresses: tuple[str, ...] = ()  # in the order getaddrinfo gave them
    error: str | None = None


LOOPBACK = Answer(("127.0.0.1", "::1"))


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def is_localhost_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def resolve_now(host: str) -> Answer:
    """One blocking lookup through the system resolver (runs in a lookup thread)."""
    if is_localhost_name(host):
        # RFC 6761: "localhost" and every name under it are loopback, without
        # asking any resolver (glibc does not know "x.localhost"; libcurl, which
        # resolved names before this module, answers them itself the same way).
        return LOOPBACK
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in _NOT_FOUND:
            return Answer(error=NO_SUCH_HOST)
        return Answer(error=f"DNS: {exc.strerror or exc}")
    except (UnicodeError, OSError) as exc:
        return Answer(error=f"DNS: {exc}")
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos
                                    if info[0] in (socket.AF_INET, socket.AF_INET6)))
    return Answer(addresses) if addresses else Answer(error=NO_SUCH_HOST)


class Resolver:
    """Asynchronous, cached lookups; `fileno()` becomes readable when an answer arrives."""

    def __init__(self, timeout_s: float = 10.0, threads: int = LOOKUP_THREADS):
        self.timeout_s = timeout_s
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None  # started on the first lookup
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._asked: dict[str, float] = {}  # host -> deadline of its lookup
        self._arrived: SimpleQueue[tuple[str, Answer]] = SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._closed = False

    def fileno(self) -> int:
        return self._wake_r

    def answer(self, host: str) -> Answer | None:
        """The answer for `host`, starting its lookup if need be; None while it runs."""
        answer = self._answers.get(host)
        if answer is not None:
            return answer
        if host not in self._asked:
            self._asked[host] = time.monotonic() + self.timeout_s
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="trawl-dns")
            self._pool.submit(self._lookup, host)
        return None

    @property
    def waiting(self) -> bool:
        return bool(self._asked)

    def next_deadline(self) -> float | None:
        return min(self._asked.values()) if self._asked else None

    def collect(self) -> bool:
        """Take the answers that arrived, and time out overdue lookups; True when any host got one."""
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        got = False
        while True:
            try:
                host, answer = self._arrived.get_nowait()
            except Empty:
                break
            if self._asked.pop(host, None) is not None:
                self._remember(host, answer)
                got = True
        now = time.monotonic()
        for host, deadline in list(self._asked.items()):
            if now >= deadline:  # the thread may still answer later; it is ignored then
                del self._asked[host]
                self._remember(host, Answer(error=TIMED_OUT))
                got = True
        return got

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _remember(self, host: str, answer: Answer) -> None:
        self._answers[host] = answer
        while len(self._answers) > MAX_CACHED:
            self._answers.popitem(last=False)

    def _lookup(self, host: str) -> None:
        self._arrived.put((host, resolve_now(host)))
        if self._closed:
            return
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass  # the pipe is full (a wake-up is pending anyway) or closed


def resolve_entry(host: str, port: int, addresses: tuple[str, ...]) -> str:
    """A CURLOPT_RESOLVE line: host:port:addr[,addr...] with IPv6 in brackets."""
    spelled = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
    return f"{host}:{port}:{spelled}"
