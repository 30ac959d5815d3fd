"""Crawl throughput: Trawl (1 and 2 workers, SQLite and MariaDB) next to Scrapy and a bare CurlMulti loop.

    .venv/bin/pip install -r bench/requirements.txt      # Scrapy, for the comparison only
    apt-get install -y nginx                             # the fast local server
    .venv/bin/python bench/crawl.py [--pages 20000] [--hosts 8] [--db sqlite,mysql]
                                    [--runs trawl1,trawl2,scrapy,bare] [--scrapy-limit-s 60]
                                    [--profile]

The site: `--pages` static pages of ~15 KB with ~20 links and 0-3 addresses
each (plain text or mailto:), split over `--hosts` loopback addresses
(127.0.0.2, 127.0.0.3, ...), each host a self-contained site reachable from
its "/". nginx (one worker process, no access log) serves the files, so the
server is not the bottleneck; the ground truth comes from the generator.

Every crawler runs in its own process(es), measured by the kernel (wait4):
wall time, CPU seconds (user + system), peak RSS. Trawl's pages/s is taken
from the job row (started_at → finished_at), so process start-up is not
counted against it; its CPU is the whole process's, start-up included.
Scrapy runs "as its users write it": a spider following every <a href>
with `response.follow`, Scrapy's own dupe filter, CONCURRENT_REQUESTS=100,
no delay, one email regex; it is stopped after --scrapy-limit-s seconds
(CLOSESPIDER_TIMEOUT) and its rate is over the pages it fetched by then.
The bare loop is the ceiling: pycurl CurlMulti, two regexes, a set(), no
database, no robots.txt, no per-host politeness, no SSRF checks.

--profile runs one Trawl worker on SQLite under cProfile and prints where
its time goes, with the Bloom filter's share of it.

--tls crawls the same site three times with one Trawl worker, side by side:
plain HTTP, HTTPS with HTTP/2 (ALPN) and HTTPS with HTTP/1.1 only, from the
same nginx (a CA and a certificate for the loopback hosts are made for the
run with tests/tls.py and handed to the worker as its CA bundle). nginx's
access log of each run gives the connection reuse: TCP/TLS connections
("sessions") per host, requests per connection, the protocol, and how many
TLS handshakes resumed a session.

    .venv/bin/python bench/crawl.py --tls [--pages 5000] [--hosts 8] [--db sqlite]

Nothing is asserted: this prints a table. Bounded: every run has a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGE_BYTES = 15_000
LINKS_PER_PAGE = 20
FIRST, LAST = ("anna", "ben", "carla", "dmitri", "eva", "farid", "grace", "hiro"), (
    "berg", "costa", "dubois", "fischer", "garcia", "huang", "jensen", "kowalski")
DOMAINS = ("acme-widgets.com", "northwind-traders.org", "contoso-labs.net", "fabrikam.de")
WORDS = ("our team publishes quarterly reports on regional logistics supply archive notes editors "
         "service product customer support quality delivery price order design project office").split()
EMAIL_REGEX = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"


# ---------------------------------------------------------------- the site


@dataclass
class Site:
    root: Path
    hosts: list[str]
    port: int
    pages: int
    emails: set[str]

    def seeds(self, scheme: str = "http", port: int | None = None) -> list[str]:
        return [f"{scheme}://{host}:{port or self.port}/" for host in self.hosts]


def generate(root: Path, pages: int, hosts: int, port: int, seed: int = 1) -> Site:
    rng = random.Random(seed)
    names = [f"127.0.0.{2 + i}" for i in range(hosts)]
    per_host = [pages // hosts + (1 if i < pages % hosts else 0) for i in range(hosts)]
    pool = sorted({f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(10_000)}@{rng.choice(DOMAINS)}"
                   for _ in range(pages)})
    emails: set[str] = set()
    filler = " ".join(rng.choice(WORDS) for _ in range(4000))
    for host, count in zip(names, per_host):
        directory = root / host / "p"
        directory.mkdir(parents=True)
        fanout = 5
        for n in range(count):
            children = [c for c in range(n * fanout + 1, n * fanout + fanout + 1) if c < count]
            targets = children + [rng.randrange(count) for _ in range(LINKS_PER_PAGE - len(children))]
            found = rng.sample(pool, rng.randint(0, 3))
            emails.update(found)
            body = [f"<!doctype html><html><head><title>Page {n}</title></head><body>",
                    '<nav><a href="/">Home</a> <a href="/#top">Top</a></nav>']
            for t in targets:
                if t == 0:
                    href = "/"
                elif n == 0 or rng.random() < 0.7:
                    href = f"/p/{t}.html"
                else:
                    href = f"{t}.html"  # relative to /p/
                body.append(f'<p><a href="{href}">Page {t}</a></p>')
            for email in found:
                body.append(f'<p>Write to <a href="mailto:{email}">us</a>.</p>' if rng.random() < 0.5
                            else f"<p>Contact: {email}</p>")
            size = sum(len(part) for part in body)
            start = rng.randrange(len(filler) // 2)
            body.append(f"<p>{filler[start:start + max(0, PAGE_BYTES - size - 30)]}</p></body></html>")
            path = root / host / ("index.html" if n == 0 else f"p/{n}.html")
            path.write_text("\n".join(body))
    for directory in [root, *root.rglob("*")]:
        if directory.is_dir():
            directory.chmod(0o755)
    return Site(root, names, port, pages, emails)


# --tls: ports above --port: plain, TLS with h2, TLS with HTTP/1.1 only.
TLS_H2, TLS_H1 = 1, 2
ACCESS_FORMAT = "log_format reuse '$host $connection $connection_requests $server_protocol $ssl_session_reused';"


def start_nginx(site: Site, work: Path, cert=None) -> subprocess.Popen:
    servers = "\n".join(
        f"server {{ listen {host}:{site.port}; root {site.root / host}; index index.html; "
        f"{'' if cert is None else f'access_log {work}/access-{site.port}.log reuse;'} }}"
        for host in site.hosts)
    if cert is not None:
        for offset, h2 in ((TLS_H2, " http2"), (TLS_H1, "")):
            port = site.port + offset
            servers += "\n" + "\n".join(
                f"server {{ listen {host}:{port} ssl{h2}; root {site.root / host}; index index.html; "
                f"ssl_certificate {cert.cert}; ssl_certificate_key {cert.key}; "
                f"ssl_session_cache shared:tls{offset}:10m; access_log {work}/access-{port}.log reuse; }}"
                for host in site.hosts)
        servers = ACCESS_FORMAT + "\n" + servers
    return start_nginx_with(servers, work, site.seeds()[0])


def start_nginx_with(servers: str, work: Path, probe_url: str, http_extra: str = "") -> subprocess.Popen:
    """nginx (one worker process) with these `server` blocks; returns once `probe_url` answers."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        sys.exit("nginx is needed: apt-get install -y nginx")
    conf = work / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""
        worker_processes 1;
        pid {work}/nginx.pid;
        error_log {work}/nginx-error.log warn;
        events {{ worker_connections 4096; }}
        http {{
            access_log off;
            sendfile on;
            tcp_nodelay on;
            keepalive_requests 100000;
            default_type text/html;
            client_body_temp_path {work}/tmp;
            proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
            uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
            {http_extra}
            {servers}
        }}
    """))
    (work / "tmp").mkdir(exist_ok=True)
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work), "-g", "daemon off;"])
    import urllib.request
    deadline = time.monotonic() + 10
    while True:
        try:
            # Our nginx writes its pid file once it holds the ports; without
            # that check another bench's nginx on the same port would answer
            # and be measured instead (it happened: pass another --port).
            if not (work / "nginx.pid").exists():
                raise OSError("nginx is not listening yet")
            urllib.request.urlopen(probe_url, timeout=1).read()
            return proc
        except urllib.error.HTTPError:
            return proc  # it answers
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"nginx did not start: {(work / 'nginx-error.log').read_text()}")
            time.sleep(0.1)


# ---------------------------------------------------------------- measuring processes


@dataclass
class Usage:
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    returncode: int


def spawn(cmd: list[str], **kwargs) -> tuple[subprocess.Popen, float]:
    return subprocess.Popen(cmd, **kwargs), time.monotonic()


def reap(proc: subprocess.Popen, started: float, timeout: float) -> Usage:
    """wait4 the process: its own CPU time and peak RSS, measured by the kernel."""
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return Usage(time.monotonic() - started, usage.ru_utime + usage.ru_stime,
                         usage.ru_maxrss / 1024, proc.returncode)
        if time.monotonic() > deadline:
            proc.send_signal(signal.SIGTERM if time.monotonic() < deadline + 20 else signal.SIGKILL)
        time.sleep(0.05)


# ---------------------------------------------------------------- Trawl


WORKER = textwrap.dedent("""
    import signal, sys
    from trawl.config import Settings
    from trawl.store import open_database
    from trawl.worker import Worker
    url, worker_id = sys.argv[1], sys.argv[2]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    settings = Settings(database_url=url, allow_private_networks=True,
                        ca_bundle=sys.argv[3] if len(sys.argv) > 3 else "")
    Worker(settings, open_database(url), worker_id, "bench").run(lambda: bool(stop), idle_exit_s=1.0)
