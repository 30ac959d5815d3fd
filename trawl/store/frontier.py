"""The crawl frontier: every SQL statement of a worker's claim → fetch → commit loop.

A page row moves pending → leased → done | failed | skipped. A claim leases
a batch of pending pages to one worker (owner, token, expiry); every later
write about a leased page is conditional on its token, so a worker whose
lease expired can never overwrite the result of the worker that took the
page over. Leases are renewed while pages are fetched, handed back on
pause, cancel and shutdown, and reclaimed by `sweep_expired_leases`, which
any worker runs and which does not look at the workers table, so a worker
killed with SIGKILL loses nothing but time.

Lock order. Every write transaction here starts by locking the job's row
(`SELECT ... FOR UPDATE` on MySQL/MariaDB; SQLite's BEGIN IMMEDIATE already
serialises writers), then touches pages, then emails, then updates the job
counters, then the sites of the batch (trawl/store/sites.py). One order for everybody means claims, commits, releases and
sweeps of a job queue behind each other instead of deadlocking (a claim
holding page locks while a commit holding the job row inserts a link onto
one of them is the classic SQL-queue deadlock). The transactions are small
(one batch; on SQLite, whose one write lock a job insert waits for, a few
milliseconds of it: see `commit_batch`), and the rare 1213/1205 still goes
through `db.retrying`.

Counters. The job's `pages_*`, `emails`, `bytes` change only here, each time
in one UPDATE that also bumps `version` (the progress ETag and SSE id), and
only by the number of rows a conditional statement really changed.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from dataclasses import dataclass, field

from trawl.jobs import RUNNABLE, Status, next_status, stored_options
from trawl.priority import PLAIN_PRIORITY
from trawl.store import budget as site_budget
from trawl.store import deliveries, sites
from trawl.store.database import Database, Session
from trawl.urls import canonicalize, host_of, registered_domain, url_hash

PENDING, LEASED, DONE, FAILED, SKIPPED = "pending", "leased", "done", "failed", "skipped"
ENDED_STATES = (DONE, FAILED, SKIPPED)
# A page whose lease expired this many times (its worker died each time it
# held it) is failed instead of handed out again: a poison page must not
# kill workers forever.
MAX_LEASE_LOSSES = 3
MAX_ERROR_LENGTH = 500
# Bound on the IN (...) lists of a claim.
MAX_PREFERRED_HOSTS = 200
MAX_AVOIDED_HOSTS = 2000
# A host another worker ended a page of this recently is still that
# worker's, although it holds no lease on it between a commit and its next
# claim: taking it over would fetch robots.txt again and lose the host's
# delay and Retry-After state. After this long it is free to take.
HANDOVER_S = 2.0
_CHUNK = 400
# Rows per CASE update: 4 columns x 2 arguments x 100 rows stays far below
# SQLite's limit on bound parameters.
_CASE_CHUNK = 100
# SQLite has one write lock for the whole file, and a job insert waits for
# it: a commit transaction that has held it this long commits and takes it
# again for the rest of its batch, after any waiting job insert (see
# SqliteDialect.begin). Units of such a transaction: this many outcomes,
# about this many links.
COMMIT_HOLD_S = 0.004
_OUTCOMES_PER_STEP = 20
_LINKS_PER_STEP = 100


class LeaseConflict(RuntimeError):
    """A lease or row changed behind the job's row lock: a bug, never retried."""


@dataclass(frozen=True)
class ClaimedPage:
    id: int
    url: str
    url_hash: str
    host: str
    site: str
    depth: int
    token: str


@dataclass(frozen=True)
class NewPage:
    """A link worth a page row, already canonical, in scope and under max_depth."""

    url: str
    url_hash: str
    host: str
    site: str
    depth: int
    priority: int = 0  # claim order, lower first (trawl/priority.py); seeds 0


@dataclass
class PageOutcome:
    """What fetching a claimed page came to; links and emails only when it is done."""

    page: ClaimedPage
    state: str  # done | failed | skipped
    http_status: int | None = None
    bytes: int = 0
    error: str | None = None
    links: list[NewPage] = field(default_factory=list)
    emails: dict[str, set[str]] = field(default_factory=dict)
    # The in-scope URL a redirect landed on, when it differs from page.url:
    # the same page under its canonical name, stored as skipped so that no
    # worker fetches it again (see _store_aliases).
    alias: NewPage | None = None


