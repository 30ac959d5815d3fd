"""The fetcher: many HTTP transfers at once on one pycurl CurlMulti.

The worker submits URLs and polls; the fetcher runs up to `concurrency`
transfers on reusable easy handles (the retriever-multi pattern) and hands
back one `FetchResult` per URL when it is final. In between it owns:

- politeness: a per-host connection cap and delay, kept by our own scheduler
  (libcurl's host cap would queue transfers inside libcurl, where the wait
  counts against their timeout);
- retries: timeouts, resets and 429/5xx are tried again with exponential
  backoff and jitter, 3 attempts in total; other 4xx are final. A 429 or
  503 with `Retry-After` holds back the whole host that long (at most
  MAX_RETRY_AFTER_S), not just the page;
- names: resolved once per host by `trawl.dns.Resolver` (the system
  resolver, off the loop) and pinned on the transfers; a name that does not
  exist fails at once with "DNS: no such host". A host that cannot be
  reached (no such name, connection refused, connect timeout) is recorded
  once: its other requests fail with the same reason without a transfer;
- limits: timeouts, a low-speed limit, at most 5 redirects, HTTP(S) only,
  and a byte cap counted on the decoded body, so a gzip bomb stops at it;
- TLS: certificates verified against the system CA store (or
  TRAWL_CA_BUNDLE) unless the job says verify_tls false; SNI; HTTP/2 by
  ALPN where the server offers it; TLS failures get a readable reason
  (`tls_reason`) and are final, since a bad certificate does not heal
  between attempts;
- the SSRF guard: every socket libcurl opens, for every redirect hop, goes
  through OPENSOCKETFUNCTION, which sees the address actually connected to;
- decoding: HTML/XHTML/text bodies become `text` (charset from the header,
  then <meta>, then UTF-8 with replacement; never an exception).

Transfers are driven with libcurl's socket API (socket_action plus an epoll
selector), which stays cheap with many handles and has no select() fd limit.
A Fetcher belongs to one thread.
"""

from __future__ import annotations

import email.utils
import heapq
import random
import selectors
import socket
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import pycurl

from trawl.config import Settings
from trawl.decode import TEXT_TYPES, decode_body, is_text_type  # noqa: F401  (part of this API)
from trawl.dns import Resolver, is_ip_literal, resolve_entry
from trawl.ssrf import AddressGuard, AddressRefused

MAX_ATTEMPTS = 3
MAX_REDIRECTS = 5
# A transfer slower than this many bytes/s for this long is abandoned (and retried).
LOW_SPEED_BYTES = 100
LOW_SPEED_TIME_S = 10
ACCEPT = "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5"
MAX_RETRY_AFTER_S = 60.0
_DEFAULT_PORTS = {"http": 80, "https": 443}

RETRY_STATUSES = frozenset({429}) | frozenset(range(500, 600))
TRANSIENT_ERRORS = frozenset(
    {
        pycurl.E_OPERATION_TIMEDOUT,
        pycurl.E_COULDNT_CONNECT,
        pycurl.E_RECV_ERROR,
        pycurl.E_SEND_ERROR,
        pycurl.E_GOT_NOTHING,
        pycurl.E_PARTIAL_FILE,
        pycurl.E_HTTP2,
        92,  # CURLE_HTTP2_STREAM, not exported by this pycurl
    }
)
# Failures that say the host, not the page, is out of reach.
HOST_DOWN_ERRORS = frozenset({pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_CONNECT})
# What a person reads in the crawl log; libcurl's own message follows in brackets.
CURL_REASONS = {
    pycurl.E_COULDNT_RESOLVE_HOST: "DNS: no such host",
    pycurl.E_COULDNT_CONNECT: "could not connect",
    pycurl.E_OPERATION_TIMEDOUT: "timed out",
    pycurl.E_SSL_CONNECT_ERROR: "TLS handshake failed",
    pycurl.E_TOO_MANY_REDIRECTS: "too many redirects",
    pycurl.E_GOT_NOTHING: "empty reply from the server",
    pycurl.E_RECV_ERROR: "connection broken while receiving",
    pycurl.E_SEND_ERROR: "connection broken while sending",
    pycurl.E_PARTIAL_FILE: "the response ended early",
    pycurl.E_UNSUPPORTED_PROTOCOL: "unsupported protocol",
    56: "connection broken while receiving",
    61: "unknown content encoding",
    92: "HTTP/2 stream error",
    100: "response headers too large",  # CURLE_TOO_LARGE, not exported by this pycurl
}


