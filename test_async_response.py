#!/usr/bin/env python3
"""Load script: how fast does a running Trawl server accept jobs under concurrency?

N concurrent clients (default 50) create M jobs (default 2,000) against a
running server, optionally while K SSE streams stay open and while one more
client polls a job's progress. Prints p50/p95/p99/max of the creation time
as the client sees it (connect to last body byte), the share of responses
with the promised headers (202, Content-Length, Connection: close,
Location), the progress-GET latency measured during the load, and the time
to create one 10,000-URL job. Exits non-zero if any request failed.

It is not a test (pytest collects only tests/); run it against `make run`:
    python test_async_response.py --clients 50 --jobs 2000 --streams 200
It only targets loopback addresses and stops after --max-seconds.

    python test_async_response.py --during-crawl [--pages 20000] [--db sqlite,mysql] ...
starts its own servers instead: one client creates 200 one-URL jobs in a
row, idle and during a crawl by 4 workers of a local nginx site, on SQLite
and MariaDB, and prints p50/p99/max, the crawl's pages/s and the lock-hold
table (bench/during_crawl.py, whose options it takes).
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import socket
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


class Target:
    def __init__(self, base: str, token: str | None):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname, parts.port or 80
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 30):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={**self.headers, **(headers or {})})
            resp = conn.getresponse()
            data = resp.read()
            return resp, data
        finally:
            conn.close()


def create_one(target: Target, body: bytes) -> tuple[float, bool, str | None]:
    """(seconds, headers correct, error)."""
    started = time.perf_counter()
    try:
        resp, data = target.request("POST", "/api/jobs", body, {"Content-Type": "application/json"})
    except Exception as exc:
        return time.perf_counter() - started, False, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - started
    if resp.status != 202:
        return elapsed, False, f"HTTP {resp.status}: {data[:200]!r}"
    ok = (
        resp.getheader("Content-Length") == str(len(data))
        and (resp.getheader("Connection") or "").lower() == "close"
        and (resp.getheader("Location") or "").startswith("/api/jobs/")
        and json.loads(data).get("status") == "queued"
    )
    return elapsed, ok, None


def run_creators(target: Target, clients: int, jobs: int, deadline: float) -> tuple[list[float], int, list[str]]:
    body = json.dumps({"urls": ["http://127.0.0.1:9/"], "name": "load"}).encode()
    times: list[float] = []
    good = 0
    errors: list[str] = []
    lock = threading.Lock()
    remaining = [jobs]

    def client():
        nonlocal good
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            elapsed, ok, error = create_one(target, body)
            with lock:
                times.append(elapsed)
                good += ok
                if error:
                    errors.append(error)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 5)
    return times, good, errors


def open_streams(target: Target, job_id: str, count: int) -> list[socket.socket]:
    """K raw SSE connections that stay open; we read their first bytes only."""
    socks = []
    for _ in range(count):
        s = socket.create_connection((target.host, target.port), timeout=10)
        auth = "".join(f"{k}: {v}\r\n" for k, v in target.headers.items())
        s.sendall(f"GET /api/jobs/{job_id}/events HTTP/1.1\r\nHost: {target.host}:{target.port}\r\nAccept: text/event-stream\r\n{auth}\r\n".encode())
        socks.append(s)
    for s in socks:
        s.recv(4096)  # headers and the first event: the stream is live
    return socks


def poll_progress(target: Target, job_id: str, stop: threading.Event, out: list[float], errors: list[str]):
    while not stop.is_set():
        started = time.perf_counter()
        try:
            resp, _ = target.request("GET", f"/api/jobs/{job_id}/progress")
            if resp.status != 200:
                errors.append(f"progress HTTP {resp.status}")
        except Exception as exc:
            errors.append(f"progress {type(exc).__name__}: {exc}")
        out.append(time.perf_counter() - started)
        time.sleep(0.02)


def time_big_create(target: Target) -> tuple[float, str | None]:
    body = json.dumps({"urls": [f"http://h{i}.invalid/page" for i in range(10_000)], "name": "10k"}).encode()
    elapsed, _, error = create_one(target, body)
    return elapsed, error


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def main(argv: list[str]) -> int:
    if "--during-crawl" in argv:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench"))
        import during_crawl

        return during_crawl.main([a for a in argv if a != "--during-crawl"])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--streams", type=int, default=0, help="SSE streams kept open during the load")
    p.add_argument("--token", default=None, help="TRAWL_API_TOKEN of the server, if set")
    p.add_argument("--max-seconds", type=float, default=300)
    args = p.parse_args(argv)

    target = Target(args.url, args.token)
    try:
        if not ipaddress.ip_address(socket.gethostbyname(target.host)).is_loopback:
            print("refusing: this script only loads servers on this machine (127.0.0.0/8)", file=sys.stderr)
            return 2
    except OSError as exc:
        print(f"cannot resolve {target.host}: {exc}", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.max_seconds

    _, _, error = create_one(target, json.dumps({"urls": ["http://127.0.0.1:9/"], "name": "probe"}).encode())
    if error:
        print(f"server not usable at {args.url}: {error}", file=sys.stderr)
        return 1
    probe_resp, probe_body = target.request("GET", "/api/jobs?limit=1")
    probe_id = json.loads(probe_body)["jobs"][0]["id"]

    streams = open_streams(target, probe_id, args.streams) if args.streams else []
    stop = threading.Event()
    progress_times: list[float] = []
    progress_errors: list[str] = []
    poller = threading.Thread(target=poll_progress, args=(target, probe_id, stop, progress_times, progress_errors))
    poller.start()
    wall = time.perf_counter()
    times, good, errors = run_creators(target, args.clients, args.jobs, deadline)
    wall = time.perf_counter() - wall
    stop.set()
    poller.join()
    big, big_error = time_big_create(target)
    for s in streams:
        s.close()

    errors += progress_errors + ([big_error] if big_error else [])
    print(f"target            {args.url}  clients={args.clients} jobs={len(times)}/{args.jobs} sse_streams={args.streams}")
    print(f"create latency    p50 {ms(percentile(times, 50))}  p95 {ms(percentile(times, 95))}  "
          f"p99 {ms(percentile(times, 99))}  max {ms(max(times, default=0))}")
    print(f"throughput        {len(times) / wall:.0f} jobs/s over {wall:.1f} s")
    print(f"correct headers   {good}/{len(times)} ({100 * good / max(1, len(times)):.1f} %)")
    if progress_times:
        print(f"progress GET      p50 {ms(percentile(progress_times, 50))}  p99 {ms(percentile(progress_times, 99))}  "
              f"mean {ms(statistics.fmean(progress_times))}  (n={len(progress_times)}, during the load)")
    print(f"10,000-URL create {ms(big)}")
    if len(times) < args.jobs:
        errors.append(f"only {len(times)} of {args.jobs} jobs created before --max-seconds")
    if errors:
        print(f"FAILED: {len(errors)} errors, first: {errors[0]}", file=sys.stderr)
        return 1
    return 0 if good == len(times) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
