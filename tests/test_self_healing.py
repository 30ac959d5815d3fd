"""Self-healing supervision with real servers, supervisors, workers and databases.

One supervisor per (node, database): servers of one checkout on different
databases each get their own pool. A supervisor that dies (kill -9, SIGTERM)
is replaced with no user action: the web server's periodic check or its
progress reads fire the trigger. /health says when a job waits with nobody
on it, and a database gone for good stops the pool instead of flooding the
log. Waits are bounded; nothing asserts how fast something happened.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MYSQL, ROOT, start_server
from tests.http import call
from tests.processes import (Foreground, assert_nothing_left, delay_routes, make_settings, supervisor_pids,
                             wait_for, worker_pids)
from tests.site import generate_site, site  # noqa: F401  (the fixture)
from tests.test_supervisor import assert_exact, create_job, wait_finished
from trawl import hostlock
from trawl.logs import RepeatLimiter
from trawl.store import job_rows, open_database

# Short timings for every process these tests start (TRAWL_* reach the
# supervisor and its workers through the server's environment).
FAST = {"TRAWL_AUTOSTART_WORKERS": "1", "TRAWL_ALLOW_PRIVATE_NETWORKS": "1", "TRAWL_HEARTBEAT_S": "0.5",
        "TRAWL_WORKER_DEAD_AFTER_S": "4", "TRAWL_SUPERVISOR_IDLE_S": "2", "TRAWL_SELF_HEAL_S": "0.5",
        "TRAWL_DRAIN_S": "10", "TRAWL_MAX_WORKERS": "2", "TRAWL_LOG_LEVEL": "info"}


@pytest.fixture
def fresh_mysql(request):
    """A MariaDB database of this test alone (tests here drop it on purpose)."""
    import pymysql

    from tests.conftest import skip_or_fail

    try:
        admin = pymysql.connect(autocommit=True, connect_timeout=3, **MYSQL)
    except Exception as exc:
        skip_or_fail(f"MariaDB at 127.0.0.1:3306 is not reachable: {exc}")
    name = f"trawl_heal_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    url = f"mysql://root:@127.0.0.1:3306/{name}"
    open_database(url, migrate_now=True).close()
    yield url
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
    admin.close()


def sqlite_db(tmp: Path, name: str) -> str:
    url = f"sqlite:///{tmp / name}"
    open_database(url, migrate_now=True).close()
    return url


def database_url(backend: str, tmp: Path, request) -> str:
    return sqlite_db(tmp, "trawl.db") if backend == "sqlite" else request.getfixturevalue("fresh_mysql")


def post_job(server, url: str, **options) -> str:
    reply = call("POST", server.url("/api/jobs"), {"urls": [url], "max_depth": 3, "max_pages": 10_000, **options})
    assert reply.status == 202, reply.body
    return reply.json()["id"]


def health(server) -> tuple[int, dict]:
    reply = call("GET", server.url("/health"), timeout=30)
    report = reply.json()
    return reply.status, {c["name"]: c for c in report["checks"]}


def stop_supervisors(run_dir: str) -> None:
    for pid in supervisor_pids(run_dir):
        os.kill(pid, signal.SIGTERM)


# -- one supervisor per (node, database) --------------------------------------------------------


def test_the_key_names_the_database_without_its_password(tmp_path):
    a = make_settings(tmp_path, "mysql://root:secret@db:3306/trawl")
    same = make_settings(tmp_path, "mysql://root:other@db:3306/trawl")
    other = make_settings(tmp_path, "mysql://root:secret@db:3306/trawl2")
    assert hostlock.lock_path(a) == hostlock.lock_path(same) != hostlock.lock_path(other)
    assert "secret" not in hostlock.lock_path(a) + hostlock.database_identity(a.database_url)
    here = make_settings(tmp_path, "sqlite:///x.db")
    assert hostlock.database_identity(here.database_url) == "sqlite:///" + os.path.abspath("x.db")
    assert hostlock.log_path(here).endswith(f"supervisor-{hostlock.supervisor_key(here)}.log")


def test_app_py_workers_takes_the_same_lock_as_the_trigger(tmp_path):
    url = sqlite_db(tmp_path, "trawl.db")
    settings = make_settings(tmp_path, url, supervisor_idle_s=60.0)
    assert hostlock.ensure_running(settings)
    try:
        with Foreground(settings, name="fg") as fg:
            wait_for(lambda: "another supervisor holds" in fg.log(), 20, "the foreground supervisor to wait")
            assert hostlock.lock_path(settings) in fg.log()
            assert len(wait_for(lambda: supervisor_pids(settings.run_dir), 10, "supervisors")) == 2
    finally:
        stop_supervisors(settings.run_dir)
    assert_nothing_left(settings.run_dir)


def test_servers_of_one_checkout_on_three_databases_crawl_at_once(tmp_path, site, request):
    truth = generate_site(site, pages=40, seed=21)
    delay_routes(site, 0.02)
    run_dir = str(tmp_path / "run")
    urls = [sqlite_db(tmp_path, "a.db"), sqlite_db(tmp_path, "b.db"), request.getfixturevalue("fresh_mysql")]
    servers = []
    try:
        for n, url in enumerate(urls):
            home = tmp_path / f"server{n}"
            home.mkdir()
            servers.append(start_server(home, url, **FAST, TRAWL_RUN_DIR=run_dir))
        jobs = [post_job(s, site.url("/")) for s in servers]
        # Three pools at once, one per database (before, the first held the node's only lock).
        wait_for(lambda: len(supervisor_pids(run_dir)) == 3, 30, "three supervisors at once")
        dbs = [open_database(url) for url in urls]
        for db, job_id in zip(dbs, jobs):
            wait_finished(db, job_id, 90)
            assert_exact(db, job_id, truth, 3)
        # Each database had its own supervisor: one lock and one log per database.
        locks = sorted(p.name for p in Path(run_dir).glob("supervisor-*.lock"))
        assert len(locks) == 3
        logs = [p.read_text() for p in Path(run_dir).glob("supervisor-*.log")]
        assert sorted(hostlock.database_identity(u) in "".join(logs) for u in urls) == [True] * 3
        for db in dbs:
            db.close()
    finally:
        for s in servers:
            s.stop()
        stop_supervisors(run_dir)
    assert_nothing_left(run_dir)


def test_restart_on_another_database_while_the_first_supervisor_idles(tmp_path, site):
    """The measured bug: the first database's idle supervisor held the node's only lock."""
    truth = generate_site(site, pages=30, seed=22)
    run_dir = str(tmp_path / "run")
    env = {**FAST, "TRAWL_SUPERVISOR_IDLE_S": "60", "TRAWL_RUN_DIR": run_dir}
    first_url, second_url = sqlite_db(tmp_path, "first.db"), sqlite_db(tmp_path, "second.db")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = start_server(tmp_path / "one", first_url, **env)
    try:
        db = open_database(first_url)
        wait_finished(db, post_job(first, site.url("/")), 60)
        db.close()
    finally:
        first.stop()
    idling = supervisor_pids(run_dir)
    assert len(idling) == 1  # still there, holding the first database's lock
    second = start_server(tmp_path / "two", second_url, **env)
    try:
        db = open_database(second_url)
        job_id = post_job(second, site.url("/"))
        wait_finished(db, job_id, 60)
        assert_exact(db, job_id, truth, 3)
        assert set(idling) < set(supervisor_pids(run_dir))
        db.close()
    finally:
        second.stop()
        stop_supervisors(run_dir)
    assert_nothing_left(run_dir)


def test_a_server_started_with_work_waiting_starts_workers_with_no_request(tmp_path, site):
    """A gunicorn restart: jobs created earlier (no trigger will fire for them) are picked up."""
    truth = generate_site(site, pages=20, seed=27)
    url = sqlite_db(tmp_path, "trawl.db")
    db = open_database(url)
    job_id = create_job(db, site.url("/"))  # straight into the database: no trigger fired
    run_dir = str(tmp_path / "run")
    server = start_server(tmp_path, url, **FAST, TRAWL_RUN_DIR=run_dir)
    try:
        wait_finished(db, job_id, 60)
        assert_exact(db, job_id, truth, 3)
        assert any("self-heal" in t["reason"] for t in server.triggers())
    finally:
        db.close()
        server.stop()
        stop_supervisors(run_dir)
    assert_nothing_left(run_dir)


def test_a_stats_read_revives_waiting_work(tmp_path, site):
    truth = generate_site(site, pages=10, seed=28)
    url = sqlite_db(tmp_path, "trawl.db")
    db = open_database(url)
    job_id = create_job(db, site.url("/"))  # no trigger fired for it
    run_dir = str(tmp_path / "run")
    server = start_server(tmp_path, url, **{**FAST, "TRAWL_SELF_HEAL_S": "0", "TRAWL_RUN_DIR": run_dir})
    try:
        assert call("GET", server.url("/api/stats")).json()["workers"] == 0
        wait_finished(db, job_id, 60)
        assert_exact(db, job_id, truth, 3)
        assert [t["reason"] for t in server.triggers()] == ["read stats"]
    finally:
        db.close()
        server.stop()
        stop_supervisors(run_dir)
    assert_nothing_left(run_dir)


# -- a supervisor that dies is replaced ------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_kill_9_of_the_supervisor_is_healed_by_progress_reads_alone(tmp_path, site, backend, request):
    truth = generate_site(site, pages=120, seed=23)
    delay_routes(site, 0.05)
    url = database_url(backend, tmp_path, request)
    run_dir = str(tmp_path / "run")
    # No periodic check: only the progress reads below may revive the job.
    server = start_server(tmp_path, url, **{**FAST, "TRAWL_SELF_HEAL_S": "0", "TRAWL_STRANDED_AFTER_S": "1",
                                            "TRAWL_RUN_DIR": run_dir})
    db = open_database(url)
    try:
        job_id = post_job(server, site.url("/"), concurrency=4)
        wait_for(lambda: int(job_rows.load_job(db, job_id)["pages_done"]) >= 10, 60, "10 pages done")
        victim = supervisor_pids(run_dir)
        assert len(victim) == 1
        os.kill(victim[0], signal.SIGKILL)
        wait_for(lambda: not worker_pids(run_dir), 30, "its workers to stop")
        # Nobody works on the job now, and health says so, naming it.
        code, checks = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(health(server)), 30,
                                "/health to fail")
        assert checks["waiting_jobs"]["ok"] is False and job_id in checks["waiting_jobs"]["detail"]
        assert checks["node_supervisor"]["ok"] is False, checks["node_supervisor"]
        assert job_rows.load_job(db, job_id)["status"] == "running"
        assert not supervisor_pids(run_dir)
        first = call("GET", server.url(f"/api/jobs/{job_id}/progress")).json()
        assert first["waiting_for"] == "workers" and first["workers"] == 0

        def read_progress():
            return call("GET", server.url(f"/api/jobs/{job_id}/progress")).json()["status"] == "completed"

        wait_for(read_progress, 90, "the job to complete on progress reads alone", every=0.5)
        assert_exact(db, job_id, truth, 3)
        log = Path(hostlock.log_path(make_settings(tmp_path, url, node=os.uname().nodename))).read_text()
        assert len(re.findall(r"supervisor s-\w+ on ", log)) == 2  # the killed one and its replacement
        code, checks = health(server)
        assert code == 200, checks
        assert call("GET", server.url(f"/api/jobs/{job_id}/progress")).json()["waiting_for"] is None
    finally:
        db.close()
        server.stop()
        stop_supervisors(run_dir)
    assert_nothing_left(run_dir)


def test_sigterm_of_the_supervisor_drains_and_a_new_one_takes_over(tmp_path, site):
    truth = generate_site(site, pages=120, seed=24)
    delay_routes(site, 0.1)
    url = sqlite_db(tmp_path, "trawl.db")
    run_dir = str(tmp_path / "run")
    server = start_server(tmp_path, url, **FAST, TRAWL_RUN_DIR=run_dir)
    db = open_database(url)
    try:
        job_id = post_job(server, site.url("/"), concurrency=4)
        wait_for(lambda: int(job_rows.load_job(db, job_id)["pages_done"]) >= 10, 60, "10 pages done")
        old = supervisor_pids(run_dir)
        assert len(old) == 1
        os.kill(old[0], signal.SIGTERM)
        wait_for(lambda: supervisor_pids(run_dir) and old[0] not in supervisor_pids(run_dir), 60,
                 "a new supervisor after the drain")
        wait_finished(db, job_id, 90)
        assert_exact(db, job_id, truth, 3)
        logs = "".join(p.read_text() for p in Path(run_dir).glob("supervisor-*.log"))
        assert "draining" in logs and logs.count(" stopped") >= 1
    finally:
        db.close()
        server.stop()
        stop_supervisors(run_dir)
    assert_nothing_left(run_dir)


def test_without_autostart_nothing_starts_and_health_names_the_waiting_job(tmp_path, site):
    generate_site(site, pages=5, seed=25)
    url = sqlite_db(tmp_path, "trawl.db")
    run_dir = str(tmp_path / "run")
    server = start_server(tmp_path, url, **{**FAST, "TRAWL_AUTOSTART_WORKERS": "0",
                                            "TRAWL_STRANDED_AFTER_S": "1", "TRAWL_RUN_DIR": run_dir})
    try:
        job_id = post_job(server, site.url("/"))
        for _ in range(3):  # reads that would nudge a local supervisor if autostart were on
            assert call("GET", server.url(f"/api/jobs/{job_id}/progress")).json()["waiting_for"] == "workers"
        code, checks = wait_for(lambda: (lambda r: r if r[0] == 503 else None)(health(server)), 30,
                                "/health to fail")
        assert job_id in checks["waiting_jobs"]["detail"]
        assert "TRAWL_AUTOSTART_WORKERS=0" in checks["node_supervisor"]["detail"]
        page = call("GET", server.url(f"/jobs/{job_id}")).body.decode()
        assert '<span id="waiting" class="waiting">waiting for workers</span>' in page
        assert supervisor_pids(run_dir) == [] and worker_pids(run_dir) == []
        assert not list(Path(run_dir).glob("supervisor-*.lock"))
        # health_check.py, run by an operator on the same set-up, says the same.
        tool = subprocess.run([sys.executable, str(ROOT / "health_check.py")], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, env={**server.env})
        assert tool.returncode == 1 and job_id in tool.stdout and "waiting_jobs" in tool.stdout.splitlines()[-1]
    finally:
        server.stop()
    assert_nothing_left(run_dir)


# -- a database gone for good ---------------------------------------------------------------------


def _drop(backend: str, url: str) -> None:
    if backend == "sqlite":
        path = url[len("sqlite:///"):]
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        return
    import pymysql

    admin = pymysql.connect(autocommit=True, connect_timeout=3, **MYSQL)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {url.rsplit('/', 1)[1]}")
    admin.close()


@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_a_database_gone_for_good_stops_the_pool_and_frees_the_node(tmp_path, site, backend, request):
    generate_site(site, pages=200, seed=26)
    delay_routes(site, 0.1)
    url = database_url(backend, tmp_path, request)
    settings = make_settings(tmp_path, url, supervisor_idle_s=4.0, max_workers=3)
    run_dir = settings.run_dir
    db = open_database(url)
    job_id = create_job(db, site.url("/"), workers=3, concurrency=4)
    assert hostlock.ensure_running(settings)
    wait_for(lambda: len(worker_pids(run_dir)) == 3, 30, "three workers")
    wait_for(lambda: int(job_rows.load_job(db, job_id)["pages_done"]) >= 5, 60, "5 pages done")
    db.close()
    _drop(backend, url)
    broken = supervisor_pids(run_dir)
    wait_for(lambda: not worker_pids(run_dir), 30, "the workers to go")
    # Meanwhile a server of the same checkout on a fresh database gets its own workers.
    fresh_url = sqlite_db(tmp_path, "fresh.db")
    (tmp_path / "fresh").mkdir()
    server = start_server(tmp_path / "fresh", fresh_url, **FAST, TRAWL_RUN_DIR=run_dir)
    fresh = open_database(fresh_url)
    try:
        fresh_job = post_job(server, site.url("/"), max_pages=20)
        wait_finished(fresh, fresh_job, 60)
        assert job_rows.load_job(fresh, fresh_job)["status"] == "completed"
    finally:
        fresh.close()
        server.stop()
    # The broken supervisor leaves after its idle time, having said why.
    wait_for(lambda: not set(broken) & set(supervisor_pids(run_dir)), 60, "the broken supervisor to exit")
    log = Path(hostlock.log_path(settings)).read_text()
    assert "will not pass by itself" in log
    records = [line for line in log.splitlines() if line[:2] == "20"]  # lines that start a record
    assert len(records) < 60, "\n".join(records)
    # At most a few per worker, not one every 2 s (each traceback is ~30 lines).
    assert log.count("Traceback") <= 3 * 3, log[-5000:]
    stop_supervisors(run_dir)
    assert_nothing_left(run_dir)


# -- identical repeated errors -------------------------------------------------------------------------


def test_identical_errors_pass_once_a_window_with_the_count_held_back():
    now = [0.0]
    limiter = RepeatLimiter(window_s=60.0, clock=lambda: now[0])
    logger = logging.getLogger("trawl.test_repeats")

    def record(msg, *args, exc=None):
        return logger.makeRecord(logger.name, logging.WARNING, __file__, 1, msg, args,
                                 (type(exc), exc, None) if exc else None)

    boom = RuntimeError("1146 Table 'x.jobs' doesn't exist")
    passed = []
    for second in range(0, 150, 2):  # one error every 2 s for 150 s, with a varying delay
        now[0] = float(second)
        rec = record("worker %s: loop failed (%s); again in %.1fs", "w-1", boom, second / 7, exc=boom)
        if limiter.filter(rec):
            passed.append(rec.getMessage())
    assert len(passed) == 3  # at 0 s, 60 s and 120 s
    assert "[29 identical messages held back" in passed[1]
    # A different error is not held back by the first one.
    assert limiter.filter(record("worker %s: loop failed (%s); again in %.1fs", "w-1", "other", 1.0))


# -- small pure parts ------------------------------------------------------------------------------


def test_progress_says_waiting_for_workers_only_for_a_runnable_job_nobody_is_on():
    from trawl.progress import progress_document

    row = {"id": "j", "status": "running", "version": 3, "pages_discovered": 10, "pages_done": 2,
           "pages_failed": 0, "pages_skipped": 0, "pages_in_flight": 8, "emails": 0, "bytes": 0,
           "created_at": 1.0, "started_at": 1.0, "updated_at": 2.0, "finished_at": None, "error": None}
    assert progress_document(row, workers=0)["waiting_for"] == "workers"
    assert progress_document(row, workers=2)["waiting_for"] is None
    for status in ("paused", "completed", "cancelled", "failed"):
        assert progress_document({**row, "status": status}, workers=0)["waiting_for"] is None
    assert progress_document({**row, "status": "queued"}, workers=0)["waiting_for"] == "workers"


def test_a_zombie_or_reaped_pid_is_not_a_live_supervisor():
    zombie = subprocess.Popen(["true"])
    wait_for(lambda: open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z", 10,
             "the child to become a zombie")
    assert not hostlock.pid_alive(zombie.pid)
    zombie.wait()
    assert not hostlock.pid_alive(zombie.pid)
    assert hostlock.pid_alive(os.getpid())