def curl_reason(errno: int, errmsg: str) -> str:
    """A readable reason for a libcurl failure, e.g. "timed out (curl error 28: ...)"."""
    if errno == pycurl.E_COULDNT_RESOLVE_HOST:
        return "DNS: no such host"
    if errno == pycurl.E_OPERATION_TIMEDOUT and errmsg.startswith("Resolving"):
        return "DNS: timed out"
    reason = CURL_REASONS.get(errno, "network error")
    return f"{reason} (curl error {errno}: {errmsg})" if errmsg else f"{reason} (curl error {errno})"

HTTP2_AVAILABLE = bool(pycurl.version_info()[4] & pycurl.VERSION_HTTP2)
# libcurl's TLS error codes; their messages come from the TLS library and
# are turned into one of a few readable reasons by tls_reason().
TLS_ERRORS = frozenset(
    {
        pycurl.E_SSL_CONNECT_ERROR,  # 35: the handshake failed
        pycurl.E_SSL_PEER_CERTIFICATE,  # 60 (= CURLE_PEER_FAILED_VERIFICATION)
        pycurl.E_SSL_CACERT,  # the same number in libcurl >= 7.62
        pycurl.E_SSL_CIPHER,
        pycurl.E_SSL_CACERT_BADFILE,
        pycurl.E_SSL_ISSUER_ERROR,
        pycurl.E_SSL_INVALIDCERTSTATUS,
        pycurl.E_SSL_PINNEDPUBKEYNOTMATCH,
    }
)
# (words in libcurl's/OpenSSL's message, the reason we record), first match wins.
_TLS_REASONS = (
    ("expired", "TLS: certificate has expired"),
    ("not yet valid", "TLS: certificate is not yet valid"),
    ("subject name", "TLS: hostname mismatch"),
    ("does not match", "TLS: hostname mismatch"),
    ("self-signed", "TLS: certificate not trusted (self-signed)"),
    ("self signed", "TLS: certificate not trusted (self-signed)"),
    ("local issuer", "TLS: certificate not trusted (unknown issuer)"),
    ("revoked", "TLS: certificate revoked"),
    ("ca cert", "TLS: the CA bundle cannot be read"),
    ("cafile", "TLS: the CA bundle cannot be read"),
)


def tls_reason(errno: int, errmsg: str) -> str:
    """A readable reason for a TLS failure, e.g. "TLS: certificate has expired"."""
    message = (errmsg or "").lower()
    for words, reason in _TLS_REASONS:
        if words in message:
            return reason
    if errno == pycurl.E_SSL_CACERT_BADFILE:
        return "TLS: the CA bundle cannot be read"
    if errno == pycurl.E_SSL_PEER_CERTIFICATE:
        return "TLS: certificate not trusted"
    return "TLS: handshake failed"


@dataclass
class FetchResult:
    key: object
    url: str
    final_url: str
    status: int | None
    content_type: str | None
    text: str | None
    bytes: int
    attempts: int
    error: str | None
    # "ok" | "http_error" (final 4xx, exhausted 429/5xx) | "failed" (network)
    # | "refused" (SSRF guard) | "tls" (certificate or handshake: error says
    # which) | "too_large" | "cancelled" | "not_html"
    outcome: str
    body: bytes | None = None  # the raw bytes, for requests submitted with raw=True (sitemaps)


@dataclass
class _Request:
    url: str
    key: object
    host: str
    port: int = 80
    attempts: int = 0
    any_type: bool = False  # read the body whatever its Content-Type (robots.txt)
    max_bytes: int | None = None  # None: the fetcher's cap
    truncate: bool = False  # past max_bytes keep what was read, instead of failing
    raw: bool = False  # any content type; bytes handed back as they are (after Content-Encoding)


# ------------------------------------------------------------- one transfer slot


