"""What a job found, read back for the API: its emails and its crawl log.

Exports never hold a job's rows: `iter_emails` reads them by keyset, 1,000
per query on the (job_id, email) unique key (or (job_id, site, email) with
a site), so a streamed CSV or JSONL of any size stays within one page of rows.
"""

from __future__ import annotations

from typing import Iterator

from trawl.store.database import Database

EMAIL_FIELDS = ("email", "domain", "site", "first_url", "pages", "sources")
PAGE_FIELDS = ("url", "depth", "state", "http_status", "bytes", "error")
PAGE_STATES = ("pending", "leased", "done", "failed", "skipped")


def _email_filter(job_id: str, q: str | None, site: str | None = None) -> tuple[str, tuple]:
    where, args = "job_id = ?", (job_id,)
    if site is not None:
        where, args = where + " AND site = ?", (*args, site)
    if not q:
        return where, args
    # LIKE patterns are escaped so a user's % or _ matches itself; '!' is
    # the escape character because a backslash means different things in
    # SQLite and MySQL string literals.
    pattern = "%" + q.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
    return where + " AND email LIKE ? ESCAPE '!'", (*args, pattern)


def _email_document(row: dict) -> dict:
    return {
        "email": row["email"],
        "domain": row["domain"],
        "site": row["site"],
        "first_url": row["first_url"],
        "pages": int(row["pages"]),
        "sources": [k for k in row["sources"].split(",") if k],
    }


def list_emails(db: Database, job_id: str, limit: int, offset: int,
                q: str | None = None, site: str | None = None) -> tuple[list[dict], int]:
    where, args = _email_filter(job_id, q, site)
    with db.read() as s:
        total = int(s.scalar(f"SELECT COUNT(*) FROM emails WHERE {where}", args))
        rows = s.all(
            f"SELECT {', '.join(EMAIL_FIELDS)} FROM emails WHERE {where} "
            "ORDER BY email LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
    return [_email_document(r) for r in rows], total


def iter_emails(db: Database, job_id: str, q: str | None = None,
                site: str | None = None) -> Iterator[dict]:
    """Every address of a job, in pages of 1,000 by keyset, for streaming exports."""
    where, args = _email_filter(job_id, q, site)
    last = ""
    while True:
        with db.read() as s:
            rows = s.all(
                f"SELECT {', '.join(EMAIL_FIELDS)} FROM emails WHERE {where} AND email > ? "
                "ORDER BY email LIMIT 1000",
                (*args, last),
            )
        yield from (_email_document(r) for r in rows)
        if len(rows) < 1000:
            return
        last = rows[-1]["email"]


def list_pages(db: Database, job_id: str, limit: int, offset: int,
               state: str | None = None) -> tuple[list[dict], int]:
    where, args = "job_id = ?", (job_id,)
    if state:
        where, args = "job_id = ? AND state = ?", (job_id, state)
    with db.read() as s:
        total = int(s.scalar(f"SELECT COUNT(*) FROM pages WHERE {where}", args))
        rows = s.all(
            f"SELECT {', '.join(PAGE_FIELDS)} FROM pages WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
    return rows, total
