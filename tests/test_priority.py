"""Contact pages first: keyword scores, link text, the claim order, redirect aliases in the frontier."""

from __future__ import annotations

import dataclasses

from tests.test_frontier import done, link, seeded_job
from trawl.priority import SEED_PRIORITY, link_text_scores, priority, url_score, word_score
from trawl.store import frontier, job_rows
from trawl.urls import url_hash


def test_words_of_paths_and_link_texts_score_by_the_one_list():
    assert word_score("/kontakt.html") == word_score("Contact us") == word_score("/impressum") == 10
    assert word_score("/kontaktformular") == word_score("/contactus.php") == 10  # long keywords as prefixes
    assert word_score("/about-us/our-team") == word_score("Our people") == word_score("/teams") == 6
    assert word_score("/legal/press") == 3
    assert word_score("/blog/2024/steam-engines") == word_score("/wp-content/wordpress") == 0
    assert url_score("http://contact.example.com/p/1.html") == 0  # the host is no hint
    assert url_score("http://example.com/de/kontakt") == 10


def test_link_text_scores_find_the_link_around_a_keyword():
    body = ('<p>Steam and teamwork</p><a href="/p/3.html">Contact us</a> '
            '<a class="x" href=\'/p/4.html\'><span>Our Team</span></a> <a href="/about">x</a> '
            'about us <a href=/p/9>Kontaktformular</a> <a href="mailto:a@b.example">contact</a> '
            '<a href="/p/5.html">Blog</a> contact')
    assert link_text_scores(body, "http://x.example.com/") == {
        "http://x.example.com/p/3.html": 10, "http://x.example.com/p/9": 10, "http://x.example.com/p/4.html": 6}


def test_priority_puts_any_keyword_before_any_plain_page_then_shallower_first():
    contact_deep, team, plain_shallow = priority(3, 10), priority(1, 6), priority(1, 0)
    assert SEED_PRIORITY < priority(1, 10) < contact_deep < team < plain_shallow < priority(2, 0)


def test_claims_take_the_best_priority_first_then_discovery_order(db):
    job_id = seeded_job(db, ["http://a.example.com/"])
    [seed] = frontier.claim_pages(db, job_id, "w1", 5, lease_s=30)
    links = [dataclasses.replace(link(f"http://a.example.com/p/{n}"), priority=priority(1, 0)) for n in range(5)]
    links.append(dataclasses.replace(link("http://a.example.com/imprint", depth=2), priority=priority(2, 10)))
    links.append(dataclasses.replace(link("http://a.example.com/team"), priority=priority(1, 6)))
    frontier.commit_batch(db, job_id, [done(seed, links)], 100)
    order = [p.url for p in frontier.claim_pages(db, job_id, "w1", 4, lease_s=30)]
    assert order == ["http://a.example.com/imprint", "http://a.example.com/team",
                     "http://a.example.com/p/0", "http://a.example.com/p/1"]


def test_a_link_keeps_the_best_priority_any_page_of_the_batch_gave_it(db):
    job_id = seeded_job(db, ["http://a.example.com/", "http://a.example.com/2"])
    first, second = frontier.claim_pages(db, job_id, "w1", 5, lease_s=30)
    plain = dataclasses.replace(link("http://a.example.com/x", depth=1), priority=priority(1, 0))
    texted = dataclasses.replace(link("http://a.example.com/x", depth=2), priority=priority(2, 10))
    frontier.commit_batch(db, job_id, [done(first, [plain]), done(second, [texted])], 100)
    with db.read() as s:
        row = s.one("SELECT depth, priority FROM pages WHERE url_hash = ?", (url_hash("http://a.example.com/x"),))
    assert (row["depth"], row["priority"]) == (1, priority(2, 10))


def test_a_redirect_target_waiting_in_the_frontier_is_skipped_in_place_not_fetched_again(db):
    old, new = "http://a.example.com/old", "http://a.example.com/new"
    job_id = seeded_job(db, [old, new])
    [page] = frontier.claim_pages(db, job_id, "w1", 1, lease_s=30)
    assert page.url == old
    outcome = dataclasses.replace(done(page), alias=link(new, depth=0))
    report = frontier.commit_batch(db, job_id, [outcome], 100)
    assert url_hash(new) in report.known_hashes
    assert frontier.claim_pages(db, job_id, "w1", 5, lease_s=30) == []
    with db.read() as s:
        row = s.one("SELECT state, error FROM pages WHERE url_hash = ?", (url_hash(new),))
    assert (row["state"], row["error"]) == ("skipped", f"same page as {old} (redirect): fetched there")
    counters = job_rows.load_job(db, job_id)
    assert (counters["pages_discovered"], counters["pages_done"], counters["pages_skipped"]) == (2, 1, 1)
    assert frontier.complete_if_done(db, job_id)
