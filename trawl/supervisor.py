"""Worker supervision: spawn, scale, reap, restart, drain.

Process tree on one host (one supervisor per `settings.node`):

    gunicorn worker --trigger--> (intermediate, exits at once)
                                    `-- supervisor   [own session, holds run/supervisor-<node>.lock]
                                          |-- worker  [forked, own process group, dies with parent]
                                          `-- worker  ...

`ensure_running` is the trigger's target. It takes the host's lock file with
a non-blocking `flock`; whoever wins spawns the supervisor and hands it the
*same open file* (the lock travels with the descriptor), so there is no
window in which a second trigger could also win. The spawn is a double fork
(an intermediate process forks the supervisor and exits), so the web process
only waits a few milliseconds for the intermediate and never owns a
long-lived child or a zombie.

The supervisor forks worker processes from itself after importing the crawl
engine, so workers start in milliseconds and share its code pages. It sizes
the pool by `target_workers` (the demand formula), replaces workers that
die, reaps stale rows of any host, and on SIGTERM/SIGINT drains: workers
stop claiming and finish or release their pages, and whatever is still
running after `settings.drain_s` is killed and its leases released.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import logging
import math
import os
import random
import re
import secrets
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from trawl.config import HARD_MAX_WORKERS, Settings
from trawl.worker_process import read_rss

log = logging.getLogger("trawl.supervisor")

LOG_ROTATE_BYTES = 50 * 2**20
LOG_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
TICK_S = 0.5              # longest sleep of the main loop (SIGCHLD wakes it at once)
DEMAND_EVERY_S = 1.0      # how often the pool size is recomputed from the database
STALE_EVERY_S = 5.0       # how often stale rows of any host are looked for
EXIT_RECYCLED = 3         # a worker's exit code when it recycled itself (pages or RSS)
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
FAST_CRASH_S = 2.0        # a worker dying sooner than this counts towards crash-loop backoff


# -- the host lock and the trigger ---------------------------------------------------------


def _node_slug(node: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", node)[:100] or "node"


def lock_path(settings: Settings) -> str:
    return os.path.join(os.path.abspath(settings.run_dir), f"supervisor-{_node_slug(settings.node)}.lock")


def log_path(settings: Settings) -> str:
    return os.path.join(os.path.abspath(settings.run_dir), f"supervisor-{_node_slug(settings.node)}.log")


def _try_lock(path: str) -> int | None:
    """An fd holding an exclusive flock on `path`, or None when somebody else holds it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def _write_pid(fd: int) -> None:
    """The holder's pid, for people reading the lock file (never used to send signals)."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def supervisor_running(settings: Settings) -> bool:
    fd = _try_lock(lock_path(settings))
    if fd is None:
        return True
    os.close(fd)
    return False


def settings_environment(settings: Settings) -> dict[str, str]:
    """os.environ plus TRAWL_* for every field, so a child's `config.load()` equals `settings`."""
    env = dict(os.environ)
    for f in dataclasses.fields(settings):
        key, value = "TRAWL_" + f.name.upper(), getattr(settings, f.name)
        if f.name == "run_dir":
            value = os.path.abspath(value)
        if value is None:
            env.pop(key, None)
        elif isinstance(value, bool):
            env[key] = "1" if value else "0"
        else:
            env[key] = str(value)
    return env


def ensure_running(settings: Settings) -> bool:
    """Make sure a supervisor runs for this node; True when this call started it.

    Safe to call from many threads and processes at once: exactly one wins
    the flock and spawns; the others see the lock held and return.
    """
    fd = _try_lock(lock_path(settings))
    if fd is None:
        return False
    try:
        _spawn_detached(settings, fd)
    finally:
        os.close(fd)  # the supervisor holds its own copy of the descriptor now
    return True


