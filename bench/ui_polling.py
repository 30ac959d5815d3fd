"""UI polling under load: 100 job pages polling progress while the CPU is busy.

    .venv/bin/python -m bench.ui_polling [--tabs 100] [--moving-s 20] [--idle-s 60]
    .venv/bin/python -m bench.ui_polling --url http://127.0.0.1:8080 --database-url sqlite:///trawl.db

Without --url it starts its own gunicorn (gunicorn.conf.py, two gevent web
workers) on a free port with a temporary SQLite database, workers not
autostarted. One process per CPU core spins in a busy loop the whole time
(the stand-in for a crawl saturating the cores). Each simulated tab keeps its
own keep-alive connection and follows static/live.js exactly: If-None-Match
with the last ETag, next poll after 1 s when the version moved, 2 s for the
first 5 unchanged answers, then 5 s, and 10 s after 30.

Phase 1 (moving): a writer bumps the job's counters every 0.5 s, as workers
commit; figures: progress GET latency p50/p95/p99 and the share of 304s.
Phase 2 (idle): nothing changes; figures: share of 304s, and bytes per
minute per tab (request + response, headers included).

With `--crawl PAGES` the load is a real crawl instead of the burners: the
server autostarts its workers, which crawl a generated site of PAGES pages
on the local test website (tests/site.py) in this process; the tabs watch
that job while it moves, then a paused job (nothing changes) while the
crawl goes on.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import start_server  # noqa: E402
from tests.http import call  # noqa: E402


def burn(stop, nice: int = 0) -> None:
    os.nice(nice)
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 31 + 7) % 1_000_003


@dataclass
class Sample:
    phase: str
    latency_s: float
    status: int
    bytes_up: int
    bytes_down: int


@dataclass
class Tab:
    host: str
    port: int
    path: str
    phase: list  # shared one-element list: the current phase name
    stop: threading.Event
    samples: list = field(default_factory=list)
    etag: str | None = None
    unchanged: int = 0

    def delay(self, moved: bool) -> float:
        if moved:
            self.unchanged = 0
            return 1.0
        self.unchanged += 1
        return 2.0 if self.unchanged < 5 else 5.0 if self.unchanged < 30 else 10.0

    def request_bytes(self, headers: dict) -> int:
        lines = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept-Encoding: identity"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return len("\r\n".join(lines)) + 4

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self.stop.wait(random.uniform(0, 2))  # tabs were not all opened in the same millisecond
        while not self.stop.is_set():
            headers = {"Accept": "application/json", "Cache-Control": "no-cache"}
            if self.etag:
                headers["If-None-Match"] = self.etag
            phase = self.phase[0]
            started = time.perf_counter()
            try:
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.stop.wait(1.0)
                continue
            latency = time.perf_counter() - started
            head = len(f"HTTP/1.1 {resp.status} {resp.reason}\r\n") + 2
            head += sum(len(k) + len(v) + 4 for k, v in resp.getheaders())
            self.samples.append(Sample(phase, latency, resp.status, self.request_bytes(headers), head + len(body)))
            moved = resp.status == 200 and resp.getheader("ETag") != self.etag
            if resp.status == 200:
                self.etag = resp.getheader("ETag")
            self.stop.wait(self.delay(moved))
        conn.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(samples: list[Sample], phase: str, seconds: float, tabs: int) -> None:
    mine = [s for s in samples if s.phase == phase]
    if not mine:
        print(f"{phase}: no samples")
        return
    ms = [s.latency_s * 1000 for s in mine]
    n304 = sum(1 for s in mine if s.status == 304)
    other = sum(1 for s in mine if s.status not in (200, 304))
    per_tab_min = (sum(s.bytes_up + s.bytes_down for s in mine) / tabs) / (seconds / 60)
    down_min = (sum(s.bytes_down for s in mine) / tabs) / (seconds / 60)
    print(f"{phase:>7}: {len(mine)} GETs in {seconds:.0f} s ({len(mine) / seconds:.1f}/s), "
          f"p50 {percentile(ms, .50):.1f} ms, p95 {percentile(ms, .95):.1f} ms, "
          f"p99 {percentile(ms, .99):.1f} ms, max {max(ms):.1f} ms; "
          f"304s {n304 / len(mine):.1%}; errors {other}; "
          f"{per_tab_min:.0f} B/min per tab ({down_min:.0f} B/min down), "
          f"{len(mine) / tabs / (seconds / 60):.1f} polls/min per tab")


def server_side(log: Path) -> None:
    """p99 of the server's own handling time of progress GETs, by answer."""
    by_status: dict[str, list[float]] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        parts = line.split()
        if len(parts) == 3 and parts[0].endswith("/progress"):
            by_status.setdefault(parts[1], []).append(int(parts[2]) / 1000)
    for status, ms in sorted(by_status.items()):
        print(f"  server {status}: {len(ms)} answers, p50 {percentile(ms, .5):.1f} ms, "
              f"p99 {percentile(ms, .99):.1f} ms, max {max(ms):.1f} ms (time inside gunicorn)")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running server (default: start one)")
    p.add_argument("--database-url", help="its database, so the moving phase can write progress")
    p.add_argument("--tabs", type=int, default=100)
    p.add_argument("--moving-s", type=float, default=20)
    p.add_argument("--idle-s", type=float, default=60)
    p.add_argument("--burners", type=int, default=None, help="busy-loop processes (default: one per core, 0 with --crawl)")
    p.add_argument("--nice", type=int, default=0, help="niceness of the burners (what a niced worker pool would get)")
    p.add_argument("--crawl", type=int, default=0, metavar="PAGES", help="load the cores with a real crawl of this many pages")
    args = p.parse_args(argv)
    if args.burners is None:
        args.burners = 0 if args.crawl else (os.cpu_count() or 1)

    from trawl.store import job_rows, open_database

    tmp = Path(tempfile.mkdtemp(prefix="trawl-bench-ui-"))
    server = site = None
    if args.url:
        base, db_url = args.url.rstrip("/"), args.database_url
    else:
        crawl_env = {"TRAWL_AUTOSTART_WORKERS": "1", "TRAWL_ALLOW_PRIVATE_NETWORKS": "1"} if args.crawl else {}
        # The access log records the server's own time per request (%(D)s, microseconds),
        # which separates the server from the client's share of the busy CPU.
        server = start_server(tmp, TRAWL_WEB_WORKERS="2", TRAWL_LOG_LEVEL="warning",
                              TRAWL_ACCESS_LOG=str(tmp / "access.log"),
                              GUNICORN_CMD_ARGS="--access-logformat='%(U)s %(s)s %(D)s'", **crawl_env)
        base, db_url = server.base, server.database_url
    if args.crawl:
        from tests.site import TestSite, generate_site

        site = TestSite().start()
        generate_site(site, pages=args.crawl, seed=1)
    stop_burn = multiprocessing.Event()
    burners = [multiprocessing.Process(target=burn, args=(stop_burn, args.nice), daemon=True)
               for _ in range(args.burners)]
    stop = threading.Event()
    try:
        db = open_database(db_url) if db_url else None
        crawl_body = {"urls": [site.url("/")] if site else [], "name": "bench crawl", "max_depth": 100,
                      "max_pages": args.crawl or 1}
        if site:
            created = call("POST", base + "/api/jobs", crawl_body)
            idle = call("POST", base + "/api/jobs", {"urls": ["https://example.org/"], "name": "bench idle"})
            idle_path = f"/api/jobs/{idle.json()['id']}/progress"
            call("POST", base + f"/api/jobs/{idle.json()['id']}/pause")
        else:
            created = call("POST", base + "/api/jobs", {"urls": ["https://example.org/"], "name": "bench"})
        assert created.status == 202, created.body
        job_id = created.json()["id"]
        if db and not site:
            job_rows.apply_action(db, job_id, "start")
        for b in burners:
            b.start()
        parts = urlsplit(base)
        phase = ["moving" if db or site else "idle"]
        tabs = [Tab(parts.hostname, parts.port, f"/api/jobs/{job_id}/progress", phase, stop) for _ in range(args.tabs)]
        threads = [threading.Thread(target=t.run, daemon=True) for t in tabs]
        for t in threads:
            t.start()
        print(f"{args.tabs} polling tabs on {base}, {args.burners} CPU burner processes, job {job_id}")
        import psutil

        psutil.cpu_percent()  # starts the measurement window
        cpu: dict[str, float] = {}
        if site:
            crawls = [job_id]
            watch = {"moving": True}

            def keep_crawling() -> None:
                """A new crawl of the site whenever the last one ended: the cores stay busy."""
                while not stop.is_set():
                    doc = call("GET", base + f"/api/jobs/{crawls[-1]}/progress").json()
                    if doc["status"] in ("completed", "failed", "cancelled"):
                        crawls.append(call("POST", base + "/api/jobs", crawl_body).json()["id"])
                        if watch["moving"]:
                            for tab in tabs:
                                tab.path, tab.etag = f"/api/jobs/{crawls[-1]}/progress", None
                    stop.wait(0.5)

            threading.Thread(target=keep_crawling, daemon=True).start()
            started = time.monotonic()
            time.sleep(args.moving_s)
            moving_s = time.monotonic() - started
            cpu["moving"] = psutil.cpu_percent()
            watch["moving"] = False
            for tab in tabs:  # the tabs now watch a job where nothing happens
                tab.path, tab.etag, tab.unchanged = idle_path, None, 0
            phase[0] = "settle"  # longer than the slowest poll interval: every tab has its ETag
            time.sleep(11)
        elif db:
            done, until = 0, time.monotonic() + args.moving_s
            started = time.monotonic()
            while time.monotonic() < until:
                done += 5
                with db.transaction() as s:
                    s.execute("UPDATE jobs SET pages_discovered = ?, pages_done = ?, version = version + 1, "
                              "updated_at = ? WHERE id = ?", (done * 2, done, time.time(), job_id))
                time.sleep(0.5)
            moving_s = time.monotonic() - started
            cpu["moving"] = psutil.cpu_percent()
            phase[0] = "settle"  # let every tab see the last change before idle is measured
            time.sleep(3)
        phase[0] = "idle"
        psutil.cpu_percent()
        started = time.monotonic()
        time.sleep(args.idle_s)
        idle_s = time.monotonic() - started
        cpu["idle"] = psutil.cpu_percent()
        stop.set()
        for t in threads:
            t.join(timeout=35)
        samples = [s for t in tabs for s in t.samples]
        if db or site:
            report(samples, "moving", moving_s, args.tabs)
        report(samples, "idle", idle_s, args.tabs)
        if site:
            done = 0
            for crawl_id in crawls:
                doc = call("GET", base + f"/api/jobs/{crawl_id}/progress").json()
                done += doc["pages"]["done"]
                if doc["status"] not in ("completed", "failed", "cancelled"):
                    call("POST", base + f"/api/jobs/{crawl_id}/cancel")
            print(f"crawling all along: {len(crawls)} crawl jobs, {done} pages fetched")
        if server:
            server_side(tmp / "access.log")
        print("machine CPU busy: " + ", ".join(f"{k} phase {v:.0f} %" for k, v in cpu.items()))
        return 0
    finally:
        stop.set()
        stop_burn.set()
        for b in burners:
            b.join(timeout=5)
        if server:
            server.stop()
        if site:
            site.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
