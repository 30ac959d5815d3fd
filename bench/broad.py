"""Broad crawl: thousands of small sites, Trawl (as a user runs it) next to Scrapy's broad-crawl setup.

    .venv/bin/pip install -r bench/requirements.txt      # Scrapy, for the comparison only
    apt-get install -y nginx
    sudo .venv/bin/python bench/broad.py [--hosts 2000] [--runs trawl,scrapy,baseline --baseline-root ../main]
                                         [--scrapy-limit-s 900] [--timeout 1800]

The sites: `--hosts` names firm0000.com, firm0001.com ... mapped to
127.0.0.1 in a marked block of /etc/hosts (tests/etc_hosts.py adds it and
removes it, a stale one too), so every crawler resolves them through the
system resolver as it would real names. One nginx answers them all by
`Host`. Each site has 10 pages two levels deep: home, about, team,
contact, blog and five posts, with addresses as mailto links, plain text
and HTML entities; every tenth site's robots.txt disallows /private/
(which holds an address no crawler may report), every third site has no
robots.txt, the rest allow everything. Every home page links a PDF, a
.tar.gz and a PNG that a crawler should not fetch. nginx logs every
request, so fetches are counted at the server.

Trawl runs as its users run it: `python app.py serve` on a free port
with its own SQLite database, the jobs created by `POST /api/jobs`
(10,000 seeds at most per job, so --hosts 20000 makes two), max_depth 2 and
defaults otherwise; the server starts its workers itself. Its rate is
taken from the job rows (first start to last finish). Scrapy runs a
CrawlSpider with the settings of its "Broad Crawls" page (robots obeyed,
DEPTH_LIMIT=2, CONCURRENT_REQUESTS=100, 4 per domain, the downloader-aware
priority queue, no cookies, no retries), stopped after --scrapy-limit-s.

Printed per run: wall time, pages/s, the machine's CPU share (from
/proc/stat over the run), addresses found / expected, robots-forbidden
addresses reported, requests at the server (pages, binary files, repeats),
failed pages by reason, sites with no address; for Trawl also the mean
number of transfers in flight per worker while it had work (pages leased,
and its last claim found more), from the workers' log lines, against its
concurrency. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from crawl import reap, spawn, start_nginx_with, write_script  # noqa: E402

from tests.etc_hosts import hosts_block, remove_block  # noqa: E402

PAGES = ("/", "/about.html", "/team.html", "/contact.html", "/blog/",
         *(f"/blog/post-{n}.html" for n in range(1, 6)))
BINARIES = ("/files/brochure.pdf", "/files/source-1.0.tar.gz", "/img/logo.png")
FILLER = ("We build regional logistics software and publish notes on supply, quality, delivery "
          "and design for our customers and partners. ") * 12
MAX_SEEDS_PER_JOB = 10_000


# ---------------------------------------------------------------- the sites


@dataclass
class Sites:
    root: Path
    names: list[str]
    port: int
    emails: set[str] = field(default_factory=set)  # reachable, allowed
    forbidden: set[str] = field(default_factory=set)  # only on pages robots.txt disallows
    email_site: dict[str, str] = field(default_factory=dict)

    def seeds(self) -> list[str]:
        return [f"http://{name}:{self.port}/" for name in self.names]


def site_names(count: int) -> list[str]:
    width = max(4, len(str(count - 1)))
    return [f"firm{i:0{width}d}.com" for i in range(count)]


def page(title: str, links: list[str], body: str) -> str:
    nav = " ".join(f'<a href="{href}">{href}</a>' for href in links)
    return (f"<!doctype html><html><head><title>{title}</title></head><body><nav>{nav}</nav>"
            f"<h1>{title}</h1>{body}<p>{FILLER}</p></body></html>")


def generate(root: Path, count: int, port: int) -> Sites:
    sites = Sites(root, site_names(count), port)
    for i, name in enumerate(sites.names):
        d = root / name
        (d / "blog").mkdir(parents=True)
        blocked = i % 10 == 0
        people = {
            "contact": f"info@{name}",  # mailto
            "team": f"anna.berg{i}@{name}",  # text
            "about": f"sales@{name}",  # entities
            "post": f"press@{name}",  # text on post 3
        }
        nav = ["/", "/about.html", "/team.html", "/contact.html", "/blog/"]
        home_links = nav + list(BINARIES) + (["/private/staff.html"] if blocked else [])
        entity = people["about"].replace("@", "&#64;").replace(".", "&#46;")
        files = {
            "index.html": page(f"{name}", home_links, "<p>Welcome.</p>"),
            "about.html": page("About", nav, f"<p>Sales: {entity}</p>"),
            "team.html": page("Team", nav, f"<p>Anna Berg, {people['team']}</p>"),
            "contact.html": page("Contact", nav, f'<p><a href="mailto:{people["contact"]}">Write</a></p>'),
            "blog/index.html": page("Blog", nav + [f"/blog/post-{n}.html" for n in range(1, 6)], ""),
        }
        for n in range(1, 6):
            text = f"<p>Press: {people['post']}</p>" if n == 3 else "<p>News.</p>"
            files[f"blog/post-{n}.html"] = page(f"Post {n}", nav + [f"/blog/post-{n % 5 + 1}.html"], text)
        if blocked:
            (d / "private").mkdir()
            secret = f"hr-private{i}@{name}"
            files["private/staff.html"] = page("Staff", nav, f"<p>{secret}</p>")
            files["robots.txt"] = "User-agent: *\nDisallow: /private/\n"
            sites.forbidden.add(secret)
        elif i % 3 != 2:
            files["robots.txt"] = "User-agent: *\nAllow: /\n"
        for rel, text in files.items():
            (d / rel).write_text(text)
        for email in people.values():
            sites.emails.add(email)
            sites.email_site[email] = name
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    return sites


def start_nginx(sites: Sites, work: Path) -> subprocess.Popen:
    server = (f"server {{ listen 127.0.0.1:{sites.port} default_server; root {sites.root}/$host; "
              f"index index.html; access_log {work}/access.log counted buffer=256k flush=1s; }}")
    log_format = "log_format counted '$host $request_uri $status';"
    return start_nginx_with(server, work, f"http://127.0.0.1:{sites.port}/", http_extra=log_format)


class AccessLog:
    """Requests nginx answered since `mark()`: per (host, path), binaries, repeats."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def mark(self) -> None:
        time.sleep(1.2)  # nginx flushes its buffer every second
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def since_mark(self) -> dict:
        time.sleep(1.2)
        hits: collections.Counter = collections.Counter()
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            for line in f.read().decode("utf-8", "replace").splitlines():
                parts = line.split()
                if len(parts) == 3:
                    hits[(parts[0], parts[1].split("?")[0])] += 1
        pages = {k: n for k, n in hits.items() if k[1] in PAGES}
        return {
            "page_requests": sum(pages.values()),
            "distinct_pages": len(pages),
            "repeated": sum(n - 1 for n in pages.values()),
            "binary_requests": sum(n for k, n in hits.items() if k[1] in BINARIES),
            "private_requests": sum(n for k, n in hits.items() if k[1].startswith("/private/")),
            "robots_requests": sum(n for k, n in hits.items() if k[1] == "/robots.txt"),
        }