def _spawn_detached(settings: Settings, lock_fd: int) -> None:
    argv = [sys.executable, "-m", "trawl.supervisor", "--detach", "--lock-fd", str(lock_fd)]
    path = log_path(settings)
    with contextlib.suppress(OSError):
        if os.path.getsize(path) > LOG_ROTATE_BYTES:  # one old generation is kept
            os.replace(path, path + ".1")
    with open(path, "ab") as out:
        intermediate = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=(lock_fd,),
            start_new_session=True, env=settings_environment(settings), cwd=os.getcwd(),
        )
    # The intermediate forks the supervisor and exits at once; reaping it here
    # is what keeps the web process free of zombies.
    intermediate.wait(timeout=30)


# -- the demand formula ---------------------------------------------------------------------


def job_want(job: dict) -> int:
    """Workers one runnable job asks for.

    remaining = pages discovered and not yet ended (pending or leased), at
    least 1 while the job is queued or running (its seeds may not be
    expanded yet, and someone must mark it complete). The job's `workers`
    option is taken as given; otherwise one worker per `concurrency`
    remaining pages, because one worker keeps `concurrency` fetches in
    flight.
    """
    remaining = max(1, int(job["remaining"]))
    if job.get("workers"):
        return int(job["workers"])
    return math.ceil(remaining / max(1, int(job.get("concurrency") or 50)))


def target_workers(jobs: list[dict], max_workers: int, supervisors: int = 1) -> int:
    """Pool size for this host: the sum of every runnable job's want, shared
    evenly among the live supervisors (hosts), capped by TRAWL_MAX_WORKERS."""
    demand = sum(job_want(j) for j in jobs)
    return min(max_workers, math.ceil(demand / max(1, supervisors)))


# -- the supervisor -------------------------------------------------------------------------


@dataclass
class Child:
    pid: int
    worker_id: str
    started: float                      # time.monotonic() at fork
    stop_sent: float | None = None      # when we asked it to stop (scale-down or drain)


