"""Sites: the per-site rows of a job, on real SQLite and MariaDB, and end to end over local servers.

Store-level tests drive the frontier the way a worker does (claim, commit
outcomes) and check each site's counters and state against the page and
address rows. The crawl tests run a real Worker over real local servers:
a normal site, a site whose robots.txt disallows everything, a closed port
and a name that does not resolve.
"""

from __future__ import annotations

import pytest

from trawl.jobs import JobOptions
from trawl.store import frontier, job_rows, sites
from trawl.store.frontier import NewPage, PageOutcome
from trawl.urls import url_hash

SEEDS = ["http://www.acme.co.uk/", "http://shop.acme.co.uk/contact", "http://b.example.org/",
         "http://c.example.net/start", "http://10.0.0.7/"]


def new_job(db, urls=SEEDS, **options) -> str:
    job_id = job_rows.insert_job(db, JobOptions(urls=list(urls), **options))["id"]
    frontier.expand_seeds(db, job_id)
    return job_id


def site_rows(db, job_id) -> dict[str, dict]:
    rows, total = sites.list_sites(db, job_id, 1000, 0)
    assert total == len(rows)
    return {r["site"]: r for r in rows}


def claim_all(db, job_id) -> dict[str, frontier.ClaimedPage]:
    claimed = {}
    while True:
        batch = frontier.claim_pages(db, job_id, "w1", 100, lease_s=30)
        if not batch:
            return claimed
        claimed.update({p.url: p for p in batch})


def link(parent: frontier.ClaimedPage, url: str) -> NewPage:
    return NewPage(url, url_hash(url), url.split("/")[2], parent.site, parent.depth + 1)


def outcome(page, state="done", status=200, error=None, links=(), emails=None) -> PageOutcome:
    return PageOutcome(page, state, status, 10, error, list(links), dict(emails or {}))


def assert_sites_match_rows(db, job_id) -> None:
    """Every site's counters say what its page and address rows say."""
    with db.read() as s:
        pages = s.all("SELECT site, state, COUNT(*) AS n FROM pages WHERE job_id = ? GROUP BY site, state",
                      (job_id,))
        emails = s.all("SELECT site, COUNT(*) AS n FROM emails WHERE job_id = ? GROUP BY site", (job_id,))
        raw = {r["site"]: r for r in s.all("SELECT * FROM sites WHERE job_id = ?", (job_id,))}
    by_site: dict[str, dict[str, int]] = {}
    for r in pages:
        by_site.setdefault(r["site"], {})[r["state"]] = int(r["n"])
    assert set(by_site) == set(raw)
    for site, states in by_site.items():
        row = raw[site]
        assert row["pages_discovered"] == sum(states.values()), site
        for state in ("done", "failed", "skipped"):
            assert row[f"pages_{state}"] == states.get(state, 0), (site, state)
    assert {r["site"]: int(r["n"]) for r in emails} == {s: r["emails"] for s, r in raw.items() if r["emails"]}


def test_seeds_make_one_pending_row_per_registered_domain(db):
    job_id = new_job(db)
    rows = site_rows(db, job_id)
    assert sorted(rows) == ["10.0.0.7", "acme.co.uk", "example.net", "example.org"]
    assert rows["acme.co.uk"]["seed"] == "http://www.acme.co.uk/"  # the first of its two seeds
    assert {r["state"] for r in rows.values()} == {"pending"}
    assert rows["example.org"]["pages"] == {"done": 0, "failed": 0, "skipped": 0}
    assert_sites_match_rows(db, job_id)


def test_batches_move_counters_states_and_own_domain_addresses(db):
    job_id = new_job(db)
    pages = claim_all(db, job_id)
    home, contact = pages["http://www.acme.co.uk/"], pages["http://shop.acme.co.uk/contact"]
    about = link(home, "http://www.acme.co.uk/about")
    frontier.commit_batch(db, job_id, [
        outcome(home, links=[about, link(home, "http://other.example.com/x")],
                emails={"info@acme.co.uk": {"mailto"}, "agency@other.example.com": {"text"}}),
        outcome(pages["http://b.example.org/"], "skipped", None, "disallowed by robots.txt"),
        outcome(pages["http://c.example.net/start"], "failed", None, "Could not connect: refused"),
        outcome(pages["http://10.0.0.7/"], "failed", 503, "HTTP 503"),
    ], max_pages=100)
    rows = site_rows(db, job_id)
    # acme.co.uk still has its contact page leased and two new pending pages.
    assert rows["acme.co.uk"]["state"] == "crawling"
    assert rows["acme.co.uk"]["emails"] == 2 and rows["acme.co.uk"]["own_emails"] == 1
    assert rows["example.org"]["state"] == "blocked"
    assert rows["example.org"]["error"] == "disallowed by robots.txt"
    assert rows["example.net"]["state"] == "unreachable"
    assert rows["example.net"]["error"] == "Could not connect: refused"
    assert rows["10.0.0.7"]["state"] == "unreachable"  # every page 5xx
    assert_sites_match_rows(db, job_id)

    rest = claim_all(db, job_id)
    frontier.commit_batch(db, job_id, [
        outcome(contact, "failed", 404, "HTTP 404", emails={"sales@acme.co.uk": {"text"},
                                                            "info@acme.co.uk": {"text"}}),
        outcome(rest["http://www.acme.co.uk/about"], emails={"sales@acme.co.uk": {"mailto"}}),
        outcome(rest["http://other.example.com/x"], "skipped", 200, "not an HTML page"),
    ], max_pages=100)
    acme = site_rows(db, job_id)["acme.co.uk"]
    assert acme["state"] == "done"
    assert acme["pages"] == {"done": 2, "failed": 1, "skipped": 1}
    assert acme["emails"] == 3 and acme["own_emails"] == 2
    assert acme["error"] is None  # only unreachable and blocked sites say why
    assert_sites_match_rows(db, job_id)
    emails = {e["email"]: e for e in results_emails(db, job_id)}
    assert {e["site"] for e in emails.values()} == {"acme.co.uk"}


