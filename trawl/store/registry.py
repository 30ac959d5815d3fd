"""The workers table: who is alive, on which host, doing what.

Rows are written by the processes themselves (a heartbeat every few
seconds) and read by the API, the health check and supervisors; a row whose
heartbeat is older than the dead-after timeout is no longer listed and is
removed by whichever supervisor notices it.
"""

from __future__ import annotations

import time

from trawl.jobs import RUNNABLE, stored_options
from trawl.store.database import Database

WORKER_FIELDS = ("id", "role", "host", "pid", "job_id", "state", "pages", "rss_bytes",
                 "started_at", "heartbeat_at")


def live_workers(db: Database, dead_after_s: float, role: str | None = "worker") -> list[dict]:
    since = time.time() - dead_after_s
    where, args = "heartbeat_at >= ?", [since]
    if role:
        where += " AND role = ?"
        args.append(role)
    with db.read() as s:
        return s.all(
            f"SELECT {', '.join(WORKER_FIELDS)} FROM workers WHERE {where} ORDER BY started_at, id",
            args,
        )


def count_live_workers(db: Database, job_id: str, dead_after_s: float) -> int:
    with db.read() as s:
        return int(s.scalar(
            "SELECT COUNT(*) FROM workers WHERE role = 'worker' AND job_id = ? AND heartbeat_at >= ?",
            (job_id, time.time() - dead_after_s),
        ))


# -- writes: each process keeps its own row; supervisors reap the dead -------


def heartbeat(db: Database, worker_id: str, *, role: str, host: str, pid: int, started_at: float,
              job_id: str | None = None, state: str = "running", pages: int = 0,
              rss_bytes: int = 0, deadline_s: float = 5.0) -> None:
    """Refresh this process's row, creating it if absent (first beat, or reaped while the
    database was away: a live process must be able to come back into the list).

    Off the write path: each statement commits on its own, so a heartbeat
    never holds SQLite's write lock between two steps of a thread that
    shares the GIL with a busy crawl loop (measured: up to 30 ms before).
    """
    now = time.time()

    def run(s) -> None:
        changed = s.execute(
            "UPDATE workers SET job_id = ?, state = ?, pages = ?, rss_bytes = ?, heartbeat_at = ? "
            "WHERE id = ?",
            (job_id, state, pages, rss_bytes, now, worker_id),
        )
        if not changed:
            s.execute(
                db.dialect.insert_if_absent("workers", list(WORKER_FIELDS)),
                (worker_id, role, host, pid, job_id, state, pages, rss_bytes, started_at, now),
            )

    db.autocommit(run, deadline_s=deadline_s)


def unregister(db: Database, worker_id: str) -> None:
    with db.read() as s:
        s.execute("DELETE FROM workers WHERE id = ?", (worker_id,))


def stale_workers(db: Database, dead_after_s: float) -> list[dict]:
    """Rows of any host whose heartbeat stopped more than `dead_after_s` ago."""
    with db.read() as s:
        return s.all(
            f"SELECT {', '.join(WORKER_FIELDS)} FROM workers WHERE heartbeat_at < ?",
            (time.time() - dead_after_s,),
        )


def remove_stale(db: Database, worker_id: str, dead_after_s: float) -> bool:
    """Delete a row only if it is still stale (it may have beaten since we looked)."""
    with db.read() as s:
        return s.execute(
            "DELETE FROM workers WHERE id = ? AND heartbeat_at < ?",
            (worker_id, time.time() - dead_after_s),
        ) > 0


def host_rows(db: Database, host: str) -> list[dict]:
    with db.read() as s:
        return s.all(f"SELECT {', '.join(WORKER_FIELDS)} FROM workers WHERE host = ?", (host,))


def count_live(db: Database, role: str, dead_after_s: float) -> int:
    """Processes of `role` ('worker' or 'supervisor') with a fresh heartbeat, on every host."""
    with db.read() as s:
        return int(s.scalar(
            "SELECT COUNT(*) FROM workers WHERE role = ? AND heartbeat_at >= ?",
            (role, time.time() - dead_after_s),
        ))


def count_live_supervisors(db: Database, dead_after_s: float) -> int:
    return count_live(db, "supervisor", dead_after_s)


# -- what the pool needs to know about jobs ------------------------------------


def runnable_jobs(db: Database) -> list[dict]:
    """Queued and running jobs with their remaining pages and pool options.

    remaining = discovered - done - failed - skipped (pending and leased
    pages); `workers` and `concurrency` come from the job's options.
    """
    with db.read() as s:
        rows = s.all(
            "SELECT id, status, options, pages_discovered - pages_done - pages_failed"
            " - pages_skipped AS remaining FROM jobs WHERE status IN (?, ?)", RUNNABLE
        )
    out = []
    for row in rows:
        options = stored_options(row["options"])
        out.append({"id": row["id"], "status": row["status"], "remaining": int(row["remaining"] or 0),
                    "workers": options.get("workers"), "concurrency": options.get("concurrency") or 50})
    return out


def expire_leases_of(db: Database, owner: str) -> int:
    """End now the leases of a worker known to be dead (reaped by its supervisor).

    Only the expiry moves; `frontier.sweep_expired_leases` then returns the
    pages to pending (or fails a page lost too often) and fixes the job
    counters, exactly as if the leases had run out.
    """
    with db.read() as s:
        return s.execute(
            "UPDATE pages SET lease_until = 0 WHERE state = 'leased' AND lease_owner = ?", (owner,))
