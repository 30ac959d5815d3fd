"""The routes that answer early and close their connection: one list for app.py and gunicorn.

Their responses fire the worker trigger from the body's close(), so the
client must be done the moment it has the body: gunicorn closes these
connections itself (gunicorn.conf.py `pre_request`), because it ignores an
application's hop-by-hop `Connection` header. app.py checks at start-up
that each rule here is one of its POST routes, and that every early
response comes from one of them.

This module imports nothing but `re`: gunicorn.conf.py runs in the master
before gevent patches the standard library, so it must not import Bottle.
"""

from __future__ import annotations

import re

# Bottle route rules, exactly as app.py declares them (all POST).
EARLY_CLOSE_ROUTES = (
    "/api/jobs",
    "/api/workers/trigger",
    "/api/jobs/<job_id>/<action:re:resume|retry>",
)


def _pattern(rule: str) -> str:
    """A Bottle rule as a regex: `<name>` is one path segment, `<name:re:X>` is X."""
    out, pos = [], 0
    for m in re.finditer(r"<(\w+)(?::re:([^>]+))?>", rule):
        out.append(re.escape(rule[pos:m.start()]))
        out.append(f"(?:{m.group(2)})" if m.group(2) else "[^/]+")
        pos = m.end()
    out.append(re.escape(rule[pos:]))
    return "".join(out)


_EARLY_CLOSE = re.compile("^(?:" + "|".join(_pattern(r) for r in EARLY_CLOSE_ROUTES) + ")$")


def closes_early(method: str, path: str) -> bool:
    return method == "POST" and _EARLY_CLOSE.match(path) is not None
