"""The few places where SQLite and MySQL/MariaDB differ, and nothing else.

Queries elsewhere are written once with `?` placeholders and the portable
subset of SQL; they call into a `Dialect` only for: opening a connection,
placeholder style, DDL types, insert-if-absent, row locking for claims and
recognising errors worth retrying.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
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

    def begin(self, conn) -> None:
        raise NotImplementedError

    def migration_lock(self, session):
        """Held around migrations so only one process applies them."""
        return contextlib.nullcontext()


class SqliteDialect(Dialect):
    name = "sqlite"
    primary_key_only = " NOT INDEXED"  # rowid lookups stay allowed
    ddl = {
        "pk": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "text": "TEXT",
        "bigtext": "TEXT",
        "table_opts": "",
    }

    def __init__(self, target: SqliteTarget, busy_timeout_ms: int = 10_000):
        self.target = target
        self.busy_timeout_ms = busy_timeout_ms

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
        return conn

    def insert_if_absent(self, table: str, columns: list[str]) -> str:
        marks = ", ".join("?" for _ in columns)
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"

    def is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and (
            "locked" in str(exc) or "busy" in str(exc)
        )

    def is_duplicate_key(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def begin(self, conn) -> None:
        conn.execute("BEGIN IMMEDIATE")


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

    def begin(self, conn) -> None:
        conn.begin()

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
