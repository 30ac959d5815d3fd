"""The command line behind `python app.py ...`: serve, migrate, status, workers, crawl."""

from __future__ import annotations

import argparse
import os
import sys
import time

from trawl.config import Settings
from trawl.netcheck import refuse_public_bind_without_token
from trawl.progress import iso
from trawl.store import Database, migrate
from trawl.store import job_rows, registry


def cmd_serve(args, settings: Settings, db: Database) -> int:
    refuse_public_bind_without_token(settings)
    here = os.path.dirname(os.path.abspath(__file__))
    conf = os.path.join(os.path.dirname(here), "gunicorn.conf.py")
    argv = [sys.executable, "-m", "gunicorn", "-c", conf, "app:app"]
    os.chdir(os.path.dirname(here))
    os.execv(sys.executable, argv)
    return 0  # not reached


def cmd_migrate(args, settings: Settings, db: Database) -> int:
    applied = migrate(db)
    print(f"migrated {settings.database_url}: applied {applied or 'nothing (up to date)'}")
    return 0


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*map(str, r)) for r in [header, *rows])


def cmd_status(args, settings: Settings, db: Database) -> int:
    jobs, _ = job_rows.list_jobs(db, limit=args.limit)
    rows = [[j["id"], (j["name"] or "")[:30], j["status"], j["pages_discovered"], j["pages_done"],
             j["pages_failed"], j["emails"], iso(j["created_at"])] for j in jobs]
    print(_table(rows, ["job", "name", "status", "found", "done", "failed", "emails", "created"]))
    workers = registry.live_workers(db, settings.worker_dead_after_s, role=None)
    now = time.time()
    wrows = [[w["id"], w["role"], w["host"], w["pid"], w["job_id"] or "-", w["pages"],
              f"{w['rss_bytes'] / 2**20:.0f} MiB", f"{now - w['heartbeat_at']:.1f}s ago"] for w in workers]
    print()
    print(_table(wrows, ["worker", "role", "host", "pid", "job", "pages", "rss", "heartbeat"]))
    return 0


def cmd_workers(args, settings: Settings, db: Database) -> int:
    from trawl import supervisor

    db.close()  # the supervisor opens its own; no pooled connection may reach its forks
    return supervisor.run_foreground(settings, count=args.count)


def cmd_crawl(args, settings: Settings, db: Database) -> int:
    from trawl import crawl_cli

    return crawl_cli.run(args, settings, db)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python app.py", description="Trawl: find published email addresses.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the web server (gunicorn, gunicorn.conf.py)").set_defaults(fn=cmd_serve)
    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(fn=cmd_migrate)
    st = sub.add_parser("status", help="print jobs and workers as tables")
    st.add_argument("--limit", type=int, default=20)
    st.set_defaults(fn=cmd_status)
    wk = sub.add_parser("workers", help="run the worker supervisor in the foreground")
    wk.add_argument("--count", type=int, default=None, help="fixed number of workers (default: automatic)")
    wk.set_defaults(fn=cmd_workers)
    cr = sub.add_parser("crawl", help="create a crawl job from the command line")
    cr.add_argument("urls", nargs="+")
    cr.add_argument("--depth", type=int, default=2)
    cr.add_argument("--max-pages", type=int, default=1000)
    cr.add_argument("--name", default=None)
    cr.add_argument("--concurrency", type=int, default=None, help="fetches in flight per worker")
    cr.add_argument("--workers", type=int, default=None, help="worker processes for this job")
    cr.add_argument("--wait", action="store_true", help="show a progress bar until the job ends")
    cr.add_argument("--inline", action="store_true", help="crawl in this process, without a supervisor")
    cr.add_argument("--output", default=None, metavar="FILE.csv|FILE.jsonl",
                    help="when the job ends, write every address to FILE (implies --wait)")
    cr.add_argument("--notify-url", default=None, help="POST the final job object here when it ends")
    cr.set_defaults(fn=cmd_crawl)
    return p


def main(argv: list[str], settings: Settings, db: Database) -> int:
    args = build_parser().parse_args(argv)
    if args.command not in ("migrate", "serve"):
        migrate(db)
    return args.fn(args, settings, db)
