"""The store, run twice: on SQLite and on the real MariaDB at 127.0.0.1:3306."""

import threading
import time

import pytest

from trawl.jobs import JobOptions, TransitionRefused
from trawl.store import job_rows, migrate, results
from trawl.store.dialect import DatabaseUrlError, parse_database_url
from trawl.store.job_rows import JobNotFound
from trawl.store.schema import LATEST_VERSION, current_version


def make_job(db, n_urls=2, **opts):
    urls = [f"http://site{i}.example/" for i in range(n_urls)]
    return job_rows.insert_job(db, JobOptions(urls=urls, **opts))


def add_page(db, job_id, url, state, error=None):
    with db.transaction() as s:
        s.execute(
            "INSERT INTO pages (job_id, url, url_hash, host, depth, state, error) VALUES (?, ?, ?, ?, 0, ?, ?)",
            (job_id, url, f"{abs(hash(url)):016x}"[:16], "h", state, error),
        )
        s.execute("UPDATE jobs SET pages_discovered = pages_discovered + 1, version = version + 1, "
                  f"pages_{state} = pages_{state} + 1 WHERE id = ?", (job_id,))


def add_email(db, job_id, email, sources="text"):
    with db.transaction() as s:
        s.execute(
            "INSERT INTO emails (job_id, email, domain, first_url, pages, sources, created_at) "
            "VALUES (?, ?, ?, ?, 1, ?, ?)",
            (job_id, email, email.split("@")[1], "http://x.example/", sources, time.time()),
        )


def test_migrate_is_idempotent_and_versioned(db):
    assert current_version(db) == LATEST_VERSION
    assert migrate(db) == []


def test_insert_stores_raw_seeds_and_options(db):
    row = make_job(db, n_urls=3, name="audit", max_depth=1)
    job = job_rows.load_job(db, row["id"])
    assert job["status"] == "queued" and job["version"] == 1 and job["seeded"] == 0
    assert job["name"] == "audit"
    assert job_rows.load_seeds(db, row["id"]) == [f"http://site{i}.example/" for i in range(3)]


def test_ten_thousand_seeds_are_one_row(db):
    row = make_job(db, n_urls=10_000)
    assert len(job_rows.load_seeds(db, row["id"])) == 10_000
    with db.read() as s:
        assert s.scalar("SELECT COUNT(*) FROM pages") == 0


def test_unknown_job_raises(db):
    with pytest.raises(JobNotFound):
        job_rows.load_job(db, "nope")
    with pytest.raises(JobNotFound):
        job_rows.apply_action(db, "nope", "cancel")


def test_list_is_newest_first_with_a_cursor(db):
    ids = [make_job(db)["id"] for _ in range(5)]
    page1, cursor = job_rows.list_jobs(db, limit=2)
    page2, cursor2 = job_rows.list_jobs(db, limit=2, before=cursor)
    page3, cursor3 = job_rows.list_jobs(db, limit=2, before=cursor2)
    seen = [j["id"] for j in page1 + page2 + page3]
    assert seen == list(reversed(ids))
    assert cursor3 is None


def test_actions_bump_version_and_set_timestamps(db):
    job_id = make_job(db)["id"]
    started = job_rows.apply_action(db, job_id, "start")
    assert started["status"] == "running" and started["version"] == 2 and started["started_at"]
    paused = job_rows.apply_action(db, job_id, "pause")
    assert paused["status"] == "paused" and paused["version"] == 3
    resumed = job_rows.apply_action(db, job_id, "resume")
    assert resumed["status"] == "queued" and resumed["finished_at"] is None
    cancelled = job_rows.apply_action(db, job_id, "cancel")
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"] is not None
    with pytest.raises(TransitionRefused):
        job_rows.apply_action(db, job_id, "cancel")
    assert job_rows.load_job(db, job_id)["version"] == 5


def test_retry_requeues_failed_pages_and_fixes_counters(db):
    job_id = make_job(db)["id"]
    add_page(db, job_id, "http://a.example/1", "done")
    add_page(db, job_id, "http://a.example/2", "failed", error="timeout")
    add_page(db, job_id, "http://a.example/3", "failed", error="reset")
    job_rows.apply_action(db, job_id, "start")
    job_rows.apply_action(db, job_id, "complete")
    job = job_rows.apply_action(db, job_id, "retry")
    assert job["status"] == "queued" and job["pages_failed"] == 0 and job["finished_at"] is None
    pages, total = results.list_pages(db, job_id, 10, 0, state="pending")
    assert total == 2 and all(p["error"] is None for p in pages)
    # Nothing left to retry on a finished job: refused, and nothing changes.
    job_rows.apply_action(db, job_id, "start")
    job_rows.apply_action(db, job_id, "complete")
    version = job_rows.load_job(db, job_id)["version"]
    with pytest.raises(TransitionRefused):
        job_rows.apply_action(db, job_id, "retry")
    assert job_rows.load_job(db, job_id)["version"] == version


