"""The sites of a job: one row per (job, site), written with the batch commits, read for the API.

A site is the registered domain of a seed (`trawl.urls.registered_domain`;
the host itself for IP addresses, localhost and names without a public
suffix). Every page carries the site of the seed it descends from, so with
`same_domain` off a page of another domain still counts for the site whose
link led to it. Site rows are created when the seeds are expanded.

Counters. A site's `pages_*`, `emails`, `own_emails` move in the same
transaction as the job's counters (frontier.commit_batch, behind the job's
row lock), by the rows that transaction really changed, in one UPDATE per
batch and per 100 sites (`apply_deltas`: the new state from the old
counters plus the batch's deltas, then the counters by CASE on the site),
plus two reads when the batch inserted pages. New pages are
attributed to sites by reading back the ids above the highest one before the
insert: the job's new rows are exactly those, as nobody else inserts pages
of this job while we hold its row lock.

States. `pending` until one of its pages ends, `crawling` while some page
of it is pending or leased (pages_done + failed + skipped < discovered),
then `done` when its server answered any page, `blocked` when robots.txt
refused its pages and nothing was answered, else `unreachable`. `error` is
the first reason a page of it could not be fetched.

An address belongs to the site of the first page that showed it
(`emails.site`); a site's `emails` counts those, `own_emails` those at the
site's own registered domain. Reads are O(sites of one page): every query
below is one range of the (job_id, ...) indexes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

from trawl.store.database import Database, Session
from trawl.urls import registered_domain

SITE_STATES = ("pending", "crawling", "done", "unreachable", "blocked")
SITE_FIELDS = ("site", "seed", "state", "pages_done", "pages_failed", "pages_skipped",
               "emails", "own_emails", "error", "note")
CSV_FIELDS = ("site", "seed", "state", "pages_done", "pages_failed", "pages_skipped",
              "emails", "own_emails", "error")
# ?sort= of the API -> ORDER BY. Each walks an index of (job_id, ...) forwards
# or backwards (ties break the same way), so a page costs its rows, not the job's.
SORTS = {
    "site": "site",
    "-site": "site DESC",
    "emails": "emails, site",
    "-emails": "emails DESC, site DESC",
    "state": "state, site",
    "-state": "state DESC, site DESC",
}
# The robots refusal the worker records on a page (trawl/robots.py wording).
ROBOTS_REFUSAL = "disallowed by robots.txt"
_CHUNK = 100
_MAX_ERROR = 500


@dataclass
class SiteDelta:
    """What one batch changes on one site."""

    discovered: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    reached: int = 0
    blocked: int = 0
    emails: int = 0
    own_emails: int = 0
    error: str | None = None


def _marks(values) -> str:
    return ", ".join("?" for _ in values)


# ---------------------------------------------------------------- writes (inside frontier's transactions)


def create_for_seeds(s: Session, job_id: str, seeds: Iterable) -> None:
    """One row per site of the seed pages (NewPage), its first seed kept as `seed`."""
    rows: dict[str, list] = {}
    for page in seeds:
        row = rows.setdefault(page.site, [job_id, page.site, page.url, 0])
        row[3] += 1
    if rows:
        insert = s.dialect.insert_if_absent("sites", ["job_id", "site", "seed", "pages_discovered"])
        s.executemany(insert, [tuple(r) for r in rows.values()])


def last_page_id(s: Session) -> int:
    """The highest page id now: the pages a batch inserts next all have larger ids."""
    return int(s.scalar("SELECT COALESCE(MAX(id), 0) FROM pages") or 0)


def new_pages_by_site(s: Session, job_id: str, after_id: int) -> dict[str, int]:
    """Pages inserted since `after_id`, counted per site.

    Read by the primary-key range only: left to itself SQLite's planner
    walks the job's index instead, which made every batch cost O(pages of
    the job) (measured: +30 % per batch at 400,000 pages).
    """
    return {r["site"]: int(r["n"]) for r in s.all(
        f"SELECT site, COUNT(*) AS n FROM pages{s.dialect.primary_key_only} "
        "WHERE id > ? AND job_id = ? GROUP BY site",
        (after_id, job_id))}


def outcome_kind(state: str, http_status: int | None, error: str | None) -> str:
    """'reached' (the server answered), 'blocked' (robots.txt refused) or 'unreached'."""
    if state == "done":
        return "reached"
    if state == "skipped":
        if error and error.startswith(ROBOTS_REFUSAL):
            return "blocked"
        # Skipped for its type or a redirect: the server answered, unless
        # nothing was fetched (a robots.txt that could not be read).
        return "reached" if http_status else "unreached"
    return "reached" if http_status and 400 <= http_status < 500 else "unreached"


def record_batch(s: Session, job_id: str, outcomes: list, new_pages: dict[str, int],
                 new_emails: dict[str, str]) -> None:
    """Apply one commit batch to its sites: accepted outcomes, pages inserted, addresses new."""
    deltas: dict[str, SiteDelta] = {}
    for o in outcomes:
        d = deltas.setdefault(o.page.site, SiteDelta())
        setattr(d, o.state, getattr(d, o.state) + 1)
        kind = outcome_kind(o.state, o.http_status, o.error)
        if kind == "reached":
            d.reached += 1
        else:
            d.blocked += kind == "blocked"
            d.error = d.error or (o.error or o.state)[:_MAX_ERROR]
    for site, n in new_pages.items():
        deltas.setdefault(site, SiteDelta()).discovered += n
    for email, site in new_emails.items():
        d = deltas.setdefault(site, SiteDelta())
        d.emails += 1
        d.own_emails += registered_domain(email.rpartition("@")[2]) == site
    apply_deltas(s, job_id, deltas)


def apply_deltas(s: Session, job_id: str, deltas: dict[str, SiteDelta]) -> None:
    """One UPDATE per 100 sites: the new state first, then the counters.

    The state is computed from the old counters plus this batch's deltas,
    and assigned before any counter: MySQL evaluates a SET list left to
    right on the values assigned so far, SQLite on the old row, and both
    read the old row for the first assignment.
    """
    items = sorted(deltas.items())
    for start in range(0, len(items), _CHUNK):
        chunk = items[start:start + _CHUNK]
        sites = [site for site, _ in chunk]
        sets, args = [], []
        ended = [(site, d) for site, d in chunk if d.done or d.failed or d.skipped]
        if ended:
            whens = []
            for site, d in ended:
                whens.append(f"WHEN ? THEN CASE WHEN pages_done + pages_failed + pages_skipped + ? "
                             f"< pages_discovered THEN 'crawling' ELSE {_final_state(d)} END")
                args += [site, d.done + d.failed + d.skipped - d.discovered]
            sets.append(f"state = CASE site {' '.join(whens)} ELSE state END")
        whens = " ".join("WHEN ? THEN ?" for _ in chunk)
        for column, attr in (("pages_discovered", "discovered"), ("pages_done", "done"),
                             ("pages_failed", "failed"), ("pages_skipped", "skipped"),
                             ("pages_reached", "reached"), ("pages_blocked", "blocked"),
                             ("emails", "emails"), ("own_emails", "own_emails")):
            values = [getattr(d, attr) for _, d in chunk]
            if any(values):
                sets.append(f"{column} = {column} + CASE site {whens} ELSE 0 END")
                args += [x for site, v in zip(sites, values) for x in (site, v)]
        errors = [(site, d.error) for site, d in chunk if d.error]
        if errors:
            sets.append(f"error = COALESCE(error, CASE site {' '.join('WHEN ? THEN ?' for _ in errors)} END)")
            args += [x for pair in errors for x in pair]
        if sets:
            s.execute(f"UPDATE sites SET {', '.join(sets)} WHERE job_id = ? AND site IN ({_marks(sites)})",
                      (*args, job_id, *sites))


def _final_state(d: SiteDelta) -> str:
    """The state of a site whose pages all ended, given what this batch adds (constants folded here)."""
    if d.reached:
        return "'done'"
    if d.blocked:
        return "CASE WHEN pages_reached > 0 THEN 'done' ELSE 'blocked' END"
    return ("CASE WHEN pages_reached > 0 THEN 'done' WHEN pages_blocked > 0 THEN 'blocked' "
            "ELSE 'unreachable' END")


def pages_failed_by_sweep(s: Session, job_id: str, now: float, min_attempts: int) -> dict[str, SiteDelta]:
    """The sites of the leased pages a sweep is about to fail (lost too often), before it does."""
    deltas = {}
    for r in s.all(
        "SELECT site, COUNT(*) AS n FROM pages WHERE job_id = ? AND state = 'leased' "
        "AND lease_until < ? AND attempts >= ? GROUP BY site",
        (job_id, now, min_attempts),
    ):
        deltas[r["site"]] = SiteDelta(failed=int(r["n"]), error="the worker crawling its pages was lost")
    return deltas


def requeue_failed(s: Session, job_id: str) -> None:
    """A retry puts the failed pages back: their sites crawl again.

    `state` and `error` are assigned before `pages_failed`, so MySQL, which
    reads the new value of a column assigned earlier in the list, sees the
    old count like SQLite does.
    """
    s.execute(
        "UPDATE sites SET state = CASE WHEN pages_failed > 0 THEN 'crawling' ELSE state END, "
        "error = CASE WHEN pages_failed > 0 THEN NULL ELSE error END, "
        # the re-queued pages give their places in the page budget back (trawl/store/budget.py)
        "pages_claimed = CASE WHEN pages_claimed > pages_failed THEN pages_claimed - pages_failed ELSE 0 END, "
        "pages_failed = 0 "
        "WHERE job_id = ? AND pages_failed > 0",
        (job_id,),
    )


def delete_for_job(s: Session, job_id: str) -> None:
    s.execute("DELETE FROM sites WHERE job_id = ?", (job_id,))


# ---------------------------------------------------------------- reads


def site_document(row: dict) -> dict:
    state = row["state"]
    doc = {
        "site": row["site"],
        "seed": row["seed"],
        "state": state,
        "pages": {"done": int(row["pages_done"]), "failed": int(row["pages_failed"]),
                  "skipped": int(row["pages_skipped"])},
        "emails": int(row["emails"]),
        "own_emails": int(row["own_emails"]),
        # Why it is unreachable or blocked; a done site's failed pages are in /pages.
        "error": row["error"] if state in ("unreachable", "blocked") else None,
    }
    if row.get("note"):  # why it stopped early: "site page budget reached" (trawl/store/budget.py)
        doc["note"] = row["note"]
    return doc


def _filter(job_id: str, state: str | None) -> tuple[str, tuple]:
    if state:
        return "job_id = ? AND state = ?", (job_id, state)
    return "job_id = ?", (job_id,)


def list_sites(db: Database, job_id: str, limit: int, offset: int, state: str | None = None,
               sort: str = "site") -> tuple[list[dict], int]:
    """One page of sites and how many match (the count walks the job's index: O(sites))."""
    where, args = _filter(job_id, state)
    with db.read() as s:
        total = int(s.scalar(f"SELECT COUNT(*) FROM sites WHERE {where}", args))
    return page_of_sites(db, job_id, limit, offset, state, sort), total


def page_of_sites(db: Database, job_id: str, limit: int, offset: int, state: str | None = None,
                  sort: str = "site") -> list[dict]:
    """One page of sites: the names from one walk of an index of (job_id, ...), then their rows.

    The walk reads only the index (`offset + limit` entries); the rows are
    read for the page alone. One query would fetch every skipped row too
    (SQLite does for OFFSET): ~10 ms deep into 20,000 sites.
    """
    where, args = _filter(job_id, state)
    with db.read() as s:
        names = [r["site"] for r in s.all(
            f"SELECT site FROM sites WHERE {where} ORDER BY {SORTS[sort]} LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )]
        if not names:
            return []
        rows = {r["site"]: r for r in s.all(
            f"SELECT {', '.join(SITE_FIELDS)} FROM sites WHERE job_id = ? AND site IN ({_marks(names)})",
            (job_id, *names),
        )}
    return [site_document(rows[name]) for name in names if name in rows]


def iter_sites(db: Database, job_id: str, state: str | None = None, page: int = 1000) -> Iterator[dict]:
    """Every site of a job by keyset on its name, `page` rows per query: for streamed exports."""
    where, args = _filter(job_id, state)
    last = ""
    while True:
        with db.read() as s:
            rows = s.all(
                f"SELECT {', '.join(SITE_FIELDS)} FROM sites WHERE {where} AND site > ? "
                "ORDER BY site LIMIT ?",
                (*args, last, page),
            )
        yield from (site_document(r) for r in rows)
        if len(rows) < page:
            return
        last = rows[-1]["site"]


def count_by_state(db: Database, job_id: str) -> dict[str, int]:
    with db.read() as s:
        rows = s.all("SELECT state, COUNT(*) AS n FROM sites WHERE job_id = ? GROUP BY state", (job_id,))
    counts = dict.fromkeys(SITE_STATES, 0)
    counts.update({r["state"]: int(r["n"]) for r in rows})
    return counts


def csv_records(docs: Iterable[dict]) -> Iterator[dict]:
    """Site documents flattened to the CSV_FIELDS columns."""
    for doc in docs:
        pages = doc["pages"]
        yield {**doc, "pages_done": pages["done"], "pages_failed": pages["failed"],
               "pages_skipped": pages["skipped"]}