""")


def fresh_database(kind: str, work: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        path = work / f"bench-{secrets.token_hex(3)}.db"
        return f"sqlite:///{path}", lambda: [p.unlink() for p in work.glob(path.name + "*")]
    import pymysql

    name = f"trawl_bench_{secrets.token_hex(4)}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    def drop():
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")

    return f"mysql://root:@127.0.0.1:3306/{name}", drop


def run_trawl(site: Site, kind: str, workers: int, work: Path, timeout: float, profile: Path | None = None,
              seeds: list[str] | None = None, ca_bundle: str = "", label: str = "") -> dict:
    from trawl.jobs import JobOptions
    from trawl.store import job_rows, open_database, results

    url, drop = fresh_database(kind, work)
    try:
        db = open_database(url, migrate_now=True)
        options = JobOptions(urls=seeds or site.seeds(), max_depth=100, max_pages=site.pages + len(site.hosts),
                             concurrency=100, per_host_connections=8)
        job_id = job_rows.insert_job(db, options)["id"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        script = write_script(work, WORKER)
        prefix = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
        extra = [ca_bundle] if ca_bundle else []
        procs = [spawn(prefix + [str(script), url, f"bench-{i}", *extra], env=env, cwd=ROOT) for i in range(workers)]
        usages = [reap(p, t, timeout) for p, t in procs]
        job = job_rows.load_job(db, job_id)
        emails = {e["email"] for e in results.iter_emails(db, job_id)}
        elapsed = (job["finished_at"] or time.time()) - (job["started_at"] or time.time())
        db.close()
        return row(label or f"trawl {workers}w {kind}", int(job["pages_done"]), elapsed, usages, emails, site,
                   note=job["status"])
    finally:
        drop()


def write_script(work: Path, text: str) -> Path:
    path = work / f"script-{secrets.token_hex(3)}.py"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- Scrapy

SPIDER = textwrap.dedent("""
    import json, re, time
    import scrapy

    EMAIL = re.compile(r"%s")

    class BenchSpider(scrapy.Spider):
        name = "bench"
        start_urls = %r
        custom_settings = {
            "CONCURRENT_REQUESTS": 100,
            "DOWNLOAD_DELAY": 0,
            "LOG_LEVEL": "WARNING",
            "CLOSESPIDER_TIMEOUT": %d,
            "TELNETCONSOLE_ENABLED": False,
        }

        def parse(self, response):
            for email in set(EMAIL.findall(response.text)):
                yield {"email": email.lower()}
            for href in response.css("a::attr(href)").getall():
                if not href.startswith("mailto:"):
                    yield response.follow(href, self.parse)

        def closed(self, reason):
            stats = self.crawler.stats.get_stats()
            start = stats["start_time"].timestamp()
            with open(%r, "w") as out:
                json.dump({"pages": stats.get("response_received_count", 0), "reason": reason,
                           "elapsed": time.time() - start}, out)