def test_concurrent_actions_have_one_winner(db):
    job_id = make_job(db)["id"]
    outcomes = []

    def cancel():
        try:
            job_rows.apply_action(db, job_id, "cancel")
            outcomes.append("ok")
        except TransitionRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=cancel) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["refused"] * 5
    assert job_rows.load_job(db, job_id)["version"] == 2


def test_delete_only_finished_jobs_and_all_their_rows(db):
    keep = make_job(db)["id"]
    add_page(db, keep, "http://k.example/", "done")
    add_email(db, keep, "keep@k.example")
    job_id = make_job(db)["id"]
    add_page(db, job_id, "http://a.example/", "done")
    add_email(db, job_id, "a@a.example")
    with pytest.raises(TransitionRefused):
        job_rows.delete_job(db, job_id)
    job_rows.apply_action(db, job_id, "cancel")
    job_rows.delete_job(db, job_id)
    with pytest.raises(JobNotFound):
        job_rows.load_job(db, job_id)
    with db.read() as s:
        assert s.scalar("SELECT COUNT(*) FROM pages") == 1
        assert s.scalar("SELECT COUNT(*) FROM emails") == 1


def test_emails_page_filter_and_stream(db):
    job_id = make_job(db)["id"]
    for i in range(25):
        add_email(db, job_id, f"user{i:02d}@shop.example", "mailto,text")
    add_email(db, job_id, "odd_%name@x.example")
    everything = sorted([f"user{i:02d}@shop.example" for i in range(25)] + ["odd_%name@x.example"])
    emails, total = results.list_emails(db, job_id, limit=10, offset=20)
    assert total == 26 and [e["email"] for e in emails] == everything[20:]
    assert emails[-1]["sources"] == ["mailto", "text"] and emails[-1]["domain"] == "shop.example"
    # LIKE wildcards typed by the user match themselves only.
    only, n = results.list_emails(db, job_id, 10, 0, q="_%")
    assert n == 1 and only[0]["email"] == "odd_%name@x.example"
    _, n = results.list_emails(db, job_id, 10, 0, q="USER1")
    assert n == 10
    streamed = [e["email"] for e in results.iter_emails(db, job_id)]
    assert len(streamed) == 26 and streamed == sorted(streamed)


def test_stats_come_from_job_counters(db):
    a = make_job(db)["id"]
    make_job(db)
    add_page(db, a, "http://a.example/1", "done")
    add_page(db, a, "http://a.example/2", "failed")
    job_rows.apply_action(db, a, "start")
    totals = job_rows.stats(db, time.time() - 10)
    assert totals["jobs"]["running"] == 1 and totals["jobs"]["queued"] == 1
    assert totals["pages"]["done"] == 1 and totals["pages"]["failed"] == 1
    assert totals["workers"] == 0


def test_percent_signs_survive_the_placeholder_conversion(db):
    job_id = make_job(db, name="100% done")["id"]
    with db.read() as s:
        assert s.scalar("SELECT name FROM jobs WHERE id = ? AND name LIKE '100%'", (job_id,)) == "100% done"


@pytest.mark.parametrize("url", ["postgres://x/y", "sqlite:///", "mysql://host/", "nonsense"])
def test_bad_database_urls_are_refused(url):
    with pytest.raises(DatabaseUrlError):
        parse_database_url(url)


def test_mysql_url_parts():
    t = parse_database_url("mysql://u%40x:p%3Aw@db.internal:3307/trawl")
    assert (t.user, t.password, t.host, t.port, t.database) == ("u@x", "p:w", "db.internal", 3307, "trawl")


@pytest.fixture(params=["sqlite", "mysql"])
def empty_database_url(request, tmp_path):
    """A database with no tables at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    from tests.conftest import _mysql_admin

    base = request.getfixturevalue("mysql_url")
    name = base.rsplit("/", 1)[1] + "_m"
    admin = _mysql_admin()
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
    admin.close()


def test_concurrent_migrations_apply_each_version_once(empty_database_url):
    from trawl.store import open_database

    results_, errors = [], []

    def run():
        database = open_database(empty_database_url)
        try:
            results_.append(migrate(database))
        except Exception as exc:  # collected: every migrator must succeed
            errors.append(exc)
        finally:
            database.close()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Each version once, whichever migrator applied it (on SQLite they take
    # turns per version; on MySQL the named lock gives one migrator all).
    assert sorted(v for r in results_ for v in r) == list(range(1, LATEST_VERSION + 1))
    database = open_database(empty_database_url)
    with database.read() as s:
        assert s.scalar("SELECT COUNT(*) FROM schema_migrations") == LATEST_VERSION
        assert s.scalar("SELECT COUNT(*) FROM jobs") == 0
    database.close()
