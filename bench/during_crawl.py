"""Job creation while workers crawl: the early response under load, SQLite and MariaDB side by side.

    apt-get install -y nginx
    .venv/bin/python bench/during_crawl.py [--pages 20000] [--hosts 8] [--workers 4] [--jobs 200]
                                           [--db sqlite,mysql] [--app-dir DIR]
    (also: python test_async_response.py --during-crawl [same options])

For each database: a fresh database, `python app.py serve` on a free
loopback port (TRAWL_AUTOSTART_WORKERS=0, so "idle" means idle), and then

1. idle: one client creates `--jobs` one-URL jobs in a row;
2. busy: a crawl job of bench/crawl.py's nginx site (`--pages` pages on
   `--hosts` loopback hosts) is created through the API, `python app.py
   workers --count N` crawls it, and once `--warmup-pages` pages are done
   the same client creates `--jobs` jobs again; then the crawl runs to
   its end.

Creation time is what the client sees (connect to last body byte). The
crawl's pages/s comes from the job row (started_at → finished_at). The
server and the workers run with TRAWL_DEBUG_LOCK_TIMES, so the lock-hold
table (per transaction kind: how long it waited for the write lock and
how long it held it) is printed for the busy window.

`--app-dir` serves another checkout (e.g. an export of the commit before a
change) with this same script, for before/after figures measured side by
side. Nothing is asserted; every wait is bounded by `--timeout`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from crawl import fresh_database, generate, start_nginx  # noqa: E402  (bench/crawl.py)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, port: int):
        self.port = port

    def call(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else {})
        finally:
            conn.close()

    def create_timed(self, body: dict) -> float:
        started = time.perf_counter()
        status, doc = self.call("POST", "/api/jobs", body)
        elapsed = time.perf_counter() - started
        if status != 202:
            raise RuntimeError(f"POST /api/jobs: HTTP {status} {doc}")
        return elapsed

    def wait_ready(self, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("the server exited at start-up")
            try:
                if self.call("GET", "/api/jobs?limit=1", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not answer in time")


def create_in_a_row(api: Api, count: int) -> list[float]:
    body = {"urls": ["http://127.0.0.1:9/"], "name": "latency probe"}
    return [api.create_timed(body) for _ in range(count)]


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_lock_times(directory: Path, since: float, until: float) -> dict[str, dict[str, list[float]]]:
    """Samples of every process, merged per kind, inside [since, until]."""
    merged: dict[str, dict[str, list[float]]] = {}
    for path in directory.glob("locktimes-*.json"):
        try:
            kinds = json.loads(path.read_text())["kinds"]
        except (OSError, ValueError):
            continue
        for kind, samples in kinds.items():
            entry = merged.setdefault(kind, {"wait": [], "hold": [], "commit": []})
            for at, *values in samples:
                if since <= at <= until:
                    for name, value in zip(("wait", "hold", "commit"), values):
                        if value is not None:
                            entry[name].append(value)
    return merged


def print_lock_table(label: str, merged: dict) -> None:
    print(f"\nlock table, {label} (ms; wait: BEGIN until the write lock was ours; hold: BEGIN → COMMIT "
          "called; commit: the COMMIT call, WAL append under the lock; checkpoint: WAL copies, no lock; "
          "kind*: one autocommit statement, whole time shown as wait)")
    head = "".join(f" {m + ' p50':>10s} {'p99':>6s} {'max':>6s}" for m in ("wait", "hold", "commit"))
    print(f"  {'kind':22s} {'n':>5s}{head}")
    f = lambda xs, p: f"{percentile(xs, p) * 1000:6.1f}" if xs else "     -"  # noqa: E731
    kinds = [k for k in merged if merged[k]["wait"]]
    for kind in sorted(kinds, key=lambda k: -max(merged[k]["hold"] or merged[k]["wait"])):
        cells = "".join(f" {f(merged[kind][m], 50):>10s} {f(merged[kind][m], 99)} {f(merged[kind][m], 100)}"
                        for m in ("wait", "hold", "commit"))
        print(f"  {kind:22s} {len(merged[kind]['wait']):5d}{cells}")


def summary(times: list[float]) -> str:
    return (f"p50 {percentile(times, 50) * 1000:6.1f}  p99 {percentile(times, 99) * 1000:6.1f}  "
            f"max {max(times) * 1000:6.1f} ms")


def run_database(kind: str, site, work: Path, app_dir: Path, args) -> dict:
    url, drop = fresh_database(kind, work)
    locks = work / f"locks-{kind}-{os.getpid()}-{time.monotonic_ns()}"
    port = free_port()
    env = {**os.environ, "TRAWL_DATABASE_URL": url, "TRAWL_PORT": str(port), "TRAWL_HOST": "127.0.0.1",
           "TRAWL_ALLOW_PRIVATE_NETWORKS": "1", "TRAWL_AUTOSTART_WORKERS": "0",
           "TRAWL_MAX_WORKERS": str(args.workers), "TRAWL_RUN_DIR": str(work / f"run-{kind}"),
           "TRAWL_DEBUG_LOCK_TIMES": str(locks), "TRAWL_LOG_LEVEL": "warning",
           "TRAWL_WORKER_RECYCLE_PAGES": "0"}
    log = open(work / f"{kind}.log", "w")
    spawn = lambda *cmd: subprocess.Popen([sys.executable, "app.py", *cmd], cwd=app_dir, env=env,  # noqa: E731
                                          stdout=log, stderr=subprocess.STDOUT)
    subprocess.run([sys.executable, "app.py", "migrate"], cwd=app_dir, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    server = spawn("serve")
    workers = None
    api = Api(port)
    try:
        api.wait_ready(server, 30)
        create_in_a_row(api, 5)  # warm the web workers' pools
        idle = create_in_a_row(api, args.jobs)
        cancel_queued(url)  # the idle phase's jobs must not keep the workers from the crawl
        status, job = api.call("POST", "/api/jobs", {
            "urls": site.seeds(), "name": "during-crawl", "max_depth": 100,
            "max_pages": site.pages + len(site.hosts), "concurrency": 100,
            "per_host_connections": 8, "workers": args.workers})
        if status != 202:
            raise RuntimeError(f"crawl job refused: {status} {job}")
        crawl_id = job["id"]
        crawl_started = time.time()
        workers = spawn("workers", "--count", str(args.workers))
        wait_for(api, crawl_id, lambda j: j["pages"]["done"] >= args.warmup_pages, args.timeout)
        busy_from = time.time()
        busy = create_in_a_row(api, args.jobs)
        busy_until = time.time()
        cancel_queued(url, keep=crawl_id)
        done = wait_for(api, crawl_id, lambda j: j["status"] in ("completed", "failed", "cancelled"),
                        args.timeout)
        time.sleep(1.2)
        create_in_a_row(api, 10)  # makes each web process write its last lock-time samples
        row = job_row(url, crawl_id)
        elapsed = (row["finished_at"] or time.time()) - (row["started_at"] or crawl_started)
        return {
            "kind": kind, "idle": idle, "busy": busy,
            "pages": int(row["pages_done"]), "status": done["status"],
            "pages_per_s": int(row["pages_done"]) / elapsed if elapsed > 0 else 0.0,
            "locks_busy": read_lock_times(locks, busy_from, busy_until),
            "locks_crawl": read_lock_times(locks, crawl_started, row["finished_at"] or time.time()),
        }
    finally:
        if workers:
            stop(workers)
        stop(server)
        log.close()
        drop()
        shutil.rmtree(locks, ignore_errors=True)


def wait_for(api: Api, job_id: str, done, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, doc = api.call("GET", f"/api/jobs/{job_id}/progress")
        if status == 200 and done(doc):
            return doc
        time.sleep(0.25)
    raise RuntimeError(f"job {job_id} did not get there in {timeout:.0f} s")


def _database(url: str):
    from trawl.store import open_database

    return open_database(url)


def cancel_queued(url: str, keep: str = "") -> None:
    db = _database(url)
    with db.read() as s:
        s.execute("UPDATE jobs SET status = 'cancelled', version = version + 1 "
                  "WHERE status = 'queued' AND id <> ?", (keep,))
    db.close()


def job_row(url: str, job_id: str) -> dict:
    db = _database(url)
    with db.read() as s:
        row = s.one("SELECT pages_done, started_at, finished_at FROM jobs WHERE id = ?", (job_id,))
    db.close()
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pages", type=int, default=20_000)
    p.add_argument("--hosts", type=int, default=8)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--warmup-pages", type=int, default=1000, help="pages done before the busy creations start")
    p.add_argument("--db", default="sqlite,mysql")
    p.add_argument("--app-dir", default=str(ROOT), help="the checkout to serve (default: this one)")
    p.add_argument("--timeout", type=float, default=900, help="per wait")
    p.add_argument("--port", type=int, default=0, help="nginx port (default: a free one)")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="trawl-during-crawl-"))
    work.chmod(0o755)
    try:
        site = generate(work / "site", args.pages, args.hosts, args.port or free_port())
        nginx = start_nginx(site, work)
        try:
            results = [run_database(kind, site, work, Path(args.app_dir), args) for kind in args.db.split(",")]
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
        print(f"\n{args.jobs} one-URL jobs in a row, idle and during a {args.pages}-page crawl "
              f"({args.hosts} hosts, {args.workers} workers); app: {args.app_dir}")
        for r in results:
            print(f"  {r['kind']:7s} idle {summary(r['idle'])}   during the crawl {summary(r['busy'])}   "
                  f"crawl {r['pages']} pages {r['status']}, {r['pages_per_s']:.0f} pages/s")
        for r in results:
            print_lock_table(f"{r['kind']}, while the jobs were created during the crawl", r["locks_busy"])
            print_lock_table(f"{r['kind']}, the whole crawl", r["locks_crawl"])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
