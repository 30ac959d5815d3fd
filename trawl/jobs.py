"""Job options, statuses and the one state machine that moves a job between them.

`parse_options` turns a JSON or form body into `JobOptions` or raises
`InvalidOptions` with a message per bad field; `next_status` is the only
place that decides whether an action (cancel, pause, ...) is allowed from a
status. Both are pure: the web layer and the workers call them, the store
records the outcome.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from trawl.urls import canonicalize

MAX_SEEDS = 10_000
MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = 200


class Status(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
# Statuses in which workers crawl a job.
RUNNABLE = (Status.QUEUED.value, Status.RUNNING.value)

# action -> {from status: to status}. Anything not listed is refused.
TRANSITIONS: dict[str, dict[Status, Status]] = {
    "start": {Status.QUEUED: Status.RUNNING},
    "complete": {Status.RUNNING: Status.COMPLETED, Status.QUEUED: Status.COMPLETED},
    "fail": {Status.QUEUED: Status.FAILED, Status.RUNNING: Status.FAILED},
    "cancel": {Status.QUEUED: Status.CANCELLED, Status.RUNNING: Status.CANCELLED,
               Status.PAUSED: Status.CANCELLED},
    "pause": {Status.QUEUED: Status.PAUSED, Status.RUNNING: Status.PAUSED},
    "resume": {Status.PAUSED: Status.QUEUED},
    # Retry re-queues failed pages; a finished job goes back to the queue,
    # an unfinished one keeps its status and simply gets its pages back.
    "retry": {Status.COMPLETED: Status.QUEUED, Status.FAILED: Status.QUEUED,
              Status.CANCELLED: Status.QUEUED, Status.QUEUED: Status.QUEUED,
              Status.RUNNING: Status.RUNNING, Status.PAUSED: Status.PAUSED},
    "delete": {Status.COMPLETED: Status.COMPLETED, Status.FAILED: Status.FAILED,
               Status.CANCELLED: Status.CANCELLED},
}


class TransitionRefused(Exception):
    def __init__(self, status: Status, action: str):
        self.status, self.action = status, action
        super().__init__(f"cannot {action} a job that is {status.value}")


def next_status(current: Status | str, action: str) -> Status:
    current = Status(current)
    allowed = TRANSITIONS[action]
    if current not in allowed:
        raise TransitionRefused(current, action)
    return allowed[current]


# -- options -------------------------------------------------------------


class InvalidOptions(Exception):
    def __init__(self, fields: dict[str, str]):
        self.fields = fields
        super().__init__("invalid job options: " + ", ".join(sorted(fields)))


@dataclass(frozen=True)
class JobOptions:
    urls: list[str]
    name: str = ""
    max_depth: int = 2
    max_pages: int = 1000
    same_domain: bool = True
    obey_robots: bool = True
    per_host_connections: int = 4
    per_host_delay_ms: int = 0
    concurrency: int = 50
    workers: int | None = None
    # None: no limit per site but max_pages. Counted per site (the seed's
    # registered domain) in the store, see frontier.claim_pages.
    max_pages_per_site: int | None = None
    verify_tls: bool = True
    use_sitemaps: bool = True
    notify_url: str | None = None

    def settings_dict(self) -> dict:
        """Everything but the seed list (stored separately, raw)."""
        data = asdict(self)
        del data["urls"]
        return data


# name -> (minimum, maximum) for the integer options.
INT_RANGES = {
    "max_depth": (0, 100),
    "max_pages": (1, 1_000_000),
    "per_host_connections": (1, 100),
    "per_host_delay_ms": (0, 600_000),
    "concurrency": (1, 100),
    "workers": (1, 300),
    "max_pages_per_site": (1, 1_000_000),
}
# Integer options whose null (or an empty form field) means "no value".
NULLABLE_INTS = ("workers", "max_pages_per_site")
BOOL_OPTIONS = ("same_domain", "obey_robots", "verify_tls", "use_sitemaps")
KNOWN_FIELDS = {f for f in JobOptions.__dataclass_fields__}
FORM_TRUE = {"1", "true", "on", "yes"}
FORM_FALSE = {"0", "false", "off", "no", ""}
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from JSON "\\ud800"
        return False
    return True


def check_seed_url(url: str) -> str | None:
    """Why `url` cannot be a seed, or None when it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    if not _encodable(url):
        return "is not valid Unicode text"
    if _CONTROL.search(url):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        return "not a parsable URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "scheme must be http or https"
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "port 0 is not valid"
    if canonicalize(url) is None:
        # The crawler keys pages by the canonical form; a URL it cannot
        # canonicalise (empty or over-long host labels, ...) would be
        # dropped silently later, so it is refused here, by name.
        return "has an invalid host or cannot be normalised"
    return None


