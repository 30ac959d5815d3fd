"""Commit batches split into several transactions (SQLite's lock-hold bound), on both databases.

On SQLite `commit_batch` writes a batch in transactions that each hold the
write lock about COMMIT_HOLD_S; here the bound is 0, so every step is a
transaction of its own, and MariaDB is made to split the same way (its
dialect says one_write_lock = False, but the code must be correct either
way). Each transaction bumps the job's version once, which is how these
tests see that a batch really was split. Correctness must not change:
every outcome exactly once, counters exact, a lost lease drops its links.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from trawl.jobs import JobOptions
from trawl.store import frontier, job_rows, open_database
from tests.test_frontier import assert_counters_match_rows, done, job, link, seeded_job


@pytest.fixture
def split(db, monkeypatch):
    """Every step its own transaction, with small steps."""
    monkeypatch.setattr(db.dialect, "one_write_lock", True)
    monkeypatch.setattr(frontier, "COMMIT_HOLD_S", 0.0)
    monkeypatch.setattr(frontier, "_OUTCOMES_PER_STEP", 3)
    monkeypatch.setattr(frontier, "_LINKS_PER_STEP", 4)
    return db


def urls(n: int, prefix: str = "p") -> list[str]:
    return [f"http://a.example.com/{prefix}{i}" for i in range(n)]


def test_a_split_batch_commits_every_outcome_link_and_email_exactly_once(split):
    db = split
    job_id = seeded_job(db, urls(10))
    pages = frontier.claim_pages(db, job_id, "w1", 10, lease_s=30)
    shared = link("http://a.example.com/shared")
    outcomes = []
    for i, page in enumerate(pages):
        # Page 0 has 10 links: more than a step holds, so its early links go first.
        own = [link(f"http://a.example.com/{i}/child{k}") for k in range(10 if i == 0 else 2)]
        outcomes.append(done(page, own + [shared], {"x@a.example.com": {"text"}, f"u{i}@a.example.com": {"text"}}))
    version = job(db, job_id)["version"]
    report = frontier.commit_batch(db, job_id, outcomes, 10_000)
    transactions = job(db, job_id)["version"] - version
    assert transactions >= 4, "the batch was not split"
    assert (report.accepted, report.lost) == (10, 0)
    assert report.inserted == 10 + 9 * 2 + 1  # the shared link once
    assert report.new_emails == 11
    with db.read() as s:
        assert s.scalar("SELECT pages FROM emails WHERE job_id = ? AND email = ?",
                        (job_id, "x@a.example.com")) == 10
        assert s.scalar("SELECT first_url FROM emails WHERE job_id = ? AND email = ?",
                        (job_id, "x@a.example.com")) == pages[0].url
        assert s.scalar("SELECT COUNT(*) FROM pages WHERE job_id = ? AND state = 'done'", (job_id,)) == 10
    row = job(db, job_id)
    assert (row["pages_done"], row["pages_in_flight"], row["emails"]) == (10, 0, 11)
    assert_counters_match_rows(db, job_id)


def test_a_lost_lease_in_a_split_batch_drops_its_links_but_not_the_links_others_share(split):
    db = split
    job_id = seeded_job(db, urls(6))
    pages = frontier.claim_pages(db, job_id, "w1", 6, lease_s=30)
    lost = pages[2]
    # w1's lease on every page runs out; w2 takes them all, and w1 commits late.
    assert frontier.sweep_expired_leases(db, now=time.time() + 60) == 6
    taken = {p.id: p for p in frontier.claim_pages(db, job_id, "w2", 6, lease_s=30)}
    shared = link("http://a.example.com/shared")
    outcomes = [
        done(taken[p.id] if p.id != lost.id else lost,
             [link(f"http://a.example.com/{p.id}/c{k}") for k in range(9 if p.id == lost.id else 1)]
             + [shared], {f"e{p.id}@a.example.com": {"text"}})
        for p in pages
    ]
    report = frontier.commit_batch(db, job_id, outcomes, 10_000)
    assert (report.accepted, report.lost) == (5, 1)
    assert report.inserted == 5 + 1
    with db.read() as s:
        stored = {r["url"] for r in s.all("SELECT url FROM pages WHERE job_id = ?", (job_id,))}
        emails = {r["email"] for r in s.all("SELECT email FROM emails WHERE job_id = ?", (job_id,))}
        state = s.scalar("SELECT state FROM pages WHERE id = ?", (lost.id,))
    assert not any(u.startswith(f"http://a.example.com/{lost.id}/") for u in stored)
    assert shared.url in stored
    assert f"e{lost.id}@a.example.com" not in emails and len(emails) == 5
    assert state == "leased"  # still w2's, whose result is the one that counts
    assert_counters_match_rows(db, job_id)


def test_max_pages_stays_exact_across_the_transactions_of_a_batch(split):
    db = split
    job_id = seeded_job(db, urls(4), max_pages=10)
    pages = frontier.claim_pages(db, job_id, "w1", 4, lease_s=30)
    outcomes = [done(p, [link(f"http://a.example.com/{i}/c{k}") for k in range(5)]) for i, p in enumerate(pages)]
    report = frontier.commit_batch(db, job_id, outcomes, max_pages=10)
    assert report.inserted == 6 and report.capped
    assert job(db, job_id)["pages_discovered"] == 10
    assert_counters_match_rows(db, job_id)


def test_a_crash_between_the_transactions_of_a_batch_loses_no_page(split, monkeypatch):
    db = split
    job_id = seeded_job(db, urls(9))
    pages = frontier.claim_pages(db, job_id, "w1", 9, lease_s=30)
    real = frontier._store_emails
    calls = []

    def dies_in_the_third_transaction(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the worker died here")
        return real(*args)

    monkeypatch.setattr(frontier, "_store_emails", dies_in_the_third_transaction)
    outcomes = [done(p, [link(f"http://a.example.com/{i}/c")]) for i, p in enumerate(pages)]
    with pytest.raises(RuntimeError):
        frontier.commit_batch(db, job_id, outcomes, 10_000)
    # Two steps (3 outcomes each) were committed; the rest is still leased and
    # comes back with the sweep, to be fetched again.
    assert job(db, job_id)["pages_done"] == 6
    assert_counters_match_rows(db, job_id)
    assert frontier.sweep_expired_leases(db, now=time.time() + 60) == 3
    again = frontier.claim_pages(db, job_id, "w2", 20, lease_s=30)
    assert {p.id for p in pages[6:]} <= {p.id for p in again}
    assert_counters_match_rows(db, job_id)


def test_an_urgent_insert_waits_for_a_held_sqlite_lock_then_succeeds(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'urgent.db'}", migrate_now=True)  # SQLite's one lock only
    holder = sqlite3.connect(db.dialect.target.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, holder.commit)
    release.start()
    try:
        row = job_rows.insert_job(db, JobOptions(urls=["http://a.example.com/"]))
    finally:
        release.join()
        holder.close()
    assert job_rows.load_job(db, row["id"])["status"] == "queued"
    with db.read() as s:  # the pooled connection got its normal busy timeout back
        assert s.scalar("PRAGMA busy_timeout") == db.dialect.busy_timeout_ms
        assert s.scalar("PRAGMA wal_autocheckpoint") == 0  # checkpoints: SqliteDialect.after_commit
    db.close()



def test_site_counters_and_states_stay_exact_when_batches_split(split):
    from tests import test_sites

    test_sites.test_batches_move_counters_states_and_own_domain_addresses(split)
    db = split
    seeds = [f"http://h{i}.example{i % 3}.org/" for i in range(9)]
    job_id = test_sites.new_job(db, seeds)
    pages = test_sites.claim_all(db, job_id)
    version = job(db, job_id)["version"]
    frontier.commit_batch(db, job_id, [
        test_sites.outcome(p, links=[test_sites.link(p, f"{url}c{k}") for k in range(3)],
                           emails={f"a{n}@example{n % 3}.org": {"text"}, "x@example0.org": {"mailto"}})
        for n, (url, p) in enumerate(sorted(pages.items()))
    ], max_pages=100)
    assert job(db, job_id)["version"] - version >= 3, "the batch was not split"
    test_sites.assert_sites_match_rows(db, job_id)
    assert_counters_match_rows(db, job_id)


def test_workers_let_a_waiting_urgent_writer_go_first_and_never_hang(tmp_path):
    import fcntl
    import os

    db = open_database(f"sqlite:///{tmp_path / 'urgent.db'}", migrate_now=True)
    job_id = seeded_job(db, ["http://a.example.com/"])
    # An urgent writer is waiting (its shared lock on the flag file): a worker's
    # write waits its turn, but only for a bounded time, and then commits.
    flag = os.open(str(tmp_path / "urgent.db-urgent"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(flag, fcntl.LOCK_SH)
    try:
        assert len(frontier.claim_pages(db, job_id, "w1", 1, lease_s=30)) == 1
    finally:
        os.close(flag)
    # An urgent insert that had to wait leaves no flag behind.
    holder = sqlite3.connect(str(tmp_path / "urgent.db"), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.2, holder.commit)
    release.start()
    try:
        job_rows.insert_job(db, JobOptions(urls=["http://b.example.com/"]))
    finally:
        release.join()
        holder.close()
    probe = os.open(str(tmp_path / "urgent.db-urgent"), os.O_RDWR)
    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a shared lock were left
    os.close(probe)
    assert_counters_match_rows(db, job_id)
    db.close()
