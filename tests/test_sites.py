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
    error = "robots.txt unavailable: HTTP 503"
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


# ---------------------------------------------------------------- a real crawl over real servers


def start_mixed_sites():
    """Two normal sites, one whose robots.txt refuses all, a closed port and a name that does not resolve.

    Returns (seeds by expected state, ground truth of the first normal site, started servers).
    """
    from tests.conftest import free_port
    from tests.site import TestSite, generate_site

    normal = TestSite(host="127.0.0.2").start()
    truth = generate_site(normal, pages=8, links_per_page=3, emails_per_page=2, seed=14)
    other = TestSite(host="127.0.0.5").start()
    other.add_page("/", "<p>Write to hello@northwind-mail.com or sales@northwind-mail.com</p>")
    closed_by_robots = TestSite(host="127.0.0.3").start()
    closed_by_robots.add_page("/", '<a href="/a.html">a</a> boss@example.com')
    closed_by_robots.set_robots("User-agent: *\nDisallow: /\n")
    seeds = {
        "done": normal.url("/"),
        "done-too": other.url("/"),
        "blocked": closed_by_robots.url("/"),
        "refused": f"http://127.0.0.4:{free_port()}/",  # nobody listens there
        "dns": "http://no-such-host.trawl-test.invalid/",
    }
    return seeds, truth, [normal, other, closed_by_robots]


@pytest.fixture
def mixed_sites():
    seeds, truth, servers = start_mixed_sites()
    yield seeds, truth, servers[2]
    for server in servers:
        server.stop()


def crawl(db, urls: list[str], **options) -> str:
    from trawl.config import Settings
    from trawl.worker import run_inline

    job_id = job_rows.insert_job(db, JobOptions(urls=urls, max_depth=3, **options))["id"]
    settings = Settings(database_url=db.url, allow_private_networks=True, connect_timeout_s=3.0)
    run_inline(settings, db, job_id, lambda: False)
    return job_id


def test_each_site_of_a_mixed_job_ends_in_its_state(db, mixed_sites):
    seeds, truth, closed_by_robots = mixed_sites
    job_id = crawl(db, list(seeds.values()))
    assert job_rows.load_job(db, job_id)["status"] == "completed"
    rows = site_rows(db, job_id)
    assert sorted(rows) == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5",
                            "no-such-host.trawl-test.invalid"]

    done = rows["127.0.0.2"]
    assert done["state"] == "done" and done["error"] is None
    assert done["pages"] == {"done": len(truth.urls), "failed": 0, "skipped": 0}
    assert done["emails"] == len(truth.emails)
    # The generated addresses are at other domains than the site (an IP address).
    assert done["own_emails"] == 0

    blocked = rows["127.0.0.3"]
    assert (blocked["state"], blocked["error"]) == ("blocked", "disallowed by robots.txt")
    assert blocked["pages"] == {"done": 0, "failed": 0, "skipped": 1}
    assert closed_by_robots.hits("/") == 0

    refused = rows["127.0.0.4"]
    assert refused["state"] == "unreachable"
    assert refused["error"].startswith("could not connect")  # the host, recorded once for its pages

    dns = rows["no-such-host.trawl-test.invalid"]
    assert dns["state"] == "unreachable"
    assert dns["error"] == "DNS: no such host"
    assert rows["127.0.0.5"]["emails"] == 2 and rows["127.0.0.5"]["state"] == "done"
    assert {e["site"] for e in results_emails(db, job_id)} == {"127.0.0.2", "127.0.0.5"}
    assert sites.count_by_state(db, job_id) == {"pending": 0, "crawling": 0, "done": 2,
                                                "unreachable": 2, "blocked": 1}
    assert_sites_match_rows(db, job_id)


# ---------------------------------------------------------------- the API and its streamed exports


def rss_of(server) -> int:
    """Resident bytes of the gunicorn master and its workers (the request runs in a worker)."""
    import psutil

    master = psutil.Process(server.process.pid)
    return sum(p.memory_info().rss for p in [master, *master.children(recursive=True)])