def _parse_urls(raw, errors: dict[str, str]) -> list[str]:
    if isinstance(raw, str):
        items = raw.splitlines()
    elif isinstance(raw, list) and all(isinstance(u, str) for u in raw):
        items = raw
    else:
        errors["urls"] = "must be a list of URL strings or one string with a URL per line"
        return []
    urls = [u.strip() for u in items if u.strip()]
    if not urls:
        errors["urls"] = "at least one URL is required"
    elif len(urls) > MAX_SEEDS:
        errors["urls"] = f"at most {MAX_SEEDS} URLs per job (got {len(urls)})"
    else:
        for i, url in enumerate(urls):
            problem = check_seed_url(url)
            if problem:
                shown = url if len(url) <= 80 else url[:77] + "..."
                errors["urls"] = f"line {i + 1} ({shown!r}): {problem}"
                break
    return urls


def _parse_int(name: str, raw, from_form: bool, errors: dict[str, str]):
    if from_form and isinstance(raw, str):
        raw = raw.strip()
        if raw == "" and name in NULLABLE_INTS:
            return None
        if not re.fullmatch(r"-?\d{1,9}", raw):
            errors[name] = "must be a whole number"
            return None
        raw = int(raw)
    if raw is None and name in NULLABLE_INTS:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int):
        errors[name] = "must be a whole number" + (" or null" if name in NULLABLE_INTS else "")
        return None
    low, high = INT_RANGES[name]
    if not low <= raw <= high:
        errors[name] = f"must be between {low} and {high}"
        return None
    return raw


def _parse_bool(name: str, raw, from_form: bool, errors: dict[str, str]):
    if isinstance(raw, bool):
        return raw
    if from_form and isinstance(raw, str) and raw.strip().lower() in FORM_TRUE | FORM_FALSE:
        return raw.strip().lower() in FORM_TRUE
    errors[name] = "must be true or false"
    return None


def _parse_name(raw, errors: dict[str, str]) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        errors["name"] = "must be a string"
        return ""
    name = raw.strip()
    if len(name) > MAX_NAME_LENGTH:
        errors["name"] = f"at most {MAX_NAME_LENGTH} characters"
    elif re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", name):
        errors["name"] = "contains control characters"
    elif not _encodable(name):
        errors["name"] = "is not valid Unicode text"
    return name


def _parse_notify_url(raw, errors: dict[str, str]) -> str | None:
    """An absolute http(s) URL with a host, or None; where it points is judged at delivery (SSRF guard)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        errors["notify_url"] = "must be an http or https URL or null"
        return None
    url = raw.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname
            or len(url) > MAX_URL_LENGTH or _CONTROL.search(url) or not _encodable(url)):
        errors["notify_url"] = "must be an http or https URL with a host"
        return None
    return url


def parse_options(body, from_form: bool = False) -> JobOptions:
    """Validate a request body; raise InvalidOptions naming every bad field.

    JSON bodies must use the right types; form bodies are strings and are
    coerced. Unknown fields are refused in JSON (a typo should not silently
    become a default) and ignored in forms (which carry CSRF tokens etc.).
    """
    if not isinstance(body, dict):
        raise InvalidOptions({"body": "must be a JSON object or a form"})
    errors: dict[str, str] = {}
    if not from_form:
        for key in body:
            if key not in KNOWN_FIELDS:
                errors[str(key)[:100]] = "unknown option"
    if "urls" not in body:
        errors["urls"] = "required"
        urls = []
    else:
        urls = _parse_urls(body["urls"], errors)
    values: dict = {"urls": urls, "name": _parse_name(body.get("name"), errors)}
    for name in INT_RANGES:
        if name in body:
            values[name] = _parse_int(name, body[name], from_form, errors)
    for name in BOOL_OPTIONS:
        if name in body:
            values[name] = _parse_bool(name, body[name], from_form, errors)
    per_site, max_pages = values.get("max_pages_per_site"), values.get("max_pages", JobOptions.max_pages)
    if per_site is not None and max_pages is not None and per_site > max_pages:
        errors["max_pages_per_site"] = f"must be between 1 and max_pages ({max_pages}) or null"
    if "notify_url" in body:
        values["notify_url"] = _parse_notify_url(body["notify_url"], errors)
    if errors:
        raise InvalidOptions(errors)
    return JobOptions(**values)


def stored_options(raw: str | None) -> dict:
    """A job's stored options JSON; {} when unreadable, so one damaged row cannot
    break the listings every worker and supervisor reads (the worker that
    picks the job fails it instead)."""
    try:
        options = json.loads(raw or "{}")
    except ValueError:
        return {}
    return options if isinstance(options, dict) else {}


def options_from_stored(settings: dict, seeds: str) -> JobOptions:
    known = {k: v for k, v in settings.items() if k in KNOWN_FIELDS and k != "urls"}
    return JobOptions(urls=seeds.splitlines(), **known)
