"""The pool: one supervisor per (node, database) spawns, scales, reaps, restarts and drains workers.

Process tree on one node (the lock and the detached start: `trawl.hostlock`;
the pool size: `trawl.demand`):

    gunicorn worker --trigger--> (intermediate, exits at once)
                                    `-- supervisor   [own session, holds run/supervisor-<node>-<db>.lock]
                                          |-- worker  [forked, own process group, dies with parent]
                                          `-- worker  ...

The supervisor forks worker processes from itself after importing the crawl
engine, so workers start in milliseconds and share its code pages. It sizes
the pool by `demand.target_workers`, replaces workers that die, reaps rows
of dead processes (at once for this node's, whose pids it can check; after
`worker_dead_after_s` for other nodes'), and on SIGTERM/SIGINT drains:
workers stop claiming and finish or release their pages, and whatever is
still running after `settings.drain_s` is killed and its leases released.

Database errors come in two kinds (`Dialect.is_lasting`). An outage
(connection refused, server gone away) keeps the last target and retries
with jittered backoff. A lasting error (schema or database gone, access
denied, SQLite file deleted) scales the pool to 0, is logged once a minute,
and lets a trigger-started supervisor exit after its idle time, releasing
the node's lock; it still retries, so a restored database is used again.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import select
import signal
import sys
import time
from dataclasses import dataclass

from trawl import demand, hostlock, logs
from trawl.config import HARD_MAX_WORKERS, Settings
from trawl.worker_process import read_rss

log = logging.getLogger("trawl.supervisor")

TICK_S = 0.5              # longest sleep of the main loop (SIGCHLD wakes it at once)
DEMAND_EVERY_S = 1.0      # how often the pool size is recomputed from the database
STALE_EVERY_S = 5.0       # how often rows of dead processes are looked for
LASTING_SAY_EVERY_S = 60.0  # how often a lasting database error is repeated in the log
EXIT_RECYCLED = 3         # a worker's exit code when it recycled itself (pages or RSS)
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
FAST_CRASH_S = 2.0        # a worker dying sooner than this counts towards crash-loop backoff


@dataclass
class Child:
    pid: int
    worker_id: str
    started: float                      # time.monotonic() at fork
    stop_sent: float | None = None      # when we asked it to stop (scale-down or drain)


class Supervisor:
    """One node's pool for one database. `run()` returns when drained or idle (trigger-started only)."""

    def __init__(self, settings: Settings, count: int | None = None, exit_when_idle: bool = False,
                 lock_fd: int | None = None):
        self.settings = settings
        self.count = None if count is None else max(0, min(count, HARD_MAX_WORKERS))
        self.exit_when_idle = exit_when_idle
        self.lock_fd = lock_fd
        self.id = "s-" + secrets.token_hex(8)
        self.started_at = time.time()
        self.children: dict[int, Child] = {}
        self.cleanups: list[str] = []        # worker ids whose leases/rows still need releasing
        self.target = self.count or 0
        self.stopping = False
        self.force = False
        self.db = None
        self._wake_r = self._wake_w = -1
        self._due: dict[str, float] = {}
        self._above_since: float | None = None
        self._idle_since: float | None = None
        self._fast_crashes = 0
        self._spawn_not_before = 0.0
        self._db_down_since: float | None = None
        self._db_backoff = 0.0
        self._db_failures = 0
        self._lasting: str | None = None     # the lasting database error, while it lasts
        self._say_lasting = logs.Every(LASTING_SAY_EVERY_S)
        self._notifier = None  # completion webhooks (trawl/notify.py), made on first use
        self._webhooks_pending = False

    # -- lifecycle --------------------------------------------------------

    def run(self) -> int:
        from trawl.store import Database

        self._install_signals()
        self._warm_imports()
        from trawl.worker_process import set_process_name

        set_process_name("trawl-superv")
        self.db = Database(self.settings.database_url)
        log.info("supervisor %s on %s for %s: %s, max %d workers", self.id, self.settings.node,
                 hostlock.database_identity(self.settings.database_url),
                 f"fixed {self.count}" if self.count is not None else "automatic",
                 self.settings.max_workers)
        while not self.stopping:
            self._tick()
            if self.exit_when_idle and self._idle_long_enough() and self._give_up_lock():
                break
            self._sleep(TICK_S)
        self._drain()
        if self._notifier is not None:
            self._notifier.close(self.db)
        self._db_call(lambda: self._registry().unregister(self.db, self.id))
        self.db.close()
        log.info("supervisor %s stopped", self.id)
        return 0

    def _tick(self) -> None:
        self._reap_children()
        self._retry_cleanups()
        if self._due_now("beat", self.settings.heartbeat_s):
            self._beat(self._pool_state())
        # Dead rows first: a killed predecessor's fresh row would otherwise
        # count as a live peer and halve the first target.
        if self._due_now("stale", STALE_EVERY_S):
            self._reap_dead_rows()
            self._sweep_expired_leases()
        if self.count is None and self._due_now("demand", DEMAND_EVERY_S):
            self._refresh_target()
        self._scale()
        self._send_webhooks()

    def _due_now(self, what: str, every: float) -> bool:
        now = time.monotonic()
        if now < self._due.get(what, 0.0):
            return False
        self._due[what] = now + every
        return True

    def _warm_imports(self) -> None:
        """Import the engine before forking, so workers start warm and share its pages."""
        try:
            import psutil  # noqa: F401

            import trawl.worker  # noqa: F401
        except Exception:
            log.exception("cannot import the crawl engine; workers will fail")

    @staticmethod
    def _registry():
        from trawl.store import registry

        return registry

    # -- signals: handlers only set flags; the loop does the work -----------

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake select()
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _on_stop_signal(self, signum, frame) -> None:
        if self.stopping:
            self.force = True  # a second signal: stop waiting for the drain
        self.stopping = True

    def _sleep(self, timeout: float) -> None:
        try:
            ready, _, _ = select.select([self._wake_r], [], [], timeout)
        except InterruptedError:
            return
        if ready:
            try:
                while os.read(self._wake_r, 512):
                    pass
            except BlockingIOError:
                pass

    # -- database calls that survive outages and notice lasting errors ----------

    def _db_call(self, fn, default=None):
        """Run fn(); on a database error back off with jitter and return default."""
        if self._db_down_since is not None and time.monotonic() < self._db_backoff:
            return default
        try:
            self.db.dialect.check_present()
            result = fn()
        except Exception as exc:
            self._on_db_error(exc)
            return default
        if self._db_down_since is not None:
            self._on_db_back()
        return result

    def _on_db_error(self, exc: Exception) -> None:
        now = time.monotonic()
        lasting = self.db.dialect.is_lasting(exc)
        if self._db_down_since is None:
            self._db_down_since = now
            if not lasting:
                log.warning("database unavailable (%s); carrying on with what we know", exc)
        if lasting:
            self._on_lasting_error(exc)
        self._db_failures += 1
        delay = min(10.0, 0.25 * 2 ** min(6, self._db_failures))
        self._db_backoff = now + delay * random.uniform(0.5, 1.0)
        with_db_closed(self.db)

    def _on_lasting_error(self, exc: Exception) -> None:
        """Nothing can be crawled into this database: no workers, nothing to clean up in it."""
        self._lasting = f"{type(exc).__name__}: {exc}"
        if self._say_lasting():
            log.error("database error that will not pass by itself (%s); pool at 0 workers%s",
                      self._lasting, ", exiting when idle" if self.exit_when_idle else "")
        self.target = 0
        self.cleanups.clear()

    def _on_db_back(self) -> None:
        log.info("database %s after %.1fs", "usable again" if self._lasting else "back",
                 time.monotonic() - self._db_down_since)
        self._db_down_since = None
        self._db_failures = 0
        self._lasting = None
        if self.count is not None:
            self.target = self.count

    def _pool_state(self) -> str:
        """'full' when the pool is at its ceiling: jobs without a worker then wait their
        turn (health reports them instead of failing); else 'running'."""
        ceiling = self.count if self.count is not None else self.settings.max_workers
        active = sum(1 for c in self.children.values() if c.stop_sent is None)
        return "full" if ceiling and active >= ceiling else "running"

    def _beat(self, state: str) -> None:
        rss = read_rss()
        self._db_call(lambda: self._registry().heartbeat(
            self.db, self.id, role="supervisor", host=self.settings.node, pid=os.getpid(),
            started_at=self.started_at, state=state, pages=len(self.children), rss_bytes=rss,
            deadline_s=0.5))  # never hold up the reaping of children for long

    def _refresh_target(self) -> None:
        def read():
            reg = self._registry()
            jobs = reg.runnable_jobs(self.db)
            peers = reg.count_live_supervisors(self.db, self.settings.worker_dead_after_s)
            return demand.target_workers(jobs, self.settings.max_workers, max(1, peers))

        target = self._db_call(read)
        if target is not None and target != self.target:
            log.info("pool target %d -> %d", self.target, target)
            self.target = target

    # -- the pool ----------------------------------------------------------------

    def _scale(self) -> None:
        active = [c for c in self.children.values() if c.stop_sent is None]
        now = time.monotonic()
        self._kill_overdue(now)
        if len(active) < self.target:
            self._above_since = None
            if now >= self._spawn_not_before:
                self._spawn(self.target - len(active))
        elif len(active) > self.target:
            self._above_since = self._above_since or now
            # A lasting database error stops workers at once: they can do nothing.
            if now - self._above_since >= self.settings.scale_down_after_s or self._lasting:
                for child in sorted(active, key=lambda c: c.started)[self.target:]:
                    self._ask_to_stop(child)
                self._above_since = None
        else:
            self._above_since = None

    def _spawn(self, n: int) -> None:
        from trawl import worker_process

        self.db.close()  # no pooled connection may cross the fork
        for _ in range(n):
            worker_id = "w-" + secrets.token_hex(8)
            started_at = time.time()
            # Blocked across the fork: a stop signal meant for the new worker
            # waits until the worker's own handlers are installed.
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            pid = os.fork()
            if pid:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            else:
                code = 1
                try:
                    self._become_worker()
                    code = worker_process.child_main(self.settings, worker_id, started_at)
                except BaseException:
                    log.exception("worker %s crashed", worker_id)
                finally:
                    logging.shutdown()
                    os._exit(code)
            self.children[pid] = Child(pid, worker_id, time.monotonic())
            log.info("spawned worker %s pid %d (%d running, target %d)", worker_id, pid,
                     len(self.children), self.target)

    def _become_worker(self) -> None:
        """In the forked child: drop everything that belongs to the supervisor."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for fd in (self._wake_r, self._wake_w, self.lock_fd):
            if fd is not None and fd >= 0:
                os.close(fd)
        # Own process group: a terminal's Ctrl-C reaches the supervisor only,
        # which then drains the workers in order.
        os.setpgid(0, 0)

    def _ask_to_stop(self, child: Child) -> None:
        child.stop_sent = time.monotonic()
        _signal(child.pid, signal.SIGTERM)

    def _kill_overdue(self, now: float) -> None:
        for child in self.children.values():
            if child.stop_sent is not None and now - child.stop_sent > self.settings.drain_s:
                log.warning("worker %s did not stop within %.0fs; killing it", child.worker_id,
                            self.settings.drain_s)
                _signal(child.pid, signal.SIGKILL)

    def _reap_children(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            lived = time.monotonic() - child.started
            if code in (0, EXIT_RECYCLED):
                log.info("worker %s pid %d exited (%s) after %.1fs", child.worker_id, pid,
                         "recycled" if code else "stopped", lived)
            else:
                how = f"signal {-code}" if code < 0 else f"exit code {code}"
                log.warning("worker %s pid %d died (%s) after %.1fs", child.worker_id, pid, how, lived)
            # A worker that recycles as soon as it starts (an RSS ceiling below its
            # start-up size) loops as surely as one that crashes.
            self._note_short_life(lived, child.stop_sent is not None)
            # Whatever it still held goes back to the queue now, not when its leases expire.
            if not self._lasting:
                self.cleanups.append(child.worker_id)

    def _note_short_life(self, lived: float, asked_to_stop: bool) -> None:
        if asked_to_stop or lived >= FAST_CRASH_S:
            self._fast_crashes = 0
            return
        self._fast_crashes += 1
        if self._fast_crashes >= 3:  # a crash loop: do not fork as fast as we can
            delay = min(30.0, 0.5 * 2 ** (self._fast_crashes - 3)) * random.uniform(0.8, 1.2)
            self._spawn_not_before = time.monotonic() + delay
            log.warning("workers keep ending right after they start; next spawn in %.1fs", delay)

    def _retry_cleanups(self) -> None:
        while self.cleanups:
            worker_id = self.cleanups[0]
            if self._db_call(lambda: self._release_worker(worker_id), default=False) is False:
                return
            self.cleanups.pop(0)

    def _release_worker(self, worker_id: str) -> bool:
        from trawl.store import frontier

        released = 0
        if self._registry().expire_leases_of(self.db, worker_id):
            released = frontier.sweep_expired_leases(self.db)
        self._registry().unregister(self.db, worker_id)
        if released:
            log.info("released %d pages leased by %s", released, worker_id)
        return True

    def _sweep_expired_leases(self) -> None:
        """Workers sweep only while they crawl; a paused or cancelled job whose
        worker died would otherwise keep its leased pages (and in_flight) forever."""
        from trawl.store import frontier

        swept = self._db_call(lambda: frontier.sweep_expired_leases(self.db), 0)
        if swept:
            log.info("swept %d expired page leases", swept)

    def _send_webhooks(self) -> None:
        """Move the completion webhooks on; never blocks (a CurlMulti stepped once per tick)."""
        from trawl.notify import Notifier
        from trawl.store import deliveries

        if self._notifier is None:
            self._notifier = Notifier(self.settings, self.id)
        in_flight = self._db_call(lambda: self._notifier.step(self.db), 0)
        if self._due_now("webhooks", STALE_EVERY_S):
            self._webhooks_pending = bool(in_flight) or bool(
                self._db_call(lambda: deliveries.pending_count(self.db), 0))

    def _reap_dead_rows(self) -> None:
        """Rows of processes that are gone: this node's at once, other nodes' once stale.

        A row of this node whose pid is not running is a certain death (a
        killed supervisor, a worker killed with it): removed now, and a
        worker's leases are released. Rows of other nodes are removed only
        when their heartbeat stopped, and their leases are left to expire:
        a process cut off from the database may still be fetching, so its
        pages come back only through the lease sweep, which keeps "fetched
        once".
        """
        reg = self._registry()
        dead_after = self.settings.worker_dead_after_s
        stale = self._db_call(lambda: reg.stale_workers(self.db, dead_after), [])
        local = self._db_call(lambda: reg.host_rows(self.db, self.settings.node), [])
        stale_ids = {r["id"] for r in stale}
        for row in {r["id"]: r for r in [*local, *stale]}.values():
            ours = row["host"] == self.settings.node
            if row["id"] == self.id or row["id"] in self.cleanups or ours and int(row["pid"]) in self.children:
                continue  # ourselves, already queued, or a child the reaper will see
            certain = ours and not hostlock.pid_alive(row["pid"])
            if certain and row["role"] == "worker":
                log.info("worker %s (pid %s) of this node is gone; releasing its pages", row["id"], row["pid"])
                self.cleanups.append(row["id"])  # unregistered once its leases are released
            elif certain or row["id"] in stale_ids:
                if self._db_call(lambda: self._remove_row(row["id"], certain), False):
                    log.info("reaped %s row %s (host %s, pid %s)", row["role"], row["id"], row["host"],
                             row["pid"])

    def _remove_row(self, row_id: str, certain: bool) -> bool:
        reg = self._registry()
        if certain:
            reg.unregister(self.db, row_id)
            return True
        return reg.remove_stale(self.db, row_id, self.settings.worker_dead_after_s)

    # -- idle exit (trigger-started supervisors only) ----------------------------

    def _idle_long_enough(self) -> bool:
        if self.target > 0 or self.children or self.cleanups or self._webhooks_pending:
            self._idle_since = None
            return False
        self._idle_since = self._idle_since or time.monotonic()
        return time.monotonic() - self._idle_since >= self.settings.supervisor_idle_s

    def _give_up_lock(self) -> bool:
        """Release the node's lock, then look once more for work that arrived meanwhile.

        A trigger that saw our lock held before we released it was fired for
        a job created before this last look, so the job is either seen here
        or its trigger finds the lock free and starts a new supervisor.
        During an outage we keep going (the work is still there); with a
        lasting error we leave: a new trigger finds the lock free.
        """
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None
        self._refresh_target()
        if self.target == 0 and (self._db_down_since is None or self._lasting):
            return True
        fd = hostlock.try_lock(hostlock.lock_path(self.settings))
        if fd is None:
            log.info("work arrived while exiting; another supervisor has taken over")
            self.target = 0
            return True
        self.lock_fd = fd
        hostlock.write_holder(fd, self.settings)
        self._idle_since = None
        return False

    # -- drain -------------------------------------------------------------------

    def _drain(self) -> None:
        """Workers stop claiming and finish or release their pages; stragglers are killed."""
        log.info("draining %d workers (up to %.0fs)", len(self.children), self.settings.drain_s)
        self._beat("draining")
        for child in self.children.values():
            if child.stop_sent is None:
                self._ask_to_stop(child)
        deadline = time.monotonic() + self.settings.drain_s
        while self.children and time.monotonic() < deadline and not self.force:
            self._reap_children()
            self._retry_cleanups()
            self._sleep(0.1)
        for child in list(self.children.values()):
            log.warning("worker %s still running after the drain; killing it", child.worker_id)
            _signal(child.pid, signal.SIGKILL)
        while self.children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            child = self.children.pop(pid, None)
            if child and not self._lasting:
                self.cleanups.append(child.worker_id)
        self._finish_cleanups(deadline=time.monotonic() + 5)

    def _finish_cleanups(self, deadline: float) -> None:
        while self.cleanups and time.monotonic() < deadline and not self._lasting:
            self._retry_cleanups()
            if self.cleanups:
                time.sleep(0.25)
        if self.cleanups and not self._lasting:
            log.error("could not release the leases of %s; they expire on their own",
                      ", ".join(self.cleanups))


# -- small helpers ----------------------------------------------------------------------------


def with_db_closed(db) -> None:
    """Drop pooled connections after an error: the next call reconnects."""
    try:
        db.close()
    except Exception:
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # already gone; the reaper will see it


# -- entry points -----------------------------------------------------------------------------


def run_foreground(settings: Settings, count: int | None = None) -> int:
    """`python app.py workers [--count N]`: run until SIGTERM/SIGINT (systemd, another machine).

    Takes the same lock as a trigger-started supervisor of this node and
    database; if one runs, waits for it to exit (it does when idle).
    """
    logs.configure()
    path = hostlock.lock_path(settings)
    fd = hostlock.try_lock(path)
    if fd is None:
        log.info("another supervisor holds %s; waiting for it to exit", path)
    while fd is None:
        time.sleep(1.0)
        fd = hostlock.try_lock(path)
    hostlock.write_holder(fd, settings)
    return Supervisor(settings, count=count, exit_when_idle=False, lock_fd=fd).run()


def _detached_main(argv: list[str]) -> int:
    """The intermediate process of the double fork, then the supervisor itself."""
    lock_fd = int(argv[argv.index("--lock-fd") + 1])
    if os.fork() > 0:
        os._exit(0)  # the intermediate: its parent (the trigger) reaps it at once
    logs.configure()
    from trawl import config

    settings = config.load()
    hostlock.write_holder(lock_fd, settings)
    try:
        return Supervisor(settings, exit_when_idle=True, lock_fd=lock_fd).run()
    except BaseException:
        log.exception("supervisor crashed")
        return 1


if __name__ == "__main__":
    from trawl.supervisor import _detached_main as _main  # run the importable module's code

    sys.exit(_main(sys.argv[1:]))