""")


def run_scrapy(site: Site, work: Path, limit_s: int) -> dict | None:
    try:
        import scrapy  # noqa: F401
    except ImportError:
        print("scrapy not installed (pip install -r bench/requirements.txt): skipped")
        return None
    stats, items = work / "scrapy-stats.json", work / "scrapy-items.jsonl"
    spider = write_script(work, SPIDER % (EMAIL_REGEX, site.seeds(), limit_s, str(stats)))
    cmd = [sys.executable, "-m", "scrapy", "runspider", str(spider), "-o", f"{items}:jsonlines"]
    usage = reap(*spawn(cmd, cwd=work), timeout=limit_s + 60)
    result = json.loads(stats.read_text())
    emails = {json.loads(line)["email"] for line in items.read_text().splitlines() if line}
    return row("scrapy", result["pages"], result["elapsed"], [usage], emails, site, note=result["reason"])


# ---------------------------------------------------------------- the bare loop

BARE = textwrap.dedent("""
    import json, re, sys, time
    from urllib.parse import urljoin, urldefrag
    import pycurl
    from io import BytesIO

    seeds, out = json.loads(sys.argv[1]), sys.argv[2]
    LINK = re.compile(rb'href="([^"]+)"')
    EMAIL = re.compile(rb"%s")
    multi = pycurl.CurlMulti()
    free = []
    for _ in range(100):
        c = pycurl.Curl()
        c.setopt(pycurl.NOSIGNAL, 1)
        c.setopt(pycurl.FOLLOWLOCATION, 1)
        free.append(c)
    queue, seen, emails, pages = list(seeds), set(seeds), set(), 0
    start, active = time.time(), 0
    while queue or active:
        while queue and free:
            c, url = free.pop(), queue.pop()
            c.buf, c.url = BytesIO(), url
            c.setopt(pycurl.URL, url)
            c.setopt(pycurl.WRITEDATA, c.buf)
            multi.add_handle(c)
            active += 1
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        multi.select(0.05)
        while True:
            left, ok, failed = multi.info_read()
            for c in ok + [f[0] for f in failed]:
                multi.remove_handle(c)
                active -= 1
                free.append(c)
                if c in ok:
                    pages += 1
                    body = c.buf.getvalue()
                    emails.update(e.decode().lower() for e in EMAIL.findall(body))
                    for href in LINK.findall(body):
                        if href.startswith(b"mailto:"):
                            continue
                        link = urldefrag(urljoin(c.url, href.decode()))[0]
                        if link not in seen:
                            seen.add(link)
                            queue.append(link)
            if not left:
                break
    json.dump({"pages": pages, "elapsed": time.time() - start, "emails": sorted(emails)}, open(out, "w"))
