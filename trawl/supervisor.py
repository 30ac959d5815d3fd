"""Worker supervision (placeholder until the supervisor issue lands).

`ensure_running(settings)` is the trigger's target: make sure a supervisor
runs on this host. Until the supervisor exists it only logs, so the seam is
in place and tested end to end.
"""

from __future__ import annotations

import logging

from trawl.config import Settings

log = logging.getLogger(__name__)


def ensure_running(settings: Settings) -> None:
    log.info("trigger: supervisor not implemented yet; pending work waits")
