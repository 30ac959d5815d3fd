"""The page budget per site in the store: claims count, hand-backs give places back, full sites end."""

from __future__ import annotations

from tests.test_frontier import assert_counters_match_rows, done, link, seeded_job
from trawl.store import frontier
from trawl.store.budget import BUDGET_REACHED

SITE = "example.com"
URLS = [f"http://a.example.com/{n}" for n in range(6)]


def claimed_of(db, job_id: str) -> int:
    with db.read() as s:
        return int(s.scalar("SELECT pages_claimed FROM sites WHERE job_id = ? AND site = ?", (job_id, SITE)))


def states(db, job_id: str) -> dict[str, str]:
    with db.read() as s:
        return {r["url"]: r["state"] for r in s.all("SELECT url, state FROM pages WHERE job_id = ?", (job_id,))}


def test_a_claim_stops_at_the_budget_and_ends_the_rest_of_the_site(db):
    job_id = seeded_job(db, URLS, max_pages_per_site=3, per_host_connections=10)
    claimed = frontier.claim_pages(db, job_id, "w1", 10, lease_s=30)
    assert [p.url for p in claimed] == URLS[:3]
    assert claimed_of(db, job_id) == 3
    assert sorted(states(db, job_id).values()) == ["leased"] * 3 + ["skipped"] * 3
    assert_counters_match_rows(db, job_id)
    frontier.commit_batch(db, job_id, [done(p) for p in claimed], 100)
    assert frontier.complete_if_done(db, job_id)
    with db.read() as s:
        row = s.one("SELECT state, note, pages_skipped FROM sites WHERE job_id = ?", (job_id,))
        errors = {r["error"] for r in s.all("SELECT error FROM pages WHERE job_id = ? AND state = 'skipped'",
                                            (job_id,))}
    assert (row["state"], row["note"], int(row["pages_skipped"])) == ("done", BUDGET_REACHED, 3)
    assert errors == {BUDGET_REACHED}


def test_a_site_keeps_at_most_its_host_connections_leased(db):
    job_id = seeded_job(db, URLS, max_pages_per_site=5, per_host_connections=2)
    first = frontier.claim_pages(db, job_id, "w1", 10, lease_s=30)
    assert len(first) == 2 and frontier.claim_pages(db, job_id, "w1", 10, lease_s=30) == []
    frontier.commit_batch(db, job_id, [done(p) for p in first], 100)
    assert len(frontier.claim_pages(db, job_id, "w1", 10, lease_s=30)) == 2


def test_released_and_swept_leases_give_their_places_back(db):
    job_id = seeded_job(db, URLS, max_pages_per_site=4, per_host_connections=10)
    assert len(frontier.claim_pages(db, job_id, "w1", 2, lease_s=30)) == 2
    assert frontier.release_leases(db, job_id, "w1") == 2
    assert claimed_of(db, job_id) == 0
    assert len(frontier.claim_pages(db, job_id, "w2", 2, lease_s=-1)) == 2  # already expired
    assert frontier.sweep_expired_leases(db) == 2
    assert claimed_of(db, job_id) == 0
    assert len(frontier.claim_pages(db, job_id, "w3", 10, lease_s=30)) == 4
    assert claimed_of(db, job_id) == 4


def test_links_found_after_the_site_filled_up_end_at_the_next_claim(db):
    job_id = seeded_job(db, URLS[:1], max_pages_per_site=1)
    [seed] = frontier.claim_pages(db, job_id, "w1", 10, lease_s=30)
    frontier.commit_batch(db, job_id, [done(seed, [link(u) for u in URLS[1:]])], 100)
    assert frontier.claim_pages(db, job_id, "w1", 10, lease_s=30) == []
    assert sorted(states(db, job_id).values()) == ["done"] + ["skipped"] * 5
    assert_counters_match_rows(db, job_id)
    assert frontier.complete_if_done(db, job_id)
