"""Helpers for tests that start real supervisors and workers: launching, /proc checks, waits.

Every test gets its own run directory; every process we start carries it in
its environment (`TRAWL_RUN_DIR`), so `our_pids(run_dir)` finds exactly the
processes of one test by reading /proc, whoever their parent is.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from trawl.config import Settings
from trawl.hostlock import settings_environment

ROOT = Path(__file__).resolve().parent.parent


def make_settings(tmp: Path, database_url: str, **overrides) -> Settings:
    """Settings with short timeouts, for a supervisor under test."""
    base = dict(
        database_url=database_url, run_dir=str(tmp / "run"), node="test-node",
        allow_private_networks=True, heartbeat_s=0.5, worker_dead_after_s=4.0, lease_s=20.0,
        drain_s=10.0, supervisor_idle_s=2.0, scale_down_after_s=1.0, max_workers=4,
    )
    return Settings(**{**base, **overrides})


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 0.05):
    """Poll `check` until it returns something truthy; fail saying `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


# -- /proc ----------------------------------------------------------------------------------


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def proc_state(pid: int) -> str:
    stat = _read(f"/proc/{pid}/stat").decode(errors="replace")
    return stat.rsplit(")", 1)[1].split()[0] if ")" in stat else ""


def proc_ppid(pid: int) -> int:
    stat = _read(f"/proc/{pid}/stat").decode(errors="replace")
    return int(stat.rsplit(")", 1)[1].split()[1]) if ")" in stat else 0


def cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").decode(errors="replace").strip()


def our_pids(run_dir: str) -> list[int]:
    """Live (non-zombie) processes whose environment names `run_dir`."""
    marker = f"TRAWL_RUN_DIR={os.path.abspath(run_dir)}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        if marker in _read(f"/proc/{name}/environ").split(b"\0") and proc_state(int(name)) != "Z":
            found.append(int(name))
    return found


def comm(pid: int) -> str:
    return _read(f"/proc/{pid}/comm").decode(errors="replace").strip()


def supervisor_pids(run_dir: str) -> list[int]:
    """Supervisors of `run_dir`: they name themselves trawl-superv (as workers name themselves
    trawl-worker) once started; until then, a process running trawl.supervisor or `app.py workers`."""
    found = set()
    for pid in our_pids(run_dir):
        name, args = comm(pid), cmdline(pid)
        if name == "trawl-superv" or (name != "trawl-worker" and ("trawl.supervisor" in args
                                                                    or "app.py workers" in args)):
            found.add(pid)
    # A worker just forked carries its supervisor's name until it renames
    # itself: a candidate whose parent is a candidate is not a second supervisor.
    return sorted(pid for pid in found if proc_ppid(pid) not in found)


def worker_pids(run_dir: str) -> list[int]:
    return sorted(p for p in our_pids(run_dir) if comm(p) == "trawl-worker")


def zombie_children() -> list[int]:
    me = os.getpid()
    return [int(n) for n in os.listdir("/proc")
            if n.isdigit() and proc_state(int(n)) == "Z" and proc_ppid(int(n)) == me]


def assert_nothing_left(run_dir: str, timeout: float = 40.0) -> None:
    """Wait for every process of `run_dir` to end; kill and fail if any outlives `timeout`."""
    deadline = time.monotonic() + timeout
    while our_pids(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = our_pids(run_dir)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes left behind: {[(p, cmdline(p)) for p in left]}"
    assert not zombie_children(), f"zombies: {zombie_children()}"


# -- launching --------------------------------------------------------------------------------


class Foreground:
    """`python app.py workers [--count N]` as a real child process."""

    def __init__(self, settings: Settings, count: int | None = None, name: str = "workers"):
        self.settings = settings
        run = Path(settings.run_dir)
        run.mkdir(parents=True, exist_ok=True)
        self.log_path = run / f"{name}-{settings.node}.log"
        argv = [sys.executable, "app.py", "workers"] + ([] if count is None else ["--count", str(count)])
        env = settings_environment(settings)
        env["TRAWL_LOG_LEVEL"] = "INFO"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 40.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"supervisor did not stop within {timeout}s:\n{self.log()[-3000:]}")

    def __enter__(self) -> Foreground:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.terminate()


def delay_routes(site, delay_s: float) -> None:
    """Make every page of `site` answer after `delay_s`, so a crawl has pages in flight.

    Wraps the handlers the site already serves (tests/site.py keeps them in
    `_routes`); robots.txt stays fast.
    """
    for path, handler in list(site._routes.items()):
        if path == "/robots.txt":
            continue

        def slow(h, handler=handler):
            site._stopping.wait(delay_s)
            handler(h)

        site.add_route(path, slow)
