"""One worker process, as the supervisor forks it: signals, heartbeat, recycling.

The crawl loop itself is `trawl.worker.Worker`; this module is the process
around it. The main thread runs the loop; a heartbeat thread writes the
process's row (pid, host, job, pages, RSS) every `heartbeat_s` and watches
the RSS ceiling. Stopping is cooperative: SIGTERM, the death of the
supervisor, a full page quota or the RSS ceiling only set a flag that the
loop's `should_stop` reads, so the worker finishes or releases its pages
before it exits.
"""

from __future__ import annotations

import ctypes
import logging
import os
import random
import signal
import threading
import time

from trawl.config import Settings

log = logging.getLogger("trawl.worker_process")

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
EXIT_STOPPED = 0
EXIT_RECYCLED = 3  # same value as trawl.supervisor.EXIT_RECYCLED


def _die_with_parent() -> None:
    """Ask Linux to send us SIGTERM when the supervisor dies, even by kill -9."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: should_stop also watches getppid()


def set_process_name(name: str) -> None:
    """The name `ps -o comm`, top and /proc/<pid>/comm show (15 bytes at most)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def read_rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class WorkerProcess:
    def __init__(self, settings: Settings, worker_id: str, started_at: float):
        from trawl.store import Database

        self.settings = settings
        self.worker_id = worker_id
        self.started_at = started_at
        self.parent = os.getppid()
        self.stop = threading.Event()
        self.reason = ""
        self.db = Database(settings.database_url, max_idle=4)
        self.worker = None
        self.pages_before = 0  # pages of earlier Worker objects (after a database outage)

    # -- stopping ----------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        if not self.stop.is_set():
            self.reason = reason
            self.stop.set()

    def should_stop(self) -> bool:
        if os.getppid() != self.parent:
            self.request_stop("supervisor gone")
        return self.stop.is_set()

    @property
    def pages(self) -> int:
        return self.pages_before + (self.worker.pages_done if self.worker else 0)

    # -- heartbeat thread ----------------------------------------------------

    def heartbeat_loop(self) -> None:
        from trawl.store import registry

        failures = 0
        ceiling = self.settings.worker_max_rss_mb * 2**20
        while True:
            rss = read_rss()
            if ceiling and rss > ceiling:
                self.request_stop(f"RSS {rss / 2**20:.0f} MiB above {self.settings.worker_max_rss_mb} MiB")
            try:
                registry.heartbeat(
                    self.db, self.worker_id, role="worker", host=self.settings.node, pid=os.getpid(),
                    started_at=self.started_at, job_id=self.worker.current_job if self.worker else None,
                    state="stopping" if self.stop.is_set() else "running", pages=self.pages, rss_bytes=rss)
                failures = 0
                wait = self.settings.heartbeat_s
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("worker %s: heartbeat failed (%s); retrying", self.worker_id, exc)
                self.db.close()
                wait = min(self.settings.heartbeat_s * 2 ** failures, 10.0) * random.uniform(0.5, 1.0)
            if self._finished.wait(wait):
                return

    # -- the loop ------------------------------------------------------------

    def run(self) -> int:
        from trawl.worker import Worker

        self._finished = threading.Event()
        beat = threading.Thread(target=self.heartbeat_loop, name="heartbeat", daemon=True)
        beat.start()
        quota = self.settings.worker_recycle_pages
        failures = 0
        try:
            while not self.should_stop():
                self.worker = Worker(self.settings, self.db, self.worker_id, self.settings.node)
                try:
                    self.worker.run(self.should_stop, idle_exit_s=None,
                                    max_pages=max(1, quota - self.pages_before) if quota else None)
                    failures = 0
                except Exception as exc:  # the database went away for longer than a retry
                    failures += 1
                    delay = min(0.5 * 2 ** failures, 10.0) * random.uniform(0.5, 1.0)
                    log.warning("worker %s: loop failed (%s); again in %.1fs", self.worker_id, exc, delay)
                    self.db.close()
                    self.stop.wait(delay)
                self.pages_before += self.worker.pages_done
                self.worker = None
                if quota and self.pages_before >= quota:
                    self.request_stop(f"recycling after {self.pages_before} pages")
        finally:
            self._finished.set()
            beat.join(timeout=5)
            self._unregister()
        log.info("worker %s exits: %s", self.worker_id, self.reason or "stopped")
        return EXIT_RECYCLED if self.reason.startswith(("recycling", "RSS")) else EXIT_STOPPED

    def _unregister(self) -> None:
        from trawl.store import registry

        try:
            registry.unregister(self.db, self.worker_id)
        except Exception:
            pass  # the supervisor removes the row when it reaps us
        self.db.close()


def child_main(settings: Settings, worker_id: str, started_at: float) -> int:
    """Entry of a forked worker process; returns its exit code."""
    proc = WorkerProcess(settings, worker_id, started_at)
    signal.signal(signal.SIGTERM, lambda *_: proc.request_stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: proc.request_stop("SIGINT"))
    # The supervisor forked us with these blocked; one sent meanwhile arrives now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    _die_with_parent()
    set_process_name("trawl-worker")
    if settings.worker_nice > 0:
        os.nice(settings.worker_nice)
    if os.getppid() != proc.parent:  # the parent died before prctl took effect
        return EXIT_STOPPED
    return proc.run()
