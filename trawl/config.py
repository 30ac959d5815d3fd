"""Settings: one table of flat defaults, overridden by TRAWL_* environment variables.

Every tunable of the engine lives here, so the CLI, the server and the tests
read the same names. `load()` is cheap and pure (it only reads the
environment it is given), so tests build settings for a temporary database
without touching global state.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from trawl import __version__

HARD_MAX_WORKERS = 300
PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_USER_AGENT = f"Trawl/{__version__} (+https://github.com/trawl-crawler/trawl)"


def _default_max_workers() -> int:
    return min(HARD_MAX_WORKERS, 2 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///trawl.db"
    host: str = "127.0.0.1"
    port: int = 8080
    api_token: str | None = None
    max_workers: int = field(default_factory=_default_max_workers)
    allow_private_networks: bool = False
    user_agent: str = DEFAULT_USER_AGENT
    # The name this machine presents in the workers table; several
    # supervisors on one box can pretend to be different hosts with it.
    node: str = field(default_factory=lambda: os.uname().nodename)
    # Where the supervisor keeps its lock file and log.
    run_dir: str = "run"
    # Whether the web server starts a supervisor on this host when work
    # arrives. Off for web-only nodes whose workers run elsewhere
    # (`python app.py workers` on other machines sharing the MySQL database).
    autostart_workers: bool = True
    # When set, each worker trigger appends a JSON line here (start time,
    # bytes the client had acknowledged): an audit for operators and tests.
    trigger_log: str = ""

    # Host names the web server answers to besides loopback names and
    # addresses (comma-separated); any other Host gets 421 (DNS rebinding).
    allowed_hosts: str = ""

    # Request limits of the web layer.
    max_body_bytes: int = 4 * 1024 * 1024
    # A request body must arrive within this long, or 408 and the connection
    # is closed (a client announcing 1 MB and sending 12 bytes held it).
    body_read_timeout_s: float = 10.0
    # Worker leases and heartbeats (seconds).
    lease_s: float = 60.0
    heartbeat_s: float = 2.0
    worker_dead_after_s: float = 10.0
    # Worker supervision (trawl/supervisor.py). A worker process recycles
    # itself after this many pages or above this resident size (MiB).
    worker_recycle_pages: int = 5000
    worker_max_rss_mb: int = 512
    # Niceness added to worker processes, so a crawl saturating the cores
    # leaves the web server (progress polls, SSE) its CPU: measured with 100
    # polling tabs and the cores at 100 %, progress p99 71 ms -> 6 ms.
    worker_nice: int = 10
    # SIGTERM/SIGINT: how long workers get to finish or release their pages.
    drain_s: float = 30.0
    # A trigger-started supervisor exits after this long without demand.
    supervisor_idle_s: float = 30.0
    # Demand must stay below the pool size this long before it shrinks.
    scale_down_after_s: float = 5.0
    # Fetching.
    connect_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    max_page_bytes: int = 5 * 1024 * 1024
    # PEM file of CA certificates for verifying crawled sites (private CAs);
    # empty: the system's CA store.
    ca_bundle: str = ""
    # Completion webhooks (trawl/notify.py): first retry after notify_retry_s,
    # doubling up to notify_retry_max_s, given up notify_give_up_s after the
    # job ended; one POST may take notify_timeout_s.
    notify_retry_s: float = 10.0
    notify_retry_max_s: float = 600.0
    notify_give_up_s: float = 3600.0
    notify_timeout_s: float = 15.0

    @property
    def allowed_host_names(self) -> frozenset[str]:
        """TRAWL_ALLOWED_HOSTS as lower-case names, without ports or a trailing dot."""
        names = (n.strip().lower().rstrip(".") for n in self.allowed_hosts.split(","))
        return frozenset(n for n in names if n)


_BOOL_TRUE = {"1", "true", "yes", "on"}


def _coerce(kind: type, raw: str):
    if kind is bool:
        return raw.strip().lower() in _BOOL_TRUE
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    return raw


def load(environ: dict[str, str] | None = None) -> Settings:
    """Settings from TRAWL_<FIELD> variables of `environ` (default os.environ)."""
    env = os.environ if environ is None else environ
    values = {}
    for f in dataclasses.fields(Settings):
        raw = env.get("TRAWL_" + f.name.upper())
        if raw is None or raw == "":
            continue
        kind = {"int": int, "float": float, "bool": bool}.get(str(f.type).split(" ")[0], str)
        values[f.name] = _coerce(kind, raw)
    settings = Settings(**values)
    return dataclasses.replace(
        settings,
        max_workers=max(1, min(HARD_MAX_WORKERS, settings.max_workers)),
        # The supervisor's lock lives here: it must be the same file whatever
        # directory the server, `app.py workers` or `app.py crawl` start from.
        run_dir=os.path.join(PROJECT_DIR, settings.run_dir),
    )
