"""Health checks shared by `GET /health` and `health_check.py`.

Each check returns a `Check` (name, ok, detail); the overall state is
healthy when every check is ok. An idle set-up with no workers is healthy:
worker absence is reported, not failed.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from trawl.config import Settings
from trawl.store import Database
from trawl.store.schema import LATEST_VERSION, current_version


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    data: dict | None = None


def check_database(db: Database) -> Check:
    try:
        started = time.perf_counter()
        version = current_version(db)
        ms = (time.perf_counter() - started) * 1000
    except Exception as exc:
        return Check("database", False, f"unreachable: {exc}")
    if version != LATEST_VERSION:
        return Check("database", False, f"schema at version {version}, expected {LATEST_VERSION}: run `python app.py migrate`")
    return Check("database", True, f"{db.dialect.name} reachable in {ms:.1f} ms, schema version {version}",
                 {"backend": db.dialect.name, "schema_version": version})


def check_queue(db: Database) -> Check:
    try:
        with db.read() as s:
            row = s.one(
                "SELECT COUNT(*) AS jobs, COALESCE(SUM(pages_discovered - pages_done - pages_failed"
                " - pages_skipped), 0) AS pages FROM jobs WHERE status IN ('queued', 'running')"
            )
            oldest = s.scalar(
                "SELECT MIN(created_at) FROM jobs WHERE status IN ('queued', 'running')")
    except Exception as exc:
        return Check("queue", False, f"cannot read the queue: {exc}")
    age = None if oldest is None else round(time.time() - oldest, 1)
    data = {"active_jobs": int(row["jobs"]), "pending_pages": int(row["pages"]), "oldest_job_age_s": age}
    return Check("queue", True, f"{data['active_jobs']} active jobs, {data['pending_pages']} pages to go", data)


def check_workers(db: Database, settings: Settings) -> Check:
    try:
        with db.read() as s:
            n = int(s.scalar(
                "SELECT COUNT(*) FROM workers WHERE role = 'worker' AND heartbeat_at >= ?",
                (time.time() - settings.worker_dead_after_s,)))
    except Exception as exc:
        return Check("workers", False, f"cannot read the registry: {exc}")
    return Check("workers", True, f"{n} live worker processes", {"live": n})


def check_pycurl() -> Check:
    try:
        import pycurl
    except ImportError as exc:
        return Check("pycurl", False, f"not importable: {exc}")
    info = pycurl.version_info()
    async_dns = bool(info[4] & pycurl.VERSION_ASYNCHDNS)
    data = {"pycurl": pycurl.version, "libcurl": info[1], "ssl": info[5], "async_dns": async_dns}
    detail = f"{pycurl.version}; asynchronous DNS {'yes' if async_dns else 'NO'}"
    return Check("pycurl", async_dns, detail, data)


def run_checks(db: Database, settings: Settings) -> dict:
    checks = [check_database(db), check_queue(db), check_workers(db, settings), check_pycurl()]
    return {
        "status": "ok" if all(c.ok for c in checks) else "unhealthy",
        "checks": [asdict(c) for c in checks],
    }
