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


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms (n={len(ms)})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pool", type=int, default=300)
    p.add_argument("--idle-window", type=float, default=10.0)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name, TestSite("127.0.0.2") as site, \
            TestSite("127.0.0.3") as other:
        tmp = Path(tmp_name)
        for n, s in enumerate((site, other)):
            generate_site(s, pages=2000, seed=n)
            delay_routes(s, 0.05)
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
