"""Fixtures that start real things: databases (SQLite and MariaDB), gunicorn, and the app in-process.

`web`, `locked_web` and `api` are apps from `create_app` called through
tests/wsgi.py (no socket): fast enough for validation, auth and property
tests; gunicorn is for what needs the real server.

MariaDB tests use the server at 127.0.0.1:3306 (root, no password) with a
fresh database per test session, dropped at the end. When it cannot be
reached the tests skip saying why; under CI=true they fail instead.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip with a reason locally; under CI=true a missing dependency is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must not skip)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- databases ---------------------------------------------------------------------


def _mysql_admin():
    import pymysql

    return pymysql.connect(autocommit=True, connect_timeout=3, **MYSQL)


@pytest.fixture(scope="session")
def mysql_url():
    """A fresh MariaDB database for this test session, dropped afterwards."""
    try:
        admin = _mysql_admin()
    except Exception as exc:
        skip_or_fail(f"MariaDB at 127.0.0.1:3306 is not reachable: {exc}")
    name = f"trawl_test_{os.getpid()}_{secrets.token_hex(3)}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    admin.close()
    yield f"mysql://root:@127.0.0.1:3306/{name}"
    admin = _mysql_admin()
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
    admin.close()


def _wipe(db) -> None:
    with db.transaction() as s:
        for table in ("pages", "emails", "workers", "jobs", "sites", "deliveries"):
            s.execute(f"DELETE FROM {table}")


@pytest.fixture(scope="session")
def _session_dbs(tmp_path_factory):
    return {}


@pytest.fixture(params=["sqlite", "mysql"])
def db(request, tmp_path, _session_dbs):
    """A migrated, empty database: once on SQLite, once on MariaDB."""
    from trawl.store import open_database

    if request.param == "sqlite":
        database = open_database(f"sqlite:///{tmp_path / 'trawl.db'}", migrate_now=True)
        yield database
        database.close()
        return
    url = request.getfixturevalue("mysql_url")
    if url not in _session_dbs:
        _session_dbs[url] = open_database(url, migrate_now=True)
    database = _session_dbs[url]
    _wipe(database)
    yield database
    _wipe(database)


# -- gunicorn -------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    database_url: str
    trigger_log: Path
    process: subprocess.Popen
    env: dict

    def url(self, path: str) -> str:
        return self.base + path

    def triggers(self) -> list[dict]:
        import json

        if not self.trigger_log.exists():
            return []
        return [json.loads(line) for line in self.trigger_log.read_text().splitlines() if line]

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGQUIT: gunicorn's quick shutdown; SIGTERM would wait up to
            # graceful_timeout for the SSE streams a test left open.
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(tmp: Path, database_url: str | None = None, **extra_env: str) -> Server:
    """gunicorn with gunicorn.conf.py on a free port; waits until it answers."""
    port = free_port()
    database_url = database_url or f"sqlite:///{tmp / 'web.db'}"
    env = {
        **os.environ,
        "TRAWL_HOST": "127.0.0.1",
        "TRAWL_PORT": str(port),
        "TRAWL_DATABASE_URL": database_url,
        "TRAWL_TRIGGER_LOG": str(tmp / "triggers.jsonl"),
        "TRAWL_RUN_DIR": str(tmp / "run"),
        "TRAWL_WEB_WORKERS": "1",
        "TRAWL_AUTOSTART_WORKERS": "0",
        "TRAWL_LOG_LEVEL": "warning",
        **extra_env,
    }
    if "TRAWL_API_TOKEN" not in extra_env:
        env.pop("TRAWL_API_TOKEN", None)
    log = open(tmp / f"gunicorn-{port}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "app:app"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", database_url, tmp / "triggers.jsonl", proc, env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {(tmp / f'gunicorn-{port}.log').read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/metrics")
            conn.getresponse().read()  # any answer means the server is up
            conn.close()
            return server
        except Exception:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("gunicorn did not answer within 20 s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A gunicorn server on SQLite shared by one test module."""
    s = start_server(tmp_path_factory.mktemp("server"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def store_of_server(server):
    """The server's database, opened by the test to check what was stored."""
    from trawl.store import open_database

    database = open_database(server.database_url)
    yield database
    database.close()


# -- the app in-process -----------------------------------------------------------------


@dataclass
class InProcess:
    """A `create_app` app over its own SQLite file, called without a server."""

    app: object
    db: object
    settings: object

    def call(self, method: str, target, body=None, headers: dict | None = None):
        from tests.wsgi import call_wsgi

        return call_wsgi(self.app, method, target, body, headers)


def make_in_process(tmp: Path, database=None, **settings_env: str) -> InProcess:
    """An app over `database` (default: a new SQLite file in `tmp`), settings from `settings_env`."""
    from app import create_app
    from trawl import config
    from trawl.store import open_database

    tmp.mkdir(parents=True, exist_ok=True)
    url = database.url if database is not None else f"sqlite:///{tmp / 'app.db'}"
    env = {"TRAWL_DATABASE_URL": url, "TRAWL_AUTOSTART_WORKERS": "0", "TRAWL_RUN_DIR": str(tmp / "run"),
           **settings_env}
    settings = config.load(env)
    database = database or open_database(url, migrate_now=True)
    return InProcess(create_app(settings, database), database, settings)


@pytest.fixture
def web(tmp_path):
    """The app in-process, no token, on a fresh SQLite database."""
    inproc = make_in_process(tmp_path / "web")
    yield inproc
    inproc.db.close()


@pytest.fixture
def locked_web(tmp_path):
    """The app in-process with TRAWL_API_TOKEN=s3cret."""
    inproc = make_in_process(tmp_path / "locked", TRAWL_API_TOKEN="s3cret")
    yield inproc
    inproc.db.close()


@pytest.fixture
def api(tmp_path, db):
    """The app in-process, no token, over the `db` fixture: once on SQLite, once on MariaDB."""
    return make_in_process(tmp_path, db)
