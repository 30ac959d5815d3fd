"""The frontier's SQL on real SQLite and MariaDB: seeds, claims, leases, commits, sweeps, completion.

Every test runs twice through the `db` fixture (tests/conftest.py): on a
temporary SQLite file and on a fresh MariaDB database (skipped with the
reason when MariaDB is not reachable; a failure under CI=true). Lease
expiry is simulated by sweeping with a `now` in the future, never by sleeping.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from trawl.jobs import JobOptions
from trawl.store import frontier, job_rows
from trawl.store.frontier import NewPage, PageOutcome
from trawl.urls import url_hash

SEEDS = ["http://a.example.com/", "http://b.example.org/", "http://c.example.net/start"]
ONE_HOST = ["http://a.example.com/", "http://a.example.com/b", "http://a.example.com/c"]


def new_job(db, urls=SEEDS, **options) -> str:
    return job_rows.insert_job(db, JobOptions(urls=list(urls), **options))["id"]


def seeded_job(db, urls=SEEDS, **options) -> str:
    job_id = new_job(db, urls, **options)
    frontier.expand_seeds(db, job_id)
    return job_id


def job(db, job_id) -> dict:
    return job_rows.load_job(db, job_id)


def pages_by_state(db, job_id) -> dict[str, int]:
    with db.read() as s:
        rows = s.all("SELECT state, COUNT(*) AS n FROM pages WHERE job_id = ? GROUP BY state", (job_id,))
    return {r["state"]: int(r["n"]) for r in rows}


def link(url: str, depth: int = 1, site: str = "example.com") -> NewPage:
    return NewPage(url, url_hash(url), url.split("/")[2], site, depth)


def done(page, links=(), emails=None, nbytes=100) -> PageOutcome:
    return PageOutcome(page, "done", 200, nbytes, None, list(links), dict(emails or {}))


def assert_counters_match_rows(db, job_id) -> None:
    """The job's counters say what its page rows say."""
    row, states = job(db, job_id), pages_by_state(db, job_id)
    assert row["pages_discovered"] == sum(states.values())
    assert row["pages_done"] == states.get("done", 0)
    assert row["pages_failed"] == states.get("failed", 0)
    assert row["pages_skipped"] == states.get("skipped", 0)
    assert row["pages_in_flight"] == states.get("leased", 0)
    with db.read() as s:
        assert row["emails"] == s.scalar("SELECT COUNT(*) FROM emails WHERE job_id = ?", (job_id,))


# ---------------------------------------------------------------- seeds


def test_seeds_expand_once_deduplicated_and_start_the_job(db):
    job_id = new_job(db, SEEDS + ["HTTP://A.example.com:80/#top", "not a url"])
    before = job(db, job_id)["version"]
    assert frontier.expand_seeds(db, job_id) == 3
    assert frontier.expand_seeds(db, job_id) == 0
    row = job(db, job_id)
    assert (row["seeded"], row["status"], row["pages_discovered"]) == (1, "running", 3)
    assert row["started_at"] is not None and row["version"] > before
    with db.read() as s:
        pages = s.all("SELECT url, host, site, depth, state FROM pages WHERE job_id = ? ORDER BY id", (job_id,))
    assert [p["url"] for p in pages] == SEEDS
    assert [(p["host"], p["site"], p["depth"], p["state"]) for p in pages][0] == (
        "a.example.com", "example.com", 0, "pending")


