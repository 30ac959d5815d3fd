"""The few places where SQLite and MySQL/MariaDB differ, and nothing else.

Queries elsewhere are written once with `?` placeholders and the portable
subset of SQL; they call into a `Dialect` only for: opening a connection,
placeholder style, DDL types, insert-if-absent, row locking for claims and
recognising errors worth retrying.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


class DatabaseUrlError(ValueError):
    """TRAWL_DATABASE_URL is not a sqlite:/// or mysql:// URL."""


@dataclass(frozen=True)
class SqliteTarget:
    path: str


@dataclass(frozen=True)
class MysqlTarget:
    host: str
    port: int
    user: str
    password: str
    database: str


def parse_database_url(url: str) -> SqliteTarget | MysqlTarget:
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise DatabaseUrlError("sqlite URL needs a path: sqlite:///trawl.db")
        return SqliteTarget(path)
    parts = urlsplit(url)
    if parts.scheme in ("mysql", "mysql+pymysql", "mariadb"):
        database = parts.path.lstrip("/")
        if not database:
            raise DatabaseUrlError("mysql URL needs a database: mysql://user:pass@host:3306/db")
        return MysqlTarget(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=database,
        )
    raise DatabaseUrlError(f"unsupported database URL {url!r}: use sqlite:///path or mysql://...")


