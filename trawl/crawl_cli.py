"""`python app.py crawl URL...`: create a job from the terminal, and optionally watch it.

Without flags the job is queued and the host's supervisor is started (the
same trigger as the web API). `--wait` then shows a progress bar until the
job ends and prints its counts and a per-site summary (sites by state, top
sites by addresses, why sites could not be crawled). `--output FILE.csv` or
`FILE.jsonl` writes every address when the job ends (streamed from the
store, as the API exports do). `--inline` runs the worker loop inside this
process instead, with no supervisor: the direct mode for a quick crawl or a
host that forbids spawning processes; it sends the job's webhook once
before it exits (a failed delivery stays queued for any supervisor).
"""

from __future__ import annotations

import csv
import json
import sys
import threading
import time

from trawl.config import Settings
from trawl.jobs import FINISHED, InvalidOptions, Status, parse_options
from trawl.store import Database
from trawl.store import job_rows, results, sites

POLL_S = 0.5
TOP_SITES = 10
OUTPUT_FORMATS = (".csv", ".jsonl")


def options_from_args(args) -> dict:
    body = {"urls": list(args.urls), "max_depth": args.depth, "max_pages": args.max_pages}
    for name in ("name", "concurrency", "workers", "notify_url"):
        value = getattr(args, name, None)
        if value is not None:
            body[name] = value
    return body


def run(args, settings: Settings, db: Database) -> int:
    output = getattr(args, "output", None)
    if output and not output.lower().endswith(OUTPUT_FORMATS):
        print("error: --output: the file name must end in .csv or .jsonl", file=sys.stderr)
        return 2
    try:
        options = parse_options(options_from_args(args))
    except InvalidOptions as exc:
        for name, problem in sorted(exc.fields.items()):
            print(f"error: {name}: {problem}", file=sys.stderr)
        return 2
    job_id = job_rows.insert_job(db, options)["id"]
    print(f"job {job_id} queued ({len(options.urls)} seed URLs, depth {options.max_depth})")
    args.wait = args.wait or bool(output)
    if args.inline:
        code = finish(db, job_id, output, run_inline(settings, db, job_id, show_bar=args.wait or sys.stderr.isatty()))
        send_webhook(settings, db, job_id)
        return code
    start_workers(settings)
    if not args.wait:
        print(f"follow it with: python app.py status   (or GET /api/jobs/{job_id}/progress)")
        return 0
    try:
        job = watch(db, job_id)
    except KeyboardInterrupt:
        print(f"\nstopped watching; job {job_id} carries on in the background", file=sys.stderr)
        return 130
    return finish(db, job_id, output, report(job))


def finish(db: Database, job_id: str, output: str | None, code: int) -> int:
    """The per-site summary, then the addresses to `output` if asked."""
    try:
        print(site_summary(db, job_id))
        if output:
            count = write_addresses(db, job_id, output)
            print(f"wrote {count} addresses to {output}")
    except job_rows.JobNotFound:
        pass
    except OSError as exc:
        print(f"error: --output: {exc}", file=sys.stderr)
        return 1
    return code


def site_summary(db: Database, job_id: str) -> str:
    """Sites by state, the sites with most addresses, and why the others could not be crawled."""
    counts = sites.count_by_state(db, job_id)
    total = sum(counts.values())
    states = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    lines = [f"sites: {total}" + (f" ({states})" if states else "")]
    top = [s for s in sites.list_sites(db, job_id, TOP_SITES, 0, sort="-emails")[0] if s["emails"]]
    if top:
        lines.append("top sites by addresses:")
        width = len(str(top[0]["emails"]))
        lines += [f"  {s['emails']:>{width}}  {s['site']}  ({s['own_emails']} at its own domain)" for s in top]
    for state in ("unreachable", "blocked"):
        shown, n = sites.list_sites(db, job_id, TOP_SITES, 0, state=state)
        if shown:
            lines.append(f"{state}:" + (f" (first {len(shown)} of {n})" if n > len(shown) else ""))
            lines += [f"  {s['site']}: {s['error'] or ''}" for s in shown]
    return "\n".join(lines)


def write_addresses(db: Database, job_id: str, path: str) -> int:
    """Every address, streamed from the store into a CSV or JSONL file; returns how many."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as out:
        rows = results.iter_emails(db, job_id)
        if path.lower().endswith(".csv"):
            writer = csv.writer(out)
            writer.writerow(results.EMAIL_FIELDS)
            for row in rows:
                writer.writerow([";".join(row[f]) if isinstance(row[f], list) else row[f]
                                 for f in results.EMAIL_FIELDS])
                count += 1
        else:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
                count += 1
    return count


def send_webhook(settings: Settings, db: Database, job_id: str, timeout_s: float = 20.0) -> None:
    """The inline crawl's one try at the job's webhook; a failure stays queued for a supervisor."""
    from trawl.notify import Notifier
    from trawl.store import deliveries

    row = deliveries.delivery_for(db, job_id)
    if row is None or row["state"] != deliveries.PENDING:
        return
    notifier = Notifier(settings, f"cli-{job_id}")
    try:
        notifier.send_due_now(db, timeout_s)
    finally:
        notifier.close(db)
    row = deliveries.delivery_for(db, job_id)
    print(f"webhook: {row['state']}" + (f" ({row['last_error']})" if row["last_error"] else ""))


def start_workers(settings: Settings) -> None:
    if not settings.autostart_workers:
        print("autostart is off on this host: workers elsewhere (python app.py workers) will pick it up")
        return
    from trawl import supervisor

    started = supervisor.ensure_running(settings)
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
    try:
        return report(job_rows.load_job(db, job_id))
    except job_rows.JobNotFound:
        return 1


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