class _Slot:
    """One reusable easy handle and the state of the transfer it runs."""

    def __init__(self, settings: Settings, guard: AddressGuard, max_bytes: int, verify_tls: bool = True):
        self.guard = guard
        self.max_bytes = max_bytes
        self.curl = pycurl.Curl()
        self._configure(settings)
        self._configure_tls(settings, verify_tls)
        self.begin(None)

    def _configure(self, settings: Settings) -> None:
        c = self.curl
        c.setopt(pycurl.NOSIGNAL, 1)
        c.setopt(pycurl.CONNECTTIMEOUT_MS, int(settings.connect_timeout_s * 1000))
        c.setopt(pycurl.TIMEOUT_MS, int(settings.total_timeout_s * 1000))
        c.setopt(pycurl.LOW_SPEED_LIMIT, LOW_SPEED_BYTES)
        c.setopt(pycurl.LOW_SPEED_TIME, max(1, min(LOW_SPEED_TIME_S, int(settings.total_timeout_s))))
        c.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        c.setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        c.setopt(pycurl.FOLLOWLOCATION, 1)
        c.setopt(pycurl.MAXREDIRS, MAX_REDIRECTS)
        c.setopt(pycurl.ACCEPT_ENCODING, "")  # every encoding libcurl can decode
        c.setopt(pycurl.USERAGENT, settings.user_agent)
        c.setopt(pycurl.HTTPHEADER, [f"Accept: {ACCEPT}"])
        # Never go through a proxy from the environment: the guard must see
        # the real peer, not the proxy's address.
        c.setopt(pycurl.PROXY, "")
        c.setopt(pycurl.WRITEFUNCTION, self._on_body)
        c.setopt(pycurl.HEADERFUNCTION, self._on_header)
        c.setopt(pycurl.OPENSOCKETFUNCTION, self._on_open_socket)

    def _configure_tls(self, settings: Settings, verify: bool) -> None:
        c = self.curl
        # libcurl sends SNI for host names by itself; verifying is explicit so
        # a build with other defaults cannot silently crawl unverified.
        c.setopt(pycurl.SSL_VERIFYPEER, 1 if verify else 0)
        c.setopt(pycurl.SSL_VERIFYHOST, 2 if verify else 0)
        if settings.ca_bundle:
            c.setopt(pycurl.CAINFO, settings.ca_bundle)
        if HTTP2_AVAILABLE:
            # h2 only when ALPN offers it over TLS; plain http stays HTTP/1.1.
            c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)

    def begin(self, request: _Request | None) -> None:
        self.request = request
        self.chunks: list[bytes] = []
        self.size = 0
        self.status: int | None = None
        self.content_type: str | None = None
        self.refused: str | None = None
        self.too_large = False
        self.truncated = False
        self.not_html = False
        self.retry_after: float | None = None
        if request is not None:
            request.attempts += 1
            self.curl.setopt(pycurl.URL, request.url)

    def pin(self, host: str, port: int, addresses: tuple[str, ...]) -> None:
        """Connect to these addresses for host:port: libcurl must not resolve the name again."""
        self.curl.setopt(pycurl.RESOLVE, [resolve_entry(host, port, addresses)])

    # libcurl callbacks: they must not raise, so they only record and answer.

    def _on_header(self, line: bytes) -> None:
        if line.startswith(b"HTTP/"):  # a new response: a redirect hop or 1xx
            fields = line.split(None, 2)
            self.status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
            self.content_type = None
            self.retry_after = None
        elif line[:13].lower() == b"content-type:":
            self.content_type = line[13:].strip().decode("latin-1") or None
        elif line[:12].lower() == b"retry-after:":
            self.retry_after = parse_retry_after(line[12:].strip().decode("latin-1"))

    def _on_body(self, data: bytes) -> int | None:
        request = self.request
        if (self.size == 0 and _is_success(self.status) and not (request.any_type or request.raw)
                and not is_text_type(self.content_type)):
            self.not_html = True
            return 0  # abort: no point downloading an image or a PDF
        self.size += len(data)
        limit = request.max_bytes or self.max_bytes
        if self.size > limit:
            if request.truncate and _is_success(self.status):
                self.chunks.append(data[: len(data) - (self.size - limit)])
                self.size, self.truncated = limit, True
                return 0  # enough read: stop here, keep the head
            self.too_large = True
            return 0  # abort; counted after decompression, so bombs stop here too
        if _is_success(self.status):
            self.chunks.append(data)
        return None

    def _on_open_socket(self, purpose: int, address) -> socket.socket | int:
        opened = open_checked_socket(self.guard, address)
        if isinstance(opened, str):
            self.refused = opened
            return pycurl.SOCKET_BAD
        return opened

    # after the transfer

    def classify(self, errno: int, errmsg: str) -> tuple[str, bool, str | None]:
        """(outcome, worth retrying, error) of the finished transfer."""
        if errno and self.refused:
            return "refused", False, self.refused
        if errno in TLS_ERRORS:
            return "tls", False, tls_reason(errno, errmsg)
        if errno and not (self.too_large or self.not_html or self.truncated):
            return "failed", errno in TRANSIENT_ERRORS, curl_reason(errno, errmsg)
        if self.status in RETRY_STATUSES:
            return "http_error", True, f"HTTP {self.status}"
        if not _is_success(self.status):
            return "http_error", False, f"HTTP {self.status}"
        if self.too_large:
            return "too_large", False, f"body larger than {self.request.max_bytes or self.max_bytes} bytes"
        if self.not_html:
            return "not_html", False, f"not HTML: {self.content_type}"
        return "ok", False, None

    def result(self, outcome: str, error: str | None) -> FetchResult:
        request = self.request
        body = b"".join(self.chunks) if outcome == "ok" else None
        text = decode_body(body, self.content_type) if body is not None and not request.raw else None
        return FetchResult(
            key=request.key,
            url=request.url,
            final_url=self.curl.getinfo(pycurl.EFFECTIVE_URL) or request.url,
            status=self.status,
            content_type=self.content_type,
            text=text,
            bytes=self.size,
            attempts=request.attempts,
            error=error,
            outcome=outcome,
            body=body if request.raw else None,
        )