class Dialect:
    name = ""
    # DDL tokens substituted into the schema: {pk}, {text}, {bigtext}, {table_opts}.
    ddl: dict[str, str] = {}
    # Appended to a claim's SELECT so concurrent claimers skip each other's rows.
    lock_for_claim = ""
    # Appended to a SELECT that must hold its rows until commit (a job row
    # that serialises its frontier writes). Empty on SQLite, whose BEGIN
    # IMMEDIATE already holds the only write lock there is.
    lock_row = ""
    # True where one write lock covers the whole database (SQLite): every
    # writer, a job insert too, waits for any other's transaction to end.
    one_write_lock = False
    # After a table name: read it by primary key only, for a query whose
    # range on the key is narrow while an index on another column looks
    # selective to the planner (sites.new_pages_by_site).
    primary_key_only = ""

    def connect(self):
        raise NotImplementedError

    def sql(self, query: str) -> str:
        return query

    def insert_if_absent(self, table: str, columns: list[str]) -> str:
        raise NotImplementedError

    def is_retryable(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def is_duplicate_key(self, exc: BaseException) -> bool:
        raise NotImplementedError

    def begin(self, conn, urgent: bool = False) -> None:
        """Start a write transaction; `urgent`: a person waits on it (see SqliteDialect)."""
        raise NotImplementedError

    def after_commit(self, conn, urgent: bool = False) -> float | None:
        """Housekeeping after a write transaction's COMMIT; seconds spent, or None."""
        return None

    def migration_lock(self, session):
        """Held around migrations so only one process applies them."""
        return contextlib.nullcontext()


# How often an urgent SQLite writer (a job insert) tries for the write lock.
URGENT_POLL_S = 0.0005
# How often each process copies SQLite's WAL into the database file.
CHECKPOINT_EVERY_S = 1.0
# How long a non-urgent SQLite writer lets waiting urgent writers go first, at most.
URGENT_PRIORITY_S = 0.05


class SqliteDialect(Dialect):
    name = "sqlite"
    primary_key_only = " NOT INDEXED"  # rowid lookups stay allowed
    ddl = {
        "pk": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "text": "TEXT",
        "bigtext": "TEXT",
        "table_opts": "",
    }
    one_write_lock = True

    def __init__(self, target: SqliteTarget, busy_timeout_ms: int = 10_000):
        self.target = target
        self.busy_timeout_ms = busy_timeout_ms
        self._next_checkpoint = 0.0
        self._urgent_fd: int | None = None
        self._urgent_pid = 0

    def connect(self):
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a write
        # transaction takes the write lock up front instead of failing to
        # upgrade a read lock half-way through (SQLITE_BUSY with no wait).
        conn = sqlite3.connect(
            self.target.path,
            timeout=self.busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        conn.execute("PRAGMA foreign_keys=OFF")
        # No checkpoint inside COMMIT (see after_commit).
        conn.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def after_commit(self, conn, urgent: bool = False) -> float | None:
        """Copy the WAL into the database file, at most every CHECKPOINT_EVERY_S per process.

        SQLite's own rule (every COMMIT that finds the WAL past 1,000 pages
        checkpoints) made every commit of a busy crawl checkpoint, fsync
        included, because the WAL never gets back to empty while readers
        come and go: 10-20 ms per COMMIT on a loaded disk. A passive
        checkpoint does not hold the write lock, but it is time the caller
        waits for, so urgent writers (a job insert) never run it. Returns
        the seconds it took, or None when it was not due.
        """
        now = time.monotonic()
        if urgent or now < self._next_checkpoint:
            return None
        self._next_checkpoint = now + CHECKPOINT_EVERY_S
        started = time.perf_counter()
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return time.perf_counter() - started

    def insert_if_absent(self, table: str, columns: list[str]) -> str:
        marks = ", ".join("?" for _ in columns)
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"

    def is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and (
            "locked" in str(exc) or "busy" in str(exc)
        )

    def is_duplicate_key(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def begin(self, conn, urgent: bool = False) -> None:
        if not urgent:
            self._let_urgent_writers_first()
            conn.execute("BEGIN IMMEDIATE")
            return
        # SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between
        # tries, so a writer that waits misses the gaps between the workers'
        # transactions and can wait for several of them in a row. A job insert
        # tries every URGENT_POLL_S instead and, while it waits, holds a shared
        # lock on the `-urgent` file beside the database, which makes the
        # other writers wait their turn after it (_let_urgent_writers_first).
        conn.execute("PRAGMA busy_timeout = 0")
        waiting = None
        try:
            give_up_at = time.monotonic() + self.busy_timeout_ms / 1000
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not self.is_retryable(exc) or time.monotonic() >= give_up_at:
                        raise
                waiting = waiting or self._flag_urgent_wait()
                time.sleep(URGENT_POLL_S)  # a gevent sleep in the web server
        finally:
            if waiting is not None:
                os.close(waiting)  # releases the shared lock
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")

    def _flag_urgent_wait(self) -> int | None:
        """A shared lock on `<db>-urgent` for as long as the returned fd is open (its own fd:
        two waiting greenlets of one process must not release each other's)."""
        try:
            fd = os.open(self.target.path + "-urgent", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None  # no priority, only polling
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # never block a gevent loop
        except BlockingIOError:  # a worker testing the flag this very microsecond
            os.close(fd)
            return None
        return fd

    def _let_urgent_writers_first(self) -> None:
        """Before a non-urgent BEGIN: while an urgent writer waits for the lock, wait too.

        Without this a worker that commits a batch in several transactions,
        or claims right after committing, takes the lock again microseconds
        after releasing it, and the waiting job insert misses the gap. The
        test is one flock() pair; the wait is capped at URGENT_PRIORITY_S.
        """
        if self._urgent_fd is None or self._urgent_pid != os.getpid():  # a fork has its own
            try:
                self._urgent_fd = os.open(self.target.path + "-urgent", os.O_RDWR | os.O_CREAT, 0o644)
                self._urgent_pid = os.getpid()
            except OSError:
                return
        give_up_at = time.monotonic() + URGENT_PRIORITY_S
        while True:
            try:
                fcntl.flock(self._urgent_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= give_up_at:
                    return
                time.sleep(URGENT_POLL_S)
                continue
            fcntl.flock(self._urgent_fd, fcntl.LOCK_UN)
            return


# MySQL error codes that mean "try the whole transaction again".
MYSQL_RETRYABLE = {
    1205,  # lock wait timeout
    1213,  # deadlock
    2002, 2003, 2006, 2013,  # cannot connect / server gone / lost connection
    1040,  # too many connections
    1927,  # connection killed (MariaDB)
    4031,  # disconnected by the server (idle timeout)
}


class MysqlDialect(Dialect):
    name = "mysql"
    ddl = {
        "pk": "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY",
        "text": "TEXT",
        "bigtext": "LONGTEXT",
        "table_opts": " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    }
    lock_for_claim = " FOR UPDATE SKIP LOCKED"
    lock_row = " FOR UPDATE"
    primary_key_only = " FORCE INDEX (PRIMARY)"

    def __init__(self, target: MysqlTarget, connect_timeout_s: float = 5.0):
        self.target = target
        self.connect_timeout_s = connect_timeout_s

    def connect(self, database: bool = True):
        import pymysql

        t = self.target
        conn = pymysql.connect(
            host=t.host,
            port=t.port,
            user=t.user,
            password=t.password,
            database=t.database if database else None,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=self.connect_timeout_s,
            # READ COMMITTED: claims with SKIP LOCKED take no gap locks, so
            # claimers and inserters of new links do not deadlock each other.
            init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
        )
        return conn

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def _convert(query: str) -> str:
        return re.sub(r"\?", "%s", query.replace("%", "%%"))

    def sql(self, query: str) -> str:
        return self._convert(query)

    def insert_if_absent(self, table: str, columns: list[str]) -> str:
        marks = ", ".join("?" for _ in columns)
        # Not INSERT IGNORE: that would also swallow truncation and type errors.
        first = columns[0]
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
            f"ON DUPLICATE KEY UPDATE {first} = {first}"
        )

    def is_retryable(self, exc: BaseException) -> bool:
        import pymysql

        if isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InternalError)):
            return bool(exc.args) and exc.args[0] in MYSQL_RETRYABLE
        return isinstance(exc, (pymysql.err.InterfaceError, ConnectionError, OSError))

    def is_duplicate_key(self, exc: BaseException) -> bool:
        import pymysql

        return isinstance(exc, pymysql.err.IntegrityError) and bool(exc.args) and exc.args[0] == 1062

    def begin(self, conn, urgent: bool = False) -> None:
        conn.begin()  # row locks: nobody queues for the whole database

    @contextlib.contextmanager
    def migration_lock(self, session):
        # DDL commits implicitly here, so a transaction cannot serialise
        # migrators; a named lock (released with its connection) can.
        if not session.scalar("SELECT GET_LOCK('trawl_schema_migrations', 60)"):
            raise TimeoutError("another process held the migration lock for 60 s")
        try:
            yield
        finally:
            session.scalar("SELECT RELEASE_LOCK('trawl_schema_migrations')")


def dialect_for(url: str) -> Dialect:
    target = parse_database_url(url)
    if isinstance(target, SqliteTarget):
        return SqliteDialect(target)
    return MysqlDialect(target)
