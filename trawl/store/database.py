"""Connections, transactions and retries: how the rest of Trawl talks to SQL.

`Database` hands out pooled connections one at a time (a greenlet or thread
holds one only for the duration of a `read()` or `transaction()` block, never
between SSE checks), wraps them in a tiny cursor API written with `?`
placeholders, and re-runs whole transactions on the errors a dialect calls
retryable (deadlocks, lock waits, a restarted server, a locked SQLite file),
with capped, jittered backoff.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

from trawl.store.dialect import Dialect, dialect_for

log = logging.getLogger(__name__)
T = TypeVar("T")


class PoolExhausted(RuntimeError):
    pass


class Session:
    """One connection for the length of a block; `?` placeholders everywhere."""

    def __init__(self, conn, dialect: Dialect):
        self.conn = conn
        self.dialect = dialect

    def execute(self, query: str, args: tuple | list = ()) -> int:
        """Run a statement; returns the number of rows it changed."""
        cur = self.conn.cursor()
        try:
            cur.execute(self.dialect.sql(query), tuple(args))
            return cur.rowcount
        finally:
            cur.close()

    def executemany(self, query: str, rows: list[tuple]) -> int:
        if not rows:
            return 0
        cur = self.conn.cursor()
        try:
            cur.executemany(self.dialect.sql(query), rows)
            return cur.rowcount
        finally:
            cur.close()

    def insert(self, query: str, args: tuple | list = ()) -> int:
        """Run an INSERT and return the new row's auto-increment id."""
        cur = self.conn.cursor()
        try:
            cur.execute(self.dialect.sql(query), tuple(args))
            return cur.lastrowid
        finally:
            cur.close()

    def all(self, query: str, args: tuple | list = ()) -> list[dict[str, Any]]:
        cur = self.conn.cursor()
        try:
            cur.execute(self.dialect.sql(query), tuple(args))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            cur.close()

    def one(self, query: str, args: tuple | list = ()) -> dict[str, Any] | None:
        rows = self.all(query, args)
        return rows[0] if rows else None

    def scalar(self, query: str, args: tuple | list = ()) -> Any:
        cur = self.conn.cursor()
        try:
            cur.execute(self.dialect.sql(query), tuple(args))
            row = cur.fetchone()
            return row[0] if row else None
        finally:
            cur.close()

    def stream(self, query: str, args: tuple | list = (), chunk: int = 500) -> Iterator[dict[str, Any]]:
        """Rows fetched in chunks, for exports too large to hold at once."""
        cur = self.conn.cursor()
        try:
            cur.execute(self.dialect.sql(query), tuple(args))
            names = [d[0] for d in cur.description]
            while True:
                rows = cur.fetchmany(chunk)
                if not rows:
                    return
                for row in rows:
                    yield dict(zip(names, row))
        finally:
            cur.close()


class Database:
    def __init__(self, url: str, max_connections: int = 24, max_idle: int | None = None):
        self.url = url
        self.dialect = dialect_for(url)
        self._idle: list = []
        self._lock = threading.Lock()
        # At most this many connections per process: a burst of requests
        # waits for a free one instead of opening (and then closing) new
        # ones, which under MySQL costs more than the query itself.
        self._slots = threading.BoundedSemaphore(max_idle or max_connections)

    # -- pool --------------------------------------------------------------

    def _acquire(self):
        if not self._slots.acquire(timeout=30):
            # A block that opens another block while holding one could wait
            # forever on a small pool; fail loudly instead.
            raise PoolExhausted(f"no free database connection after 30 s ({self.url})")
        try:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
            return self.dialect.connect()
        except BaseException:
            self._slots.release()
            raise

    def _release(self, conn, broken: bool) -> None:
        try:
            if broken:
                with contextlib.suppress(Exception):
                    conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A connection in autocommit mode, for reads and single statements."""
        conn = self._acquire()
        broken = True
        try:
            yield Session(conn, self.dialect)
            broken = False
        except Exception as exc:
            broken = self.dialect.is_retryable(exc)
            raise
        finally:
            self._release(conn, broken)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on error."""
        conn = self._acquire()
        broken = True
        try:
            self.dialect.begin(conn)
            yield Session(conn, self.dialect)
            conn.commit()
            broken = False
        except BaseException as exc:
            with contextlib.suppress(Exception):
                conn.rollback()
            broken = isinstance(exc, Exception) and self.dialect.is_retryable(exc)
            broken = broken or not isinstance(exc, Exception)
            raise
        finally:
            self._release(conn, broken)

    # -- retries -----------------------------------------------------------

    def retrying(self, fn: Callable[[Session], T], *, write: bool = True, deadline_s: float = 30.0) -> T:
        """Run fn(session) in a transaction (or a read), again on retryable errors.

        The whole function is re-run, so it must not have side effects
        outside the database. Backoff doubles from 50 ms to 2 s, with jitter,
        until `deadline_s` has passed; then the last error is raised.
        """
        delay = 0.05
        give_up_at = time.monotonic() + deadline_s
        while True:
            try:
                with (self.transaction() if write else self.read()) as s:
                    return fn(s)
            except Exception as exc:
                if not self.dialect.is_retryable(exc) or time.monotonic() >= give_up_at:
                    raise
                log.warning("database busy or gone (%s); retrying in %.2fs", exc, delay)
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 2.0)

    def ping(self) -> None:
        with self.read() as s:
            s.scalar("SELECT 1")