@dataclass
class CommitReport:
    accepted: int = 0  # outcomes written: the lease was still ours
    lost: int = 0  # outcomes dropped: the lease had expired and moved on
    inserted: int = 0  # new page rows
    known_hashes: set[str] = field(default_factory=set)  # links now certainly in the table
    capped: bool = False  # max_pages reached: links offered later will not be stored
    new_emails: int = 0

    def add(self, other: CommitReport) -> None:
        """Fold in the report of a later transaction of the same batch."""
        self.accepted += other.accepted
        self.lost += other.lost
        self.inserted += other.inserted
        self.known_hashes |= other.known_hashes
        self.capped = self.capped or other.capped
        self.new_emails += other.new_emails


def _lock_job(s: Session, job_id: str) -> dict | None:
    return s.one(
        f"SELECT id, status, seeded, options, pages_discovered FROM jobs WHERE id = ?{s.dialect.lock_row}",
        (job_id,),
    )


def _marks(values) -> str:
    return ", ".join("?" for _ in values)


def _chunks(items: list, size: int = _CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _short(error: str | None) -> str | None:
    return None if error is None else error[:MAX_ERROR_LENGTH]


# ---------------------------------------------------------------- jobs to work on


def runnable_jobs(db: Database, worker_id: str, dead_after_s: float, limit: int = 50) -> list[dict]:
    """Queued or running jobs that still want another worker: fewest workers, then oldest, first.

    A job whose `workers` option is N is left out once N other live workers
    report it as their job in the workers table. Those rows come from
    heartbeats, so two workers that pick the job within one heartbeat may
    both join it: the cap can be overshot by a worker or two for a few
    seconds, never by more.
    """
    with db.read() as s:
        jobs = s.all(
            f"SELECT id, status, seeded, options FROM jobs WHERE status IN ({_marks(RUNNABLE)}) "
            "ORDER BY id",
            RUNNABLE,
        )
        if not jobs:
            return []
        busy = {r["job_id"]: int(r["n"]) for r in s.all(
            "SELECT job_id, COUNT(*) AS n FROM workers WHERE role = 'worker' AND job_id IS NOT NULL "
            "AND heartbeat_at >= ? AND id <> ? GROUP BY job_id",
            (time.time() - dead_after_s, worker_id),
        )}
    wanted = []
    for job in jobs:
        cap = stored_options(job["options"]).get("workers")
        if cap is None or busy.get(job["id"], 0) < cap:
            wanted.append(job)
    # Jobs with the fewest workers first, so a new worker joins a job that
    # waits rather than piling onto the oldest one.
    # The cap is applied before the limit, so jobs that are full never hide
    # newer ones that want a worker.
    return sorted(wanted, key=lambda job: (busy.get(job["id"], 0), job["id"]))[:limit]


def _start(s: Session, job_id: str, status: str, now: float) -> None:
    """queued → running, once: conditional on the status we read under the row lock."""
    if status != Status.QUEUED.value:
        return
    target = next_status(Status.QUEUED, "start")
    s.execute(
        "UPDATE jobs SET status = ?, started_at = COALESCE(started_at, ?), updated_at = ?, "
        "version = version + 1 WHERE id = ? AND status = ?",
        (target.value, now, now, job_id, Status.QUEUED.value),
    )


# ---------------------------------------------------------------- seeds


def seed_pages(raw_seeds: list[str]) -> list[NewPage]:
    """Depth-0 pages of a raw seed list: canonical, de-duplicated, invalid ones dropped."""
    pages: dict[str, NewPage] = {}
    for raw in raw_seeds:
        url = canonicalize(raw.strip()) if raw.strip() else None
        if url is None:
            continue
        host = host_of(url)
        key = url_hash(url)
        pages.setdefault(key, NewPage(url, key, host, registered_domain(host), 0))
    return list(pages.values())


def expand_seeds(db: Database, job_id: str) -> int:
    """Turn a job's raw seed list into depth-0 pages, once; returns pages inserted.

    The page inserts and `seeded = 1` share one transaction behind the job's
    row lock, and `seeded` is set conditionally, so concurrent workers
    expand a job exactly once. The seeds are made canonical before that
    lock is taken: 10,000 of them cost ~150 ms of Python (the first call
    also loads the public suffix list), which SQLite's one write lock must
    not wait for. Seeds are not limited by max_pages: the person asked for
    each of them.
    """
    with db.read() as s:
        raw = s.scalar("SELECT seeds FROM jobs WHERE id = ? AND seeded = 0", (job_id,))
    if raw is None:
        return 0
    seeds = seed_pages(raw.splitlines())

    def run(s: Session) -> int:
        job = _lock_job(s, job_id)
        if job is None or job["seeded"] or job["status"] not in RUNNABLE:
            return 0
        inserted = _insert_pages(s, job_id, seeds)
        sites.create_for_seeds(s, job_id, seeds)
        now = time.time()
        changed = s.execute(
            "UPDATE jobs SET seeded = 1, pages_discovered = pages_discovered + ?, "
            "version = version + 1, updated_at = ? WHERE id = ? AND seeded = 0",
            (inserted, now, job_id),
        )
        if not changed:  # cannot happen under the row lock; never count twice
            raise RuntimeError(f"job {job_id} was seeded concurrently")
        _start(s, job_id, job["status"], now)
        return inserted

    return db.retrying(run)


_PAGE_COLUMNS = ["job_id", "url", "url_hash", "host", "site", "depth", "state", "priority"]


def _insert_pages(s: Session, job_id: str, pages: list[NewPage]) -> int:
    """Insert-if-absent on (job_id, url_hash); returns how many rows are new."""
    if not pages:
        return 0
    query = s.dialect.insert_if_absent("pages", _PAGE_COLUMNS)
    rows = [(job_id, p.url, p.url_hash, p.host, p.site, p.depth, PENDING, p.priority) for p in pages]
    return max(0, s.executemany(query, rows))


# ---------------------------------------------------------------- claims and leases


def claim_pages(
    db: Database,
    job_id: str,
    owner: str,
    limit: int,
    lease_s: float,
    prefer_hosts: list[str] | tuple[str, ...] = (),
) -> list[ClaimedPage]:
    """Lease up to `limit` pending pages of a runnable job to `owner`.

    Pages of `prefer_hosts` (the hosts the worker is already crawling) come
    first; then pages of hosts no other worker holds leases on. Hosts
    another worker is crawling are left to it, as Nutch and StormCrawler
    partition by host, so per-host politeness and each worker's Bloom
    filter and robots.txt cache need no coordination. A host with no lease
    but a page ended within HANDOVER_S (by another worker, as far as
    `prefer_hosts` tells) is left to that worker too, unless the claim
    would find nothing else.
    Of hosts nobody crawls, a claim takes at most half (see
    _half_of_the_new_hosts).
    The price: a job with fewer hosts than workers keeps the extra workers
    idle, which per-host politeness would demand anyway.
    """
    if limit <= 0:
        return []
    lock = db.dialect.lock_for_claim
    recent = _recently_ended_hosts(db, job_id, time.time() - HANDOVER_S).difference(prefer_hosts)

    def select(s: Session, first: int, where: str, args: tuple, n: int) -> list[dict]:
        # `id >= first` (the job's lowest pending id, read from the index)
        # keeps MariaDB from walking the primary key through every older
        # page when a host filter makes it misjudge the index: measured,
        # 133-394 index reads per claim instead of 15,000.
        # Contact pages first (trawl/priority.py): the few pages below
        # PLAIN_PRIORITY (seeds, keyword pages) by priority from the
        # priority indexes, then the rest in discovery order as before. One
        # ORDER BY priority over all pending pages would make both
        # databases sort every pending page of the hosts on each claim.
        now = time.time()
        rows = s.all(
            "SELECT id, url, url_hash, host, site, depth FROM pages "
            f"WHERE job_id = ? AND state = 'pending' AND priority < ? AND not_before <= ?{where} "
            f"ORDER BY priority, id LIMIT ?{lock}",
            (job_id, PLAIN_PRIORITY, now, *args, n),
        )
        if len(rows) == n:
            return rows
        return rows + s.all(
            "SELECT id, url, url_hash, host, site, depth FROM pages "
            f"WHERE job_id = ? AND state = 'pending' AND id >= ? AND not_before <= ? AND priority >= ?{where} "
            f"ORDER BY id LIMIT ?{lock}",
            (job_id, first, now, PLAIN_PRIORITY, *args, n - len(rows)),
        )

    def run(s: Session) -> list[ClaimedPage]:
        job = _lock_job(s, job_id)
        if job is None or job["status"] not in RUNNABLE:
            return []
        first = s.scalar("SELECT MIN(id) FROM pages WHERE job_id = ? AND state = 'pending'", (job_id,))
        if first is None:
            return []
        taken = {r["host"] for r in s.all(
            "SELECT DISTINCT host FROM pages WHERE job_id = ? AND state = 'leased' AND lease_owner <> ?",
            (job_id, owner))}
        preferred = [h for h in dict.fromkeys(prefer_hosts) if h not in taken][:MAX_PREFERRED_HOSTS]
        # The page budget per site: sites holding their share of leases wait (trawl/store/budget.py).
        budget, full = site_budget.of_job(job), set()
        if budget:
            at_once, leased = site_budget.leased_at_once(job), site_budget.leased_by_site(s, job_id)
            busy = site_budget.busy_sites(leased, at_once, MAX_PREFERRED_HOSTS)
        not_busy = f" AND site NOT IN ({_marks(busy)})" if budget and busy else ""
        busy_args = tuple(busy) if not_busy else ()
        rows = []
        if preferred:
            rows = select(s, first, f" AND host IN ({_marks(preferred)}){not_busy}", (*preferred, *busy_args), limit)
        if len(rows) < limit:
            avoid = list(taken.union(preferred))
            handover = list(recent.difference(avoid))[:max(0, MAX_AVOIDED_HOSTS - len(avoid))]
            rows += _new_hosts(s, select, first, avoid + handover, not_busy, busy_args, limit - len(rows))
            if not rows and handover:  # nothing else to do: better than idling
                rows = _new_hosts(s, select, first, avoid, not_busy, busy_args, limit)
        if budget and rows:
            rows, full = site_budget.within(s, job_id, rows, budget, at_once, leased)
        if not rows and not full:
            return []
        now = time.time()
        token = secrets.token_hex(16)
        claimed = 0
        for ids in _chunks([r["id"] for r in rows]):
            claimed += s.execute(
                "UPDATE pages SET state = 'leased', lease_owner = ?, lease_token = ?, lease_until = ?, "
                f"attempts = attempts + 1 WHERE id IN ({_marks(ids)}) AND state = 'pending'",
                (owner, token, now + lease_s, *ids),
            )
        if claimed != len(rows):  # the rows were read behind the job's lock
            raise LeaseConflict(f"{len(rows)} pending pages selected, {claimed} leased")
        s.execute(
            "UPDATE jobs SET pages_in_flight = pages_in_flight + ?, version = version + 1, "
            "updated_at = ? WHERE id = ?",
            (claimed, now, job_id),
        )
        if budget:
            skipped = site_budget.record_claims(s, job_id, rows, full)
            if skipped:
                s.execute("UPDATE jobs SET pages_skipped = pages_skipped + ? WHERE id = ?", (skipped, job_id))
        _start(s, job_id, job["status"], now)
        return [ClaimedPage(r["id"], r["url"], r["url_hash"], r["host"], r["site"], int(r["depth"]), token)
                for r in rows]

    return db.retrying(run)


def _new_hosts(s: Session, select, first: int, avoid: list[str], extra_where: str, extra_args: tuple,
               limit: int) -> list[dict]:
    """Half of the hosts of the oldest pending pages outside `avoid` (and the site budget's filter)."""
    where = (f" AND host NOT IN ({_marks(avoid)})" if avoid else "") + extra_where
    return _half_of_the_new_hosts(select(s, first, where, (*avoid, *extra_args), limit))


def _recently_ended_hosts(db: Database, job_id: str, since: float) -> set[str]:
    """Hosts of the job with a page ended since `since` (idx_pages_fetched: a short range).

    Read outside the claim's transaction: a hint, it need not be exact.
    """
    with db.read() as s:
        return {r["host"] for r in s.all(
            "SELECT DISTINCT host FROM pages WHERE fetched_at >= ? AND job_id = ?", (since, job_id))}


def _half_of_the_new_hosts(rows: list[dict]) -> list[dict]:
    """Rows of the first half (rounded up) of the hosts they belong to.

    A worker taking up new hosts leaves half of them to whoever claims
    next, so workers that start together split a job's hosts instead of
    the first one taking them all; a worker alone gets the rest over its
    next claims, a few milliseconds later.
    """
    hosts = list(dict.fromkeys(r["host"] for r in rows))
    keep = set(hosts[: (len(hosts) + 1) // 2])
    return [r for r in rows if r["host"] in keep]


def renew_leases(db: Database, job_id: str, owner: str, lease_s: float) -> int:
    """Push the expiry of every lease `owner` holds on the job; returns leases renewed.

    A lease that already expired and was swept has no owner any more, so it
    is not renewed: the page belongs to whoever claims it next. One
    statement, committed on its own (Database.autocommit).
    """

    def run(s: Session) -> int:
        return s.execute(
            "UPDATE pages SET lease_until = ? WHERE job_id = ? AND state = 'leased' AND lease_owner = ?",
            (time.time() + lease_s, job_id, owner),
        )

    return db.autocommit(run)


def release_leases(db: Database, job_id: str, owner: str) -> int:
    """Hand every page `owner` leases on the job back to pending (pause, cancel, shutdown).

    The claim's attempt is taken back: giving a page up is not losing it.
    """

    def run(s: Session) -> int:
        job = _lock_job(s, job_id)
        if job is None:
            return 0
        if site_budget.of_job(job):
            site_budget.give_back(s, job_id, "job_id = ? AND state = 'leased' AND lease_owner = ?", (job_id, owner))
        released = s.execute(
            "UPDATE pages SET state = 'pending', lease_owner = NULL, lease_token = NULL, "
            "lease_until = NULL, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
            "WHERE job_id = ? AND state = 'leased' AND lease_owner = ?",
            (job_id, owner),
        )
        if released:
            s.execute(
                "UPDATE jobs SET pages_in_flight = pages_in_flight - ?, version = version + 1, "
                "updated_at = ? WHERE id = ?",
                (released, time.time(), job_id),
            )
        return released

    return db.retrying(run)


def sweep_expired_leases(db: Database, now: float | None = None) -> int:
    """Return pages whose lease expired to pending, in every job; returns pages swept.

    Runs in any worker, every few seconds, and needs nothing from the dead
    worker (not even its registry row). A page that was lost
    MAX_LEASE_LOSSES times is failed with a reason instead.
    """
    now = time.time() if now is None else now
    with db.read() as s:
        job_ids = [r["job_id"] for r in s.all(
            "SELECT DISTINCT job_id FROM pages WHERE state = 'leased' AND lease_until < ?", (now,))]

    def sweep_job(job_id: str):
        def run(s: Session) -> int:
            job = _lock_job(s, job_id)
            if job is None:
                return 0
            lost = sites.pages_failed_by_sweep(s, job_id, now, MAX_LEASE_LOSSES)
            failed = s.execute(
                "UPDATE pages SET state = 'failed', lease_owner = NULL, lease_token = NULL, "
                "lease_until = NULL, fetched_at = ?, error = ? WHERE job_id = ? AND state = 'leased' "
                "AND lease_until < ? AND attempts >= ?",
                (now, f"the worker crawling this page was lost {MAX_LEASE_LOSSES} times",
                 job_id, now, MAX_LEASE_LOSSES),
            )
            if site_budget.of_job(job):
                site_budget.give_back(s, job_id, "job_id = ? AND state = 'leased' AND lease_until < ?",
                                      (job_id, now))
            back = s.execute(
                "UPDATE pages SET state = 'pending', lease_owner = NULL, lease_token = NULL, "
                "lease_until = NULL WHERE job_id = ? AND state = 'leased' AND lease_until < ?",
                (job_id, now),
            )
            if failed or back:
                s.execute(
                    "UPDATE jobs SET pages_in_flight = pages_in_flight - ?, "
                    "pages_failed = pages_failed + ?, version = version + 1, updated_at = ? WHERE id = ?",
                    (failed + back, failed, time.time(), job_id),
                )
            if failed:
                sites.apply_deltas(s, job_id, lost)
            return failed + back

        return run

    return sum(db.retrying(sweep_job(job_id)) for job_id in job_ids)


# ---------------------------------------------------------------- results


def commit_batch(db: Database, job_id: str, outcomes: list[PageOutcome], max_pages: int) -> CommitReport:
    """Write a batch of page outcomes, their new links and emails, and the counters.

    Each outcome is written only if its lease token still matches; the
    links and emails of an outcome that lost its lease are dropped with it
    (the page is pending again, and whoever fetches it reports them).
    New pages stop once the job has `max_pages` pages.

    On MySQL/MariaDB the batch is one transaction. On SQLite, whose one
    write lock blocks every other writer (a job insert included), the batch
    is written in as many transactions as it takes for none of them to hold
    the lock much longer than COMMIT_HOLD_S; a job insert waiting for the
    lock gets it between two of them. Each of those transactions is whole on its
    own: it locks the job row, checks the tokens of its outcomes, writes
    them with their links, aliases and emails and moves the job's and the
    sites' counters by what it changed, so a crash between two of them
    loses nothing (the outcomes not written yet are still leased, and their
    pages are fetched again).
    """
    split = db.dialect.one_write_lock
    steps = _plan_steps(outcomes, split)
    report = CommitReport()
    done_steps = 0
    while done_steps < len(steps):
        # Between two of these transactions a waiting job insert goes first
        # (SqliteDialect.begin): that is what the split is for.
        part, used = db.retrying(_commit_steps(job_id, steps[done_steps:], max_pages,
                                               COMMIT_HOLD_S if split else None), kind="commit_batch")
        report.add(part)
        done_steps += used
    return report


@dataclass
class _Step:
    """A unit of a commit: whole outcomes with their links, or early links of one big outcome.

    `links[i]` are the links this step stores for `outcomes[i]`. A
    links-only step (`write` False) stores them only if its one outcome's
    lease still holds; the outcome itself, and the rest of its links, come
    in a later step.
    """

    outcomes: list[PageOutcome]
    links: list[list[NewPage]]
    write: bool = True


def _plan_steps(outcomes: list[PageOutcome], split: bool) -> list[_Step]:
    """Steps of at most _OUTCOMES_PER_STEP outcomes and about _LINKS_PER_STEP links each.

    A link offered by several outcomes of the batch is stored, wherever it
    is, with the smallest depth and the best priority any of them gave it,
    as if the batch were one step.
    """
    best: dict[str, NewPage] = {}
    for o in outcomes:
        for lk in o.links:
            best[lk.url_hash] = _better(best.get(lk.url_hash), lk)
    links_of = [[best[lk.url_hash] for lk in o.links] for o in outcomes]
    if not split:
        return [_Step(list(outcomes), links_of)] if outcomes else []
    steps: list[_Step] = []
    current, weight = _Step([], []), 0
    for o, links in zip(outcomes, links_of):
        while len(links) > _LINKS_PER_STEP:  # a page with very many links: early chunks first
            steps.append(_Step([o], [links[:_LINKS_PER_STEP]], write=False))
            links = links[_LINKS_PER_STEP:]
        if current.outcomes and (len(current.outcomes) >= _OUTCOMES_PER_STEP
                                 or weight + len(links) > _LINKS_PER_STEP):
            steps.append(current)
            current, weight = _Step([], []), 0
        current.outcomes.append(o)
        current.links.append(links)
        weight += len(links)
    if current.outcomes:
        steps.append(current)
    return steps


def _better(known: NewPage | None, link: NewPage) -> NewPage:
    """The smallest depth, and the best priority any page gave the link."""
    if known is None or (link.depth, link.priority) == (known.depth, known.priority):
        return known or link
    shallow = known if known.depth <= link.depth else link
    return dataclasses.replace(shallow, priority=min(known.priority, link.priority))


def _commit_steps(job_id: str, steps: list[_Step], max_pages: int, hold_s: float | None):
    """One transaction: steps in order until it has held the lock `hold_s` (at least one step).

    Returns (what it wrote, how many steps). Re-run whole by db.retrying.
    """

    def run(s: Session) -> tuple[CommitReport, int]:
        began = time.perf_counter()
        report = CommitReport()
        job = _lock_job(s, job_id)
        if job is None:
            report.lost = sum(len(step.outcomes) for step in steps if step.write)
            return report, len(steps)
        now = time.time()
        room = max_pages - int(job["pages_discovered"])
        # Pages this transaction inserts have ids above it (sites counts them).
        last_id = sites.last_page_id(s) if any(ls or o.alias for step in steps
                                               for o, ls in zip(step.outcomes, step.links)) else None
        accepted: list[PageOutcome] = []
        aliased: dict[str, int] = {}
        new_emails: dict[str, str] = {}
        used = alias_rows = 0
        for step in steps:
            used += 1
            if step.write:
                written = _write_outcomes(s, step.outcomes, now)
                report.lost += len(step.outcomes) - len(written)
                keep = {id(o) for o in written}
                links = [lk for o, ls in zip(step.outcomes, step.links) if id(o) in keep for lk in ls]
                _store_links(s, job_id, links, room - report.inserted + alias_rows, report)
                before = report.inserted
                for site, n in _store_aliases(s, job_id, written, now, report).items():
                    aliased[site] = aliased.get(site, 0) + n
                alias_rows += report.inserted - before  # as in one transaction: not against the room
                new_emails.update(_store_emails(s, job_id, written, now))
                accepted += written
            elif _lease_holds(s, step.outcomes[0].page):
                _store_links(s, job_id, step.links[0], room - report.inserted + alias_rows, report)
            if hold_s is not None and time.perf_counter() - began >= hold_s:
                break
        report.accepted, report.new_emails = len(accepted), len(new_emails)
        counts = {state: sum(1 for o in accepted if o.state == state) for state in ENDED_STATES}
        if accepted or report.inserted:
            s.execute(
                "UPDATE jobs SET pages_done = pages_done + ?, pages_failed = pages_failed + ?, "
                "pages_skipped = pages_skipped + ?, pages_in_flight = pages_in_flight - ?, "
                "pages_discovered = pages_discovered + ?, emails = emails + ?, bytes = bytes + ?, "
                "version = version + 1, updated_at = ? WHERE id = ?",
                (counts[DONE], counts[FAILED], counts[SKIPPED] + sum(aliased.values()), len(accepted),
                 report.inserted, report.new_emails, sum(o.bytes for o in accepted), now, job_id),
            )
            _record_sites(s, job_id, accepted, last_id if report.inserted else None, new_emails)
            if aliased:  # their server answered: the content was fetched under the other name
                sites.apply_deltas(s, job_id, {site: sites.SiteDelta(skipped=n, reached=n)
                                               for site, n in aliased.items()})
        return report, used

    return run


def _lease_holds(s: Session, page: ClaimedPage) -> bool:
    token = s.scalar("SELECT lease_token FROM pages WHERE id = ? AND state = 'leased'", (page.id,))
    return token == page.token


def _record_sites(s: Session, job_id: str, accepted: list[PageOutcome], last_id: int | None,
                  new_emails: dict[str, str]) -> None:
    """The batch's share of each site's counters and state (trawl/store/sites.py)."""
    new_pages = sites.new_pages_by_site(s, job_id, last_id) if last_id is not None else {}
    sites.record_batch(s, job_id, accepted, new_pages, new_emails)


def _write_outcomes(s: Session, outcomes: list[PageOutcome], now: float) -> list[PageOutcome]:
    """Write the outcomes whose lease token still matches; returns them.

    Two statements per 100 pages instead of one per page (a round trip
    each on MySQL): the tokens are read, then the matching rows updated
    with CASE by id. That is safe because every statement that changes a
    lease token (claim, release, sweep, commit) runs behind the job's row
    lock, which we hold; the UPDATE still names the tokens, and a row count
    that disagrees aborts the transaction.
    """
    current: dict[int, str] = {}
    for ids in _chunks([o.page.id for o in outcomes]):
        for row in s.all(
            f"SELECT id, lease_token FROM pages WHERE id IN ({_marks(ids)}) AND state = 'leased'", ids
        ):
            current[int(row["id"])] = row["lease_token"]
    accepted = [o for o in outcomes if current.get(o.page.id) == o.page.token]
    for chunk in _chunks(accepted, _CASE_CHUNK):
        ids = [o.page.id for o in chunk]
        tokens = sorted({o.page.token for o in chunk})
        sets, args = _case_by_key("id", ids, {
            "state": [o.state for o in chunk],
            "http_status": [o.http_status for o in chunk],
            "bytes": [o.bytes for o in chunk],
            "error": [_short(o.error) for o in chunk],
        })
        changed = s.execute(
            f"UPDATE pages SET {sets}, fetched_at = ?, lease_owner = NULL, lease_token = NULL, "
            f"lease_until = NULL WHERE id IN ({_marks(ids)}) AND state = 'leased' "
            f"AND lease_token IN ({_marks(tokens)})",
            (*args, now, *ids, *tokens),
        )
        if changed != len(chunk):
            raise LeaseConflict(f"{len(chunk)} outcomes matched their leases, {changed} rows changed")
    return accepted


def _case_by_key(key: str, keys: list, columns: dict[str, list]) -> tuple[str, list]:
    """`col = CASE key WHEN ? THEN ? ... END` for each column, and its arguments."""
    whens = " ".join("WHEN ? THEN ?" for _ in keys)
    sets, args = [], []
    for column, values in columns.items():
        sets.append(f"{column} = CASE {key} {whens} END")
        for k, value in zip(keys, values):
            args += [k, value]
    return ", ".join(sets), args


def _store_links(s: Session, job_id: str, offered: list[NewPage], room: int, report: CommitReport) -> None:
    """Insert-if-absent the offered links while the job has room; counts into `report`."""
    links: dict[str, NewPage] = {}
    for link in offered:
        links[link.url_hash] = _better(links.get(link.url_hash), link)
    if not links:
        return
    if len(links) <= room:
        report.inserted += _insert_pages(s, job_id, list(links.values()))
        report.known_hashes.update(links)
        return
    # Fewer free places than candidates: one at a time, so the cap is exact
    # and links that already have a row are not counted against it.
    query = s.dialect.insert_if_absent("pages", _PAGE_COLUMNS)
    inserted = 0
    for key, p in links.items():
        if inserted >= room:
            report.capped = True
            break
        inserted += max(0, s.execute(query, (job_id, p.url, key, p.host, p.site, p.depth, PENDING,
                                             p.priority)))
        report.known_hashes.add(key)
    report.inserted += inserted
    report.capped = report.capped or inserted >= room


def _store_aliases(s: Session, job_id: str, accepted: list[PageOutcome], now: float,
                   report: CommitReport) -> dict[str, int]:
    """Redirect targets become ended rows: one page, one fetch, whichever name a link uses.

    A target not yet in the table is inserted as skipped; one waiting as
    pending is skipped in place (its content was just fetched under the
    other name). A target another worker has leased or already ended is
    left alone. Returns the rows newly ended per site, counted as skipped;
    inserted ones are added to report.inserted (they are discovered pages).
    """
    aliases = {o.alias.url_hash: (o.alias, o.page.url) for o in accepted if o.alias is not None}
    if not aliases:
        return {}
    report.known_hashes.update(aliases)
    ended: dict[str, int] = {}
    for chunk in _chunks(sorted(aliases), _CASE_CHUNK):
        pending = [r["url_hash"] for r in s.all(
            f"SELECT url_hash FROM pages WHERE job_id = ? AND state = 'pending' AND url_hash IN ({_marks(chunk)})",
            (job_id, *chunk))]
        if pending:
            sets, args = _case_by_key("url_hash", pending, {"error": [_alias_note(aliases[h][1]) for h in pending]})
            changed = s.execute(
                f"UPDATE pages SET state = 'skipped', {sets}, fetched_at = ? WHERE job_id = ? "
                f"AND state = 'pending' AND url_hash IN ({_marks(pending)})",
                (*args, now, job_id, *pending))
            if changed != len(pending):  # read behind the job's row lock
                raise LeaseConflict(f"{len(pending)} pending redirect targets, {changed} skipped")
            for key in pending:
                site = aliases.pop(key)[0].site
                ended[site] = ended.get(site, 0) + 1
    query = s.dialect.insert_if_absent("pages", _PAGE_COLUMNS + ["error", "fetched_at"])
    for key, (p, source) in aliases.items():  # one by one: which of them were new decides the counts
        if s.execute(query, (job_id, p.url, key, p.host, p.site, p.depth, SKIPPED, p.priority,
                             _alias_note(source), now)) > 0:
            report.inserted += 1
            ended[p.site] = ended.get(p.site, 0) + 1
    return ended


def _alias_note(source_url: str) -> str:
    return _short(f"same page as {source_url} (redirect): fetched there")


def _store_emails(s: Session, job_id: str, accepted: list[PageOutcome], now: float) -> dict[str, str]:
    """Insert-if-absent per address; known addresses get pages + n and merged sources.

    Returns the new addresses with their sites (the site of the first page showing them).
    """
    found: dict[str, list] = {}  # email -> [first_url, pages, sources, site]
    for o in accepted:
        for email, kinds in o.emails.items():
            entry = found.setdefault(email, [o.page.url, 0, set(), o.page.site])
            entry[1] += 1
            entry[2].update(kinds)
    if not found:
        return {}
    existing: dict[str, str] = {}
    for emails in _chunks(sorted(found)):
        for row in s.all(
            f"SELECT email, sources FROM emails WHERE job_id = ? AND email IN ({_marks(emails)})",
            (job_id, *emails),
        ):
            existing[row["email"]] = row["sources"]
    columns = ["job_id", "email", "domain", "first_url", "pages", "sources", "created_at", "site"]
    insert = s.dialect.insert_if_absent("emails", columns)
    missing = [e for e in found if e not in existing]
    rows = [(job_id, e, e.rpartition("@")[2], found[e][0], found[e][1], _sources(found[e][2]), now,
             found[e][3]) for e in missing]
    new = max(0, s.executemany(insert, rows)) if rows else 0
    if new != len(missing):
        # Cannot happen behind the job lock; never guess the counts.
        raise LeaseConflict(f"{len(missing)} new addresses, {new} rows inserted")
    known = sorted(existing)
    for chunk in _chunks(known, _CASE_CHUNK):
        sets, args = _case_by_key("email", chunk, {
            "pages": [found[e][1] for e in chunk],
            "sources": [_sources(found[e][2].union(k for k in existing[e].split(",") if k)) for e in chunk],
        })
        sets = sets.replace("pages = CASE", "pages = pages + CASE", 1)
        s.execute(f"UPDATE emails SET {sets} WHERE job_id = ? AND email IN ({_marks(chunk)})",
                  (*args, job_id, *chunk))
    return {e: found[e][3] for e in missing}


def _sources(kinds) -> str:
    return ",".join(sorted(kinds))[:255]


# ---------------------------------------------------------------- the end of a job


def complete_if_done(db: Database, job_id: str) -> bool:
    """Mark the job completed when it is seeded and no page is pending or leased.

    Returns True for the one caller that made the change: the check and
    the conditional status update share a transaction behind the job's row
    lock, so concurrent workers cannot both complete it (or complete it
    while another commits new pages).
    """

    def run(s: Session) -> bool:
        job = _lock_job(s, job_id)
        if job is None or job["status"] not in RUNNABLE or not job["seeded"]:
            return False
        for state in (PENDING, LEASED):
            if s.scalar("SELECT id FROM pages WHERE job_id = ? AND state = ? LIMIT 1", (job_id, state)):
                return False
        now = time.time()
        target = next_status(job["status"], "complete")
        completed = s.execute(
            "UPDATE jobs SET status = ?, started_at = COALESCE(started_at, ?), finished_at = ?, "
            "updated_at = ?, version = version + 1 WHERE id = ? AND status = ?",
            (target.value, now, now, now, job_id, job["status"]),
        ) == 1
        if completed:
            deliveries.job_ended(s, job_id, now)
        return completed

    return db.retrying(run)

