"""Property test: arbitrary JSON and form bodies never get a 5xx and never half-store a job.

In-process (create_app) over the `db` fixture, so both SQLite and MariaDB.
"""

import json
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings, strategies as st

from trawl.store import job_rows

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
option_names = st.sampled_from(["urls", "name", "max_depth", "max_pages", "same_domain", "obey_robots",
                                "per_host_connections", "per_host_delay_ms", "concurrency", "workers"])
url_like = st.one_of(
    st.text(max_size=40),
    st.builds(lambda h, p: f"http://{h}.example/{p}", st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.text(max_size=10)),
    st.sampled_from(["http://a.example/", "https://b.example/x?y=1", "ftp://c/", "http://", "http://[::1]:99999/"]),
)
job_bodies = st.one_of(
    json_values,
    st.dictionaries(option_names, json_values, max_size=6),
    st.fixed_dictionaries({"urls": st.one_of(st.lists(url_like, max_size=5), url_like)},
                          optional={"max_depth": json_values, "name": json_values, "workers": json_values}),
)
form_bodies = st.dictionaries(option_names | st.text(max_size=8), st.text(max_size=40), max_size=6)


def job_ids(db) -> set:
    with db.read() as s:
        return {r["id"] for r in s.all("SELECT id FROM jobs")}


def check_outcome(reply, db, before: set) -> None:
    assert reply.status < 500, reply.body
    assert "Traceback" not in reply.errors
    doc = reply.json()
    after = job_ids(db)
    if reply.status == 202:
        assert after - before == {doc["id"]}
        job = job_rows.load_job(db, doc["id"])
        assert job["status"] == "queued"
        assert job_rows.load_seeds(db, doc["id"])  # the seeds were stored with the job
    else:
        assert 400 <= reply.status < 500 and isinstance(doc["fields"], dict) and doc["error"]
        assert after == before


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=job_bodies)
def test_arbitrary_json_bodies(api, body):
    before = job_ids(api.db)
    reply = api.call("POST", "/api/jobs", json.dumps(body), {"Content-Type": "application/json"})
    check_outcome(reply, api.db, before)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=form_bodies)
def test_arbitrary_form_bodies(api, body):
    before = job_ids(api.db)
    reply = api.call("POST", "/api/jobs", urlencode(body),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    check_outcome(reply, api.db, before)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_as_json(api, raw):
    before = job_ids(api.db)
    reply = api.call("POST", "/api/jobs", raw, {"Content-Type": "application/json"})
    check_outcome(reply, api.db, before)