""")


def run_bare(site: Site, work: Path, timeout: float) -> dict:
    out = work / "bare.json"
    script = write_script(work, BARE % EMAIL_REGEX)
    usage = reap(*spawn([sys.executable, str(script), json.dumps(site.seeds()), str(out)]), timeout=timeout)
    result = json.loads(out.read_text())
    return row("bare CurlMulti loop", result["pages"], result["elapsed"], [usage], set(result["emails"]), site)


# ---------------------------------------------------------------- report


def row(name: str, pages: int, elapsed: float, usages: list[Usage], emails: set[str], site: Site,
        note: str = "") -> dict:
    cpu = sum(u.cpu_s for u in usages)
    return {
        "run": name,
        "pages": pages,
        "seconds": round(elapsed, 2),
        "pages_per_s": round(pages / elapsed, 1) if elapsed > 0 else 0.0,
        "cpu_s_per_1000": round(cpu / pages * 1000, 2) if pages else None,
        "peak_rss_mb": round(max(u.max_rss_mb for u in usages), 1),
        "emails": f"{len(emails & site.emails)}/{len(site.emails)}" + (
            f" (+{len(emails - site.emails)} wrong)" if emails - site.emails else ""),
        "note": note,
    }


def print_table(rows: list[dict]) -> None:
    if not rows:
        return
    columns = ["run", "pages", "seconds", "pages_per_s", "cpu_s_per_1000", "peak_rss_mb", "emails", "note"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in columns))


def print_profile(path: Path, kind: str) -> None:
    stats = pstats.Stats(str(path))
    total = stats.total_tt
    print(f"\ncProfile of one Trawl worker ({kind}): {total:.2f} s of profiled time")
    stats.sort_stats("tottime").print_stats(20)
    groups = {
        "dedupe (trawl/dedupe.py + pybloom_live)": ("trawl/dedupe.py", "pybloom_live"),
        "extraction (trawl/extract/)": ("trawl/extract/",),
        "URL scope (trawl/urls.py)": ("trawl/urls.py",),
        "fetcher (trawl/fetch.py, pycurl)": ("trawl/fetch.py", "CurlMulti"),
        "frontier SQL (trawl/store)": ("trawl/store",),
        "sqlite3 / pymysql": ("sqlite3", "pymysql"),
    }
    print("Where the time goes (tottime of each part's own functions):")
    for label, needles in groups.items():
        spent = sum(v[2] for k, v in stats.stats.items() if any(n in k[0] or n in k[2] for n in needles))
        print(f"  {label:42s} {spent:7.2f} s  {100 * spent / total:5.1f} %")
    bloom = sum(v[3] for k, v in stats.stats.items() if "pybloom" in k[0] and k[2] in ("__contains__", "add"))
    print(f"  Bloom filter lookups and adds, cumulative  {bloom:7.2f} s  {100 * bloom / total:5.1f} %")


# ---------------------------------------------------------------- --tls


def connection_reuse(log: Path, hosts: int) -> str:
    """Sessions per host, requests per session, protocol and TLS resumption, from nginx's log."""
    connections: dict[str, set[str]] = {}
    protocols, requests, resumed = set(), 0, set()
    for line in log.read_text().splitlines() if log.exists() else []:
        host, connection, _, protocol, reused = line.split()
        connections.setdefault(host, set()).add(connection)
        protocols.add(protocol)
        requests += 1
        if reused == "r":
            resumed.add(connection)
    total = sum(len(c) for c in connections.values())
    if not total:
        return "no requests logged"
    return (f"{total / hosts:.1f} sessions/host, {requests / total:.0f} req/session, {'+'.join(sorted(protocols))}"
            + (f", {len(resumed)} resumed" if resumed else ""))


