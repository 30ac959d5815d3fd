"""`python app.py crawl URL...`: create a job from the terminal, and optionally watch it.

Without flags the job is queued and the host's supervisor is started (the
same trigger as the web API). `--wait` then shows a progress bar until the
job ends and prints its counts. `--inline` runs the worker loop inside this
process instead, with no supervisor: the direct mode for a quick crawl or a
host that forbids spawning processes.
"""

from __future__ import annotations

import sys
import threading
import time

from trawl.config import Settings
from trawl.jobs import FINISHED, InvalidOptions, Status, parse_options
from trawl.store import Database
from trawl.store import job_rows

POLL_S = 0.5


def options_from_args(args) -> dict:
    body = {"urls": list(args.urls), "max_depth": args.depth, "max_pages": args.max_pages}
    for name in ("name", "concurrency", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            body[name] = value
    return body


def run(args, settings: Settings, db: Database) -> int:
    try:
        options = parse_options(options_from_args(args))
    except InvalidOptions as exc:
        for name, problem in sorted(exc.fields.items()):
            print(f"error: {name}: {problem}", file=sys.stderr)
        return 2
    job_id = job_rows.insert_job(db, options)["id"]
    print(f"job {job_id} queued ({len(options.urls)} seed URLs, depth {options.max_depth})")
    if args.inline:
        return run_inline(settings, db, job_id, show_bar=args.wait or sys.stderr.isatty())
    start_workers(settings)
    if not args.wait:
        print(f"follow it with: python app.py status   (or GET /api/jobs/{job_id}/progress)")
        return 0
    try:
        job = watch(db, job_id)
    except KeyboardInterrupt:
        print(f"\nstopped watching; job {job_id} carries on in the background", file=sys.stderr)
        return 130
    return report(job)


def start_workers(settings: Settings) -> None:
    if not settings.autostart_workers:
        print("autostart is off on this host: workers elsewhere (python app.py workers) will pick it up")
        return
    from trawl import hostlock

    started = hostlock.ensure_running(settings)
    print("started a supervisor for this host" if started else "the supervisor of this host will pick it up")


def run_inline(settings: Settings, db: Database, job_id: str, show_bar: bool) -> int:
    """The worker loop in a thread of this process; Ctrl-C stops it cleanly."""
    from trawl import worker

    stop = threading.Event()
    errors: list[BaseException] = []

    def crawl() -> None:
        try:
            worker.run_inline(settings, db, job_id, stop.is_set)
        except BaseException as exc:  # shown by the main thread
            errors.append(exc)

    thread = threading.Thread(target=crawl, name="inline-crawl", daemon=True)
    thread.start()
    try:
        if show_bar:
            watch(db, job_id, alive=thread.is_alive)
        thread.join()
    except KeyboardInterrupt:
        print("\nstopping: in-flight pages are finished or released ...", file=sys.stderr)
        stop.set()
        thread.join()
    if errors:
        print(f"error: the crawl stopped: {errors[0]}", file=sys.stderr)
        return 1
    return report(job_rows.load_job(db, job_id))


def _ended(job: dict) -> int:
    return int(job["pages_done"]) + int(job["pages_failed"]) + int(job["pages_skipped"])


def watch(db: Database, job_id: str, alive=lambda: True) -> dict:
    """A tqdm bar of ended/discovered pages until the job finishes (or `alive()` turns false)."""
    from tqdm import tqdm

    job = job_rows.load_job(db, job_id)
    with tqdm(total=max(1, int(job["pages_discovered"])), unit="page", dynamic_ncols=True,
              file=sys.stderr) as bar:
        while True:
            bar.total = max(1, int(job["pages_discovered"]))
            bar.n = _ended(job)
            bar.set_postfix_str(f"{job['status']}, {job['emails']} emails, {job['pages_failed']} failed",
                                refresh=False)
            bar.refresh()
            if Status(job["status"]) in FINISHED or not alive():
                return job
            time.sleep(POLL_S)
            job = job_rows.load_job(db, job_id)


def summary(job: dict) -> str:
    took = ""
    if job["started_at"] and job["finished_at"]:
        took = f" in {job['finished_at'] - job['started_at']:.1f}s"
    return (f"job {job['id']} {job['status']}{took}: {job['pages_discovered']} pages found, "
            f"{job['pages_done']} done, {job['pages_failed']} failed, {job['pages_skipped']} skipped, "
            f"{job['emails']} emails, {int(job['bytes']) / 1e6:.1f} MB")


def report(job: dict) -> int:
    print(summary(job))
    if job.get("error"):
        print(f"error: {job['error']}")
    return 0 if job["status"] == Status.COMPLETED.value else 1
