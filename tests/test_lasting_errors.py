"""Dialect.is_lasting: real errors from real databases, told apart from outages.

A lasting error (schema or database gone, access denied, SQLite file
deleted) stops the supervisor's pool; an outage is waited out. Each case
provokes the error for real and asks the dialect.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import MYSQL, free_port
from trawl.store import open_database
from trawl.store.dialect import DatabaseGone


def _error(db, query: str = "SELECT COUNT(*) FROM jobs") -> Exception:
    try:
        with db.read() as s:
            s.scalar(query)
    except Exception as exc:
        return exc
    raise AssertionError(f"{query} did not fail")


def test_a_missing_table_is_lasting_on_both_backends(db):
    exc = _error(db, "SELECT COUNT(*) FROM no_such_table")
    assert db.dialect.is_lasting(exc) and not db.dialect.is_retryable(exc)


def test_a_deleted_sqlite_file_is_noticed_and_never_recreated_empty(tmp_path):
    path = tmp_path / "trawl.db"
    db = open_database(f"sqlite:///{path}", migrate_now=True)
    db.dialect.check_present()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{path}{suffix}"):
            os.remove(f"{path}{suffix}")
    with pytest.raises(DatabaseGone) as gone:
        db.dialect.check_present()
    assert db.dialect.is_lasting(gone.value)
    db.close()  # pooled connections would still work on the deleted file's inode
    exc = _error(db)
    assert db.dialect.is_lasting(exc)
    assert not path.exists()


def test_a_path_that_cannot_be_opened_is_lasting(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'no-such-dir' / 'trawl.db'}")
    assert db.dialect.is_lasting(_error(db))


@pytest.mark.mysql
def test_mysql_unknown_database_and_dropped_database_are_lasting(mysql_url):
    import pymysql

    base = mysql_url.rsplit("/", 1)[0]
    unknown = open_database(f"{base}/trawl_no_such_db_{os.getpid()}")
    assert unknown.dialect.is_lasting(_error(unknown))
    name = f"trawl_lasting_{os.getpid()}"
    admin = pymysql.connect(autocommit=True, connect_timeout=3, **MYSQL)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    db = open_database(f"{base}/{name}", migrate_now=True)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE {name}")
    admin.close()
    exc = _error(db)  # through the pooled connection whose database was dropped
    assert db.dialect.is_lasting(exc), exc
    db.close()
    assert db.dialect.is_lasting(_error(db))  # and on a new connection


@pytest.mark.mysql
def test_mysql_wrong_password_is_lasting(mysql_url):
    db = open_database(mysql_url.replace("root:@", "trawl_nobody_here:wrong@"))
    assert db.dialect.is_lasting(_error(db))


def test_nothing_listening_is_an_outage_not_lasting():
    db = open_database(f"mysql://root:@127.0.0.1:{free_port()}/trawl")
    exc = _error(db)
    assert db.dialect.is_retryable(exc) and not db.dialect.is_lasting(exc)