def results_emails(db, job_id):
    from trawl.store import results

    return list(results.iter_emails(db, job_id))


def test_a_site_whose_pages_only_got_4xx_was_reached(db):
    job_id = new_job(db, ["http://gone.example.com/"])
    (page,) = claim_all(db, job_id).values()
    frontier.commit_batch(db, job_id, [outcome(page, "failed", 404, "HTTP 404")], max_pages=10)
    assert site_rows(db, job_id)["example.com"]["state"] == "done"


def test_robots_txt_that_could_not_be_read_is_unreachable_not_blocked(db):
    job_id = new_job(db, ["http://down.example.com/"])
    (page,) = claim_all(db, job_id).values()
    error = "robots.txt could not be fetched (Could not connect), so nothing was crawled"
    frontier.commit_batch(db, job_id, [outcome(page, "skipped", None, error)], max_pages=10)
    row = site_rows(db, job_id)["example.com"]
    assert (row["state"], row["error"]) == ("unreachable", error)


def test_retry_puts_failed_sites_back_to_crawling(db):
    job_id = new_job(db, ["http://a.example.com/", "http://b.example.org/"])
    pages = claim_all(db, job_id)
    frontier.commit_batch(db, job_id, [
        outcome(pages["http://a.example.com/"], "failed", None, "timed out"),
        outcome(pages["http://b.example.org/"]),
    ], max_pages=10)
    assert frontier.complete_if_done(db, job_id)
    job_rows.apply_action(db, job_id, "retry")
    rows = site_rows(db, job_id)
    assert rows["example.com"]["state"] == "crawling" and rows["example.com"]["pages"]["failed"] == 0
    assert rows["example.org"]["state"] == "done"
    (again,) = claim_all(db, job_id).values()
    frontier.commit_batch(db, job_id, [outcome(again)], max_pages=10)
    assert site_rows(db, job_id)["example.com"]["state"] == "done"
    assert_sites_match_rows(db, job_id)


def test_a_page_lost_too_often_fails_on_its_site(db):
    job_id = new_job(db, ["http://a.example.com/"])
    for _ in range(frontier.MAX_LEASE_LOSSES):
        assert claim_all(db, job_id)
        frontier.sweep_expired_leases(db, now=10 ** 10)
    row = site_rows(db, job_id)["example.com"]
    assert row["state"] == "unreachable" and row["pages"]["failed"] == 1
    assert_sites_match_rows(db, job_id)


def test_state_filter_paging_sorting_and_delete(db):
    job_id = new_job(db, [f"http://site{i:03d}.com/" for i in range(30)])
    pages = claim_all(db, job_id)
    frontier.commit_batch(db, job_id, [
        outcome(p, "failed", None, "refused") if i % 3 == 0 else
        outcome(p, emails={f"x{j}@{p.site}": {"text"} for j in range(i)})
        for i, p in enumerate(sorted(pages.values(), key=lambda p: p.url))
    ], max_pages=100)
    unreachable, total = sites.list_sites(db, job_id, 4, 0, state="unreachable")
    assert total == 10 and [r["site"] for r in unreachable] == ["site000.com", "site003.com",
                                                                 "site006.com", "site009.com"]
    second, _ = sites.list_sites(db, job_id, 4, 4, state="unreachable")
    assert [r["site"] for r in second] == ["site012.com", "site015.com", "site018.com", "site021.com"]
    top, _ = sites.list_sites(db, job_id, 3, 0, sort="-emails")
    assert [(r["site"], r["emails"], r["own_emails"]) for r in top] == [
        ("site029.com", 29, 29), ("site028.com", 28, 28), ("site026.com", 26, 26)]
    assert sites.count_by_state(db, job_id) == {"pending": 0, "crawling": 0, "done": 20,
                                                "unreachable": 10, "blocked": 0}
    streamed = list(sites.iter_sites(db, job_id, page=7))
    assert [r["site"] for r in streamed] == [f"site{i:03d}.com" for i in range(30)]
    assert frontier.complete_if_done(db, job_id)
    job_rows.delete_job(db, job_id)
    assert sites.list_sites(db, job_id, 10, 0) == ([], 0)