class Supervisor:
    """One host's pool. `run()` returns when drained or idle (trigger-started only)."""

    def __init__(self, settings: Settings, count: int | None = None, exit_when_idle: bool = False,
                 lock_fd: int | None = None):
        self.settings = settings
        self.count = count
        self.exit_when_idle = exit_when_idle
        self.lock_fd = lock_fd
        self.id = "s-" + secrets.token_hex(8)
        self.started_at = time.time()
        self.children: dict[int, Child] = {}
        self.cleanups: list[str] = []        # worker ids whose leases/rows still need releasing
        self.target = 0 if count is None else max(0, min(count, HARD_MAX_WORKERS))
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
        log.info("supervisor %s on %s: %s, max %d workers", self.id, self.settings.node,
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
            self._beat("running")
        if self.count is None and self._due_now("demand", DEMAND_EVERY_S):
            self._refresh_target()
        if self._due_now("stale", STALE_EVERY_S):
            self._reap_stale_rows()
            self._sweep_expired_leases()
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

    # -- database calls that survive outages -----------------------------------

    def _db_call(self, fn, default=None):
        """Run fn(); on a database error log once per outage, back off with jitter, return default."""
        if self._db_down_since is not None and time.monotonic() < self._db_backoff:
            return default
        try:
            result = fn()
        except Exception as exc:
            now = time.monotonic()
            if self._db_down_since is None:
                self._db_down_since = now
                log.warning("database unavailable (%s); carrying on with what we know", exc)
            self._db_failures += 1
            delay = min(10.0, 0.25 * 2 ** min(6, self._db_failures))
            self._db_backoff = now + delay * random.uniform(0.5, 1.0)
            with_db_closed(self.db)
            return default
        if self._db_down_since is not None:
            log.info("database back after %.1fs", time.monotonic() - self._db_down_since)
            self._db_down_since = None
            self._db_failures = 0
        return result

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
            return target_workers(jobs, self.settings.max_workers, max(1, peers))

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
            if now - self._above_since >= self.settings.scale_down_after_s:
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

    def _reap_stale_rows(self) -> None:
        """Rows whose heartbeat stopped, on any host: the process is gone or cut off.

        Their leases are not released here: a process cut off from the
        database may still be fetching, so its pages come back only when
        their leases expire (the worker sweep), which keeps "fetched once".
        Rows of this host whose pid is gone are certain deaths and released.
        """
        reg = self._registry()
        rows = self._db_call(lambda: reg.stale_workers(self.db, self.settings.worker_dead_after_s), [])
        for row in rows:
            if row["id"] == self.id:
                continue
            mine = row["host"] == self.settings.node and not _pid_alive(row["pid"])
            removed = self._db_call(
                lambda: reg.remove_stale(self.db, row["id"], self.settings.worker_dead_after_s), False)
            if removed:
                log.info("reaped stale %s row %s (host %s, pid %s)", row["role"], row["id"],
                         row["host"], row["pid"])
                if mine and row["role"] == "worker":
                    self.cleanups.append(row["id"])

    # -- idle exit (trigger-started supervisors only) ----------------------------

    def _idle_long_enough(self) -> bool:
        if self.target > 0 or self.children or self.cleanups or self._webhooks_pending:
            self._idle_since = None
            return False
        self._idle_since = self._idle_since or time.monotonic()
        return time.monotonic() - self._idle_since >= self.settings.supervisor_idle_s

    def _give_up_lock(self) -> bool:
        """Release the host lock, then look once more for work that arrived meanwhile.

        A trigger that saw our lock held before we released it was fired for
        a job created before this last look, so the job is either seen here
        or its trigger finds the lock free and starts a new supervisor.
        """
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None
        self._refresh_target()
        if self.target == 0 and self._db_down_since is None:
            return True
        fd = _try_lock(lock_path(self.settings))
        if fd is None:
            log.info("work arrived while exiting; another supervisor has taken over")
            self.target = 0
            return True
        self.lock_fd = fd
        _write_pid(fd)
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
            if child:
                self.cleanups.append(child.worker_id)
        self._finish_cleanups(deadline=time.monotonic() + 5)

    def _finish_cleanups(self, deadline: float) -> None:
        while self.cleanups and time.monotonic() < deadline:
            self._retry_cleanups()
            if self.cleanups:
                time.sleep(0.25)
        if self.cleanups:
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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _configure_logging() -> None:
    logging.basicConfig(level=os.environ.get("TRAWL_LOG_LEVEL", "INFO").upper(), format=LOG_FORMAT,
                        stream=sys.stderr)


# -- entry points -----------------------------------------------------------------------------


def run_foreground(settings: Settings, count: int | None = None) -> int:
    """`python app.py workers [--count N]`: run until SIGTERM/SIGINT (systemd, another machine)."""
    _configure_logging()
    path = lock_path(settings)
    fd = _try_lock(path)
    if fd is None:
        log.info("another supervisor holds %s; waiting for it to exit", path)
    while fd is None:
        time.sleep(1.0)
        fd = _try_lock(path)
    _write_pid(fd)
    return Supervisor(settings, count=count, exit_when_idle=False, lock_fd=fd).run()


def _detached_main(argv: list[str]) -> int:
    """The intermediate process of the double fork, then the supervisor itself."""
    lock_fd = int(argv[argv.index("--lock-fd") + 1])
    if os.fork() > 0:
        os._exit(0)  # the intermediate: its parent (the trigger) reaps it at once
    _configure_logging()
    from trawl import config

    _write_pid(lock_fd)
    settings = config.load()
    try:
        return Supervisor(settings, exit_when_idle=True, lock_fd=lock_fd).run()
    except BaseException:
        log.exception("supervisor crashed")
        return 1


if __name__ == "__main__":
    from trawl.supervisor import _detached_main as _main  # run the importable module's code

    sys.exit(_main(sys.argv[1:]))
