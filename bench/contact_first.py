"""Contact pages first vs discovery order: addresses found within a page budget per site.

    .venv/bin/python bench/contact_first.py [--sites 500] [--pages 200] [--budget 20] [--workers 1]

The sites: `--sites` generated company sites of `--pages` pages each
(tests/site.py `contact_site`: a home page with 20-60 article links, nav
and footer, a blog, and the three addresses of the site only on a contact
page at depth 1 whose link is in the top nav or the footer, a team page
under /about at depth 2, and an imprint page at depth 3 whose URL is a
plain article URL, only its link text says "Impressum"). nginx serves them
as s<N>.localhost (libcurl resolves *.localhost to loopback), so each is
its own site; no robots.txt, no sitemap.

Two crawls of all sites, each one job: max_depth 3, max_pages_per_site
`--budget`, the same worker code; the discovery-order run gives every link
the same priority (the worker's `priority` replaced by a constant), so the
claim order falls back to page ids, i.e. the order links were found.
Reported: addresses found of all, sites with all three found, pages
fetched, time. Nothing is asserted. Bounded: each crawl has a timeout.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.crawl import fresh_database, reap, spawn, start_nginx_with, write_script  # noqa: E402
from tests.site import contact_site  # noqa: E402

WORKER = textwrap.dedent("""
    import signal, sys
    import trawl.worker
    from trawl.config import Settings
    from trawl.store import open_database
    from trawl.worker import Worker
    url, worker_id, order = sys.argv[1], sys.argv[2], sys.argv[3]
    if order == "discovery":
        trawl.worker.priority = lambda depth, score: 1  # every link alike: claims go by page id
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    settings = Settings(database_url=url, allow_private_networks=True)
    Worker(settings, open_database(url), worker_id, "bench").run(lambda: bool(stop), idle_exit_s=2.0)
""")


def write_sites(root: Path, sites: int, pages: int) -> dict[str, set[str]]:
    """Every page as <site>/<path>/index.html (so /about and /about/team can both exist)."""
    truth = {}
    for n in range(sites):
        generated = contact_site(seed=n, pages=pages, domain=f"s{n}-acme.com")
        truth[f"s{n}"] = generated.emails
        for path, html in generated.pages.items():
            directory = root / f"s{n}" / path.strip("/")
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "index.html").write_text(html)
    for directory in [root, *root.rglob("*")]:
        if directory.is_dir():
            directory.chmod(0o755)
    return truth


def start_nginx(root: Path, work: Path, port: int) -> subprocess.Popen:
    """One nginx serving site sN at sN.localhost from root/sN."""
    server = f"""
        server {{
            listen 127.0.0.1:{port};
            server_name ~^(?<site>s\\d+)\\.localhost$;
            root {root}/$site;
            location / {{ try_files $uri/index.html =404; }}
        }}"""
    return start_nginx_with(server, work, f"http://127.0.0.1:{port}/")


def crawl(order: str, truth: dict[str, set[str]], port: int, budget: int, workers: int, work: Path,
          timeout: float) -> dict:
    from trawl.jobs import JobOptions
    from trawl.store import job_rows, open_database, results

    url, drop = fresh_database("sqlite", work)
    try:
        db = open_database(url, migrate_now=True)
        seeds = [f"http://{site}.localhost:{port}/" for site in truth]
        options = JobOptions(urls=seeds, max_depth=3, max_pages=1_000_000, max_pages_per_site=budget,
                             concurrency=100, per_host_connections=4)
        job_id = job_rows.insert_job(db, options)["id"]
        script = write_script(work, WORKER)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [spawn([sys.executable, str(script), url, f"bench-{order}-{i}", order], env=env, cwd=ROOT)
                 for i in range(workers)]
        for proc, started in procs:
            reap(proc, started, timeout)
        job = job_rows.load_job(db, job_id)
        found = {e["email"] for e in results.iter_emails(db, job_id)}
        db.close()
    finally:
        drop()
    everything = set().union(*truth.values())
    complete = sum(1 for emails in truth.values() if emails <= found)
    elapsed = (job["finished_at"] or time.time()) - (job["started_at"] or time.time())
    return {"order": order, "found": len(found & everything), "of": len(everything),
            "share": len(found & everything) / len(everything), "sites_complete": complete,
            "pages_fetched": int(job["pages_done"]), "seconds": round(elapsed, 1), "status": job["status"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=18090)
    parser.add_argument("--timeout", type=float, default=900, help="per crawl")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trawl-contact-"))
    work.chmod(0o755)
    try:
        started = time.monotonic()
        truth = write_sites(work / "sites", args.sites, args.pages)
        print(f"{args.sites} sites x {args.pages} pages, 3 addresses each on pages at depth 1-3 "
              f"(written in {time.monotonic() - started:.1f} s); budget {args.budget} pages per site")
        nginx = start_nginx(work / "sites", work, args.port)
        try:
            rows = [crawl(order, truth, args.port, args.budget, args.workers, work, args.timeout)
                    for order in ("contact-first", "discovery")]
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
        print(f"{'order':14s} {'addresses found':>22s} {'sites with all 3':>17s} {'pages':>7s} {'seconds':>8s}  status")
        for r in rows:
            print(f"{r['order']:14s} {r['found']:>6d}/{r['of']:<6d} = {100 * r['share']:5.1f} % "
                  f"{r['sites_complete']:>10d}/{args.sites:<6d} {r['pages_fetched']:>7d} {r['seconds']:>8.1f}  {r['status']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
