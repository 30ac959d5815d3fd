"""The labelled corpus (tests/extract_corpus.py): each form found with its
kind and nothing else, each trap reporting nothing, on its own and in a page."""

import random

import pytest

from tests.extract_corpus import FORMS, address, form_sample, fragment, page
from tests.extract_traps import TRAPS
from trawl.extract import SOURCE_KINDS, extract_emails


def test_the_trap_list_is_at_least_as_long_as_the_form_list():
    assert len(TRAPS) >= len(FORMS)
    assert {kind for kind, _ in FORMS.values()} <= set(SOURCE_KINDS)


@pytest.mark.parametrize("name", sorted(FORMS))
def test_each_form_alone_is_found_with_its_kind(name):
    rng = random.Random(name)
    for _ in range(5):
        published = address(rng)
        body, truth = fragment(name, published, rng)
        found = extract_emails(body)
        assert set(found) == truth
        assert FORMS[name][0] in found[published]


@pytest.mark.parametrize("name", sorted(FORMS))
def test_each_form_in_a_page_gives_exactly_its_addresses(name):
    rng = random.Random(f"page {name}")
    for _ in range(5):
        body, truth = form_sample(name, rng)
        assert set(extract_emails(body)) == truth


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_each_trap_reports_nothing(name):
    assert extract_emails(TRAPS[name]) == {}
    assert extract_emails(page(TRAPS[name], random.Random(name))) == {}


@pytest.mark.parametrize("name", sorted(FORMS))
def test_traps_beside_a_form_change_nothing(name):
    rng = random.Random(f"traps {name}")
    body, truth = fragment(name, address(rng), rng)
    traps = " ".join(rng.sample(sorted(TRAPS.values()), 6))
    assert set(extract_emails(page(traps + body + traps, rng))) == truth


@pytest.mark.parametrize("seed", range(4))
def test_forms_and_traps_mixed_at_random_give_exactly_the_published_addresses(seed):
    rng = random.Random(seed)
    forms, traps = sorted(FORMS), sorted(TRAPS.values())
    for _ in range(50):
        parts, truth = [], set()
        for _ in range(rng.randint(1, 4)):
            body, published = fragment(rng.choice(forms), address(rng), rng)
            parts.append(body)
            truth |= published
        for _ in range(rng.randint(0, 6)):
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(traps))
        separator = rng.choice([" ", "\n", "", "<br>", "</p><p>"])
        assert set(extract_emails(page(separator.join(parts), rng))) == truth

def test_the_new_kinds_reach_the_sources_field_unchanged(db):
    """extract() -> frontier.commit_batch -> emails.sources, merged per address."""
    from trawl.jobs import JobOptions
    from trawl.store import frontier, job_rows
    from trawl.store.frontier import PageOutcome

    urls = ["http://a.example.com/1", "http://a.example.com/2"]
    job_id = job_rows.insert_job(db, JobOptions(urls=urls))["id"]
    frontier.expand_seeds(db, job_id)
    first, second = frontier.claim_pages(db, job_id, "w1", 2, lease_s=30)
    rng = random.Random("sources")
    bodies = [fragment("pipermail_quote", "jane.roe@acme.io", rng)[0] + fragment("joomla", "info@acme.io", rng)[0],
              fragment("span_split", "jane.roe@acme.io", rng)[0] + fragment("css_inline", "info@acme.io", rng)[0]]
    outcomes = [PageOutcome(page, "done", 200, len(body), None, [], extract_emails(body))
                for page, body in zip((first, second), bodies)]
    frontier.commit_batch(db, job_id, outcomes, 100)
    with db.read() as s:
        rows = {r["email"]: r["sources"] for r in s.all("SELECT email, sources FROM emails WHERE job_id = ?", (job_id,))}
    assert rows == {"jane.roe@acme.io": "archive,markup", "info@acme.io": "css,script"}