def open_checked_socket(guard: AddressGuard, address) -> socket.socket | str:
    """A socket for libcurl's OPENSOCKETFUNCTION, or the refusal when the peer is not allowed.

    Every transfer that leaves the process (pages, robots.txt, sitemaps, webhooks)
    opens its sockets here, so the SSRF rule is checked on the address really
    connected to, redirects and DNS rebinding included.
    """
    family, socktype, protocol, peer = address
    if family not in (socket.AF_INET, socket.AF_INET6):
        return "refused: not an IP connection"
    try:
        guard.check_address(peer[0])
    except AddressRefused as refusal:
        return str(refusal)
    return socket.socket(family, socktype, protocol)


def _is_success(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def parse_retry_after(value: str) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or an HTTP-date), or None."""
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


# ------------------------------------------------------------- the fetcher


class Fetcher:
    """Submit URLs, poll for results; see the module docstring.

    `allowed_addresses` are IPs the SSRF guard lets through even when
    private networks are not allowed (tests admit one loopback server).
    `retry_backoff_s` is the first retry's wait; it doubles per attempt.
    `hosts_down` (host -> reason) may be kept by the caller across
    Fetchers, so a host found unreachable stays so for the whole job.
    """

    def __init__(
        self,
        settings: Settings,
        concurrency: int = 50,
        per_host_connections: int = 4,
        per_host_delay_s: float = 0.0,
        *,
        allowed_addresses: frozenset[str] = frozenset(),
        retry_backoff_s: float = 0.5,
        max_bytes: int | None = None,
        hosts_down: dict[str, str] | None = None,
        verify_tls: bool = True,
    ):
        self._settings = settings
        self._verify_tls = verify_tls
        self._guard = AddressGuard(settings.allow_private_networks, allowed_addresses)
        self._max_bytes = max_bytes or settings.max_page_bytes
        self._concurrency = max(1, concurrency)
        self._per_host = max(1, per_host_connections)
        self._default_delay = per_host_delay_s
        self._retry_backoff_s = retry_backoff_s

        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._selector = selectors.DefaultSelector()
        self._curl_deadline: float | None = None
        self._resolver = Resolver(timeout_s=settings.connect_timeout_s)
        self._selector.register(self._resolver.fileno(), selectors.EVENT_READ, _WAKE)
        self._down: dict[str, str] = {} if hosts_down is None else hosts_down

        self._slots: list[_Slot] = []  # every slot ever made
        self._idle: list[_Slot] = []
        self._active: dict[pycurl.Curl, _Slot] = {}
        self._queues: dict[str, deque[_Request]] = {}  # host -> waiting requests
        self._queued = 0  # requests in self._queues
        self._retries: list[tuple[float, int, _Request]] = []  # heap by due time
        self._retry_seq = 0
        self._in_flight: dict[str, int] = {}
        self._next_start: dict[str, float] = {}  # host -> earliest next start
        self._host_delay: dict[str, float] = {}
        self._done: list[FetchResult] = []  # final, not yet handed back
        self._slot_s = 0.0  # integral of transfers in flight over time, up to _slot_s_at
        self._slot_s_at = time.monotonic()

    # ------------------------------------------------------------- public API

    def submit(self, url: str, key: object, raw: bool = False, *, any_type: bool = False,
               max_bytes: int | None = None, truncate: bool = False) -> None:
        """Queue a GET of `url`; its FetchResult carries `key`.

        `raw`: any type, and the bytes are handed back as they are (sitemaps).
        `any_type` reads the body as text whatever its Content-Type;
        `max_bytes` overrides the byte cap, and with `truncate` a longer body
        is cut there instead of failing (robots.txt: its head is what counts).
        """
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 80)
        except ValueError:
            parts, host, port = None, "", 80
        request = _Request(url, key, host, port, raw=raw, any_type=any_type, max_bytes=max_bytes,
                           truncate=truncate)
        if parts is None or parts.scheme.lower() not in ("http", "https") or not host:
            self._done.append(_early_result(request, "failed", "unsupported URL"))
            return
        try:
            self._guard.check_host(host)
        except AddressRefused as refusal:
            self._done.append(_early_result(request, "refused", str(refusal)))
            return
        if host in self._down:
            self._done.append(_early_result(request, "failed", self._down[host]))
            return
        if not is_ip_literal(host):
            self._resolver.answer(host)  # start the lookup now
        self._queues.setdefault(host, deque()).append(request)
        self._queued += 1

    def host_down(self, host: str) -> str | None:
        """Why `host` (a URL's hostname) cannot be reached, when that is known."""
        return self._down.get(host.lower())

    @property
    def in_flight(self) -> int:
        return len(self._active)

    def slot_seconds(self) -> float:
        """Transfers in flight integrated over time since this Fetcher began (transfer-seconds)."""
        self._count_slot_time()
        return self._slot_s

    def _count_slot_time(self) -> None:
        now = time.monotonic()
        self._slot_s += len(self._active) * (now - self._slot_s_at)
        self._slot_s_at = now

    @property
    def has_startable(self) -> bool:
        """True when a queued request could start now (its host's cap and delay allow it)."""
        now = time.monotonic()
        return any(self._host_may_start(host, now) for host in self._queues)

    def set_host_delay(self, host: str, seconds: float) -> None:
        """Wait at least `seconds` between request starts to `host` (a URL's hostname)."""
        self._host_delay[host.lower()] = seconds

    @property
    def pending(self) -> int:
        """Requests not yet handed back: queued, waiting to retry, in flight or done."""
        return self._queued + len(self._retries) + len(self._active) + len(self._done)

    def poll(self, timeout: float = 0.1) -> list[FetchResult]:
        """Drive transfers for up to `timeout` seconds; return the finished ones.

        Returns early as soon as something finished, or at once when
        nothing is pending.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._start_ready_requests()
            self._drive(0.0)
            now = time.monotonic()
            if self._done or now >= deadline or not self.pending:
                done, self._done = self._done, []
                return done
            self._drive(min(deadline, self._next_wakeup(now)) - now)

    def cancel_all(self) -> list[FetchResult]:
        """Stop every transfer now; everything not yet handed back comes back.

        Results already final keep their outcome; the rest are "cancelled".
        """
        done, self._done = self._done, []
        for curl, slot in list(self._active.items()):
            self._multi.remove_handle(curl)  # aborts the transfer and its connection
            done.append(slot.result("cancelled", "cancelled"))
            self._release(slot)
        waiting = [r for q in self._queues.values() for r in q] + [r for _, _, r in self._retries]
        done.extend(_early_result(r, "cancelled", "cancelled") for r in waiting)
        self._queues.clear()
        self._queued = 0
        self._retries.clear()
        self._in_flight.clear()
        return done

    def close(self) -> None:
        self.cancel_all()
        for slot in self._slots:
            slot.curl.close()
        self._multi.close()
        self._selector.close()
        self._resolver.close()

    # ------------------------------------------------------------- scheduling

    def _start_ready_requests(self) -> None:
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            _, _, request = heapq.heappop(self._retries)
            self._queues.setdefault(request.host, deque()).appendleft(request)
            self._queued += 1
        for host in list(self._queues):
            if len(self._active) >= self._concurrency:
                return
            if not self._host_may_start(host, now):
                continue
            addresses = self._addresses(host)
            if addresses is None:
                continue  # its lookup is running, or it just failed the host's requests
            queue = self._queues.pop(host)
            while queue and self._host_may_start(host, now) and len(self._active) < self._concurrency:
                self._queued -= 1
                self._start(queue.popleft(), now, addresses)
            if queue:
                self._queues[host] = queue  # to the back: hosts take turns

    def _addresses(self, host: str) -> tuple[str, ...] | None:
        """Addresses to pin for `host` (empty for an IP literal); None when it cannot start yet."""
        if host in self._down:
            self._fail_host(host, self._down[host])
            return None
        if is_ip_literal(host):
            return ()
        answer = self._resolver.answer(host)
        if answer is None:
            return None
        if answer.error:
            self._fail_host(host, answer.error)
            return None
        return answer.addresses

    def _fail_host(self, host: str, reason: str) -> None:
        """Record `host` as unreachable; its queued requests fail with `reason`, no transfer."""
        self._down[host] = reason
        queue = self._queues.pop(host, None) or ()
        self._queued -= len(queue)
        self._done.extend(_early_result(request, "failed", reason) for request in queue)

    def _host_may_start(self, host: str, now: float) -> bool:
        return self._in_flight.get(host, 0) < self._per_host and self._next_start.get(host, 0.0) <= now

    def _start(self, request: _Request, now: float, addresses: tuple[str, ...] = ()) -> None:
        slot = self._idle.pop() if self._idle else self._new_slot()
        slot.begin(request)
        if addresses:
            slot.pin(request.host, request.port, addresses)
        self._count_slot_time()
        self._active[slot.curl] = slot
        self._in_flight[request.host] = self._in_flight.get(request.host, 0) + 1
        delay = self._host_delay.get(request.host, self._default_delay)
        if delay > 0:
            self._next_start[request.host] = now + delay
        self._multi.add_handle(slot.curl)

    def _new_slot(self) -> _Slot:
        slot = _Slot(self._settings, self._guard, self._max_bytes, self._verify_tls)
        self._slots.append(slot)
        return slot

    def _release(self, slot: _Slot) -> None:
        self._count_slot_time()
        del self._active[slot.curl]
        host = slot.request.host
        self._in_flight[host] = self._in_flight.get(host, 1) - 1
        slot.begin(None)
        self._idle.append(slot)

    def _next_wakeup(self, now: float) -> float:
        """When waiting must end at the latest: a curl timer, a retry, a delayed host."""
        wakeups = [self._curl_deadline or now + 1.0]
        if self._retries:
            wakeups.append(self._retries[0][0])
        if self._resolver.waiting:
            wakeups.append(self._resolver.next_deadline())
        if len(self._active) < self._concurrency:
            for host in self._queues:
                if self._in_flight.get(host, 0) < self._per_host:
                    wakeups.append(self._next_start.get(host, now))
        return max(now, min(wakeups))

    # ------------------------------------------------------------- driving libcurl

    def _on_socket(self, what: int, fd: int, multi, socketp) -> None:
        events = {
            pycurl.POLL_IN: selectors.EVENT_READ,
            pycurl.POLL_OUT: selectors.EVENT_WRITE,
            pycurl.POLL_INOUT: selectors.EVENT_READ | selectors.EVENT_WRITE,
        }.get(what)
        registered = fd in self._selector.get_map()
        if events is None:  # POLL_REMOVE
            if registered:
                self._selector.unregister(fd)
        elif registered:
            self._selector.modify(fd, events)
        else:
            self._selector.register(fd, events)

    def _on_timer(self, timeout_ms: int) -> None:
        self._curl_deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000

    def _drive(self, wait: float) -> None:
        """Wait up to `wait` s for socket activity, let libcurl act, collect finished transfers."""
        if self._curl_deadline is not None:
            wait = min(wait, self._curl_deadline - time.monotonic())
        events = self._selector.select(max(0.0, wait))
        woke = False
        for key, mask in events:
            if key.data is _WAKE:
                woke = True  # a lookup finished: collected below
                continue
            flags = (pycurl.CSELECT_IN if mask & selectors.EVENT_READ else 0) | (
                pycurl.CSELECT_OUT if mask & selectors.EVENT_WRITE else 0
            )
            self._multi.socket_action(key.fd, flags)
        if self._curl_deadline is not None and time.monotonic() >= self._curl_deadline:
            self._curl_deadline = None
            self._multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        if woke or self._resolver.waiting:
            self._resolver.collect()  # also drains a late answer's wake-up, or select would spin
        self._collect_finished()

    def _collect_finished(self) -> None:
        while True:
            remaining, succeeded, failed = self._multi.info_read()
            for curl in succeeded:
                self._finish(self._active[curl], 0, "")
            for curl, errno, errmsg in failed:
                self._finish(self._active[curl], errno, errmsg)
            if not remaining:
                return

    def _finish(self, slot: _Slot, errno: int, errmsg: str) -> None:
        self._multi.remove_handle(slot.curl)
        request = slot.request
        outcome, retry, error = slot.classify(errno, errmsg)
        now = time.monotonic()
        backoff = self._retry_backoff_s * 2 ** (request.attempts - 1) * random.uniform(0.75, 1.25)
        if slot.status in (429, 503) and slot.retry_after is not None:
            # The server said when: nothing more to this host before then.
            held = min(slot.retry_after, MAX_RETRY_AFTER_S)
            self._next_start[request.host] = max(self._next_start.get(request.host, 0.0), now + held)
            backoff = max(backoff, held)
        if retry and request.attempts < MAX_ATTEMPTS:
            self._retry_seq += 1
            heapq.heappush(self._retries, (now + backoff, self._retry_seq, request))
        else:
            self._done.append(slot.result(outcome, error))
            if _host_unreachable(slot, errno):
                self._fail_host(request.host, error)
        self._release(slot)


_WAKE = object()  # selector data of the resolver's wake-up pipe


def _host_unreachable(slot: _Slot, errno: int) -> bool:
    """The failure says nothing of this host will answer: no name, refused, no connection in time."""
    if slot.refused or not errno:
        return False
    if errno in HOST_DOWN_ERRORS:
        return True
    return (errno == pycurl.E_OPERATION_TIMEDOUT and slot.status is None
            and slot.curl.getinfo(pycurl.CONNECT_TIME) == 0)


def _early_result(request: _Request, outcome: str, error: str) -> FetchResult:
    return FetchResult(
        key=request.key,
        url=request.url,
        final_url=request.url,
        status=None,
        content_type=None,
        text=None,
        bytes=0,
        attempts=request.attempts,
        error=error,
        outcome=outcome,
    )


# ------------------------------------------------------------- health


def libcurl_info() -> dict:
    """Versions and features of the linked libcurl, for the health check."""
    info = pycurl.version_info()
    features = info[4]
    return {
        "pycurl": pycurl.version.split()[0].split("/", 1)[-1],
        "libcurl": info[1],
        "tls": info[5],
        "async_dns": bool(features & pycurl.VERSION_ASYNCHDNS),
        "http2": bool(features & pycurl.VERSION_HTTP2),
    }
