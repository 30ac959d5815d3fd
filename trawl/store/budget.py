"""The page budget per site (job option `max_pages_per_site`), kept in `sites.pages_claimed`.

Invariant, for a job with a budget B: a site's `pages_claimed` is the
number of its pages that are leased or ended after a claim (a page handed
back to pending, by a release or a lease sweep, gives its place back; a
retried failed page too, see sites.requeue_failed), and it never exceeds B.
Every change happens behind the job's row lock, inside the frontier's
claim, release and sweep transactions, so two workers cannot both take a
site's last place.

When a claim fills a site, the site's other pending pages end in the same
transaction as skipped with BUDGET_REACHED (and pages of it inserted later
end at the next claim that meets them), so the job still completes; the
site's `note` says the budget was reached, its state becomes done once its
leased pages end.

Jobs without a budget never touch `pages_claimed`: the claim path stays
as it was for them.
"""

from __future__ import annotations

import time
from collections import Counter

from trawl.jobs import stored_options
from trawl.store import sites
from trawl.store.database import Session

BUDGET_REACHED = "site page budget reached"


def _marks(values) -> str:
    return ", ".join("?" for _ in values)


def of_job(job: dict) -> int | None:
    """The job's max_pages_per_site, from its locked row (frontier._lock_job), or None."""
    budget = stored_options(job.get("options")).get("max_pages_per_site")
    return budget if isinstance(budget, int) and budget > 0 else None


def leased_at_once(job: dict) -> int:
    """How many pages of one site a budgeted job holds leased at most: its per-host connections."""
    value = stored_options(job.get("options")).get("per_host_connections")
    return value if isinstance(value, int) and value > 0 else 4


def leased_by_site(s: Session, job_id: str) -> dict[str, int]:
    """Pages of the job leased now, per site. Few rows: only the leased pages are read."""
    return {r["site"]: int(r["n"]) for r in s.all(
        "SELECT site, COUNT(*) AS n FROM pages WHERE job_id = ? AND state = 'leased' GROUP BY site", (job_id,))}


def busy_sites(leased: dict[str, int], at_once: int, limit: int) -> list[str]:
    """Sites holding `at_once` leases already: a claim leaves them out (at most `limit` named)."""
    return sorted(site for site, n in leased.items() if n >= at_once)[:limit]


def within(s: Session, job_id: str, rows: list[dict], budget: int, at_once: int,
           leased: dict[str, int]) -> tuple[list[dict], set[str]]:
    """The rows a claim may lease without a site going over budget, and the sites that are then full.

    A site also keeps at most `at_once` pages leased: then every claim sees
    the links its last pages found, and the budget goes to the best pages
    known (contact pages first), not to the first ones a big claim grabbed.
    Fetching could not go faster anyway: the per-host connection cap is
    the same number.
    """
    names = sorted({r["site"] for r in rows})
    if not names:
        return [], set()
    used = {r["site"]: int(r["pages_claimed"]) for r in s.all(
        f"SELECT site, pages_claimed FROM sites WHERE job_id = ? AND site IN ({_marks(names)})",
        (job_id, *names))}
    taken: Counter[str] = Counter()
    keep = []
    for row in rows:
        site = row["site"]
        if used.get(site, 0) + taken[site] < budget and leased.get(site, 0) + taken[site] < at_once:
            taken[site] += 1
            keep.append(row)
    full = {site for site in names if used.get(site, 0) + taken[site] >= budget}
    return keep, full


def record_claims(s: Session, job_id: str, leased: list[dict], full: set[str]) -> int:
    """Count the leased rows against their sites; end the pending pages of full sites. Returns pages skipped.

    Call after the rows are leased (so they are no longer pending).
    """
    taken = Counter(r["site"] for r in leased)
    _add_claimed(s, job_id, taken)
    if not full:
        return 0
    now, skipped = time.time(), {}
    for site in sorted(full):
        n = s.execute(
            "UPDATE pages SET state = 'skipped', error = ?, fetched_at = ? "
            "WHERE job_id = ? AND site = ? AND state = 'pending'",
            (BUDGET_REACHED, now, job_id, site),
        )
        if n:
            skipped[site] = n
    s.execute(
        f"UPDATE sites SET note = ? WHERE job_id = ? AND site IN ({_marks(sorted(full))}) AND note IS NULL",
        (BUDGET_REACHED, job_id, *sorted(full)),
    )
    if skipped:
        sites.apply_deltas(s, job_id, {site: sites.SiteDelta(skipped=n) for site, n in skipped.items()})
    return sum(skipped.values())


def give_back(s: Session, job_id: str, where: str, args: tuple) -> None:
    """Pages matching `where` (leased ones about to go back to pending) give their sites' places back."""
    back = {r["site"]: -int(r["n"]) for r in s.all(
        f"SELECT site, COUNT(*) AS n FROM pages WHERE {where} GROUP BY site", args)}
    _add_claimed(s, job_id, back)


def _add_claimed(s: Session, job_id: str, deltas: dict[str, int]) -> None:
    items = sorted((site, n) for site, n in deltas.items() if n)
    for start in range(0, len(items), 100):
        chunk = items[start:start + 100]
        whens = " ".join("WHEN ? THEN ?" for _ in chunk)
        s.execute(
            f"UPDATE sites SET pages_claimed = pages_claimed + CASE site {whens} ELSE 0 END "
            f"WHERE job_id = ? AND site IN ({_marks(chunk)})",
            (*[x for pair in chunk for x in pair], job_id, *[site for site, _ in chunk]),
        )
