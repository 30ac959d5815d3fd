"""The demand formula: how many workers a node's pool should run. Pure functions, no I/O.

For every queued or running job, remaining = pages discovered and not yet
ended (pending or leased), at least 1: a queued job's seeds may not be
expanded yet, and a worker must mark a finished frontier complete. A job's
`workers` option is taken as given; otherwise it wants one worker per
`concurrency` remaining pages, because one worker keeps `concurrency`
fetches in flight. The node's target is the sum over jobs, shared evenly
among the live supervisors (nodes), capped by TRAWL_MAX_WORKERS.
"""

from __future__ import annotations

import math


def job_want(job: dict) -> int:
    """Workers one runnable job asks for (keys: remaining, workers, concurrency)."""
    remaining = max(1, int(job["remaining"]))
    if job.get("workers"):
        return int(job["workers"])
    return math.ceil(remaining / max(1, int(job.get("concurrency") or 50)))


def target_workers(jobs: list[dict], max_workers: int, supervisors: int = 1) -> int:
    """Pool size for this node: every runnable job's want, shared among live supervisors, capped."""
    demand = sum(job_want(j) for j in jobs)
    return min(max_workers, math.ceil(demand / max(1, supervisors)))
