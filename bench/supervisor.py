"""Supervisor figures on this machine: spawn and recovery times, memory, idle CPU, pool size.

    .venv/bin/python -m bench.supervisor [--pool 300] [--rounds 5]

Everything runs for real: `python app.py workers` processes against a
temporary SQLite database and the local test website (tests/site.py).

- spawn to first claim: a supervisor starts with a job waiting; from the
  fork of its worker (the row's started_at) to the job's started_at, which
  the worker's first claim sets.
- crash to replacement: kill -9 of a busy worker; until its supervisor has
  forked the replacement (the new row's started_at) and until the new pid
  is visible in /proc.
- worker RSS / USS / PSS (psutil.memory_full_info) while crawling; workers
  are forked from the warmed supervisor, so code pages are shared.
- supervisor idle CPU: the supervisor's CPU time over a quiet window.
- largest pool: `--count N` workers, until all N heartbeat; memory of the pool.
- supervisor kill -9 -> first page by its replacement (`--kills 10`): a real
  gunicorn server (autostart on, the self-healing check at its default
  `self_heal_s`) crawls; its supervisor is killed with SIGKILL and nothing
  else is done. The time is from the kill to the heartbeat of the first
  worker of the new supervisor that reports a page done (heartbeats every
  0.25 s, so the figure is at most 0.25 s late).
- the self-healing check's idle cost: queries per second of one check loop
  (counted in-process), and the CPU of an idle gunicorn worker with the
  check on against one with it off, side by side over the same window.

    .venv/bin/python -m bench.supervisor --only healing [--kills 10] [--idle-window 60] \
        [--healing-database-url mysql://root:@127.0.0.1:3306/<empty database>]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.processes import Foreground, delay_routes, make_settings, wait_for  # noqa: E402
from tests.site import TestSite, generate_site  # noqa: E402
from trawl.jobs import parse_options  # noqa: E402
from trawl.store import job_rows, open_database, registry  # noqa: E402

MiB = 2**20


def new_job(db, url: str, **options) -> str:
    return job_rows.insert_job(db, parse_options({"urls": [url], "max_depth": 3, **options}))["id"]


def rows_of(db, role: str = "worker") -> list[dict]:
    return registry.live_workers(db, 30.0, role=role)


def children_of(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []


def spawn_to_first_claim(tmp: Path, site: TestSite, rounds: int) -> list[float]:
    out = []
    for n in range(rounds):
        settings = make_settings(tmp / f"spawn{n}", f"sqlite:///{tmp / f'spawn{n}.db'}")
        db = open_database(settings.database_url, migrate_now=True)
        job_id = new_job(db, site.url("/"))
        seen: dict[str, float] = {}
        with Foreground(settings, count=1, name="spawn") as fg:
            def claimed():
                for row in rows_of(db):
                    seen.setdefault(row["id"], row["started_at"])
                return job_rows.load_job(db, job_id)["started_at"]

            first_claim = wait_for(claimed, 30, "the first claim", every=0.01)
            wait_for(lambda: (claimed(), seen)[1], 10, "the worker row", every=0.01)
            fg.terminate()
        out.append(first_claim - min(seen.values()))
        db.close()
    return out


def crash_recovery(tmp: Path, sites: list[TestSite], rounds: int) -> tuple[list[float], list[float], dict]:
    settings = make_settings(tmp / "crash", f"sqlite:///{tmp / 'crash.db'}", max_workers=2)
    db = open_database(settings.database_url, migrate_now=True)
    to_fork, to_proc, memory = [], [], {}
    with Foreground(settings, count=2, name="crash") as fg:
        # Workers partition a job by site host: two sites keep both busy.
        job_rows.insert_job(db, parse_options({"urls": [s.url("/") for s in sites], "max_depth": 3,
                                               "concurrency": 4, "max_pages": 100_000}))
        wait_for(lambda: len(rows_of(db)) == 2 and all(r["job_id"] for r in rows_of(db)), 30, "busy workers")
        time.sleep(2)
        memory = measure_memory(fg.pid)
        for _ in range(rounds):
            before = {r["id"] for r in rows_of(db)}
            victim = psutil.Process(rows_of(db)[0]["pid"])
            old_pids = {c.pid for c in children_of(fg.pid)}
            killed_at = time.time()
            victim.send_signal(signal.SIGKILL)
            wait_for(lambda: {c.pid for c in children_of(fg.pid)} - old_pids, 10, "a new pid", every=0.002)
            to_proc.append(time.time() - killed_at)
            fresh = wait_for(lambda: [r for r in rows_of(db) if r["id"] not in before], 10, "the new row",
                             every=0.01)
            to_fork.append(fresh[0]["started_at"] - killed_at)
            time.sleep(1.0)
        fg.terminate()
    db.close()
    return to_fork, to_proc, memory


def measure_memory(supervisor_pid: int) -> dict:
    workers = children_of(supervisor_pid)
    infos = [w.memory_full_info() for w in workers]
    sup = psutil.Process(supervisor_pid).memory_full_info()
    return {
        "workers": len(infos),
        "rss": statistics.mean(i.rss for i in infos) / MiB,
        "uss": statistics.mean(i.uss for i in infos) / MiB,
        "pss": statistics.mean(i.pss for i in infos) / MiB,
        "supervisor_rss": sup.rss / MiB,
        "supervisor_uss": sup.uss / MiB,
    }


def idle_cpu(tmp: Path, window_s: float) -> float:
    settings = make_settings(tmp / "idle", f"sqlite:///{tmp / 'idle.db'}")
    open_database(settings.database_url, migrate_now=True).close()
    with Foreground(settings, name="idle") as fg:
        proc = psutil.Process(fg.pid)
        time.sleep(3)  # past start-up imports
        before = sum(proc.cpu_times()[:2])
        time.sleep(window_s)
        used = sum(proc.cpu_times()[:2]) - before
        fg.terminate()
    return 100.0 * used / window_s


def largest_pool(tmp: Path, size: int) -> dict:
    settings = make_settings(tmp / "pool", f"sqlite:///{tmp / 'pool.db'}", max_workers=size,
                             heartbeat_s=2.0, worker_dead_after_s=30.0)
    db = open_database(settings.database_url, migrate_now=True)
    started = time.monotonic()
    with Foreground(settings, count=size, name="pool") as fg:
        wait_for(lambda: len(rows_of(db)) >= size, 180, f"{size} workers", every=0.2)
        ready = time.monotonic() - started
        memory = measure_memory(fg.pid)
        load = os.getloadavg()[0]
        stop_started = time.monotonic()
        fg.terminate(timeout=120)
        stopped = time.monotonic() - stop_started
    db.close()
    return {"size": size, "ready_s": ready, "stop_s": stopped, "load1": load, **memory}


def supervisor_kill_recovery(tmp: Path, sites: list[TestSite], kills: int, url: str | None = None) -> list[float]:
    from tests.conftest import start_server
    from tests.processes import supervisor_pids

    run_dir = str(tmp / "heal-run")
    url = url or f"sqlite:///{tmp / 'heal.db'}"
    open_database(url, migrate_now=True).close()
    env = {"TRAWL_AUTOSTART_WORKERS": "1", "TRAWL_ALLOW_PRIVATE_NETWORKS": "1", "TRAWL_HEARTBEAT_S": "0.25",
           "TRAWL_MAX_WORKERS": "2", "TRAWL_RUN_DIR": run_dir, "TRAWL_LOG_LEVEL": "warning"}
    (tmp / "heal").mkdir()
    server = start_server(tmp / "heal", url, **env)
    db = open_database(url)
    out = []
    try:
        job_rows.insert_job(db, parse_options({"urls": [s.url("/") for s in sites], "max_depth": 5,
                                               "concurrency": 4, "max_pages": 100_000}))
        from tests.http import call

        call("POST", server.url("/api/workers/trigger"))
        for _ in range(kills):
            wait_for(lambda: any(r["pages"] for r in rows_of(db)), 60, "a busy worker", every=0.05)
            old = {r["id"] for r in rows_of(db)}
            victim = wait_for(lambda: supervisor_pids(run_dir), 30, "the supervisor")[0]
            killed_at = time.time()
            os.kill(victim, signal.SIGKILL)

            def first_page():
                done = [r for r in registry.live_workers(db, 30.0) if r["id"] not in old and r["pages"] > 0]
                return min((r["heartbeat_at"] for r in done), default=None)

            out.append(wait_for(first_page, 60, "a page by the replacement", every=0.02) - killed_at)
            time.sleep(1.0)
    finally:
        db.close()
        server.stop()
        for pid in supervisor_pids(run_dir):
            os.kill(pid, signal.SIGTERM)
    return out


def self_heal_cost(tmp: Path, window_s: float) -> dict:
    """Queries/s of one check loop, and idle gunicorn worker CPU with the check on and off."""
    import threading

    from tests.conftest import start_server
    from trawl import config, trigger
    from trawl.store import registry as reg

    url = f"sqlite:///{tmp / 'idle-web.db'}"
    open_database(url, migrate_now=True).close()
    calls = []
    real = reg.supervision_state
    reg.supervision_state = lambda *a, **k: calls.append(1) or real(*a, **k)
    stop = threading.Event()
    settings = config.load({"TRAWL_DATABASE_URL": url, "TRAWL_RUN_DIR": str(tmp / "idle-run")})
    loop = threading.Thread(target=trigger.watchdog, args=(settings, stop), daemon=True)
    servers = {}
    try:
        loop.start()
        for name, heal in (("on", "2"), ("off", "0")):
            (tmp / f"idle-{name}").mkdir()
            servers[name] = start_server(tmp / f"idle-{name}", url, TRAWL_AUTOSTART_WORKERS="1",
                                         TRAWL_SELF_HEAL_S=heal, TRAWL_RUN_DIR=str(tmp / f"idle-{name}-run"))
        time.sleep(3)  # past start-up
        workers = {n: children_of(s.process.pid)[0] for n, s in servers.items()}
        before = {n: sum(w.cpu_times()[:2]) for n, w in workers.items()}
        started, counted = time.monotonic(), len(calls)
        time.sleep(window_s)
        elapsed = time.monotonic() - started
        used = {n: sum(w.cpu_times()[:2]) - before[n] for n, w in workers.items()}
        return {"queries_per_s": (len(calls) - counted) / elapsed,
                "cpu_on": 100 * used["on"] / elapsed, "cpu_off": 100 * used["off"] / elapsed}
    finally:
        stop.set()
        reg.supervision_state = real
        for s in servers.values():
            s.stop()


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms (n={len(ms)})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pool", type=int, default=300)
    p.add_argument("--idle-window", type=float, default=10.0)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--only", choices=["healing"], help="only the self-healing figures")
    p.add_argument("--healing-database-url", help="an empty database for the kill -9 rounds (default: SQLite)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name, TestSite("127.0.0.2") as site, \
            TestSite("127.0.0.3") as other:
        tmp = Path(tmp_name)
        for n, s in enumerate((site, other)):
            generate_site(s, pages=2000, seed=n)
            delay_routes(s, 0.05)
        recovery = supervisor_kill_recovery(tmp, [site, other], args.kills, args.healing_database_url)
        print(f"supervisor kill -9 -> first page by its replacement: {summary(recovery)}")
        cost = self_heal_cost(tmp, args.idle_window)
        print(f"self-healing check: {cost['queries_per_s']:.2f} queries/s per gunicorn worker; idle gunicorn "
              f"worker CPU {cost['cpu_on']:.3f} % of a core with the check, {cost['cpu_off']:.3f} % without "
              f"(over {args.idle_window:.0f}s)")
        if args.only == "healing":
            return 0
        print(f"spawn -> first claim:      {summary(spawn_to_first_claim(tmp, site, args.rounds))}")
        to_fork, to_proc, memory = crash_recovery(tmp, [site, other], args.rounds)
        print(f"kill -9 -> replacement forked: {summary(to_fork)}")
        print(f"kill -9 -> new pid in /proc:   {summary(to_proc)}")
        print(f"worker memory while crawling ({memory['workers']} workers): RSS {memory['rss']:.1f} MiB, "
              f"USS {memory['uss']:.1f} MiB, PSS {memory['pss']:.1f} MiB; supervisor RSS "
              f"{memory['supervisor_rss']:.1f} MiB, USS {memory['supervisor_uss']:.1f} MiB")
        print(f"supervisor idle CPU:       {idle_cpu(tmp, args.idle_window):.2f} % of one core "
              f"over {args.idle_window:.0f}s")
        pool = largest_pool(tmp, args.pool)
        print(f"largest pool: {pool['size']} workers on {os.cpu_count()} cores, all heartbeating after "
              f"{pool['ready_s']:.1f}s; idle worker USS {pool['uss']:.1f} MiB (RSS {pool['rss']:.1f}, "
              f"PSS {pool['pss']:.1f}); load {pool['load1']:.1f}; drained in {pool['stop_s']:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
