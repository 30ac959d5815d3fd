"""The workers table: who is alive, on which host, doing what.

Rows are written by the processes themselves (a heartbeat every few
seconds) and read by the API, the health check and supervisors; a row whose
heartbeat is older than the dead-after timeout is no longer listed and is
removed by whichever supervisor notices it.
"""

from __future__ import annotations

import time

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
