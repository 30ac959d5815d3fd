"""Completion webhook deliveries: one row per job with a `notify_url`, worked off by trawl/notify.py.

The row is written in the transaction that ends the job (complete, fail,
cancel), so a job never ends without its delivery, whoever ended it. It is
`pending` until a POST is answered with 2xx (`delivered`) or the retries
run out (`failed`); a job that ends again after a retry gets a fresh row.

A sender claims a due row with a lease (owner, expiry) by a conditional
UPDATE, so two supervisors never send the same attempt, and records the
attempt's result conditionally on still holding that lease. A sender that
dies mid-attempt loses the lease after LEASE_S and the row is due again:
delivery is at least once, and exactly once unless a sender dies between
the receiver's answer and the write of it.
"""

from __future__ import annotations

import time

from trawl.jobs import stored_options
from trawl.store.database import Database, Session

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
LEASE_S = 120.0  # longer than any one POST may take (notify_timeout_s)
MAX_ERROR_LENGTH = 500


def job_ended(s: Session, job_id: str, now: float) -> None:
    """Queue the job's webhook, if it has one: called inside the transaction that ends it."""
    raw = s.scalar("SELECT options FROM jobs WHERE id = ?", (job_id,))
    url = stored_options(raw).get("notify_url")
    if not url:
        return
    s.execute("DELETE FROM deliveries WHERE job_id = ?", (job_id,))
    s.execute(
        "INSERT INTO deliveries (job_id, url, state, attempts, next_at, created_at) "
        "VALUES (?, ?, 'pending', 0, ?, ?)",
        (job_id, url, now, now),
    )


def claim_due(db: Database, owner: str, limit: int, now: float | None = None) -> list[dict]:
    """Lease up to `limit` pending deliveries whose time has come; returns their rows."""
    now = time.time() if now is None else now
    with db.read() as s:
        rows = s.all(
            "SELECT job_id FROM deliveries WHERE state = 'pending' AND next_at <= ? "
            "AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_at LIMIT ?",
            (now, now, limit),
        )
    claimed = []
    for row in rows:
        def run(s: Session, job_id=row["job_id"]) -> dict | None:
            taken = s.execute(
                "UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE job_id = ? "
                "AND state = 'pending' AND next_at <= ? AND (lease_until IS NULL OR lease_until < ?)",
                (owner, now + LEASE_S, job_id, now, now),
            )
            return s.one("SELECT * FROM deliveries WHERE job_id = ?", (job_id,)) if taken else None

        got = db.retrying(run)
        if got:
            claimed.append(got)
    return claimed


def record_attempt(db: Database, job_id: str, owner: str, created_at: float, error: str | None,
                   next_at: float | None, now: float | None = None) -> bool:
    """The result of one POST: delivered (error None), retry at `next_at`, or failed (next_at None).

    Conditional on `owner` still holding the lease on this very row (a job
    that ended again meanwhile has a new row with another created_at).
    """
    now = time.time() if now is None else now
    if error is None:
        state, args = DELIVERED, (now,)
    else:
        state, args = (PENDING if next_at is not None else FAILED), (None,)

    def run(s: Session) -> bool:
        return s.execute(
            "UPDATE deliveries SET state = ?, attempts = attempts + 1, delivered_at = ?, last_error = ?, "
            "next_at = COALESCE(?, next_at), lease_owner = NULL, lease_until = NULL "
            "WHERE job_id = ? AND lease_owner = ? AND created_at = ? AND state = 'pending'",
            (state, *args, None if error is None else error[:MAX_ERROR_LENGTH], next_at,
             job_id, owner, created_at),
        ) == 1

    return db.retrying(run)


def release(db: Database, owner: str) -> int:
    """Hand back the leases `owner` holds (a sender stopping mid-attempt): due again at once."""

    def run(s: Session) -> int:
        return s.execute(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? "
            "AND state = 'pending'", (owner,))

    return db.retrying(run)


def pending_count(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'") or 0)


def delivery_for(db: Database, job_id: str) -> dict | None:
    with db.read() as s:
        return s.one("SELECT * FROM deliveries WHERE job_id = ?", (job_id,))


def delete_for_job(s: Session, job_id: str) -> None:
    s.execute("DELETE FROM deliveries WHERE job_id = ?", (job_id,))