def run_tls(site: Site, kind: str, work: Path, timeout: float) -> list[dict]:
    rows = []
    runs = (("http", site.port, "plain HTTP/1.1"), ("https", site.port + TLS_H2, "TLS, HTTP/2 by ALPN"),
            ("https", site.port + TLS_H1, "TLS, HTTP/1.1"))
    bundle = str(work / "ca" / "ca.pem")
    for scheme, port, label in runs:
        result = run_trawl(site, kind, 1, work, timeout, seeds=site.seeds(scheme, port), ca_bundle=bundle,
                           label=f"trawl 1w {kind}: {label}")
        result["note"] = f"{result['note']}; {connection_reuse(work / f'access-{port}.log', len(site.hosts))}"
        rows.append(result)
        print_table(rows[-1:])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=20_000)
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--db", default="sqlite,mysql")
    parser.add_argument("--runs", default="trawl1,trawl2,scrapy,bare")
    parser.add_argument("--scrapy-limit-s", type=int, default=60)
    parser.add_argument("--timeout", type=float, default=600, help="per crawl")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-db", default="sqlite", help="database of the --profile run")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--tls", action="store_true", help="plain HTTP vs HTTPS (h2, HTTP/1.1) side by side")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trawl-bench-"))
    work.chmod(0o755)
    runs = args.runs.split(",")
    try:
        t = time.monotonic()
        site = generate(work / "site", args.pages, args.hosts, args.port)
        print(f"site: {args.pages} pages on {args.hosts} hosts, {len(site.emails)} addresses "
              f"(generated in {time.monotonic() - t:.1f} s)")
        cert = None
        if args.tls:
            from tests.tls import TestCA

            cert = TestCA(work / "ca").issue(["localhost"], ips=site.hosts)
            runs = []  # only the TLS comparison
        nginx = start_nginx(site, work, cert)
        rows = []
        try:
            if args.tls:
                for kind in args.db.split(","):
                    rows += run_tls(site, kind, work, args.timeout)
            for kind in args.db.split(","):
                for n in (1, 2):
                    if f"trawl{n}" in runs:
                        rows.append(run_trawl(site, kind, n, work, args.timeout))
                        print_table(rows[-1:])
            if "scrapy" in runs:
                result = run_scrapy(site, work, args.scrapy_limit_s)
                if result:
                    rows.append(result)
                    print_table(rows[-1:])
            if "bare" in runs:
                rows.append(run_bare(site, work, args.timeout))
                print_table(rows[-1:])
            print()
            print_table(rows)
            if args.profile:
                profile = work / "worker.prof"
                run_trawl(site, args.profile_db, 1, work, args.timeout, profile=profile)
                print_profile(profile, args.profile_db)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
