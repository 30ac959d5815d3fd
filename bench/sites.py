"""GET /api/jobs/<id>/sites latency on a big job: 20,000 sites and 1,000,000 pages, SQLite and MariaDB.

    .venv/bin/python bench/sites.py [--sites 20000] [--pages 1000000] [--db sqlite,mysql]
                                    [--requests 400]

The job's rows are written straight into the store (no crawl): pages spread
over the sites, each done, failed or skipped, and site rows whose counters
match them, in the states a broad crawl ends with. Then gunicorn
(gunicorn.conf.py, one web worker) serves the API and one keep-alive client
sends `--requests` requests per query shape, measuring each round trip:
the first page (`?limit=50`, the target), a page deep in the list, a state
filter, the sort by addresses, and the page's own call (counts included).
p50/p99 per shape. The counts by state are read once per job version (the
server keeps them per version); a last row bumps the version before every
request, as a running job does, so each one counts again.

`--commit-batches N` measures what the site rows add to a commit batch:
N batches of 100 outcomes (each with 10 new links and 2 addresses, spread
over 50 sites) through `frontier.commit_batch`, alternating blocks of 10
with the site bookkeeping switched on and off (patched out) on the same
database, so both see the same load. Nothing is asserted: this prints
tables. Bounded: the server has a start timeout and every request a 10 s
timeout.
"""

from __future__ import annotations

import argparse
import http.client
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.crawl import fresh_database  # noqa: E402

