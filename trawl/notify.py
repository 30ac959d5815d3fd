"""The completion webhook: one signed POST of the final job object to the job's `notify_url`.

The delivery is a row in the store (trawl/store/deliveries.py), written in
the transaction that ends the job, not a thread: any live sender picks it
up, so a restart between attempts neither loses nor repeats it. Senders are
the supervisor (one `Notifier.step()` per tick of its loop) and
`python app.py crawl --inline`, which tries once before it exits.

Transfers follow the crawler's fetch rules: pycurl, HTTP(S) only, no proxy
from the environment, the crawler's User-Agent, connect and total timeouts,
and every socket judged by the SSRF guard (trawl/ssrf.py) at the address
really connected to. Redirects are not followed (a webhook that moved is a
failed attempt). A 2xx answer delivers; anything else is retried after
notify_retry_s, doubling up to notify_retry_max_s, until notify_give_up_s
after the job ended; a refusal by the SSRF guard fails it at once, as the
address will not become public by waiting.

The transfers run on a CurlMulti driven without blocking, so a slow or
silent receiver never holds up the supervisor's heartbeats and reaping.

Signature: with TRAWL_API_TOKEN set, `X-Trawl-Signature: sha256=<hex>` is
the HMAC-SHA256 of the exact body bytes keyed with the token, as GitHub and
Stripe sign theirs; a receiver recomputes it over the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field

import pycurl

from trawl import progress
from trawl.config import Settings
from trawl.fetch import open_checked_socket
from trawl.ssrf import AddressGuard
from trawl.store import deliveries, job_rows
from trawl.store.database import Database

log = logging.getLogger("trawl.notify")

CLAIM_EVERY_S = 1.0
MAX_IN_FLIGHT = 8
MAX_ANSWER_BYTES = 2048  # of the receiver's body, kept only to quote in an error


def signature(body: bytes, token: str) -> str:
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def payload(job: dict) -> bytes:
    """The final job object, as GET /api/jobs/<id> shows it, as JSON bytes."""
    return json.dumps(progress.job_document(job), separators=(",", ":"), sort_keys=True).encode()


def notify_document(job: dict, delivery: dict | None) -> dict | None:
    """The `notify` field of a job: null without a notify_url, else the delivery's state."""
    try:
        url = json.loads(job["options"]).get("notify_url")
    except (ValueError, AttributeError):
        url = None
    if not url:
        return None
    if delivery is None:  # the job has not ended yet
        return {"state": deliveries.PENDING, "attempts": 0, "last_error": None, "delivered_at": None}
    return {"state": delivery["state"], "attempts": int(delivery["attempts"]),
            "last_error": delivery["last_error"], "delivered_at": delivery["delivered_at"]}


def next_attempt_at(settings: Settings, attempts: int, created_at: float, now: float) -> float | None:
    """When to try again after `attempts` failed ones, or None when the hour is up."""
    delay = min(settings.notify_retry_s * 2 ** max(0, attempts - 1), settings.notify_retry_max_s)
    at = now + delay
    return at if at <= created_at + settings.notify_give_up_s else None


@dataclass
class _Transfer:
    row: dict
    curl: pycurl.Curl
    answer: bytearray = field(default_factory=bytearray)
    refused: str | None = None