# ---------------------------------------------------------------- measuring the machine


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def cpu_share(start: tuple[int, int], end: tuple[int, int]) -> float:
    total = end[1] - start[1]
    return (end[0] - start[0]) / total if total else 0.0


# ---------------------------------------------------------------- Trawl

IN_FLIGHT_LINE = re.compile(r"visit of job (\S+): (\d+) pages in ([\d.]+) s, ([\d.]+) in flight on average "
                            r"while it had work \(([\d.]+) s\), concurrency (\d+)")


def http_json(url: str, body: dict | None = None, timeout: float = 30) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_trawl(sites: Sites, work: Path, timeout: float, log: AccessLog, root: Path = ROOT) -> dict:
    port = free_port()
    run_dir = work / f"trawl-run-{port}"
    env = {**os.environ, "TRAWL_HOST": "127.0.0.1", "TRAWL_PORT": str(port),
           "TRAWL_DATABASE_URL": f"sqlite:///{work / f'trawl-{port}.db'}", "TRAWL_RUN_DIR": str(run_dir),
           "TRAWL_ALLOW_PRIVATE_NETWORKS": "1", "TRAWL_LOG_LEVEL": "info"}
    base = f"http://127.0.0.1:{port}"
    with open(work / "trawl-server.log", "wb") as out:
        server = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=root, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: http_json(base + "/api/stats", timeout=2), 30, "the Trawl server")
        log.mark()
        cpu0, wall0 = cpu_ticks(), time.monotonic()
        seeds = sites.seeds()
        job_ids = []
        for start in range(0, len(seeds), MAX_SEEDS_PER_JOB):
            chunk = seeds[start:start + MAX_SEEDS_PER_JOB]
            job = http_json(base + "/api/jobs", {"urls": chunk, "max_depth": 2,
                                                 "max_pages": min(1_000_000, 20 * len(chunk))})
            job_ids.append(job["id"])
        jobs = wait_for_jobs(base, job_ids, timeout)
        wall, cpu = time.monotonic() - wall0, cpu_share(cpu0, cpu_ticks())
        served = log.since_mark()
        found = set()
        failures: collections.Counter = collections.Counter()
        for job_id in job_ids:
            found |= emails_of(base, job_id)
            failures.update(failure_reasons(base, job_id))
        started = min(j["started_at_ts"] for j in jobs)
        finished = max(j["finished_at_ts"] or time.time() for j in jobs)
        pages = sum(j["pages"]["done"] for j in jobs)
        result = summary("trawl" if root == ROOT else f"trawl ({root})", pages, finished - started, wall, cpu, found, sites, served, failures,
                         note=",".join(sorted({j["status"] for j in jobs})))
        result["in_flight"] = in_flight_view(run_dir)
        return result
    finally:
        stop_trawl(server, run_dir)


