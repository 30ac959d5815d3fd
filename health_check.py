#!/usr/bin/env python3
"""Trawl's system check for operators: is this set-up able to crawl?

    python health_check.py            # a table, one line per check
    python health_check.py --json     # the same report as GET /health
    python health_check.py --database-url mysql://root:@db:3306/trawl

Runs the checks of `trawl.health` (database reachable and schema current,
queue depth and age, worker and supervisor heartbeats, pycurl/libcurl
features, Bloom filter library, free disk, a worker-like process spawned and
reaped). Exit status 0 when every check passes, 1 otherwise; the failing
checks are named on the last line (and on stderr with --json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from trawl import config
from trawl.health import run_checks
from trawl.store import open_database


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python health_check.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print the report as JSON (as GET /health does)")
    p.add_argument("--database-url", help="check this database instead of TRAWL_DATABASE_URL")
    return p.parse_args(argv)


def report_for(database_url: str | None) -> dict:
    settings = config.load()
    if database_url:
        settings = dataclasses.replace(settings, database_url=database_url)
    try:
        db = open_database(settings.database_url)
    except Exception as exc:  # a malformed URL is a failed database check, not a traceback
        return {"status": "unhealthy", "checks": [
            {"name": "database", "ok": False, "detail": f"bad database URL: {exc}", "data": None}]}
    try:
        return run_checks(db, settings)
    finally:
        db.close()


def render_text(report: dict) -> str:
    width = max(len(c["name"]) for c in report["checks"])
    lines = [f"  {'ok  ' if c['ok'] else 'FAIL'}  {c['name']:<{width}}  {c['detail']}" for c in report["checks"]]
    failing = [c["name"] for c in report["checks"] if not c["ok"]]
    verdict = "healthy" if not failing else "UNHEALTHY: failing " + ", ".join(failing)
    return "\n".join(["Trawl health check", *lines, verdict])


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    report = report_for(args.database_url)
    failing = [c["name"] for c in report["checks"] if not c["ok"]]
    if args.json:
        print(json.dumps(report, indent=2))
        if failing:
            print("unhealthy: failing " + ", ".join(failing), file=sys.stderr)
    else:
        print(render_text(report))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
