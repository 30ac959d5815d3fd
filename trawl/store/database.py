"""Connections, transactions and retries: how the rest of Trawl talks to SQL.

`Database` hands out pooled connections one at a time (a greenlet or thread
holds one only for the duration of a `read()` or `transaction()` block, never
between SSE checks), wraps them in a tiny cursor API written with `?`
placeholders, and re-runs whole transactions on the errors a dialect calls
retryable (deadlocks, lock waits, a restarted server, a locked SQLite file),
with capped, jittered backoff.

Lock-hold times (a debug aid). With TRAWL_DEBUG_LOCK_TIMES=<directory>,
every write transaction records, per kind (the name of the function that
ran it: claim_pages, commit_batch, renew_leases, sweep_expired_leases,
heartbeat, insert_job, ...), how long it waited for the write lock (on
SQLite: BEGIN IMMEDIATE, which is where a writer queues), how long its
statements held it (BEGIN returned → COMMIT called) and how long COMMIT
took (on SQLite: appending to the WAL, under the lock); `checkpoint` rows
are the WAL copies of SqliteDialect.after_commit, which hold no lock.
Each process rewrites its own `locktimes-<pid>.json` there at most once a
second and at exit; `bench/during_crawl.py` merges them into a table.
Off, it costs one attribute test per transaction.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import random
import threading
import time
from typing import Any, Callable, Iterator, TypeVar

from trawl.store.dialect import Dialect, dialect_for

log = logging.getLogger(__name__)
T = TypeVar("T")


class PoolExhausted(RuntimeError):
    pass


class LockTimes:
    """Per-kind samples of write-lock wait and hold, dumped to one JSON file per process."""

    MAX_SAMPLES = 200_000  # per kind: bounded memory in a long run

    def __init__(self, directory: str):
        self.directory = directory
        self._samples: dict[str, list[list]] = {}
        self._lock = threading.Lock()
        self._own()
        os.makedirs(directory, exist_ok=True)
        atexit.register(self.dump)

    def _own(self) -> None:
        """Start afresh in this process: a forked child inherits its parent's samples."""
        self._pid = os.getpid()
        self.path = os.path.join(self.directory, f"locktimes-{self._pid}.json")
        self._samples = {}
        self._next_dump = 0.0

    def record(self, kind: str, wait_s: float, hold_s: float | None, commit_s: float | None = None) -> None:
        if os.getpid() != self._pid:
            self._own()
        with self._lock:
            samples = self._samples.setdefault(kind, [])
            if len(samples) < self.MAX_SAMPLES:
                # [epoch end, wait, hold, commit] in seconds (None: not known); a
                # reader picks its time window.
                samples.append([round(time.time(), 4)] + [
                    None if x is None else round(x, 6) for x in (wait_s, hold_s, commit_s)])
            due = time.monotonic() >= self._next_dump
        if due:
            self.dump()

    def dump(self) -> None:
        if os.getpid() != self._pid:
            return  # a forked child that recorded nothing yet
        with self._lock:
            self._next_dump = time.monotonic() + 1.0
            data = json.dumps({"pid": os.getpid(), "kinds": self._samples})
        tmp = f"{self.path}.tmp"
        with contextlib.suppress(OSError):
            with open(tmp, "w") as out:
                out.write(data)
            os.replace(tmp, self.path)


_lock_times: dict[str, LockTimes] = {}


def _lock_times_from_env() -> LockTimes | None:
    """One recorder per directory, shared by every Database of the process (one file each)."""
    directory = os.environ.get("TRAWL_DEBUG_LOCK_TIMES", "")
    if not directory:
        return None
    if directory not in _lock_times:
        _lock_times[directory] = LockTimes(directory)
    return _lock_times[directory]


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
        self.lock_times = _lock_times_from_env()

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
    def transaction(self, kind: str = "other", urgent: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on error.

        `kind` names it in the lock-hold table (TRAWL_DEBUG_LOCK_TIMES);
        `urgent`: a person waits on it, so it asks for the write lock often
        (see SqliteDialect.begin).
        """
        conn = self._acquire()
        broken = True
        asked = time.perf_counter()
        began = None
        try:
            self.dialect.begin(conn, urgent)
            began = time.perf_counter()
            yield Session(conn, self.dialect)
            committing = time.perf_counter()
            conn.commit()
            broken = False
            if self.lock_times:
                self.lock_times.record(kind, began - asked, committing - began,
                                       time.perf_counter() - committing)
            checkpoint_s = self.dialect.after_commit(conn, urgent)
            if checkpoint_s is not None and self.lock_times:
                self.lock_times.record("checkpoint", 0.0, None, checkpoint_s)
        except BaseException as exc:
            if self.lock_times:  # a wait that ended in "database is locked" counts too
                self.lock_times.record(kind, (began or time.perf_counter()) - asked,
                                       None if began is None else time.perf_counter() - began)
            with contextlib.suppress(Exception):
                conn.rollback()
            broken = isinstance(exc, Exception) and self.dialect.is_retryable(exc)
            broken = broken or not isinstance(exc, Exception)
            raise
        finally:
            self._release(conn, broken)

    # -- retries -----------------------------------------------------------

    def retrying(self, fn: Callable[[Session], T], *, write: bool = True, deadline_s: float = 30.0,
                 urgent: bool = False, kind: str | None = None) -> T:
        """Run fn(session) in a transaction (or a read), again on retryable errors.

        The whole function is re-run, so it must not have side effects
        outside the database. Backoff doubles from 50 ms to 2 s, with jitter,
        until `deadline_s` has passed; then the last error is raised.
        """
        delay = 0.05
        give_up_at = time.monotonic() + deadline_s
        kind = kind or fn.__qualname__.split(".")[0]  # claim_pages.<locals>.run -> claim_pages
        while True:
            try:
                with (self.transaction(kind, urgent) if write else self.read()) as s:
                    return fn(s)
            except Exception as exc:
                if not self.dialect.is_retryable(exc) or time.monotonic() >= give_up_at:
                    raise
                log.warning("database busy or gone (%s); retrying in %.2fs", exc, delay)
                time.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 2.0)

    def autocommit(self, fn: Callable[[Session], T], *, deadline_s: float = 30.0) -> T:
        """Run fn(session) with every statement its own transaction, again on retryable errors.

        For writes that are one statement (a lease renewal, a heartbeat). On
        SQLite the write lock is then taken and released inside the
        statement, in C with the GIL released, so neither another thread
        holding the GIL nor the process being preempted between two Python
        steps can stretch how long it is held. fn must be safe to re-run.
        In the lock-hold table the kind ends with `*` and its whole time is
        shown as wait (SQLite does not tell the two apart).
        """
        kind = fn.__qualname__.split(".")[0] + "*"

        def timed(s: Session) -> T:
            started = time.perf_counter()
            try:
                return fn(s)
            finally:
                if self.lock_times:
                    self.lock_times.record(kind, time.perf_counter() - started, None)

        return self.retrying(timed, write=False, deadline_s=deadline_s)

    def ping(self) -> None:
        with self.read() as s:
            s.scalar("SELECT 1")
