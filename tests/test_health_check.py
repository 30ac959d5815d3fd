"""health_check.py, the operators' tool: healthy set-up → exit 0; database down → exit 1 naming it."""

from __future__ import annotations

import json
import os
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