@pytest.fixture(scope="module")
def big_job(server, store_of_server):
    """A job with 100 sites and 10,000 addresses, written straight into the server's store."""
    from tests.http import call

    db = store_of_server
    reply = call("POST", server.url("/api/jobs"), {"urls": [f"http://s{i:03d}.com/" for i in range(100)]})
    job_id = reply.json()["id"]
    frontier.expand_seeds(db, job_id)
    pages = claim_all(db, job_id)
    outcomes = []
    for page in pages.values():
        n = int(page.site[1:4])
        emails = {(f"u{j:03d}@{page.site}" if j % 2 else f"u{j:03d}@mail{n:03d}.net"): {"text"}
                  for j in range(100)}
        outcomes.append(outcome(page, emails=emails))
    frontier.commit_batch(db, job_id, outcomes, max_pages=1000)
    return job_id


def test_jsonl_and_csv_exports_stream_every_address_with_its_site(server, big_job):
    import csv
    import io
    import json

    from tests.http import call

    before = rss_of(server)
    reply = call("GET", server.url(f"/api/jobs/{big_job}/emails?format=jsonl"), timeout=60)
    after_jsonl = rss_of(server)
    assert reply.status == 200 and reply.header("content-type").startswith("application/x-ndjson")
    assert reply.header("content-length") is None  # streamed (chunked), not built in memory
    lines = [json.loads(line) for line in reply.body.decode().splitlines()]
    assert len(lines) == 10_000 and len({r["email"] for r in lines}) == 10_000
    assert all(r["site"] == f"s{r['email'][-7:-4]}.com" or r["site"] == r["email"].split("@")[1]
               for r in lines)
    assert set(lines[0]) == {"email", "domain", "site", "first_url", "pages", "sources"}

    reply = call("GET", server.url(f"/api/jobs/{big_job}/emails?format=csv"), timeout=60)
    after_csv = rss_of(server)
    rows = list(csv.DictReader(io.StringIO(reply.body.decode())))
    assert len(rows) == 10_000 and list(rows[0]) == ["email", "domain", "site", "first_url", "pages", "sources"]
    assert {r["site"] for r in rows} == {f"s{i:03d}.com" for i in range(100)}
    print(f"\ngunicorn RSS: {before / 2**20:.1f} MiB before, {after_jsonl / 2**20:.1f} after JSONL, "
          f"{after_csv / 2**20:.1f} after CSV of 10,000 addresses")


def test_sites_api_pages_filters_sorts_and_streams_csv(server, big_job):
    import csv
    import io

    from tests.http import call

    reply = call("GET", server.url(f"/api/jobs/{big_job}/sites?limit=10&offset=20&sort=site"))
    doc = reply.json()
    assert doc["total"] == 100 and [s["site"] for s in doc["sites"]] == [f"s{i:03d}.com" for i in range(20, 30)]
    first = doc["sites"][0]
    assert first == {"site": "s020.com", "seed": "http://s020.com/", "state": "done",
                     "pages": {"done": 1, "failed": 0, "skipped": 0}, "emails": 100, "own_emails": 50,
                     "error": None}
    assert call("GET", server.url(f"/api/jobs/{big_job}/sites?state=unreachable")).json() == {
        "sites": [], "total": 0}
    counts = call("GET", server.url(f"/api/jobs/{big_job}/sites?limit=1&counts=1")).json()["states"]
    assert counts["done"] == 100
    reply = call("GET", server.url(f"/api/jobs/{big_job}/sites?format=csv"))
    rows = list(csv.DictReader(io.StringIO(reply.body.decode())))
    assert len(rows) == 100 and rows[5]["site"] == "s005.com" and rows[5]["own_emails"] == "50"
    assert list(rows[0]) == list(sites.CSV_FIELDS)
    one = call("GET", server.url(f"/api/jobs/{big_job}/emails?site=s007.com&limit=1000")).json()
    assert one["total"] == 100 and {e["site"] for e in one["emails"]} == {"s007.com"}


@pytest.mark.parametrize("query,field", [("state=gone", "state"), ("format=xml", "format"),
                                         ("sort=pages;drop", "sort"), ("limit=0", "limit")])