def test_concurrent_seed_expansion_inserts_each_seed_once(db):
    job_id = new_job(db, [f"http://h{i}.example.com/" for i in range(50)])
    results = []
    threads = [threading.Thread(target=lambda: results.append(frontier.expand_seeds(db, job_id)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 0, 0, 50]
    assert job(db, job_id)["pages_discovered"] == 50
    assert_counters_match_rows(db, job_id)


def test_seeds_of_a_paused_job_wait(db):
    job_id = new_job(db)
    job_rows.apply_action(db, job_id, "pause")
    assert frontier.expand_seeds(db, job_id) == 0
    assert job(db, job_id)["seeded"] == 0


# ---------------------------------------------------------------- claims


def test_claim_leases_a_batch_and_counts_it_in_flight(db):
    urls = [f"http://a.example.com/{i}" for i in range(3)]
    job_id = seeded_job(db, urls)
    claimed = frontier.claim_pages(db, job_id, "w1", 2, lease_s=30)
    assert len(claimed) == 2 and len({p.token for p in claimed}) == 1
    assert [p.url for p in claimed] == urls[:2]
    with db.read() as s:
        row = s.one("SELECT state, lease_owner, lease_token, lease_until, attempts FROM pages WHERE id = ?",
                    (claimed[0].id,))
    assert (row["state"], row["lease_owner"], row["attempts"]) == ("leased", "w1", 1)
    assert row["lease_token"] == claimed[0].token and row["lease_until"] > time.time()
    assert job(db, job_id)["pages_in_flight"] == 2
    assert_counters_match_rows(db, job_id)


def test_claims_never_hand_a_page_to_two_workers(db):
    urls = [f"http://h{i % 20}.example.com/{i}" for i in range(200)]
    job_id = seeded_job(db, urls)
    got: dict[str, list] = {}

    def worker(name: str) -> None:
        got[name] = []
        while True:
            batch = frontier.claim_pages(db, job_id, name, 7, lease_s=30)
            if not batch:
                return
            got[name].extend(p.id for p in batch)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for batch in got.values() for i in batch]
    assert len(ids) == len(set(ids)) == 200
    assert_counters_match_rows(db, job_id)


def test_claims_keep_a_host_with_the_worker_crawling_it(db):
    urls = [f"http://{h}.example.com/{i}" for i in range(3) for h in ("x", "y", "z")]
    job_id = seeded_job(db, urls)
    first = frontier.claim_pages(db, job_id, "w1", 1, lease_s=30)
    assert first[0].host == "x.example.com"
    # w2 gets nothing of x (w1 holds a lease there); w1 gets x first when it asks.
    second = frontier.claim_pages(db, job_id, "w2", 4, lease_s=30)
    assert second and "x.example.com" not in {p.host for p in second}
    more = frontier.claim_pages(db, job_id, "w1", 2, lease_s=30, prefer_hosts=["x.example.com"])
    assert {p.host for p in more} == {"x.example.com"}


def test_workers_starting_together_split_the_new_hosts(db):
    urls = [f"http://h{h}.example.com/{i}" for i in range(5) for h in range(8)]
    job_id = seeded_job(db, urls)
    first = {p.host for p in frontier.claim_pages(db, job_id, "w1", 100, lease_s=30)}
    second = {p.host for p in frontier.claim_pages(db, job_id, "w2", 100, lease_s=30)}
    assert len(first) == 4 and len(second) == 2 and not first & second
    # Alone, a worker gets every host over its next claims.
    third = {p.host for p in frontier.claim_pages(db, job_id, "w1", 100, lease_s=30, prefer_hosts=first)}
    assert third and not third & second


def test_no_claims_from_a_paused_or_cancelled_job(db):
    job_id = seeded_job(db)
    job_rows.apply_action(db, job_id, "pause")
    assert frontier.claim_pages(db, job_id, "w1", 10, lease_s=30) == []
    job_rows.apply_action(db, job_id, "cancel")
    assert frontier.claim_pages(db, job_id, "w1", 10, lease_s=30) == []


def test_claim_moves_a_resumed_job_back_to_running(db):
    job_id = seeded_job(db)
    job_rows.apply_action(db, job_id, "pause")
    job_rows.apply_action(db, job_id, "resume")
    assert job(db, job_id)["status"] == "queued"
    assert frontier.claim_pages(db, job_id, "w1", 1, lease_s=30)
    assert job(db, job_id)["status"] == "running"


# ---------------------------------------------------------------- commits


def test_commit_writes_outcomes_links_emails_and_counters_in_one_go(db):
    job_id = seeded_job(db, ["http://a.example.com/"])
    page = frontier.claim_pages(db, job_id, "w1", 1, lease_s=30)[0]
    version = job(db, job_id)["version"]
    links = [link("http://a.example.com/x"), link("http://a.example.com/y"), link("http://a.example.com/")]
    report = frontier.commit_batch(db, job_id, [done(page, links, {"info@a.example.com": {"text"}})], 100)
    assert (report.accepted, report.lost, report.inserted, report.new_emails) == (1, 0, 2, 1)
    assert report.known_hashes == {lk.url_hash for lk in links}
    row = job(db, job_id)
    assert (row["pages_done"], row["pages_discovered"], row["emails"], row["bytes"]) == (1, 3, 1, 100)
    assert row["version"] > version
    assert_counters_match_rows(db, job_id)


def test_a_lost_lease_never_overwrites_the_new_owners_result(db):
    job_id = seeded_job(db, ["http://a.example.com/"])
    old = frontier.claim_pages(db, job_id, "w1", 1, lease_s=30)[0]
    assert frontier.sweep_expired_leases(db, now=time.time() + 60) == 1
    new = frontier.claim_pages(db, job_id, "w2", 1, lease_s=30)[0]
    assert new.id == old.id and new.token != old.token
    # w1 wakes up late: its result, links and emails are all dropped.
    late = frontier.commit_batch(db, job_id, [done(old, [link("http://a.example.com/late")],
                                                   {"late@a.example.com": {"text"}})], 100)
    assert (late.accepted, late.lost, late.inserted) == (0, 1, 0)
    assert frontier.renew_leases(db, job_id, "w1", 30) == 0
    report = frontier.commit_batch(db, job_id, [done(new, [], {"info@a.example.com": {"mailto"}})], 100)
    assert report.accepted == 1
    with db.read() as s:
        assert [r["email"] for r in s.all("SELECT email FROM emails WHERE job_id = ?", (job_id,))] == [
            "info@a.example.com"]
    assert_counters_match_rows(db, job_id)


def test_emails_count_pages_and_merge_sources(db):
    job_id = seeded_job(db, [f"http://a.example.com/{i}" for i in range(3)])
    pages = frontier.claim_pages(db, job_id, "w1", 3, lease_s=30)
    frontier.commit_batch(db, job_id, [done(pages[0], [], {"x@a.example.com": {"text"}})], 100)
    frontier.commit_batch(db, job_id, [
        done(pages[1], [], {"x@a.example.com": {"mailto"}, "y@a.example.com": {"entity"}}),
        done(pages[2], [], {"x@a.example.com": {"text", "cfemail"}}),
    ], 100)
    with db.read() as s:
        rows = {r["email"]: r for r in s.all(
            "SELECT email, domain, first_url, pages, sources FROM emails WHERE job_id = ?", (job_id,))}
    assert rows["x@a.example.com"]["pages"] == 3
    assert rows["x@a.example.com"]["sources"] == "cfemail,mailto,text"
    assert rows["x@a.example.com"]["first_url"] == pages[0].url
    assert rows["y@a.example.com"]["domain"] == "a.example.com"
    assert job(db, job_id)["emails"] == 2


def test_links_stop_exactly_at_max_pages(db):
    job_id = seeded_job(db, ["http://a.example.com/"], max_pages=5)
    page = frontier.claim_pages(db, job_id, "w1", 1, lease_s=30)[0]
    links = [link(f"http://a.example.com/{i}") for i in range(10)]
    report = frontier.commit_batch(db, job_id, [done(page, links)], max_pages=5)
    assert report.inserted == 4 and report.capped
    assert len(report.known_hashes) == 4
    assert job(db, job_id)["pages_discovered"] == 5
    assert_counters_match_rows(db, job_id)


def test_duplicate_links_in_a_batch_keep_the_smallest_depth(db):
    job_id = seeded_job(db, ["http://a.example.com/", "http://a.example.com/b"])
    p1, p2 = frontier.claim_pages(db, job_id, "w1", 2, lease_s=30)
    report = frontier.commit_batch(db, job_id, [
        done(p1, [link("http://a.example.com/x", depth=3)]),
        done(p2, [link("http://a.example.com/x", depth=1)]),
    ], 100)
    assert report.inserted == 1
    with db.read() as s:
        assert s.scalar("SELECT depth FROM pages WHERE url = ?", ("http://a.example.com/x",)) == 1


def test_failed_and_skipped_outcomes_carry_their_reason(db):
    job_id = seeded_job(db, ["http://a.example.com/1", "http://a.example.com/2"])
    p1, p2 = frontier.claim_pages(db, job_id, "w1", 2, lease_s=30)
    frontier.commit_batch(db, job_id, [
        PageOutcome(p1, "failed", 404, 10, "HTTP 404"),
        PageOutcome(p2, "skipped", None, 0, "disallowed by robots.txt"),
    ], 100)
    with db.read() as s:
        rows = s.all("SELECT state, http_status, error FROM pages WHERE job_id = ? ORDER BY id", (job_id,))
    assert [(r["state"], r["http_status"], r["error"]) for r in rows] == [
        ("failed", 404, "HTTP 404"), ("skipped", None, "disallowed by robots.txt")]
    assert_counters_match_rows(db, job_id)


# ---------------------------------------------------------------- release, sweep, renew


def test_release_hands_pages_back_without_counting_an_attempt(db):
    job_id = seeded_job(db, ONE_HOST)
    frontier.claim_pages(db, job_id, "w1", 3, lease_s=30)
    assert frontier.release_leases(db, job_id, "w1") == 3
    with db.read() as s:
        rows = s.all("SELECT state, attempts, lease_owner FROM pages WHERE job_id = ?", (job_id,))
    assert {(r["state"], r["attempts"], r["lease_owner"]) for r in rows} == {("pending", 0, None)}
    assert_counters_match_rows(db, job_id)


def test_renewed_leases_survive_a_sweep(db):
    job_id = seeded_job(db, ONE_HOST)
    frontier.claim_pages(db, job_id, "w1", 3, lease_s=1)
    assert frontier.renew_leases(db, job_id, "w1", 120) == 3
    assert frontier.sweep_expired_leases(db, now=time.time() + 60) == 0
    assert frontier.sweep_expired_leases(db, now=time.time() + 180) == 3
    assert_counters_match_rows(db, job_id)


def test_a_page_lost_too_often_is_failed_not_requeued(db):
    job_id = seeded_job(db, ["http://a.example.com/"])
    for _ in range(frontier.MAX_LEASE_LOSSES):
        assert frontier.claim_pages(db, job_id, "w1", 1, lease_s=1)
        frontier.sweep_expired_leases(db, now=time.time() + 60)
    with db.read() as s:
        row = s.one("SELECT state, error FROM pages WHERE job_id = ?", (job_id,))
    assert row["state"] == "failed" and "lost" in row["error"]
    assert_counters_match_rows(db, job_id)


# ---------------------------------------------------------------- completion


def test_a_job_completes_once_when_no_page_is_open(db):
    job_id = seeded_job(db, ["http://a.example.com/"])
    assert not frontier.complete_if_done(db, job_id)  # pending
    page = frontier.claim_pages(db, job_id, "w1", 1, lease_s=30)[0]
    assert not frontier.complete_if_done(db, job_id)  # leased
    frontier.commit_batch(db, job_id, [done(page)], 100)
    results = []
    threads = [threading.Thread(target=lambda: results.append(frontier.complete_if_done(db, job_id)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    row = job(db, job_id)
    assert row["status"] == "completed" and row["finished_at"] is not None


def test_unseeded_or_paused_jobs_do_not_complete(db):
    job_id = new_job(db)
    assert not frontier.complete_if_done(db, job_id)
    job_rows.apply_action(db, job_id, "pause")
    with db.transaction() as s:
        s.execute("UPDATE jobs SET seeded = 1 WHERE id = ?", (job_id,))
    assert not frontier.complete_if_done(db, job_id)
    assert job(db, job_id)["status"] == "paused"


def test_runnable_jobs_respect_the_workers_option(db):
    capped = new_job(db, workers=1)
    free = new_job(db)
    paused = new_job(db)
    job_rows.apply_action(db, paused, "pause")
    assert [j["id"] for j in frontier.runnable_jobs(db, "me", 10)] == [capped, free]
    now = time.time()
    with db.transaction() as s:
        s.execute("INSERT INTO workers (id, host, pid, job_id, started_at, heartbeat_at) "
                  "VALUES ('other', 'h', 1, ?, ?, ?)", (capped, now, now))
    assert [j["id"] for j in frontier.runnable_jobs(db, "me", 10)] == [free]
    # Its own heartbeat does not count against a worker, and dead ones do not count.
    assert capped in [j["id"] for j in frontier.runnable_jobs(db, "other", 10)]
    with db.transaction() as s:
        s.execute("UPDATE workers SET heartbeat_at = ?", (now - 60,))
    assert capped in [j["id"] for j in frontier.runnable_jobs(db, "me", 10)]
    assert json.loads(frontier.runnable_jobs(db, "me", 10)[0]["options"])["workers"] == 1


def test_a_new_worker_joins_the_job_with_the_fewest_workers(db):
    older, newer = new_job(db), new_job(db)
    now = time.time()
    with db.transaction() as s:
        s.execute("INSERT INTO workers (id, host, pid, job_id, started_at, heartbeat_at) "
                  "VALUES ('busy', 'h', 1, ?, ?, ?)", (older, now, now))
    assert [j["id"] for j in frontier.runnable_jobs(db, "me", 10)] == [newer, older]


def test_retry_requeues_failed_pages_for_claims(db):
    job_id = seeded_job(db, ["http://a.example.com/"])
    page = frontier.claim_pages(db, job_id, "w1", 1, lease_s=30)[0]
    frontier.commit_batch(db, job_id, [PageOutcome(page, "failed", None, 0, "curl error 7")], 100)
    assert frontier.complete_if_done(db, job_id)
    job_rows.apply_action(db, job_id, "retry")
    again = frontier.claim_pages(db, job_id, "w1", 1, lease_s=30)
    assert [p.id for p in again] == [page.id]
    assert_counters_match_rows(db, job_id)


@pytest.mark.parametrize("n", [1, 150])
def test_large_batches_commit_in_one_transaction(db, n):
    job_id = seeded_job(db, [f"http://a.example.com/{i}" for i in range(n)])
    pages = frontier.claim_pages(db, job_id, "w1", n, lease_s=30)
    outcomes = [done(p, [link(f"http://a.example.com/{i}/child")], {f"u{i}@example.org": {"text"}})
                for i, p in enumerate(pages)]
    report = frontier.commit_batch(db, job_id, outcomes, 10_000)
    assert (report.accepted, report.inserted, report.new_emails) == (n, n, n)
    assert_counters_match_rows(db, job_id)
