"""Job rows: create, read, list, status actions, delete, dashboard totals.

Every change to a job row bumps its `version` (the progress ETag and SSE
event id) in the same statement. Status changes are conditional on the
status that `trawl.jobs.next_status` was asked about, so two concurrent
actions cannot both win.
"""

from __future__ import annotations

import json
import secrets
import threading
import time

from trawl.jobs import FINISHED, JobOptions, Status, TransitionRefused, next_status
from trawl.store import deliveries, sites
from trawl.store.database import Database, Session

# Columns of a job without its seed list (which may be megabytes).
JOB_COLUMNS = (
    "id, name, options, seeded, status, version, pages_discovered, pages_done, "
    "pages_failed, pages_skipped, pages_in_flight, emails, bytes, error, "
    "created_at, started_at, updated_at, finished_at"
)


class JobNotFound(Exception):
    pass


_last_id_us = 0
_id_lock = threading.Lock()


def new_job_id() -> str:
    """Sortable by creation time: 14 hex digits of microseconds, then 6 random ones.

    Within one process the time part strictly increases, so jobs created in
    the same microsecond still list in creation order.
    """
    global _last_id_us
    with _id_lock:
        _last_id_us = max(time.time_ns() // 1000, _last_id_us + 1)
        us = _last_id_us
    return f"{us:014x}{secrets.token_hex(3)}"


def looks_like_job_id(text: str) -> bool:
    return len(text) == 20 and all(c in "0123456789abcdef" for c in text)


def insert_job(db: Database, options: JobOptions) -> dict:
    """Store a job and its raw seed list in one INSERT; seeds are expanded later by a worker."""
    now = time.time()
    job_id = new_job_id()
    row = {
        "id": job_id,
        "name": options.name,
        "options": json.dumps(options.settings_dict(), separators=(",", ":")),
        "seeds": "\n".join(options.urls),
        "status": Status.QUEUED.value,
        "created_at": now,
        "updated_at": now,
    }
    db.retrying(lambda s: s.execute(
        "INSERT INTO jobs (id, name, options, seeds, status, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        tuple(row.values()),
    ), deadline_s=10, urgent=True)  # the client waits: ask for SQLite's write lock often
    return row


def get_job(s: Session, job_id: str, lock: bool = False) -> dict:
    """The job row; with `lock`, held until the transaction ends (frontier lock order: job first)."""
    suffix = s.dialect.lock_row if lock else ""
    row = s.one(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?{suffix}", (job_id,))
    if row is None:
        raise JobNotFound(job_id)
    return row


def load_job(db: Database, job_id: str) -> dict:
    with db.read() as s:
        return get_job(s, job_id)


def job_version(db: Database, job_id: str) -> tuple[int, str]:
    """(version, status): the cheap check behind ETags and SSE waits."""
    with db.read() as s:
        row = s.one("SELECT version, status FROM jobs WHERE id = ?", (job_id,))
    if row is None:
        raise JobNotFound(job_id)
    return int(row["version"]), row["status"]


def load_seeds(db: Database, job_id: str) -> list[str]:
    with db.read() as s:
        raw = s.scalar("SELECT seeds FROM jobs WHERE id = ?", (job_id,))
    return [] if raw is None else raw.splitlines()


def list_jobs(db: Database, limit: int, before: str | None = None,
              status: str | None = None) -> tuple[list[dict], str | None]:
    """Newest first; the cursor is the id of the last job returned."""
    where, args = [], []
    if before:
        where.append("id < ?")
        args.append(before)
    if status:
        where.append("status = ?")
        args.append(status)
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    with db.read() as s:
        rows = s.all(
            f"SELECT {JOB_COLUMNS} FROM jobs {clause} ORDER BY id DESC LIMIT ?",
            (*args, limit + 1),
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["id"] if more and rows else None)


# -- status actions --------------------------------------------------------


def _retry_failed_pages(s: Session, job_id: str) -> int:
    sites.requeue_failed(s, job_id)
    return s.execute(
        "UPDATE pages SET state = 'pending', attempts = 0, error = NULL, not_before = 0 "
        "WHERE job_id = ? AND state = 'failed'",
        (job_id,),
    )


def apply_action(db: Database, job_id: str, action: str, error: str | None = None) -> dict:
    """Move a job by `action` (cancel, pause, resume, retry, start, complete, fail).

    Raises JobNotFound or TransitionRefused; returns the updated row.
    """

    def run(s: Session) -> dict:
        job = get_job(s, job_id, lock=True)
        current = Status(job["status"])
        target = next_status(current, action)
        requeued = _retry_failed_pages(s, job_id) if action == "retry" else 0
        if action == "retry" and requeued == 0 and current in FINISHED:
            raise TransitionRefused(current, "retry (no failed pages)")
        now = time.time()
        finished_at = now if target in FINISHED else None
        started_at = job["started_at"] or (now if target == Status.RUNNING else None)
        changed = s.execute(
            "UPDATE jobs SET status = ?, version = version + 1, updated_at = ?, "
            "finished_at = ?, started_at = ?, pages_failed = pages_failed - ?, "
            "error = COALESCE(?, error) WHERE id = ? AND status = ?",
            (target.value, now, finished_at, started_at, requeued, error, job_id, current.value),
        )
        if not changed:  # somebody else moved it between our read and write
            raise TransitionRefused(current, action)
        if target in FINISHED:
            deliveries.job_ended(s, job_id, now)
        return get_job(s, job_id)

    return db.retrying(run, urgent=True)  # a person clicked: see insert_job


def delete_job(db: Database, job_id: str) -> None:
    def run(s: Session) -> None:
        job = get_job(s, job_id, lock=True)
        next_status(job["status"], "delete")
        s.execute("DELETE FROM pages WHERE job_id = ?", (job_id,))
        s.execute("DELETE FROM emails WHERE job_id = ?", (job_id,))
        sites.delete_for_job(s, job_id)
        deliveries.delete_for_job(s, job_id)
        s.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    db.retrying(run)


# -- dashboard --------------------------------------------------------------


def queue_depth(db: Database) -> dict:
    """Active jobs, their pages still to go, and when the oldest was created."""
    with db.read() as s:
        row = s.one(
            "SELECT COUNT(*) AS jobs, COALESCE(SUM(pages_discovered - pages_done - pages_failed"
            " - pages_skipped), 0) AS pages, MIN(created_at) AS oldest"
            " FROM jobs WHERE status IN ('queued', 'running')"
        )
    return {"active_jobs": int(row["jobs"]), "pending_pages": int(row["pages"]),
            "oldest_created_at": row["oldest"]}


def stats(db: Database, live_after: float) -> dict:
    """Totals for the dashboard strip, from job counters (no scan of pages)."""
    now = time.time()
    with db.read() as s:
        by_status = {r["status"]: int(r["n"]) for r in s.all(
            "SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")}
        totals = s.one(
            "SELECT COALESCE(SUM(pages_discovered), 0) AS discovered, "
            "COALESCE(SUM(pages_done), 0) AS done, COALESCE(SUM(pages_failed), 0) AS failed, "
            "COALESCE(SUM(pages_skipped), 0) AS skipped, "
            "COALESCE(SUM(pages_in_flight), 0) AS in_flight, "
            "COALESCE(SUM(emails), 0) AS emails, COALESCE(SUM(bytes), 0) AS bytes FROM jobs"
        )
        recent = s.scalar("SELECT COUNT(*) FROM pages WHERE fetched_at >= ?", (now - 60,))
        workers = s.scalar(
            "SELECT COUNT(*) FROM workers WHERE role = 'worker' AND heartbeat_at >= ?",
            (live_after,),
        )
    pages = {k: int(totals[k]) for k in ("discovered", "done", "failed", "skipped", "in_flight")}
    pages["pending"] = max(0, pages["discovered"] - pages["done"] - pages["failed"]
                           - pages["skipped"] - pages["in_flight"])
    return {
        "jobs": {st.value: by_status.get(st.value, 0) for st in Status},
        "pages": pages,
        "workers": int(workers or 0),
        "emails": int(totals["emails"]),
        "bytes": int(totals["bytes"]),
        "pages_per_s": round(int(recent or 0) / 60.0, 2),
    }