def wait_for(probe, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer within {timeout} s")
            time.sleep(0.2)


def wait_for_jobs(base: str, job_ids: list[str], timeout: float) -> list[dict]:
    from datetime import datetime

    deadline = time.monotonic() + timeout
    while True:
        jobs = [http_json(f"{base}/api/jobs/{job_id}") for job_id in job_ids]
        if all(j["status"] in ("completed", "failed", "cancelled") for j in jobs) or time.monotonic() > deadline:
            for j in jobs:
                for key in ("started_at", "finished_at"):
                    j[key + "_ts"] = datetime.fromisoformat(j[key].replace("Z", "+00:00")).timestamp() \
                        if j.get(key) else None
            return jobs
        time.sleep(0.5)


def emails_of(base: str, job_id: str) -> set[str]:
    found, offset = set(), 0
    while True:
        batch = http_json(f"{base}/api/jobs/{job_id}/emails?limit=1000&offset={offset}")["emails"]
        found.update(e["email"] for e in batch)
        if len(batch) < 1000:
            return found
        offset += len(batch)


def failure_reasons(base: str, job_id: str) -> collections.Counter:
    reasons: collections.Counter = collections.Counter()
    offset = 0
    while True:
        batch = http_json(f"{base}/api/jobs/{job_id}/pages?state=failed&limit=1000&offset={offset}")["pages"]
        reasons.update(_reason(p["error"]) for p in batch)
        if len(batch) < 1000:
            return reasons
        offset += len(batch)


def _reason(error: str | None) -> str:
    # "curl error 28: Resolving timed out after 10000 milliseconds" -> without the number
    return re.sub(r"\d{3,}", "N", error or "?")[:80]


def in_flight_view(run_dir: Path) -> str:
    leased_s = weighted = 0.0
    concurrency = 0
    visits = 0
    for path in run_dir.glob("*.log*"):
        for match in IN_FLIGHT_LINE.finditer(path.read_text(errors="replace")):
            seconds, mean = float(match.group(5)), float(match.group(4))
            leased_s += seconds
            weighted += seconds * mean
            concurrency = int(match.group(6))
            visits += 1
    if not leased_s:
        return "no visit lines in the workers' log"
    mean = weighted / leased_s
    return (f"{mean:.1f} of {concurrency} ({mean / concurrency:.0%}) over {visits} job visits, "
            f"{leased_s:.0f} worker-seconds with work to do")


def stop_trawl(server: subprocess.Popen, run_dir: Path) -> None:
    with_pids = list(run_dir.glob("supervisor-*.lock")) if run_dir.exists() else []
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    # The supervisor runs in a session of its own; its pid is in its lock file.
    for lock in with_pids:
        try:
            pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
            continue
        if pid > 0:
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                try:
                    os.killpg(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)


# ---------------------------------------------------------------- Scrapy

SPIDER = textwrap.dedent("""
    import html, json, re, time
    from scrapy.linkextractors import LinkExtractor
    from scrapy.spiders import CrawlSpider, Rule

    EMAIL = re.compile(r"[A-Za-z0-9._%%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}")

    class BroadSpider(CrawlSpider):
        name = "broad"
        start_urls = json.load(open(%r))
        rules = (Rule(LinkExtractor(), callback="parse_page", follow=True),)
        custom_settings = {
            # Scrapy's documented broad-crawl settings, and the issue's numbers.
            "ROBOTSTXT_OBEY": True,
            "DEPTH_LIMIT": 2,
            "CONCURRENT_REQUESTS": 100,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 4,
            "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.DownloaderAwarePriorityQueue",
            "REACTOR_THREADPOOL_MAXSIZE": 20,
            "COOKIES_ENABLED": False,
            "RETRY_ENABLED": False,
            "DOWNLOAD_TIMEOUT": 15,
            "LOG_LEVEL": "WARNING",
            "CLOSESPIDER_TIMEOUT": %d,
            "TELNETCONSOLE_ENABLED": False,
        }

        def parse_start_url(self, response):
            return self.parse_page(response)

        def parse_page(self, response):
            text = html.unescape(response.text)
            for email in set(EMAIL.findall(text)):
                yield {"email": email.lower()}

        def closed(self, reason):
            stats = self.crawler.stats.get_stats()
            with open(%r, "w") as out:
                json.dump({"pages": stats.get("response_received_count", 0), "reason": reason,
                           "elapsed": time.time() - stats["start_time"].timestamp(),
                           "errors": {k: v for k, v in stats.items() if "exception_type_count" in k}}, out)
""")


def run_scrapy(sites: Sites, work: Path, limit_s: int, log: AccessLog) -> dict | None:
    try:
        import scrapy  # noqa: F401
    except ImportError:
        print("scrapy not installed (pip install -r bench/requirements.txt): skipped")
        return None
    seeds, stats, items = work / "seeds.json", work / "scrapy-stats.json", work / "scrapy-items.jsonl"
    seeds.write_text(json.dumps(sites.seeds()))
    spider = write_script(work, SPIDER % (str(seeds), limit_s, str(stats)))
    log.mark()
    cpu0 = cpu_ticks()
    with open(work / "scrapy.log", "wb") as out:
        usage = reap(*spawn([sys.executable, "-m", "scrapy", "runspider", str(spider), "-o", f"{items}:jsonlines"],
                            cwd=work, stdout=out, stderr=subprocess.STDOUT), timeout=limit_s + 120)
    cpu = cpu_share(cpu0, cpu_ticks())
    served = log.since_mark()
    result = json.loads(stats.read_text())
    found = {json.loads(line)["email"] for line in items.read_text().splitlines() if line} if items.exists() else set()
    failures = collections.Counter({k.rsplit("/", 1)[-1]: v for k, v in result["errors"].items()})
    # Scrapy counts robots.txt responses as responses too.
    pages = max(0, result["pages"] - served["robots_requests"])
    return summary("scrapy", pages, result["elapsed"], usage.wall_s, cpu, found, sites, served, failures,
                   note=result["reason"])


# ---------------------------------------------------------------- report


def summary(name: str, pages: int, elapsed: float, wall: float, cpu: float, found: set[str], sites: Sites,
            served: dict, failures: collections.Counter, note: str = "") -> dict:
    sites_found = {sites.email_site[e] for e in found & sites.emails}
    return {
        "run": name,
        "pages": pages,
        "seconds": round(elapsed, 1),
        "wall_s": round(wall, 1),
        "pages_per_s": round(pages / elapsed, 1) if elapsed > 0 else 0.0,
        "machine_cpu": f"{cpu:.0%}",
        "emails": f"{len(found & sites.emails)}/{len(sites.emails)}",
        "forbidden_reported": len(found & sites.forbidden),
        "sites_without_address": len(sites.names) - len(sites_found),
        "served": served,
        "failed_by_reason": dict(failures.most_common(10)),
        "note": note,
    }


def print_result(result: dict) -> None:
    print(f"\n== {result['run']}")
    for key, value in result.items():
        if key != "run":
            print(f"  {key:22s} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--runs", default="trawl,scrapy")
    parser.add_argument("--scrapy-limit-s", type=int, default=900)
    parser.add_argument("--timeout", type=float, default=1800, help="per Trawl run")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--baseline-root", type=Path, default=None,
                        help="another checkout (e.g. the main branch) that the run 'baseline' starts")
    args = parser.parse_args()
    if remove_block():
        print("removed a stale trawl-issue-9 block from /etc/hosts")
    work = Path(tempfile.mkdtemp(prefix="trawl-broad-"))
    work.chmod(0o755)
    try:
        t = time.monotonic()
        sites = generate(work / "sites", args.hosts, free_port())
        print(f"{args.hosts} sites, {len(sites.emails)} reachable addresses, {len(sites.forbidden)} behind "
              f"robots.txt (generated in {time.monotonic() - t:.1f} s); work dir {work}")
        with hosts_block(sites.names):
            nginx = start_nginx(sites, work)
            log = AccessLog(work / "access.log")
            try:
                results = []
                for run in args.runs.split(","):
                    if run == "trawl":
                        results.append(run_trawl(sites, work, args.timeout, log))
                    elif run == "baseline":
                        if not args.baseline_root:
                            sys.exit("--runs baseline needs --baseline-root")
                        results.append(run_trawl(sites, work, args.timeout, log, args.baseline_root.resolve()))
                    elif run == "scrapy":
                        results.append(run_scrapy(sites, work, args.scrapy_limit_s, log))
                    if results and results[-1]:
                        print_result(results[-1])
                rates = {r["run"]: r["pages_per_s"] for r in results if r}
                if rates.get("scrapy"):
                    for name, rate in rates.items():
                        if name != "scrapy":
                            print(f"\n{name} / scrapy pages/s: {rate / rates['scrapy']:.2f}x")
            finally:
                nginx.terminate()
                nginx.wait(timeout=10)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
