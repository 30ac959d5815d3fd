"""Worker supervision with real processes, real signals and real databases.

Each test starts supervisors as real processes (a trigger's detached one,
or `python app.py workers`), crawls the local test site, and checks the
outcome in the database and in the site's request counts. Waits are
bounded; nothing asserts how fast something happened. Every test ends by
checking /proc: no process of its run directory is left, no zombie.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

import pytest

from tests.processes import (Foreground, assert_nothing_left, comm, delay_routes, make_settings,
                             cmdline, our_pids, proc_ppid, proc_state, supervisor_pids, wait_for,
                             worker_pids, zombie_children)
from tests.site import TestSite, generate_site, site  # noqa: F401  (the fixture)
from trawl import demand, hostlock
from trawl.jobs import Status, parse_options
from trawl.store import job_rows, open_database, registry

# -- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'trawl.db'}"
    open_database(url, migrate_now=True).close()
    return url


@pytest.fixture
def mysql_db(mysql_url):
    """The session's MariaDB database, migrated and emptied for this test."""
    db = open_database(mysql_url, migrate_now=True)
    _wipe(db)
    yield db
    _wipe(db)
    db.close()


def _wipe(db) -> None:
    with db.transaction() as s:
        for table in ("pages", "emails", "workers", "jobs"):
            s.execute(f"DELETE FROM {table}")


@pytest.fixture
def cleanup(tmp_path):
    """After the test: every process of its run directory has ended, no zombies."""
    yield
    assert_nothing_left(str(tmp_path / "run"))


def create_job(db, url: str, **options) -> str:
    body = {"urls": [url], "max_depth": 3, "max_pages": 10_000, **options}
    return job_rows.insert_job(db, parse_options(body))["id"]


def wait_finished(db, job_id: str, timeout: float, fg: list[Foreground] = ()) -> dict:
    def finished():
        job = job_rows.load_job(db, job_id)
        return job if Status(job["status"]).finished else None

    try:
        return wait_for(finished, timeout, f"job {job_id} to finish", every=0.2)
    except AssertionError:
        logs = "\n".join(f.log()[-4000:] for f in fg)
        raise AssertionError(f"job {job_id} did not finish: {job_rows.load_job(db, job_id)}\n{logs}")


def page_states(db, job_id: str) -> dict[str, list[str]]:
    with db.read() as s:
        rows = s.all("SELECT url, state FROM pages WHERE job_id = ?", (job_id,))
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row["state"], []).append(row["url"])
    return out


def emails_of(db, job_id: str) -> set[str]:
    with db.read() as s:
        return {r["email"] for r in s.all("SELECT email FROM emails WHERE job_id = ?", (job_id,))}


def assert_exact(db, job_id: str, truth, depth: int) -> None:
    """The job found every page within `depth` once, and exactly the addresses on them."""
    job = job_rows.load_job(db, job_id)
    assert job["status"] == "completed", job
    states = page_states(db, job_id)
    assert set(states) <= {"done", "skipped"}, {k: len(v) for k, v in states.items()}
    done = states.get("done", [])
    assert len(done) == len(set(done))
    assert set(done) == truth.urls_within(depth)
    assert emails_of(db, job_id) == truth.emails_within(depth)
    assert int(job["pages_done"]) == len(done) and int(job["pages_in_flight"]) == 0


def page_hits(site) -> dict[str, int]:
    return site.page_hits()  # robots.txt and sitemap.xml are the crawler's own, per worker


def running_supervisors(run_dir: str) -> list[int]:
    """Supervisors past start-up (named trawl-superv): not the intermediate of the double
    fork, which may still be on its way out when the supervisor appears."""
    return [pid for pid in supervisor_pids(run_dir) if comm(pid) == "trawl-superv"]


def live_worker_rows(db, settings) -> list[dict]:
    return registry.live_workers(db, settings.worker_dead_after_s)


# -- the demand formula (pure) ---------------------------------------------------------------------


def test_demand_formula():
    job = lambda remaining, workers=None, concurrency=50: {  # noqa: E731
        "remaining": remaining, "workers": workers, "concurrency": concurrency}
    assert demand.target_workers([], max_workers=8) == 0
    # A queued job with nothing discovered yet still wants one worker (its seeds).
    assert demand.target_workers([job(0)], max_workers=8) == 1
    assert demand.target_workers([job(120)], max_workers=8) == 3           # ceil(120 / 50)
    assert demand.target_workers([job(120, concurrency=10)], max_workers=8) == 8  # capped
    assert demand.target_workers([job(5, workers=3), job(10)], max_workers=8) == 4
    # Two live supervisors share the demand.
    assert demand.target_workers([job(400)], max_workers=8, supervisors=2) == 4


