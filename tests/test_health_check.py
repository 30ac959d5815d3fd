"""health_check.py, the operators' tool: healthy set-up → exit 0; database down → exit 1 naming it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests.conftest import ROOT, free_port


def run_tool(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRAWL_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, str(ROOT / "health_check.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def migrated_sqlite(tmp_path) -> str:
    from trawl.store import open_database

    url = f"sqlite:///{tmp_path / 'trawl.db'}"
    open_database(url, migrate_now=True).close()
    return url


def test_healthy_setup_passes_in_text_and_json(tmp_path):
    url = migrated_sqlite(tmp_path)
    text = run_tool(url)
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.strip().splitlines()[-1] == "healthy"
    for name in ("database", "queue", "workers", "pycurl", "bloom", "disk", "spawn"):
        assert any(line.split()[:2] == ["ok", name] for line in text.stdout.splitlines()), name
    as_json = run_tool(url, "--json")
    assert as_json.returncode == 0
    report = json.loads(as_json.stdout)
    assert report["status"] == "ok" and all(c["ok"] for c in report["checks"])


def test_mysql_port_with_nothing_listening_fails_naming_the_database(tmp_path):
    url = f"mysql://root:@127.0.0.1:{free_port()}/trawl"
    result = run_tool(url)
    assert result.returncode == 1
    assert any(line.split()[:2] == ["FAIL", "database"] for line in result.stdout.splitlines())
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("UNHEALTHY") and "database" in last
    as_json = run_tool(url, "--json")
    assert as_json.returncode == 1
    database = next(c for c in json.loads(as_json.stdout)["checks"] if c["name"] == "database")
    assert database["ok"] is False and "unreachable" in database["detail"]
    assert "database" in as_json.stderr


def test_unreadable_sqlite_path_fails_naming_the_database(tmp_path):
    for url in (f"sqlite:///{tmp_path / 'no-such-dir' / 'trawl.db'}",  # cannot be opened
                f"sqlite:///{tmp_path}"):  # a directory, not a database file
        result = run_tool(url)
        assert result.returncode == 1, result.stdout
        assert any(line.split()[:2] == ["FAIL", "database"] for line in result.stdout.splitlines())


def test_unmigrated_database_fails_with_the_fix(tmp_path):
    result = run_tool(f"sqlite:///{tmp_path / 'empty.db'}")
    assert result.returncode == 1
    assert "python app.py migrate" in result.stdout


def test_malformed_database_url_is_a_failed_check_not_a_traceback():
    result = run_tool("postgres://nope/x")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "FAIL  database" in result.stdout


# -- jobs with nobody on them, and this node's supervisor (trawl.health, both backends) ----------


def _job(db, age_s: float) -> str:
    import time

    from trawl.jobs import parse_options
    from trawl.store import job_rows

    job_id = job_rows.insert_job(db, parse_options({"urls": ["http://127.0.0.1:9/"], "name": "stuck one"}))["id"]
    with db.read() as s:
        s.execute("UPDATE jobs SET updated_at = ? WHERE id = ?", (time.time() - age_s, job_id))
    return job_id


def _beat(db, row_id: str, role: str, pid: int, job_id: str | None = None, host: str = "node-a") -> None:
    from trawl.store import registry

    registry.heartbeat(db, row_id, role=role, host=host, pid=pid, started_at=0.0, job_id=job_id)


def _settings(tmp_path, db, **overrides):
    from tests.processes import make_settings

    return make_settings(tmp_path, db.url, node="node-a", stranded_after_s=30.0, **overrides)


def _dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_a_job_nobody_works_on_fails_health_naming_it_after_the_grace(db, tmp_path):
    from trawl.health import check_node_supervisor, check_waiting_jobs

    settings = _settings(tmp_path, db)
    fresh = _job(db, age_s=1)
    assert check_waiting_jobs(db, settings).ok  # just created: a supervisor is on its way
    stuck = _job(db, age_s=120)
    check = check_waiting_jobs(db, settings)
    assert not check.ok and stuck in check.detail and "stuck one" in check.detail and fresh not in check.detail
    assert re.search(r"no live worker for 1\d\d s", check.detail), check.detail
    # No supervisor, but the freshest runnable job moved 1 s ago: still within the grace.
    assert check_node_supervisor(db, settings).ok
    with db.read() as s:
        s.execute("UPDATE jobs SET updated_at = updated_at - 100")
    supervisor = check_node_supervisor(db, settings)
    assert not supervisor.ok and "no live supervisor of node-a" in supervisor.detail


def test_a_job_queued_behind_a_full_pool_is_reported_not_failed(db, tmp_path):
    from trawl.health import check_node_supervisor, check_waiting_jobs
    from trawl.store import registry

    settings = _settings(tmp_path, db)
    busy, waiting = _job(db, age_s=120), _job(db, age_s=120)
    _beat(db, "w-busy", "worker", os.getpid(), job_id=busy)
    _beat(db, "s-alive", "supervisor", os.getpid())
    # Room in the pool, yet the job has had no worker for 120 s: stranded.
    check = check_waiting_jobs(db, settings)
    assert not check.ok and waiting in check.detail and busy not in check.detail
    supervisor = check_node_supervisor(db, settings)
    assert supervisor.ok and f"pid {os.getpid()}" in supervisor.detail
    # The pool at its ceiling: the job waits its turn.
    registry.heartbeat(db, "s-alive", role="supervisor", host="node-a", pid=os.getpid(), started_at=0.0,
                       state="full")
    check = check_waiting_jobs(db, settings)
    assert check.ok and check.data["waiting"] == [waiting] and "pools are full" in check.detail
    # Unless that "full" supervisor of this node is dead (a fresh row after kill -9).
    with db.read() as s:
        s.execute("UPDATE workers SET pid = ? WHERE id = 's-alive'", (_dead_pid(),))
    assert not check_waiting_jobs(db, settings).ok


def test_a_fresh_heartbeat_of_a_dead_supervisor_does_not_count(db, tmp_path):
    from trawl.health import check_node_supervisor
    from trawl.hostlock import needs_supervisor
    from trawl.store import registry

    settings = _settings(tmp_path, db)
    _job(db, age_s=120)
    _beat(db, "s-killed", "supervisor", _dead_pid())  # kill -9: the row is fresh, the process gone
    state = registry.supervision_state(db, "node-a", settings.worker_dead_after_s)
    assert state.runnable == 1 and len(state.supervisor_pids) == 1 and needs_supervisor(state)
    assert not check_node_supervisor(db, settings).ok
    # Another node's supervisor is not this node's.
    _beat(db, "s-far", "supervisor", os.getpid(), host="node-b")
    assert needs_supervisor(registry.supervision_state(db, "node-a", settings.worker_dead_after_s))


def test_without_autostart_any_live_supervisor_will_do_and_none_says_why(db, tmp_path):
    from trawl.health import check_node_supervisor

    settings = _settings(tmp_path, db, autostart_workers=False)
    _job(db, age_s=120)
    check = check_node_supervisor(db, settings)
    assert not check.ok and "TRAWL_AUTOSTART_WORKERS=0" in check.detail and "python app.py workers" in check.detail
    _beat(db, "s-elsewhere", "supervisor", 1, host="node-b")
    assert check_node_supervisor(db, settings).ok


def test_no_work_no_supervisor_is_healthy(db, tmp_path):
    from trawl.health import check_node_supervisor, check_waiting_jobs

    settings = _settings(tmp_path, db)
    assert check_waiting_jobs(db, settings).ok and check_node_supervisor(db, settings).detail == "no work pending"


def test_health_check_tool_names_the_stranded_job(tmp_path):
    url = migrated_sqlite(tmp_path)
    from trawl.store import open_database

    db = open_database(url)
    job_id = _job(db, age_s=120)
    db.close()
    result = run_tool(url)
    assert result.returncode == 1
    assert any(line.split()[:2] == ["FAIL", "waiting_jobs"] and job_id in line for line in result.stdout.splitlines())
    assert "waiting_jobs" in result.stdout.strip().splitlines()[-1]
