"""The worker: claim → fetch → extract → commit, one job at a time.

A `Worker` lives in its own process (the supervisor starts it and runs a
heartbeat thread that reads `current_job` and `pages_done`). Its loop:

1. pick the oldest runnable job that still wants a worker, expanding its
   raw seeds into pages if nobody has yet;
2. keep the fetcher's slots busy: claim more pages whenever fewer than
   `concurrency` leased pages are unfinished, or slots are free and every
   queued page waits for its host's cap or delay (at most 4 × `concurrency`
   unfinished), preferring the hosts it already crawls
   (`frontier.claim_pages`, which also keeps each host with one worker);
3. for each page: a host already found unreachable fails it at once with
   that reason; a trap shape skips it; then robots.txt (fetched once per
   site through the same Fetcher, so the SSRF guard and politeness apply to
   it: the site's pages are parked until its answer arrives and released
   the moment it does), then the page;
4. extract links and emails from each body; keep links that are in scope
   (depth, same registered domain as the page's seed, not a file such as a
   PDF or an archive) and not already known to this worker's Bloom filter;
   none from a page whose <meta name="robots"> says nofollow;
5. commit the batch in one transaction every half second or 100 pages,
   and at once when the worker runs short of pages, so that the links it
   found become claimable without waiting for the timer;
6. every half second, read the job's status: on pause or cancel, abort
   the transfers, commit what is finished and hand the rest back;
7. when the job has nothing left for it, complete the job if nothing at
   all is left, and go back to 1. With no job at all, back off (capped).

Everything runs on one thread: the Fetcher drives all transfers from
`poll()`, and the database calls between polls are short.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from trawl.config import Settings
from trawl.dedupe import SeenPages
from trawl.extract import extract
from trawl.fetch import Fetcher, FetchResult
from trawl.jobs import (FINISHED, MAX_SEEDS, RUNNABLE, JobOptions, Status, TransitionRefused,
                        options_from_stored)
from trawl.priority import link_text_scores, priority, url_score
from trawl.robots import FETCH_OPTIONS as ROBOTS_FETCH, RobotsPolicy, meta_nofollow
from trawl.sitemaps import SitemapDiscovery, SitemapFetch
from trawl.store import frontier, job_rows
from trawl.store.database import Database
from trawl.store.frontier import DONE, FAILED, SKIPPED, ClaimedPage, NewPage, PageOutcome
from trawl.urls import (DigitTrapGuard, canonicalize, host_of, non_page_extension, registered_domain,
                        trap_reason, url_hash)

log = logging.getLogger(__name__)

# Pause and cancel must be seen within 1 s: the job's status is read this often.
STATUS_CHECK_S = 0.5
COMMIT_EVERY_S = 0.5
COMMIT_BATCH = 100
POLL_S = 0.05
# After an empty claim, ask again this soon even if we commit nothing
# (other workers' commits and finished hosts may free pages meanwhile).
DRY_CLAIM_WAIT_S = 0.25
# Unfinished leased pages at most, in multiples of `concurrency`: pages
# queued behind per-host caps do not fill slots, so a worker may hold more.
MAX_LEASED_FACTOR = 4
MIN_BACKOFF_S, MAX_BACKOFF_S = 0.05, 2.0
JOB_FAILURE_LIMIT = 3  # consecutive non-database errors on one job before it is failed
# Per-job memory (Bloom filter, robots.txt rules, hosts) kept for this many jobs.
REMEMBERED_JOBS = 4
REMEMBERED_HOSTS = 1000


@dataclass
class _JobMemory:
    """What a worker learned about a job, kept between its visits to it."""

    seen: SeenPages
    robots: RobotsPolicy
    hosts: OrderedDict  # host -> None, most recently crawled last
    hosts_down: dict = field(default_factory=dict)  # hostname -> why it cannot be reached
    traps: DigitTrapGuard = field(default_factory=DigitTrapGuard)
    # origin -> origin it redirects to with the same path and query
    # (http://example.com -> https://www.example.com): links are stored
    # under the target's spelling, so the two spellings are one page.
    origins: dict = field(default_factory=dict)
    sitemaps: SitemapDiscovery = field(default_factory=SitemapDiscovery)


@dataclass(frozen=True)
class _RobotsFetch:
    origin: str


class Worker:
    """One crawling process's engine; see the module docstring."""

    def __init__(self, settings: Settings, db: Database, worker_id: str, host: str):
        self.settings = settings
        self.db = db
        self.id = worker_id
        self.host = host
        # Read by the supervisor's heartbeat thread: plain attribute reads
        # and writes, no lock needed.
        self.current_job: str | None = None
        self.pages_done = 0
        self._memory: OrderedDict[str, _JobMemory] = OrderedDict()
        self._next_sweep = 0.0
        self._job_failures: dict[str, int] = {}

    # ---------------------------------------------------------------- the loop

    def run(
        self,
        should_stop: Callable[[], bool],
        idle_exit_s: float | None = None,
        max_pages: int | None = None,
    ) -> int:
        """Crawl until `should_stop()`, `max_pages` pages or `idle_exit_s` idle; returns pages processed."""
        start = self.pages_done
        idle_since: float | None = None
        backoff = MIN_BACKOFF_S
        while not should_stop():
            budget = None if max_pages is None else max_pages - (self.pages_done - start)
            if budget is not None and budget <= 0:
                break
            if self._work_once(should_stop, budget):
                idle_since, backoff = None, MIN_BACKOFF_S
                continue
            now = time.monotonic()
            idle_since = idle_since or now
            if idle_exit_s is not None and now - idle_since >= idle_exit_s:
                break
            _sleep(should_stop, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        return self.pages_done - start

    def _work_once(self, should_stop: Callable[[], bool], budget: int | None) -> bool:
        """Offer this worker to each runnable job in turn; True when one made progress."""
        try:
            self.sweep_if_due()
            for job in frontier.runnable_jobs(self.db, self.id, self.settings.worker_dead_after_s):
                if should_stop():
                    return False
                if self._crawl_job_guarded(job["id"], should_stop, budget):
                    return True
        except Exception:
            # The database may be away longer than db.retrying waits. Our
            # leases expire and are swept; back off and try again.
            log.exception("worker %s: crawl step failed", self.id)
        return False

    def _crawl_job_guarded(self, job_id: str, should_stop: Callable[[], bool], budget: int | None) -> bool:
        """crawl_job, but a job that keeps raising (not a database outage) is failed.

        Without this a job hitting a bug or a permanent error would stay
        `running` forever while every worker retried it.
        """
        try:
            progressed = self.crawl_job(job_id, should_stop, budget)
        except Exception as exc:
            if self.db.dialect.is_retryable(exc):
                raise  # the database is away: not the job's fault
            self._job_failures[job_id] = self._job_failures.get(job_id, 0) + 1
            log.exception("worker %s: job %s failed (%d of %d)", self.id, job_id,
                          self._job_failures[job_id], JOB_FAILURE_LIMIT)
            if self._job_failures[job_id] >= JOB_FAILURE_LIMIT:
                self._fail_job(job_id, f"{type(exc).__name__}: {exc}"[:500])
            return False
        self._job_failures.pop(job_id, None)
        return progressed

    def _fail_job(self, job_id: str, error: str) -> None:
        try:
            job_rows.apply_action(self.db, job_id, "fail", error=error)
        except (job_rows.JobNotFound, TransitionRefused):
            pass  # deleted, or another worker or the user moved it first
        self._job_failures.pop(job_id, None)

    def sweep_if_due(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + min(10.0, max(0.5, self.settings.lease_s / 2))
            swept = frontier.sweep_expired_leases(self.db)
            if swept:
                log.info("worker %s: %d expired leases returned to the queue", self.id, swept)

    # ---------------------------------------------------------------- one job

    def crawl_job(self, job_id: str, should_stop: Callable[[], bool], budget: int | None = None) -> bool:
        """Work on one job while it has pages for this worker; True when anything happened."""
        try:
            job = job_rows.load_job(self.db, job_id)
        except job_rows.JobNotFound:
            return False
        if job["status"] not in RUNNABLE:
            return False
        progressed = False
        if not job["seeded"]:
            progressed = frontier.expand_seeds(self.db, job_id) > 0
        options = options_from_stored(json.loads(job["options"]), "")
        memory = self._memory_for(job_id, options)
        self.current_job = job_id
        try:
            crawl = _JobCrawl(self, job_id, options, memory)
            processed = crawl.run(should_stop, budget)
        finally:
            self.current_job = None
        if crawl.drained and frontier.complete_if_done(self.db, job_id):
            log.info("job %s completed", job_id)
            progressed = True
        return progressed or processed > 0

    def _memory_for(self, job_id: str, options: JobOptions) -> _JobMemory:
        memory = self._memory.pop(job_id, None)
        if memory is None:
            memory = _JobMemory(
                # Keys that can enter: every page the job may store (seeds
                # are not limited by max_pages).
                seen=SeenPages(options.max_pages + MAX_SEEDS),
                robots=RobotsPolicy(self.settings.user_agent, options.obey_robots),
                hosts=OrderedDict(),
            )
        self._memory[job_id] = memory
        while len(self._memory) > REMEMBERED_JOBS:
            self._memory.popitem(last=False)
        return memory


class _Timer:
    """A repeating deadline: `due(now)` is True once the period has passed, and re-arms."""

    def __init__(self, period_s: float, now: float, first_in_s: float | None = None):
        self.period_s = period_s
        self.at = now + (period_s if first_in_s is None else first_in_s)

    def due(self, now: float) -> bool:
        if now < self.at:
            return False
        self.at = now + self.period_s
        return True

    def restart(self, now: float) -> None:
        self.at = now + self.period_s


class _SlotUsage:
    """Transfers in flight over a visit (the fetcher's integral), over the time it had work.

    "Had work": pages leased and the last claim found more (not dry), so
    the tail of a job, when nothing is left to claim, does not count.
    """

    def __init__(self):
        self.started = self.last = time.monotonic()
        self.leased_s = 0.0
        self._integral = 0.0
        self._slot_s = 0.0

    def sample(self, slot_seconds: float, had_work: bool) -> None:
        now = time.monotonic()
        if had_work:
            self.leased_s += now - self.last
            self._integral += slot_seconds - self._slot_s
        self.last, self._slot_s = now, slot_seconds

    def mean_in_flight(self) -> float:
        return self._integral / self.leased_s if self.leased_s else 0.0

    def elapsed(self) -> float:
        return self.last - self.started


class _JobCrawl:
    """One visit of a worker to a job: its Fetcher, leased pages and pending results."""

    def __init__(self, worker: Worker, job_id: str, options: JobOptions, memory: _JobMemory):
        self.worker = worker
        self.db = worker.db
        self.job_id = job_id
        self.options = options
        self.memory = memory
        self.lease_s = worker.settings.lease_s
        self.host_delay_s = options.per_host_delay_ms / 1000
        self.fetcher = Fetcher(
            worker.settings,
            concurrency=options.concurrency,
            per_host_connections=options.per_host_connections,
            per_host_delay_s=self.host_delay_s,
            hosts_down=memory.hosts_down,
            verify_tls=options.verify_tls,
        )
        self.pages: dict[int, ClaimedPage] = {}  # leased to us, result not committed yet
        self.parked: dict[str, list[ClaimedPage]] = {}  # origin -> pages waiting for robots.txt, sitemaps
        self.use_sitemaps = options.obey_robots and options.use_sitemaps
        self.sitemap_links: dict[int, tuple[str, list[NewPage]]] = {}  # page id -> (origin, its sitemaps' links)
        self.outcomes: list[PageOutcome] = []
        self.delays_applied: set[str] = set()
        self.capped = False  # the job reached max_pages: links are no longer worth a look
        self.processed = 0
        self.drained = False  # left because the job had nothing more for us
        self.stopping = False
        self.dry = False  # the last claim found nothing; cleared by a commit or a timer
        self.usage = _SlotUsage()

    # ---------------------------------------------------------------- loop

    def run(self, should_stop: Callable[[], bool], budget: int | None) -> int:
        now = time.monotonic()
        status = _Timer(STATUS_CHECK_S, now, first_in_s=0)
        commit = _Timer(COMMIT_EVERY_S, now)
        renew = _Timer(self.lease_s / 3, now)
        reclaim = _Timer(DRY_CLAIM_WAIT_S, now)
        try:
            while True:
                now = time.monotonic()
                if should_stop() or (status.due(now) and not self._job_runnable()):
                    self._abort()
                    return self.processed
                self.worker.sweep_if_due()
                if self.dry and reclaim.due(now):
                    self.dry = False
                room = self._room(budget)
                if room > 0 and self._short_of_pages():
                    if self.dry and self.outcomes:  # their links may be all there is to claim
                        self._commit()
                        commit.restart(now)
                    if not self.dry and not self._claim(room):
                        self.dry = True
                        reclaim.restart(now)
                self._poll()
                self.usage.sample(self.fetcher.slot_seconds(), bool(self.pages) and not self.dry)
                if self.outcomes and (len(self.outcomes) >= COMMIT_BATCH or commit.due(now)):
                    self._commit()
                if self.pages and renew.due(now):
                    frontier.renew_leases(self.db, self.job_id, self.worker.id, self.lease_s)
                if not self.pages and (self.dry or room <= 0):
                    self.drained = room > 0
                    return self.processed
        except BaseException:
            self._give_back_quietly()
            raise
        finally:
            self._close_fetcher()
            self._log_usage()

    def _room(self, budget: int | None) -> int:
        """Pages this visit may still claim."""
        room = MAX_LEASED_FACTOR * self.options.concurrency - self._unfinished()
        if budget is not None:
            room = min(room, budget - self.processed - len(self.pages))
        return room

    def _unfinished(self) -> int:
        return len(self.pages) - len(self.outcomes)

    def _short_of_pages(self) -> bool:
        """Fewer unfinished pages than slots, or free slots and nothing that could start now.

        Pages queued behind their host's connection cap or delay, or
        parked for robots.txt, do not fill a slot; in a broad crawl most
        claimed pages are such, so counting them alone would leave slots idle.
        """
        concurrency = self.options.concurrency
        if self._unfinished() < concurrency:
            return True
        return self.fetcher.in_flight < concurrency and not self.fetcher.has_startable

    def _log_usage(self) -> None:
        if self.usage.leased_s > 0:
            log.info("visit of job %s: %d pages in %.1f s, %.1f in flight on average while it had work "
                     "(%.1f s), concurrency %d", self.job_id, self.processed, self.usage.elapsed(),
                     self.usage.mean_in_flight(), self.usage.leased_s, self.options.concurrency)

    def _job_runnable(self) -> bool:
        try:
            _, status = job_rows.job_version(self.db, self.job_id)
        except job_rows.JobNotFound:
            return False
        return status in RUNNABLE

    def _poll(self) -> None:
        if self.fetcher.pending == 0:
            time.sleep(POLL_S)  # only parked pages: nothing to drive
            return
        for result in self.fetcher.poll(POLL_S):
            self._on_result(result)

    # ---------------------------------------------------------------- claims

    def _claim(self, limit: int) -> int:
        hosts = self.memory.hosts
        prefer = list(reversed(hosts))[: frontier.MAX_PREFERRED_HOSTS]
        claimed = frontier.claim_pages(self.db, self.job_id, self.worker.id, limit, self.lease_s, prefer)
        for page in claimed:
            self.pages[page.id] = page
            hosts.pop(page.host, None)
            hosts[page.host] = None
            self._dispatch(page)
        while len(hosts) > REMEMBERED_HOSTS:
            hosts.popitem(last=False)
        self.memory.seen.remember(page.url_hash for page in claimed)
        return len(claimed)

    def _dispatch(self, page: ClaimedPage) -> None:
        """Fetch the page, park it until its site's robots.txt is known, or end it without a fetch."""
        if self.stopping:
            return  # its lease is being handed back
        hostname = urlsplit(page.url).hostname or page.host
        down = self.fetcher.host_down(hostname)
        if down:
            self._end(page, FAILED, error=down)  # the site was recorded once; no transfer now
            return
        trap = trap_reason(page.url) if page.depth > 0 else None
        if trap:
            self._end(page, SKIPPED, error=trap)
            return
        robots = self.memory.robots
        if not robots.ready(page.url):
            origin = _origin(page.url)
            self.parked.setdefault(origin, []).append(page)
            robots_url = robots.needs_fetch(page.url)
            if robots_url:
                self.fetcher.submit(robots_url, _RobotsFetch(origin), **ROBOTS_FETCH)
            return
        refusal = robots.refusal(page.url)
        if refusal:
            self._end(page, SKIPPED, error=refusal)
            return
        trap = self.memory.traps.admit(page.url, page.depth) if page.depth > 0 else None
        if trap:
            self._end(page, SKIPPED, error=trap)
            return
        if self.use_sitemaps and not self._sitemaps_read(page):
            return  # parked until the origin's sitemaps are read
        if page.host not in self.delays_applied:
            self.delays_applied.add(page.host)
            delay = robots.crawl_delay(page.url)
            if delay and delay > self.host_delay_s:
                self.fetcher.set_host_delay(hostname, delay)
        self.fetcher.submit(page.url, page.id)

    def _sitemaps_read(self, page: ClaimedPage) -> bool:
        """True once the page's origin had its sitemaps read; else park the page (and start)."""
        origin, sitemaps = _origin(page.url), self.memory.sitemaps
        if not sitemaps.ready(origin):
            for fetch in sitemaps.start(origin, self.memory.robots.sitemaps(page.url)):
                self.fetcher.submit(fetch.url, fetch, raw=True)
        if sitemaps.ready(origin):
            urls = sitemaps.take_urls(origin)
            if urls:  # stored with this page's outcome: a page we hold, so they reach the store
                self.sitemap_links[page.id] = (origin, self._new_links(page, urls, depth=1))
            return True
        self.parked.setdefault(origin, []).append(page)
        return False

    # ---------------------------------------------------------------- results

    def _on_result(self, result: FetchResult) -> None:
        if isinstance(result.key, SitemapFetch):
            if result.outcome == "cancelled":
                self.memory.sitemaps.forget(result.key.origin)  # cut short: read it again next time
                return
            for fetch in self.memory.sitemaps.record(result.key, result.status, result.body):
                self.fetcher.submit(fetch.url, fetch, raw=True)
            if self.memory.sitemaps.ready(result.key.origin):
                for page in self.parked.pop(result.key.origin, []):
                    self._dispatch(page)
            return
        if isinstance(result.key, _RobotsFetch):
            self.memory.robots.record(result.url, result)
            for page in self.parked.pop(result.key.origin, []):
                self._dispatch(page)
            return
        page = self.pages.get(result.key)
        if page is None or result.outcome == "cancelled":
            return  # a cancelled page stays leased until it is released
        if result.outcome == "ok":
            self._on_page(page, result)
        elif result.outcome == "not_html":
            self._end(page, SKIPPED, result, error=result.error)
        else:
            self._end(page, FAILED, result, error=result.error or result.outcome)

    def _on_page(self, page: ClaimedPage, result: FetchResult) -> None:
        final = canonicalize(result.final_url) or page.url
        if (final != page.url and self.options.same_domain
                and registered_domain(host_of(final)) != page.site):
            self._end(page, SKIPPED, result, error=f"redirected out of scope to {final}")
            return
        text = result.text or ""
        try:
            content = extract(text, final)
        except Exception as exc:  # a page must never take the worker down
            log.exception("extracting %s failed", page.url)
            self._end(page, FAILED, result, error=f"could not parse the page: {exc!r}")
            return
        alias = self._alias(page, final)  # first: it may teach the origin the links should use
        follow = not (self.options.obey_robots and meta_nofollow(text))
        links = self._new_links(page, content.links, lambda: link_text_scores(text, final)) if follow else []
        self._end(page, DONE, result, links=links, emails=content.emails, alias=alias)

    def _alias(self, page: ClaimedPage, final: str) -> NewPage | None:
        """The redirect target as a page of the same site, so it is never fetched again.

        A redirect that keeps the path and query and changes only the origin
        teaches this job's memory that origin's new spelling.
        """
        if final == page.url:
            return None
        source, target = _origin(page.url), _origin(final)
        if source != target and page.url[len(source):] == final[len(target):] \
                and len(self.memory.origins) < REMEMBERED_HOSTS:
            self.memory.origins[source] = target
        return NewPage(final, url_hash(final), host_of(final), page.site, page.depth,
                       priority(page.depth, url_score(final)))

    def _new_links(self, page: ClaimedPage, urls: list[str],
                   text_scores: Callable[[], dict[str, int]] = dict, depth: int | None = None) -> list[NewPage]:
        """Links worth offering to the store: in scope, web pages, not known to the filter.

        Each gets its claim priority from its URL and its link text (contact
        pages first). Trap-shaped links are kept: their pages are skipped
        with the reason when claimed, so the crawl log says what was cut off.
        """
        depth = page.depth + 1 if depth is None else depth
        if depth > self.options.max_depth or self.capped:
            return []
        same_domain, site, seen = self.options.same_domain, page.site, self.memory.seen
        origins, texts = self.memory.origins, None
        links = []
        for link_url in urls:  # canonical and de-duplicated by extract()
            url = _respelled(link_url, origins) if origins else link_url
            host = host_of(url)
            if same_domain and registered_domain(host) != site:
                continue
            if non_page_extension(url):
                continue  # a PDF, an archive, an image...: not worth a politeness slot
            key = url_hash(url)
            if key in seen:
                continue
            if texts is None:
                texts = text_scores()  # only for pages with a link worth storing
            score = max(url_score(url), texts.get(link_url, 0))
            links.append(NewPage(url, key, host, site, depth, priority(depth, score)))
        return links

    def _end(self, page: ClaimedPage, state: str, result: FetchResult | None = None,
             error: str | None = None, links: list[NewPage] | None = None,
             emails: dict[str, set[str]] | None = None, alias: NewPage | None = None) -> None:
        self.outcomes.append(PageOutcome(
            page=page,
            state=state,
            http_status=result.status if result else None,
            bytes=result.bytes if result else 0,
            error=error,
            links=links or [],
            emails=emails or {},
            alias=alias,
        ))
        if page.id in self.sitemap_links:
            self.outcomes[-1].links += self.sitemap_links.pop(page.id)[1]

    def _commit(self) -> None:
        outcomes, self.outcomes = self.outcomes, []
        report = frontier.commit_batch(self.db, self.job_id, outcomes, self.options.max_pages)
        for outcome in outcomes:
            self.pages.pop(outcome.page.id, None)
        if report.inserted:
            self.dry = False  # our own links are there to claim
        self.memory.seen.remember(report.known_hashes)
        self.capped = self.capped or report.capped
        self.processed += report.accepted
        self.worker.pages_done += report.accepted
        if report.lost:
            log.warning("job %s: %d results dropped, their leases had expired", self.job_id, report.lost)

    # ---------------------------------------------------------------- stopping

    def _abort(self) -> None:
        """Pause, cancel or shutdown: stop transfers, keep finished results, hand back the rest."""
        self.stopping = True
        for result in self.fetcher.cancel_all():
            self._on_result(result)
        if self.outcomes:
            self._commit()
        if self.pages:
            frontier.release_leases(self.db, self.job_id, self.worker.id)
        self.pages.clear()
        for origin, _ in self.sitemap_links.values():
            self.memory.sitemaps.forget(origin)  # their links were not stored: read them again next time
        self.sitemap_links.clear()
        self.parked.clear()

    def _close_fetcher(self) -> None:
        # A robots.txt fetch cut short must be forgotten, or the site would
        # wait for its answer on the next visit to this job.
        self.stopping = True
        for result in self.fetcher.cancel_all():
            if isinstance(result.key, _RobotsFetch):
                self.memory.robots.record(result.url, result)
            elif isinstance(result.key, SitemapFetch):
                self.memory.sitemaps.forget(result.key.origin)  # likewise
        self.fetcher.close()

    def _give_back_quietly(self) -> None:
        try:
            self.stopping = True
            frontier.release_leases(self.db, self.job_id, self.worker.id)
        except Exception:
            log.warning("job %s: could not release leases; they expire in %ss", self.job_id, self.lease_s)


def _origin(url: str) -> str:
    """scheme://host[:port] of a canonical URL."""
    end = url.find("/", url.find("//") + 2)
    return url if end == -1 else url[:end]


def _respelled(url: str, origins: dict[str, str]) -> str:
    """`url` under the origin its own origin is known to redirect to (see _JobMemory.origins)."""
    origin = _origin(url)
    target = origins.get(origin)
    return url if target is None else target + url[len(origin):]


def _sleep(should_stop: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not should_stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


# ---------------------------------------------------------------- inline crawls


def run_inline(settings: Settings, db: Database, job_id: str, should_stop: Callable[[], bool]) -> None:
    """Crawl one job to its end in the calling process (`python app.py crawl --inline`).

    Waits while the job is paused; returns when it is finished (or deleted),
    or when `should_stop()`.
    """
    worker_id = f"inline-{settings.node}-{os.getpid()}-{secrets.token_hex(3)}"[:40]
    worker = Worker(settings, db, worker_id, settings.node)
    while not should_stop():
        try:
            _, status = job_rows.job_version(db, job_id)
        except job_rows.JobNotFound:
            return
        if Status(status) in FINISHED:
            return
        if status in RUNNABLE and worker.crawl_job(job_id, should_stop):
            continue
        worker.sweep_if_due()  # pages another (dead) worker held come back here
        _sleep(should_stop, 0.2)
