"""Job options validation and the status state machine (pure functions)."""

import pytest

from trawl.jobs import (FINISHED, MAX_SEEDS, InvalidOptions, Status, TransitionRefused,
                        next_status, parse_options)


def test_defaults_follow_the_spec():
    opts = parse_options({"urls": ["https://example.org/"]})
    assert (opts.max_depth, opts.max_pages, opts.same_domain, opts.obey_robots) == (2, 1000, True, True)
    assert (opts.per_host_connections, opts.per_host_delay_ms, opts.concurrency, opts.workers) == (4, 0, 50, None)
    assert (opts.max_pages_per_site, opts.verify_tls, opts.use_sitemaps) == (None, True, True)


def test_urls_as_one_string_per_line_skip_blank_lines():
    opts = parse_options({"urls": "https://a.example/\n\n  http://b.example/x  \n"})
    assert opts.urls == ["https://a.example/", "http://b.example/x"]


@pytest.mark.parametrize("body, field", [
    ({}, "urls"),
    ({"urls": []}, "urls"),
    ({"urls": "  \n "}, "urls"),
    ({"urls": ["ftp://example.org/"]}, "urls"),
    ({"urls": ["javascript:alert(1)"]}, "urls"),
    ({"urls": ["http://"]}, "urls"),
    ({"urls": ["http://exa mple.org/"]}, "urls"),
    ({"urls": ["http://example.org/\x00"]}, "urls"),
    ({"urls": ["http://example.org:99999/"]}, "urls"),
    ({"urls": ["http://a..example/"]}, "urls"),
    ({"urls": ["http://" + "a" * 70 + ".example/"]}, "urls"),
    ({"urls": ["http://example.org/" + "a" * 3000]}, "urls"),
    ({"urls": ["http://example.org/\ud800"]}, "urls"),
    ({"urls": [1, 2]}, "urls"),
    ({"urls": {"a": 1}}, "urls"),
    ({"urls": ["http://x.example/"] * (MAX_SEEDS + 1)}, "urls"),
    ({"urls": ["http://x.example/"], "max_depth": -1}, "max_depth"),
    ({"urls": ["http://x.example/"], "max_depth": "2"}, "max_depth"),
    ({"urls": ["http://x.example/"], "max_depth": 2.5}, "max_depth"),
    ({"urls": ["http://x.example/"], "max_depth": True}, "max_depth"),
    ({"urls": ["http://x.example/"], "max_pages": 0}, "max_pages"),
    ({"urls": ["http://x.example/"], "max_pages": 1_000_001}, "max_pages"),
    ({"urls": ["http://x.example/"], "concurrency": 101}, "concurrency"),
    ({"urls": ["http://x.example/"], "workers": 0}, "workers"),
    ({"urls": ["http://x.example/"], "same_domain": "yes"}, "same_domain"),
    ({"urls": ["http://x.example/"], "obey_robots": None}, "obey_robots"),
    ({"urls": ["http://x.example/"], "max_pages_per_site": 0}, "max_pages_per_site"),
    ({"urls": ["http://x.example/"], "max_pages_per_site": 1001}, "max_pages_per_site"),
    ({"urls": ["http://x.example/"], "max_pages": 50, "max_pages_per_site": 51}, "max_pages_per_site"),
    ({"urls": ["http://x.example/"], "max_pages_per_site": "20"}, "max_pages_per_site"),
    ({"urls": ["http://x.example/"], "verify_tls": "false"}, "verify_tls"),
    ({"urls": ["http://x.example/"], "use_sitemaps": 1}, "use_sitemaps"),
    ({"urls": ["http://x.example/"], "name": 5}, "name"),
    ({"urls": ["http://x.example/"], "name": "x" * 201}, "name"),
    ({"urls": ["http://x.example/"], "surprise": 1}, "surprise"),
])
def test_bad_options_name_the_field(body, field):
    with pytest.raises(InvalidOptions) as err:
        parse_options(body)
    assert field in err.value.fields


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(InvalidOptions) as err:
        parse_options({"urls": ["ftp://x"], "max_depth": -1, "concurrency": 0})
    assert set(err.value.fields) == {"urls", "max_depth", "concurrency"}


def test_form_values_are_coerced_from_strings():
    opts = parse_options({"urls": "http://x.example/", "max_depth": "3", "same_domain": "off",
                          "workers": "", "csrf": "ignored"}, from_form=True)
    assert (opts.max_depth, opts.same_domain, opts.workers) == (3, False, None)
    with pytest.raises(InvalidOptions) as err:
        parse_options({"urls": "http://x.example/", "max_depth": "three"}, from_form=True)
    assert "max_depth" in err.value.fields


def test_site_budget_and_tls_options():
    opts = parse_options({"urls": ["http://x.example/"], "max_pages": 50, "max_pages_per_site": 50,
                          "verify_tls": False, "use_sitemaps": False})
    assert (opts.max_pages_per_site, opts.verify_tls, opts.use_sitemaps) == (50, False, False)
    assert parse_options({"urls": ["http://x.example/"], "max_pages_per_site": None}).max_pages_per_site is None
    form = parse_options({"urls": "http://x.example/", "max_pages_per_site": "", "verify_tls": "0",
                          "use_sitemaps": "on"}, from_form=True)
    assert (form.max_pages_per_site, form.verify_tls, form.use_sitemaps) == (None, False, True)
    with pytest.raises(InvalidOptions) as err:
        parse_options({"urls": "http://x.example/", "max_pages_per_site": "0"}, from_form=True)
    assert err.value.fields == {"max_pages_per_site": "must be between 1 and 1000000"}


def test_body_must_be_an_object():
    for body in ([], "x", 3, None):
        with pytest.raises(InvalidOptions) as err:
            parse_options(body)
        assert "body" in err.value.fields


@pytest.mark.parametrize("current, action, expected", [
    ("queued", "start", "running"),
    ("running", "complete", "completed"),
    ("running", "fail", "failed"),
    ("queued", "cancel", "cancelled"),
    ("running", "cancel", "cancelled"),
    ("paused", "cancel", "cancelled"),
    ("queued", "pause", "paused"),
    ("running", "pause", "paused"),
    ("paused", "resume", "queued"),
    ("completed", "retry", "queued"),
    ("failed", "retry", "queued"),
    ("running", "retry", "running"),
])
def test_allowed_transitions(current, action, expected):
    assert next_status(current, action) == Status(expected)


@pytest.mark.parametrize("current, action", [
    ("completed", "cancel"), ("failed", "cancel"), ("cancelled", "cancel"),
    ("running", "resume"), ("queued", "resume"), ("completed", "resume"),
    ("paused", "pause"), ("completed", "pause"), ("cancelled", "pause"),
    ("running", "delete"), ("queued", "delete"), ("paused", "delete"),
    ("completed", "start"), ("paused", "start"), ("paused", "complete"),
])
def test_refused_transitions(current, action):
    with pytest.raises(TransitionRefused):
        next_status(current, action)


def test_finished_statuses():
    assert {s.value for s in FINISHED} == {"completed", "failed", "cancelled"}
    assert Status.COMPLETED.finished and not Status.PAUSED.finished