STATES = ("done",) * 80 + ("unreachable",) * 12 + ("blocked",) * 5 + ("crawling",) * 3


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fill(db, n_sites: int, n_pages: int) -> str:
    """One job with `n_sites` site rows and `n_pages` page rows whose counters agree."""
    from trawl.jobs import JobOptions
    from trawl.store import job_rows
    from trawl.urls import url_hash

    rng = random.Random(14)
    names = [f"company{i:05d}.com" for i in range(n_sites)]
    job_id = job_rows.insert_job(db, JobOptions(urls=[f"http://{n}/" for n in names[:100]],
                                                name="bench sites"))["id"]
    per_site = {n: [0, 0, 0] for n in names}
    state_of = {n: rng.choice(STATES) for n in names}
    columns = "job_id, url, url_hash, host, site, depth, state, http_status, bytes, fetched_at"
    insert = f"INSERT INTO pages ({columns}) VALUES ({', '.join('?' for _ in columns.split(','))})"
    batch, now = [], time.time()
    for i in range(n_pages):
        site = names[i % n_sites]
        state = "done" if state_of[site] in ("done", "crawling") else (
            "failed" if state_of[site] == "unreachable" else "skipped")
        per_site[site][("done", "failed", "skipped").index(state)] += 1
        url = f"http://www.{site}/p/{i}.html"
        batch.append((job_id, url, url_hash(url), f"www.{site}", site, 1, state,
                      200 if state == "done" else None, 15_000, now))
        if len(batch) == 5000:
            with db.transaction() as s:
                s.executemany(insert, batch)
            batch = []
    if batch:
        with db.transaction() as s:
            s.executemany(insert, batch)
    rows = []
    for site in names:
        done, failed, skipped = per_site[site]
        emails = rng.randint(0, 40) if done else 0
        error = {"unreachable": "curl error 7: Could not connect", "blocked": "disallowed by robots.txt"}.get(
            state_of[site])
        rows.append((job_id, site, f"http://{site}/", state_of[site], done + failed + skipped, done, failed,
                     skipped, done, skipped if state_of[site] == "blocked" else 0, emails, emails // 2, error))
    with db.transaction() as s:
        s.executemany(
            "INSERT INTO sites (job_id, site, seed, state, pages_discovered, pages_done, pages_failed, "
            "pages_skipped, pages_reached, pages_blocked, emails, own_emails, error) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        s.execute("UPDATE jobs SET status = 'completed', seeded = 1, pages_discovered = ?, "
                  "finished_at = ? WHERE id = ?", (n_pages, time.time(), job_id))
    return job_id


def measure(port: int, path: str, n: int, before=None) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    for i in range(n + 20):
        if before:
            before()  # not timed
        started = time.perf_counter()
        conn.request("GET", path.replace("{offset}", str(random.randrange(0, 19_950))))
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path}: HTTP {resp.status}")
        if i >= 20:  # the first requests warm the pool and the caches
            times.append((time.perf_counter() - started) * 1000)
    conn.close()
    return percentile(times, 0.5), percentile(times, 0.99)


def commit_cost(db, batches: int) -> dict[bool, list[float]]:
    """ms per commit_batch with (True) and without (False) the site bookkeeping."""
    from trawl.jobs import JobOptions
    from trawl.store import frontier, job_rows, sites
    from trawl.store.frontier import NewPage, PageOutcome
    from trawl.urls import url_hash

    job_id = job_rows.insert_job(db, JobOptions(urls=[f"http://s{i:02d}.com/" for i in range(50)],
                                                max_pages=1_000_000))["id"]
    frontier.expand_seeds(db, job_id)
    real = (frontier._record_sites, sites.last_page_id)
    times: dict[bool, list[float]] = {True: [], False: []}
    serial = 0
    for block in range(batches // 10):
        on = block % 2 == 0
        frontier._record_sites, sites.last_page_id = real if on else (lambda *a: None, lambda s: 0)
        for _ in range(10):
            claimed = frontier.claim_pages(db, job_id, "bench", 100, lease_s=60)
            outcomes = []
            for page in claimed:
                links = []
                for _ in range(10):
                    serial += 1
                    url = f"http://{page.site}/p/{serial}.html"
                    links.append(NewPage(url, url_hash(url), page.site, page.site, 1))
                serial += 1
                emails = {f"a{serial}@{page.site}": {"text"}, f"team@{page.site}": {"mailto"}}
                outcomes.append(PageOutcome(page, "done", 200, 15_000, None, links, emails))
            started = time.perf_counter()
            frontier.commit_batch(db, job_id, outcomes, 1_000_000)
            times[on].append((time.perf_counter() - started) * 1000)
    frontier._record_sites, sites.last_page_id = real
    return times


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sites", type=int, default=20_000)
    p.add_argument("--pages", type=int, default=1_000_000)
    p.add_argument("--db", default="sqlite,mysql")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--commit-batches", type=int, default=0, metavar="N",
                   help="measure the commit cost of the site rows instead (e.g. 400)")
    args = p.parse_args(argv)
    if args.commit_batches:
        return main_commit(args)

    from tests.conftest import start_server
    from trawl.store import open_database

    shapes = [
        ("?limit=50", "/sites?limit=50"),
        ("?limit=50&offset=random", "/sites?limit=50&offset={offset}"),
        ("?state=unreachable&limit=50", "/sites?state=unreachable&limit=50"),
        ("?sort=-emails&limit=50", "/sites?sort=-emails&limit=50"),
        ("job page (limit=25, counts)", "/sites?limit=25&offset=0&sort=site&counts=1"),
        ("baseline: /progress (one job row)", "/progress"),
    ]
    print(f"{args.sites:,} sites, {args.pages:,} pages; {args.requests} requests per row; "
          "round trips on one keep-alive connection")
    print(f"{'db':8} {'query':34} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in args.db.split(","):
        tmp = Path(tempfile.mkdtemp(prefix="trawl-bench-sites-"))
        url, drop = fresh_database(kind, tmp)
        db = open_database(url, migrate_now=True)
        try:
            started = time.monotonic()
            job_id = fill(db, args.sites, args.pages)
            if kind == "sqlite":
                # Fold the fill's write-ahead log into the file, as a server that ran
                # for a while has: readers of a huge WAL pay for it on every page.
                with db.read() as s:
                    s.all("PRAGMA wal_checkpoint(TRUNCATE)")
            print(f"{kind:8} (rows written in {time.monotonic() - started:.0f} s)")
            server = start_server(tmp, database_url=url)
            try:
                port = int(server.base.rsplit(":", 1)[1])
                for label, path in shapes:
                    p50, p99 = measure(port, f"/api/jobs/{job_id}{path}", args.requests)
                    print(f"{kind:8} {label:34} {p50:8.2f} {p99:8.2f}")

                def new_version():
                    with db.transaction() as s:
                        s.execute("UPDATE jobs SET version = version + 1 WHERE id = ?", (job_id,))

                # As while the job runs: every request sees a new version, so the
                # counts by state are read again (one walk of the job's sites).
                p50, p99 = measure(port, f"/api/jobs/{job_id}/sites?limit=50", args.requests // 4, new_version)
                print(f"{kind:8} {'?limit=50, new version each time':34} {p50:8.2f} {p99:8.2f}")
            finally:
                server.stop()
        finally:
            db.close()
            if drop:
                drop()
    return 0


def main_commit(args) -> int:
    from trawl.store import open_database

    print(f"commit_batch of 100 outcomes (10 new links, 2 addresses each), {args.commit_batches} batches, "
          "blocks of 10 alternating")
    print(f"{'db':8} {'sites':5} {'mean ms':>8} {'p50 ms':>8} {'p90 ms':>8}")
    for kind in args.db.split(","):
        tmp = Path(tempfile.mkdtemp(prefix="trawl-bench-commit-"))
        url, drop = fresh_database(kind, tmp)
        db = open_database(url, migrate_now=True)
        try:
            times = commit_cost(db, args.commit_batches)
        finally:
            db.close()
            if drop:
                drop()
        means = {}
        for on in (False, True):
            ms = times[on]
            means[on] = sum(ms) / len(ms)
            print(f"{kind:8} {'on' if on else 'off':5} {means[on]:8.2f} {percentile(ms, .5):8.2f} "
                  f"{percentile(ms, .9):8.2f}")
        print(f"{kind:8} site rows add {100 * (means[True] / means[False] - 1):+.1f} % per batch")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
