"""One supervisor per (node, database): the lock file, and the detached start the trigger calls.

Key. Lock and log files are named `supervisor-<node>-<db>` where <db> is a
short hash of the database URL without its password (SQLite paths made
absolute), so Trawl servers on one checkout but different databases each
get their own supervisor, and `python app.py workers` takes the same lock
as the trigger for the same database. The supervisor only ever looks at its
own database, so a lock shared across databases would starve the others.

`ensure_running` takes the lock with a non-blocking `flock`; whoever wins
spawns the supervisor and hands it the *same open file* (the lock travels
with the descriptor), so no second trigger can also win. The lock dies with
its holder, even on kill -9. The spawn is a double fork (an intermediate
process forks the supervisor and exits), so the web process waits only for
the intermediate and never owns a long-lived child or a zombie.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import os
import re
import subprocess
import sys

from trawl.config import Settings
from trawl.store.dialect import SqliteTarget, parse_database_url

LOG_ROTATE_BYTES = 50 * 2**20


def database_identity(url: str) -> str:
    """The database a URL names, without its password: what the key hashes."""
    try:
        target = parse_database_url(url)
    except ValueError:
        return url
    if isinstance(target, SqliteTarget):
        return "sqlite:///" + os.path.abspath(target.path)
    return f"mysql://{target.user}@{target.host}:{target.port}/{target.database}"


def supervisor_key(settings: Settings) -> str:
    node = re.sub(r"[^A-Za-z0-9_.-]", "_", settings.node)[:100] or "node"
    digest = hashlib.blake2b(database_identity(settings.database_url).encode(), digest_size=5)
    return f"{node}-{digest.hexdigest()}"


def lock_path(settings: Settings) -> str:
    return os.path.join(os.path.abspath(settings.run_dir), f"supervisor-{supervisor_key(settings)}.lock")


def log_path(settings: Settings) -> str:
    return os.path.join(os.path.abspath(settings.run_dir), f"supervisor-{supervisor_key(settings)}.log")


def try_lock(path: str) -> int | None:
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


def write_holder(fd: int, settings: Settings) -> None:
    """The holder's pid and database, for people reading the lock file (never used to send signals)."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n{database_identity(settings.database_url)}\n".encode(), 0)


def pid_alive(pid: int) -> bool:
    """Whether a process of this node runs with `pid` (a row's host names this node).

    A zombie is dead: a killed supervisor is reparented to whatever reaps
    orphans, which may take its time (or never come, in a container).
    """
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc to ask: signal 0 said it exists
    return state not in (b"Z", b"X")


def needs_supervisor(state) -> bool:
    """Runnable work, and none of this node's supervisors with a fresh heartbeat still runs
    (`state` is a `registry.SupervisionState`): what the self-healing check fires on."""
    return state.runnable > 0 and not any(pid_alive(pid) for pid in state.supervisor_pids)


def supervisor_running(settings: Settings) -> bool:
    fd = try_lock(lock_path(settings))
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
    """Make sure a supervisor runs for this node and database; True when this call started it.

    Safe to call from many threads and processes at once: exactly one wins
    the flock and spawns; the others see the lock held and return.
    """
    fd = try_lock(lock_path(settings))
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
