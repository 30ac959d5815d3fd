"""Health checks shared by `GET /health` and `health_check.py`.

Each check returns a `Check` (name, ok, detail); the overall state is
healthy when every check is ok. An idle set-up with no workers is healthy:
worker absence is reported, not failed, until work waits for them:

- `waiting_jobs` fails, naming the jobs, when a runnable job has had no live
  worker and no change for `stranded_after_s` (30 s, longer than a
  replacement supervisor takes). Jobs queued behind a full pool (a live
  supervisor at its TRAWL_MAX_WORKERS or --count ceiling) are reported, not
  failed: they get a worker when one frees up.
- `node_supervisor`, whenever work is pending: a supervisor of this node
  and database is alive (fresh heartbeat, running pid), or with
  TRAWL_AUTOSTART_WORKERS=0 any supervisor; fails once work has waited
  `stranded_after_s` without one, and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from trawl.config import Settings
from trawl.store import Database, job_rows, registry
from trawl.store.dialect import SqliteTarget, parse_database_url
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
        db.dialect.check_present()
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
        depth = job_rows.queue_depth(db)
    except Exception as exc:
        return Check("queue", False, f"cannot read the queue: {exc}")
    oldest = depth["oldest_created_at"]
    data = {"active_jobs": depth["active_jobs"], "pending_pages": depth["pending_pages"],
            "oldest_job_age_s": None if oldest is None else round(time.time() - oldest, 1)}
    return Check("queue", True, f"{data['active_jobs']} active jobs, {data['pending_pages']} pages to go", data)


def check_live(db: Database, settings: Settings, role: str, name: str, noun: str) -> Check:
    """Live heartbeats of `role`: reported, never failed (an idle set-up runs none)."""
    try:
        n = registry.count_live(db, role, settings.worker_dead_after_s)
    except Exception as exc:
        return Check(name, False, f"cannot read the registry: {exc}")
    return Check(name, True, f"{n} live {noun}", {"live": n})


def _job_label(job: dict) -> str:
    return f"{job['id']} ({job['name']})" if job.get("name") else job["id"]


def _full_pools(db: Database, settings: Settings) -> list[dict]:
    """Live supervisors whose pool is at its ceiling (this node's only if their pid runs)."""
    from trawl.hostlock import pid_alive

    rows = registry.live_workers(db, settings.worker_dead_after_s, role="supervisor")
    return [r for r in rows if r["state"] == "full" and (r["host"] != settings.node or pid_alive(r["pid"]))]


def check_waiting_jobs(db: Database, settings: Settings) -> Check:
    dead_after = settings.worker_dead_after_s
    try:
        waiting = registry.jobs_without_workers(db, dead_after)
        full = _full_pools(db, settings) if waiting else []
    except Exception as exc:
        return Check("waiting_jobs", False, f"cannot read jobs and workers: {exc}")
    now = time.time()
    idle_s = {j["id"]: now - (j["updated_at"] or j["created_at"]) for j in waiting}
    # Behind a full pool a job waits its turn; anywhere else it is stranded.
    stranded = [] if full else [j for j in waiting if idle_s[j["id"]] > settings.stranded_after_s]
    data = {"waiting": [j["id"] for j in waiting], "stranded": [j["id"] for j in stranded],
            "full_pools": [r["id"] for r in full]}
    if stranded:
        named = "; ".join(f"job {_job_label(j)} has had no live worker for {idle_s[j['id']]:.0f} s"
                          for j in stranded[:5])
        return Check("waiting_jobs", False, named + ("" if len(stranded) <= 5 else f"; {len(stranded) - 5} more"), data)
    if waiting:
        why = f"their turn: {len(full)} pools are full" if full else "for a worker to start"
        return Check("waiting_jobs", True, f"{len(waiting)} runnable jobs wait {why}: "
                     + ", ".join(j["id"] for j in waiting[:5]), data)
    return Check("waiting_jobs", True, "no runnable job waits for a worker", data)


def check_node_supervisor(db: Database, settings: Settings) -> Check:
    from trawl.hostlock import database_identity, log_path, needs_supervisor

    dead_after = settings.worker_dead_after_s
    try:
        state = registry.supervision_state(db, settings.node, dead_after)
        anywhere = registry.count_live(db, "supervisor", dead_after)
    except Exception as exc:
        return Check("node_supervisor", False, f"cannot read the registry: {exc}")
    data = {"node": settings.node, "runnable_jobs": state.runnable, "pids": state.supervisor_pids,
            "live_anywhere": anywhere, "autostart": settings.autostart_workers}
    if state.runnable == 0:
        return Check("node_supervisor", True, "no work pending", data)
    if settings.autostart_workers and not needs_supervisor(state):
        return Check("node_supervisor", True, f"supervisor of {settings.node} for "
                     f"{database_identity(settings.database_url)} alive (pid {state.supervisor_pids[0]})", data)
    if not settings.autostart_workers and anywhere:
        return Check("node_supervisor", True, f"{anywhere} live supervisors elsewhere "
                     "(TRAWL_AUTOSTART_WORKERS=0 here)", data)
    waited = time.time() - (state.last_change or time.time())
    why = ("TRAWL_AUTOSTART_WORKERS=0 here and no supervisor runs anywhere: start `python app.py workers`"
           if not settings.autostart_workers else
           f"no live supervisor of {settings.node} for this database; see {log_path(settings)}")
    ok = waited <= settings.stranded_after_s
    return Check("node_supervisor", ok, f"{state.runnable} runnable jobs, unchanged for {waited:.0f} s: {why}", data)


def check_pycurl() -> Check:
    try:
        import pycurl
    except ImportError as exc:
        return Check("pycurl", False, f"not importable: {exc}")
    info = pycurl.version_info()
    async_dns = bool(info[4] & pycurl.VERSION_ASYNCHDNS)
    http2 = bool(info[4] & getattr(pycurl, "VERSION_HTTP2", 0))
    data = {"pycurl": pycurl.version, "libcurl": info[1], "ssl": info[5], "async_dns": async_dns,
            "http2": http2}
    detail = f"{pycurl.version}; asynchronous DNS {'yes' if async_dns else 'NO'}; HTTP/2 {'yes' if http2 else 'no'}"
    return Check("pycurl", async_dns, detail, data)




def _data_dir(settings: Settings) -> str:
    """Where Trawl writes: the SQLite file's directory, else the run directory."""
    try:
        target = parse_database_url(settings.database_url)
    except ValueError:
        target = None
    path = os.path.dirname(os.path.abspath(target.path)) if isinstance(target, SqliteTarget) else settings.run_dir
    while path and not os.path.exists(path):  # a run dir not created yet: its parent's disk
        path = os.path.dirname(path.rstrip(os.sep)) or os.sep
    return path or "."


MIN_FREE_BYTES = 256 * 2**20
MIN_FREE_SHARE = 0.02


def check_disk(settings: Settings) -> Check:
    path = _data_dir(settings)
    try:
        usage = shutil.disk_usage(path)
    except OSError as exc:
        return Check("disk", False, f"cannot stat {path}: {exc}")
    share = usage.free / usage.total if usage.total else 0.0
    ok = usage.free >= MIN_FREE_BYTES and share >= MIN_FREE_SHARE
    data = {"path": path, "free_bytes": usage.free, "total_bytes": usage.total, "free_share": round(share, 4)}
    detail = f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB ({share:.0%}) at {path}"
    if not ok:
        detail += f"; needs at least {MIN_FREE_BYTES // 2**20} MiB and {MIN_FREE_SHARE:.0%}"
    return Check("disk", ok, detail, data)


_spawn_cache: tuple[float, Check] | None = None
SPAWN_CHECK_TTL_S = 60.0


def check_spawn_cached() -> Check:
    """check_spawn at most once a minute per process: /health is unauthenticated
    and must not let anyone fork an interpreter per request."""
    global _spawn_cache
    now = time.monotonic()
    if _spawn_cache is None or now - _spawn_cache[0] > SPAWN_CHECK_TTL_S:
        _spawn_cache = (now, check_spawn())
    return _spawn_cache[1]


def check_spawn(timeout_s: float = 15.0) -> Check:
    """A child interpreter (what a worker is) starts, imports the engine and is reaped."""
    started = time.perf_counter()
    try:
        child = subprocess.Popen([sys.executable, "-c", "import trawl, pycurl"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except OSError as exc:
        return Check("spawn", False, f"cannot start {sys.executable}: {exc}")
    try:
        _, err = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        return Check("spawn", False, f"child did not exit within {timeout_s:.0f} s (killed and reaped)")
    ms = (time.perf_counter() - started) * 1000
    data = {"pid": child.pid, "exit_code": child.returncode, "ms": round(ms, 1)}
    if child.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        return Check("spawn", False, f"child exited with {child.returncode}: {last}", data)
    return Check("spawn", True, f"worker-like process {child.pid} started and reaped in {ms:.0f} ms", data)


def check_bloom() -> Check:
    try:
        from pybloom_live import BloomFilter

        probe = BloomFilter(capacity=1000, error_rate=0.001)
        probe.add("https://example.org/")
        works = "https://example.org/" in probe and "https://example.net/" not in probe
    except Exception as exc:
        return Check("bloom", False, f"pybloom_live not usable: {exc}")
    try:
        from importlib.metadata import version as dist_version

        version = dist_version("pybloom-live")
    except Exception:
        version = "?"
    return Check("bloom", works, f"pybloom_live {version} importable and working" if works
                 else "pybloom_live answers membership wrongly", {"version": version})


def run_checks(db: Database, settings: Settings) -> dict:
    database = check_database(db)
    if database.ok:
        stored = [check_queue(db), check_live(db, settings, "worker", "workers", "worker processes"),
                  check_live(db, settings, "supervisor", "supervisors", "supervisors"),
                  check_waiting_jobs(db, settings), check_node_supervisor(db, settings)]
    else:  # one connect timeout is enough: don't wait for it three more times
        stored = [Check(name, False, "not checked: the database check failed")
                  for name in ("queue", "workers", "supervisors", "waiting_jobs", "node_supervisor")]
    checks = [database, *stored, check_pycurl(), check_bloom(), check_disk(settings), check_spawn_cached()]
    return {
        "status": "ok" if all(c.ok for c in checks) else "unhealthy",
        "checks": [asdict(c) for c in checks],
    }