def test_settings_travel_to_the_detached_supervisor_intact(tmp_path):
    from trawl import config

    settings = make_settings(tmp_path, "sqlite:///x.db", node="n 1", api_token=None, drain_s=7.5)
    assert config.load(hostlock.settings_environment(settings)) == settings


# -- trigger storm ----------------------------------------------------------------------------------


def test_trigger_storm_starts_one_detached_supervisor(tmp_path, sqlite_url, cleanup):
    settings = make_settings(tmp_path, sqlite_url, supervisor_idle_s=3.0)
    run_dir = settings.run_dir
    barrier = threading.Barrier(50)
    started = []

    def trigger():
        barrier.wait()
        started.append(hostlock.ensure_running(settings))

    threads = [threading.Thread(target=trigger) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert started.count(True) == 1 and len(started) == 50
    sups = wait_for(lambda: running_supervisors(run_dir), 20, "the supervisor")
    assert len(sups) == 1
    assert "trawl.supervisor" in open(f"/proc/{sups[0]}/cmdline").read()
    # Detached: its own session, not our child, and we keep no zombie of the intermediate.
    assert os.getsid(sups[0]) != os.getsid(0)
    assert not zombie_children()
    # While it runs, every further trigger sees it.
    assert hostlock.supervisor_running(settings)
    assert hostlock.ensure_running(settings) is False
    # With no work it leaves after its idle grace, and the lock is free again.
    wait_for(lambda: not our_pids(run_dir), 30, "the idle supervisor to exit")
    assert not hostlock.supervisor_running(settings)
    log = open(hostlock.log_path(settings)).read()
    assert log.count("supervisor s-") >= 1 and "stopped" in log


def test_trigger_storm_from_many_processes(tmp_path, sqlite_url, cleanup):
    """Ten processes with five threads each trigger at once: still one supervisor."""
    settings = make_settings(tmp_path, sqlite_url, supervisor_idle_s=3.0)
    code = (
        "import sys, threading\n"
        "from trawl import config, hostlock\n"
        "s = config.load()\n"
        "out = []\n"
        "ts = [threading.Thread(target=lambda: out.append(hostlock.ensure_running(s))) for _ in range(5)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
        "print(sum(out))\n"
    )
    env = hostlock.settings_environment(settings)
    procs = [subprocess.Popen([os.sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(10)]
    wins = sum(int(p.communicate(timeout=60)[0].strip()) for p in procs)
    assert wins == 1
    assert len(wait_for(lambda: running_supervisors(settings.run_dir), 20, "the supervisor")) == 1
    wait_for(lambda: not our_pids(settings.run_dir), 30, "the idle supervisor to exit")


def test_trigger_started_supervisor_crawls_then_exits(tmp_path, sqlite_url, site, cleanup):
    truth = generate_site(site, pages=40, seed=3)
    settings = make_settings(tmp_path, sqlite_url, supervisor_idle_s=1.0)
    db = open_database(sqlite_url)
    job_id = create_job(db, site.url("/"))
    assert hostlock.ensure_running(settings)
    wait_finished(db, job_id, 60)
    assert_exact(db, job_id, truth, 3)
    assert all(n == 1 for n in page_hits(site).values())
    wait_for(lambda: not our_pids(settings.run_dir), 30, "the supervisor to exit when idle")
    with db.read() as s:
        assert s.scalar("SELECT COUNT(*) FROM workers") == 0
    db.close()


def test_job_posted_to_the_web_server_starts_the_supervisor(tmp_path, site):
    """The real seam: gunicorn answers 202, its trigger starts one detached supervisor."""
    from tests.conftest import start_server
    from tests.http import call

    truth = generate_site(site, pages=30, seed=2)
    server = start_server(tmp_path, TRAWL_AUTOSTART_WORKERS="1", TRAWL_ALLOW_PRIVATE_NETWORKS="1",
                          TRAWL_SUPERVISOR_IDLE_S="1", TRAWL_HEARTBEAT_S="0.5", TRAWL_LOG_LEVEL="info")
    run_dir = str(tmp_path / "run")
    db = open_database(server.database_url)
    try:
        ids = [call("POST", server.url("/api/jobs"), {"urls": [site.url("/")], "max_depth": 3}).json()["id"]
               for _ in range(3)]
        for job_id in ids:
            wait_finished(db, job_id, 60)
        assert_exact(db, ids[0], truth, 3)
        sups = supervisor_pids(run_dir)
        assert len(sups) <= 1
        gunicorns = {p for p in our_pids(run_dir) if "gunicorn" in cmdline(p)}
        assert gunicorns
        zombies = [p for p in os.listdir("/proc") if p.isdigit() and proc_state(int(p)) == "Z"
                   and proc_ppid(int(p)) in gunicorns]
        assert not zombies
        logs = [open(os.path.join(run_dir, f)).read() for f in os.listdir(run_dir) if f.endswith(".log")]
        assert sum(len(re.findall(r"supervisor s-\w+ on ", text)) for text in logs) == 1
    finally:
        server.stop()
        db.close()
    assert_nothing_left(run_dir)


# -- scaling ------------------------------------------------------------------------------------------


def test_pool_scales_up_and_down_with_demand(tmp_path, sqlite_url, site, cleanup):
    generate_site(site, pages=60, seed=4)
    delay_routes(site, 0.15)
    settings = make_settings(tmp_path, sqlite_url, max_workers=3)
    db = open_database(sqlite_url)
    with Foreground(settings) as fg:
        # No work: no workers.
        wait_for(lambda: registry.live_workers(db, 4.0, role="supervisor"), 20, "the supervisor row")
        time.sleep(1.5)
        assert worker_pids(settings.run_dir) == []
        # Demand of 5 workers, capped at TRAWL_MAX_WORKERS = 3.
        job_id = create_job(db, site.url("/"), workers=5, concurrency=2)
        wait_for(lambda: len(live_worker_rows(db, settings)) == 3, 20, "three workers")
        assert len(worker_pids(settings.run_dir)) == 3
        rows = live_worker_rows(db, settings)
        assert len({r["id"] for r in rows}) == 3 and {r["host"] for r in rows} == {"test-node"}
        assert {r["pid"] for r in rows} == set(worker_pids(settings.run_dir))
        # Demand drops (the job is paused): the pool shrinks to nothing.
        job_rows.apply_action(db, job_id, "pause")
        wait_for(lambda: not worker_pids(settings.run_dir), 30, "the pool to shrink to zero")
        wait_for(lambda: not live_worker_rows(db, settings), 10, "the worker rows to go")
        with db.read() as s:
            assert s.scalar("SELECT COUNT(*) FROM pages WHERE state = 'leased'") == 0
        # And grows again when the job is resumed; it then completes.
        job_rows.apply_action(db, job_id, "resume")
        wait_for(lambda: worker_pids(settings.run_dir), 20, "workers again after resume")
        wait_finished(db, job_id, 90, [fg])
        wait_for(lambda: not worker_pids(settings.run_dir), 30, "the pool to shrink after the job")
        assert fg.terminate() == 0
    db.close()


# -- crash recovery -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_kill_9_worker_is_replaced_and_result_is_exact(tmp_path, site, cleanup, backend, request):
    url = f"sqlite:///{tmp_path / 'trawl.db'}" if backend == "sqlite" else request.getfixturevalue("mysql_db").url
    db = open_database(url, migrate_now=True)
    truth = generate_site(site, pages=150, seed=5)
    delay_routes(site, 0.05)
    settings = make_settings(tmp_path, url)
    with Foreground(settings, count=2) as fg:
        job_id = create_job(db, site.url("/"), concurrency=4)
        wait_for(lambda: int(job_rows.load_job(db, job_id)["pages_done"]) >= 15, 60, "15 pages done")
        rows = live_worker_rows(db, settings)
        victim = next(r for r in rows if r["job_id"] == job_id) if any(r["job_id"] for r in rows) else rows[0]
        os.kill(int(victim["pid"]), signal.SIGKILL)
        # A fresh worker (new id, new pid) takes its place; the dead one's row goes.
        wait_for(lambda: len(worker_pids(settings.run_dir)) == 2
                 and int(victim["pid"]) not in worker_pids(settings.run_dir), 5, "a replacement worker")
        wait_for(lambda: victim["id"] not in {r["id"] for r in live_worker_rows(db, settings)}
                 and len(live_worker_rows(db, settings)) == 2, 10, "the registry to show the replacement")
        wait_finished(db, job_id, 120, [fg])
        assert_exact(db, job_id, truth, 3)
        assert fg.terminate() == 0
    assert "died (signal 9)" in fg.log()
    db.close()


def test_workers_recycle_after_their_page_quota(tmp_path, sqlite_url, site, cleanup):
    truth = generate_site(site, pages=60, seed=15)
    settings = make_settings(tmp_path, sqlite_url, worker_recycle_pages=15)
    db = open_database(sqlite_url)
    with Foreground(settings, count=1) as fg:
        job_id = create_job(db, site.url("/"))
        wait_finished(db, job_id, 60, [fg])
        assert_exact(db, job_id, truth, 3)
        assert all(n == 1 for n in page_hits(site).values())
        assert fg.terminate() == 0
    assert fg.log().count("(recycled)") >= 2 and "recycling after" in fg.log()
    db.close()


def test_workers_recycle_above_the_rss_ceiling_without_a_spawn_storm(tmp_path, sqlite_url, cleanup):
    settings = make_settings(tmp_path, sqlite_url, worker_max_rss_mb=1)
    with Foreground(settings, count=1) as fg:
        wait_for(lambda: "keep ending right after they start" in fg.log(), 30, "the spawn backoff")
        assert "exits: RSS" in fg.log() and "(recycled)" in fg.log()
        assert fg.terminate() == 0


def test_stale_rows_are_reaped_and_a_dead_local_workers_leases_come_back(tmp_path, sqlite_url, cleanup):
    from trawl.store import frontier

    settings = make_settings(tmp_path, sqlite_url)
    db = open_database(sqlite_url)
    job_id = create_job(db, "http://127.0.0.1:9/")
    frontier.expand_seeds(db, job_id)
    assert len(frontier.claim_pages(db, job_id, "w-dead", 10, lease_s=600)) == 1
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    for worker_id, host, pid in (("w-dead", "test-node", gone.pid), ("w-far", "other-host", 1)):
        registry.heartbeat(db, worker_id, role="worker", host=host, pid=pid, started_at=0.0)
    with db.read() as s:
        s.execute("UPDATE workers SET heartbeat_at = 0")
    # A supervisor with no pool of its own still keeps the registry clean.
    with Foreground(settings, count=0) as fg:
        ids = lambda: {r["id"] for r in registry.host_rows(db, "test-node") + registry.host_rows(db, "other-host")}  # noqa: E731
        wait_for(lambda: not ids() & {"w-dead", "w-far"}, 20, "the stale rows to go")
        # Our host's dead worker: its lease ends now, not in ten minutes.
        wait_for(lambda: page_states(db, job_id).get("pending"), 20, "the page back in the queue")
        assert int(job_rows.load_job(db, job_id)["pages_in_flight"]) == 0
        assert fg.terminate() == 0
    db.close()


# -- drain --------------------------------------------------------------------------------------------


def test_sigterm_drains_with_nothing_leased(tmp_path, sqlite_url, site, cleanup):
    truth = generate_site(site, pages=120, seed=6)
    delay_routes(site, 0.25)
    settings = make_settings(tmp_path, sqlite_url)
    db = open_database(sqlite_url)
    fg = Foreground(settings, count=2)
    job_id = create_job(db, site.url("/"), concurrency=8)

    def leased():
        with db.read() as s:
            return s.scalar("SELECT COUNT(*) FROM pages WHERE state = 'leased'")

    wait_for(lambda: leased() > 0 and int(job_rows.load_job(db, job_id)["pages_done"]) >= 5, 60,
             "pages in flight")
    assert fg.terminate(timeout=settings.drain_s + 20) == 0
    assert not our_pids(settings.run_dir)
    assert leased() == 0
    with db.read() as s:
        assert s.scalar("SELECT COUNT(*) FROM workers") == 0
    assert "draining" in fg.log()
    # Nothing was lost either: a new supervisor finishes the job exactly.
    with Foreground(settings, count=2, name="again") as again:
        wait_finished(db, job_id, 120, [again])
        assert_exact(db, job_id, truth, 3)
    db.close()


def test_workers_die_with_a_killed_supervisor(tmp_path, sqlite_url, site, cleanup):
    generate_site(site, pages=80, seed=7)
    delay_routes(site, 0.3)
    settings = make_settings(tmp_path, sqlite_url)
    db = open_database(sqlite_url)
    fg = Foreground(settings, count=2)
    create_job(db, site.url("/"))
    wait_for(lambda: len(worker_pids(settings.run_dir)) == 2, 20, "two workers")
    fg.proc.kill()
    fg.proc.wait()
    # No orphans: the workers see their parent go and stop on their own.
    wait_for(lambda: not our_pids(settings.run_dir), 30, "the orphaned workers to exit")
    db.close()


# -- many machines ------------------------------------------------------------------------------------


@pytest.mark.mysql
def test_two_hosts_share_one_job_and_fetch_each_page_once(tmp_path, mysql_db, cleanup):
    """Two supervisors presenting different hosts, one job over four sites, MariaDB between them.

    Workers partition a job by site host (frontier.claim_pages), and a
    worker's first claim takes up to half of the hosts nobody holds; with
    eight sites (127.0.0.2-9) some are still free when the second host's
    workers make their first claim, however the two pools' start-ups interleave.
    """
    sites = [TestSite(host=f"127.0.0.{n}").start() for n in range(2, 10)]
    try:
        truths = [generate_site(s, pages=60, seed=80 + n) for n, s in enumerate(sites)]
        for s in sites:
            delay_routes(s, 0.02)
        url = mysql_db.url
        a = make_settings(tmp_path, url, node="host-a", max_workers=2)
        b = make_settings(tmp_path, url, node="host-b", max_workers=2)
        hosts_seen: set[str] = set()
        with Foreground(a, name="a") as fa, Foreground(b, name="b") as fb:
            wait_for(lambda: len(registry.live_workers(mysql_db, 4.0, role="supervisor")) == 2, 20,
                     "both supervisors")
            body = {"urls": [s.url("/") for s in sites], "max_depth": 3, "workers": 4, "concurrency": 5}
            job_id = job_rows.insert_job(mysql_db, parse_options(body))["id"]

            def finished():
                hosts_seen.update(r["host"] for r in registry.live_workers(mysql_db, 4.0) if r["job_id"])
                return Status(job_rows.load_job(mysql_db, job_id)["status"]).finished

            wait_for(finished, 120, "the shared job to finish", every=0.1)
            assert fa.terminate() == 0 and fb.terminate() == 0
        assert hosts_seen == {"host-a", "host-b"}
        states = page_states(mysql_db, job_id)
        assert set(states) == {"done"}
        assert set(states["done"]) == set().union(*(t.urls_within(3) for t in truths))
        assert emails_of(mysql_db, job_id) == set().union(*(t.emails_within(3) for t in truths))
        for s, truth in zip(sites, truths):
            hits = page_hits(s)
            assert set(hits) == {u[len(s.origin):] for u in truth.urls_within(3)}
            assert set(hits.values()) == {1}, {p: n for p, n in hits.items() if n != 1}
    finally:
        for s in sites:
            s.stop()


# -- the database goes away -----------------------------------------------------------------------------


def _mysql_up() -> bool:
    import pymysql

    try:
        pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", connect_timeout=1).close()
        return True
    except Exception:
        return False


def _start_mariadb() -> None:
    subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec",
                    "/usr/sbin/mariadbd"], check=False, timeout=30)


@pytest.mark.mysql
@pytest.mark.slow
def test_mariadb_restart_mid_crawl(tmp_path, mysql_db, site, cleanup, _session_dbs):
    truth = generate_site(site, pages=150, seed=9)
    delay_routes(site, 0.05)
    settings = make_settings(tmp_path, mysql_db.url, lease_s=10.0)
    with Foreground(settings, count=2) as fg:
        job_id = create_job(mysql_db, site.url("/"), concurrency=4)
        wait_for(lambda: int(job_rows.load_job(mysql_db, job_id)["pages_done"]) >= 15, 60,
                 "15 pages done")
        assert job_rows.load_job(mysql_db, job_id)["status"] == "running"
        try:
            subprocess.run(["mysqladmin", "-uroot", "shutdown"], check=True, timeout=60)
            wait_for(lambda: not _mysql_up(), 30, "MariaDB to stop")
            time.sleep(2)  # an outage of a few seconds, with workers mid-crawl
        finally:
            _start_mariadb()
            wait_for(_mysql_up, 60, "MariaDB to accept connections again", every=0.2)
            # Pooled connections of this session (ours and conftest's) died with the server.
            for database in [mysql_db, *_session_dbs.values()]:
                database.close()
        wait_finished(mysql_db, job_id, 150, [fg])
        assert_exact(mysql_db, job_id, truth, 3)
        assert fg.terminate() == 0
    assert "database" in fg.log()
