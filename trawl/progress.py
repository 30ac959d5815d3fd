"""Progress snapshots, their versions, and the Server-Sent Events built from them.

A job's `version` grows with every change of its row, so it serves as the
ETag of the progress object and as the SSE event id. The snapshot is a pure
function of the job row (plus the live-worker count), so two readers of the
same version see the same numbers. `watch` is the SSE loop: it holds a
database connection only for each short check, never while it waits.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Callable, Iterator

from trawl.jobs import Status

SSE_RETRY_MS = 3000


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rate_and_eta(job: dict) -> tuple[float, float | None]:
    ended = int(job["pages_done"]) + int(job["pages_failed"]) + int(job["pages_skipped"])
    if not job["started_at"] or ended == 0:
        return 0.0, None
    elapsed = max(1e-3, (job["finished_at"] or job["updated_at"]) - job["started_at"])
    rate = ended / elapsed
    remaining = int(job["pages_discovered"]) - ended
    if Status(job["status"]).finished or remaining <= 0:
        return round(rate, 2), None
    return round(rate, 2), round(remaining / rate, 1)


def progress_document(job: dict, workers: int = 0) -> dict:
    rate, eta = _rate_and_eta(job)
    return {
        "id": job["id"],
        "status": job["status"],
        "version": int(job["version"]),
        "pages": {
            "discovered": int(job["pages_discovered"]),
            "done": int(job["pages_done"]),
            "failed": int(job["pages_failed"]),
            "skipped": int(job["pages_skipped"]),
            "in_flight": int(job["pages_in_flight"]),
        },
        "emails": int(job["emails"]),
        "bytes": int(job["bytes"]),
        "rate": rate,
        "eta_s": eta,
        "workers": workers,
        "created_at": iso(job["created_at"]),
        "started_at": iso(job["started_at"]),
        "updated_at": iso(job["updated_at"]),
        "finished_at": iso(job["finished_at"]),
        "error": job["error"],
    }


def job_document(job: dict, workers: int = 0) -> dict:
    """The job as `GET /api/jobs/<id>` shows it: options, status, counters, timestamps."""
    doc = progress_document(job, workers)
    doc["name"] = job["name"]
    doc["options"] = json.loads(job["options"])
    doc["links"] = job_links(job["id"])
    return doc


def job_links(job_id: str) -> dict:
    base = f"/api/jobs/{job_id}"
    return {
        "self": base,
        "progress": f"{base}/progress",
        "events": f"{base}/events",
        "emails": f"{base}/emails",
        "pages": f"{base}/pages",
        "sites": f"{base}/sites",
        "page": f"/jobs/{job_id}",
    }


def etag(version: int) -> str:
    return f'"{version}"'


def etag_matches(header: str | None, version: int) -> bool:
    if not header:
        return False
    wanted = etag(version)
    # Quoted as we send it, but a bare version (a hand-written header) counts too.
    return any(tag.strip().removeprefix("W/") in (wanted, wanted.strip('"'), "*") for tag in header.split(","))


# -- Server-Sent Events --------------------------------------------------------


def sse_event(event: str, data: dict | str, event_id: int | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    lines.extend(f"data: {part}" for part in payload.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def parse_last_event_id(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    # ASCII digits only ("²" passes isdigit() but not int()), and no longer than a version can be.
    if raw.isascii() and raw.isdigit() and len(raw) <= 19:
        return int(raw)
    return None


def watch(
    read_version: Callable[[], tuple[int, str] | None],
    read_progress: Callable[[], dict | None],
    last_seen: int | None,
    *,
    poll_s: float = 0.5,
    heartbeat_s: float = 15.0,
    max_s: float = 3600.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """SSE frames for one stream: the current state first, every change, heartbeats, done.

    `last_seen` is the client's Last-Event-ID: when it equals the current
    version, the current state is not sent again. The stream ends after
    `event: done` once the job is finished or gone (the readers return None
    for a deleted job: `{"status": "deleted"}`), or after `max_s` (the client
    reconnects with its Last-Event-ID, so nothing is missed).
    """
    yield f"retry: {SSE_RETRY_MS}\n\n".encode()
    started = last_beat = clock()
    while True:
        current = read_version()
        if current is None:  # the job was deleted: a finished stream, not an error
            yield sse_event("done", {"status": "deleted"}, last_seen)
            return
        version, status = current
        if last_seen is None or version != last_seen:
            doc = read_progress()
            if doc is None:
                yield sse_event("done", {"status": "deleted"}, last_seen)
                return
            last_seen = doc["version"]
            yield sse_event("progress", doc, last_seen)
            status = doc["status"]
            last_beat = clock()
        if Status(status).finished:
            yield sse_event("done", {"status": status}, last_seen)
            return
        now = clock()
        if now - started >= max_s:
            return
        if now - last_beat >= heartbeat_s:
            yield f": heartbeat {int(time.time())}\n\n".encode()
            last_beat = now
        sleep(poll_s)