class Notifier:
    """Sends due deliveries on one CurlMulti; `step()` never blocks. Belongs to one thread."""

    def __init__(self, settings: Settings, owner: str, allowed_addresses: frozenset[str] = frozenset()):
        self.settings = settings
        self.owner = owner
        self._guard = AddressGuard(settings.allow_private_networks, allowed_addresses)
        self._multi = pycurl.CurlMulti()
        self._transfers: dict[int, _Transfer] = {}
        self._next_claim = 0.0

    @property
    def in_flight(self) -> int:
        return len(self._transfers)

    def step(self, db: Database) -> int:
        """Start what is due, move the transfers on, record the finished ones; returns in-flight count."""
        if len(self._transfers) < MAX_IN_FLIGHT and time.monotonic() >= self._next_claim:
            self._next_claim = time.monotonic() + CLAIM_EVERY_S
            for row in deliveries.claim_due(db, self.owner, MAX_IN_FLIGHT - len(self._transfers)):
                self._start(db, row)
        if self._transfers:
            self._drive(db)
        return len(self._transfers)

    def send_due_now(self, db: Database, timeout_s: float) -> None:
        """One attempt at every delivery due now, waiting at most `timeout_s` (the CLI's last try)."""
        deadline = time.monotonic() + timeout_s
        self._next_claim = 0.0
        self.step(db)
        while self._transfers and time.monotonic() < deadline:
            self._multi.select(0.05)
            self._drive(db)

    def close(self, db: Database | None = None) -> None:
        """Abort transfers; their leases are handed back so the next sender retries at once."""
        for transfer in list(self._transfers.values()):
            self._multi.remove_handle(transfer.curl)
            transfer.curl.close()
        self._transfers.clear()
        if db is not None:
            try:
                deliveries.release(db, self.owner)
            except Exception:
                log.warning("could not hand back webhook leases of %s; they expire", self.owner)
        self._multi.close()

    # -- one transfer ----------------------------------------------------------

    def _start(self, db: Database, row: dict) -> None:
        try:
            body = payload(job_rows.load_job(db, row["job_id"]))
        except job_rows.JobNotFound:
            self._record(db, row, "the job was deleted before its webhook was sent", final=True)
            return
        transfer = _Transfer(row, pycurl.Curl())
        self._configure(transfer, row["url"], body)
        self._multi.add_handle(transfer.curl)
        self._transfers[id(transfer.curl)] = transfer

    def _configure(self, transfer: _Transfer, url: str, body: bytes) -> None:
        c, s = transfer.curl, self.settings
        headers = ["Content-Type: application/json", "Expect:",
                   f"X-Trawl-Job: {transfer.row['job_id']}",
                   f"X-Trawl-Attempt: {int(transfer.row['attempts']) + 1}"]
        if s.api_token:
            headers.append(f"X-Trawl-Signature: {signature(body, s.api_token)}")
        c.setopt(pycurl.URL, url)
        c.setopt(pycurl.NOSIGNAL, 1)
        c.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        c.setopt(pycurl.FOLLOWLOCATION, 0)
        # No pooled connections: a worker forked from the supervisor must not
        # inherit an idle (TLS) connection of ours and close it on exit.
        c.setopt(pycurl.FORBID_REUSE, 1)
        c.setopt(pycurl.PROXY, "")  # the guard must see the receiver, not a proxy
        c.setopt(pycurl.CONNECTTIMEOUT_MS, int(min(s.connect_timeout_s, s.notify_timeout_s) * 1000))
        c.setopt(pycurl.TIMEOUT_MS, int(s.notify_timeout_s * 1000))
        c.setopt(pycurl.USERAGENT, s.user_agent)
        c.setopt(pycurl.HTTPHEADER, headers)
        c.setopt(pycurl.POST, 1)
        c.setopt(pycurl.COPYPOSTFIELDS, body)
        c.setopt(pycurl.WRITEFUNCTION, lambda data: self._keep_answer(transfer, data))
        c.setopt(pycurl.OPENSOCKETFUNCTION, lambda purpose, address: self._open_socket(transfer, address))

    @staticmethod
    def _keep_answer(transfer: _Transfer, data: bytes) -> None:
        room = MAX_ANSWER_BYTES - len(transfer.answer)
        if room > 0:
            transfer.answer += data[:room]

    def _open_socket(self, transfer: _Transfer, address):
        opened = open_checked_socket(self._guard, address)
        if isinstance(opened, str):
            transfer.refused = opened
            return pycurl.SOCKET_BAD
        return opened

    def _drive(self, db: Database) -> None:
        while self._multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            queued, ok, failed = self._multi.info_read()
            for curl in ok:
                self._finish(db, curl, 0, "")
            for curl, errno, errmsg in failed:
                self._finish(db, curl, errno, errmsg)
            if not queued:
                return

    def _finish(self, db: Database, curl: pycurl.Curl, errno: int, errmsg: str) -> None:
        transfer = self._transfers.pop(id(curl))
        self._multi.remove_handle(curl)
        status = curl.getinfo(pycurl.RESPONSE_CODE) if not errno else 0
        curl.close()
        if errno and transfer.refused:
            self._record(db, transfer.row, transfer.refused, final=True)
        elif errno:
            self._record(db, transfer.row, f"curl error {errno}: {errmsg}")
        elif 200 <= status < 300:
            self._record(db, transfer.row, None)
        else:
            quoted = transfer.answer.decode("utf-8", "replace").strip()[:200]
            self._record(db, transfer.row, f"HTTP {status}" + (f": {quoted}" if quoted else ""))

    def _record(self, db: Database, row: dict, error: str | None, final: bool = False) -> None:
        now = time.time()
        attempts = int(row["attempts"]) + 1
        next_at = None
        if error is not None and not final:
            next_at = next_attempt_at(self.settings, attempts, float(row["created_at"]), now)
        if error is not None and next_at is None and not final:
            error = f"{error} (given up after {attempts} attempts)"
        deliveries.record_attempt(db, row["job_id"], self.owner, float(row["created_at"]), error, next_at, now)
        if error is None:
            log.info("job %s: webhook delivered to %s (attempt %d)", row["job_id"], row["url"], attempts)
        else:
            log.warning("job %s: webhook to %s failed (attempt %d): %s", row["job_id"], row["url"],
                        attempts, error)