def test_bad_sites_queries_are_400_naming_the_field(server, big_job, query, field):
    from tests.http import call

    reply = call("GET", server.url(f"/api/jobs/{big_job}/sites?{query}"))
    assert reply.status == 400 and field in reply.json()["fields"]


def test_sites_of_an_unknown_job_is_404(server):
    from tests.http import call

    assert call("GET", server.url("/api/jobs/nope/sites")).status == 404


def test_sites_csv_streams_ten_thousand_sites(server, store_of_server):
    import csv
    import io

    from tests.http import call

    urls = [f"http://www.shop{i:05d}.co.uk/" for i in range(10_000)]
    job_id = call("POST", server.url("/api/jobs"), {"urls": urls}).json()["id"]
    frontier.expand_seeds(store_of_server, job_id)
    before = rss_of(server)
    reply = call("GET", server.url(f"/api/jobs/{job_id}/sites?format=csv"), timeout=60)
    after = rss_of(server)
    assert reply.header("content-length") is None  # streamed
    rows = list(csv.DictReader(io.StringIO(reply.body.decode())))
    assert [r["site"] for r in rows] == [f"shop{i:05d}.co.uk" for i in range(10_000)]
    assert {r["state"] for r in rows} == {"pending"} and rows[7]["seed"] == urls[7]
    print(f"\ngunicorn RSS: {before / 2**20:.1f} MiB before, {after / 2**20:.1f} after a CSV of 10,000 sites")


def test_the_sites_surface_over_http_on_both_databases(db, tmp_path):
    """/sites (JSON, ?state=, CSV) and emails ?site= / JSONL through gunicorn on SQLite and MariaDB."""
    import csv
    import io
    import json

    from tests.conftest import start_server
    from tests.http import call

    job_id = new_job(db)
    pages = claim_all(db, job_id)
    frontier.commit_batch(db, job_id, [
        outcome(pages["http://www.acme.co.uk/"], emails={"info@acme.co.uk": {"mailto"}}),
        outcome(pages["http://shop.acme.co.uk/contact"], emails={"sales@acme.co.uk": {"text"}}),
        outcome(pages["http://b.example.org/"], "skipped", None, "disallowed by robots.txt"),
        outcome(pages["http://c.example.net/start"], "failed", None, "curl error 6: Could not resolve host"),
        outcome(pages["http://10.0.0.7/"], emails={"ops@vendor.com": {"text"}}),
    ], max_pages=100)
    assert frontier.complete_if_done(db, job_id)
    server = start_server(tmp_path, database_url=db.url)
    try:
        doc = call("GET", server.url(f"/api/jobs/{job_id}/sites")).json()
        assert doc["total"] == 4 and [s["site"] for s in doc["sites"]] == [
            "10.0.0.7", "acme.co.uk", "example.net", "example.org"]
        assert doc["sites"][1] == {"site": "acme.co.uk", "seed": "http://www.acme.co.uk/", "state": "done",
                                   "pages": {"done": 2, "failed": 0, "skipped": 0}, "emails": 2,
                                   "own_emails": 2, "error": None}
        unreachable = call("GET", server.url(f"/api/jobs/{job_id}/sites?state=unreachable")).json()
        assert [(s["site"], s["error"]) for s in unreachable["sites"]] == [
            ("example.net", "curl error 6: Could not resolve host")]
        rows = list(csv.DictReader(io.StringIO(
            call("GET", server.url(f"/api/jobs/{job_id}/sites?format=csv&state=blocked")).body.decode())))
        assert [(r["site"], r["state"], r["error"]) for r in rows] == [
            ("example.org", "blocked", "disallowed by robots.txt")]
        lines = call("GET", server.url(f"/api/jobs/{job_id}/emails?format=jsonl&site=acme.co.uk")).body
        assert [json.loads(x)["email"] for x in lines.decode().splitlines()] == [
            "info@acme.co.uk", "sales@acme.co.uk"]
        assert call("GET", server.url(f"/api/jobs/{job_id}/emails?site=10.0.0.7")).json()["emails"][0][
            "site"] == "10.0.0.7"
    finally:
        server.stop()
