"""The command line as a person types it: `python app.py crawl ...` and `status`, as real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.processes import ROOT, assert_nothing_left, make_settings
from tests.site import generate_site, site  # noqa: F401  (the fixture)
from trawl.store import job_rows, open_database
from trawl.supervisor import settings_environment


@pytest.fixture
def settings(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    yield make_settings(tmp_path, url, supervisor_idle_s=1.0)
    assert_nothing_left(str(tmp_path / "run"))


def app(settings, *argv: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    environ = {**settings_environment(settings), **env}
    return subprocess.run([sys.executable, "app.py", *argv], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=timeout)


def emails_in(settings, job_id: str) -> set[str]:
    db = open_database(settings.database_url)
    with db.read() as s:
        found = {r["email"] for r in s.all("SELECT email FROM emails WHERE job_id = ?", (job_id,))}
    db.close()
    return found


def job_id_of(output: str) -> str:
    return re.search(r"job ([0-9a-f]{20}) queued", output).group(1)


def test_crawl_inline_finds_every_address(settings, site):
    truth = generate_site(site, pages=30, seed=11)
    out = app(settings, "crawl", site.url("/"), "--inline", "--depth", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    job_id = job_id_of(out.stdout)
    assert re.search(rf"job {job_id} completed in [\d.]+s: \d+ pages found, {len(truth.urls_within(2))} done, "
                     r"0 failed", out.stdout), out.stdout
    assert emails_in(settings, job_id) == truth.emails_within(2)
    assert set(site.page_hits()) == {
        u[len(site.origin):] for u in truth.urls_within(2)}
    # No supervisor was involved.
    assert not os.path.exists(os.path.join(settings.run_dir, "supervisor-test-node.log"))


def test_crawl_inline_wait_shows_a_progress_bar(settings, site):
    generate_site(site, pages=20, seed=12)
    out = app(settings, "crawl", site.url("/"), "--inline", "--wait", "--depth", "1")
    assert out.returncode == 0, out.stderr
    assert re.search(r"\d+/\d+ \[", out.stderr) and "page" in out.stderr, out.stderr
    assert "completed" in out.stdout


def test_crawl_wait_triggers_a_supervisor_and_reports(settings, site):
    truth = generate_site(site, pages=25, seed=13)
    out = app(settings, "crawl", site.url("/"), "--wait", "--depth", "3", "--name", "cli run")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "started a supervisor" in out.stdout
    job_id = job_id_of(out.stdout)
    assert f"job {job_id} completed" in out.stdout
    assert emails_in(settings, job_id) == truth.emails_within(3)
    # `settings` checks that the trigger-started supervisor leaves once idle.


def test_crawl_without_autostart_only_queues(settings, site):
    out = app(settings, "crawl", site.url("/"), TRAWL_AUTOSTART_WORKERS="0")
    assert out.returncode == 0, out.stderr
    assert "autostart is off" in out.stdout
    db = open_database(settings.database_url)
    assert job_rows.load_job(db, job_id_of(out.stdout))["status"] == "queued"
    db.close()


def test_crawl_refuses_bad_input(settings):
    out = app(settings, "crawl", "ftp://example.com/", "--depth", "500")
    assert out.returncode == 2
    assert "error: urls:" in out.stderr and "error: max_depth:" in out.stderr


def test_status_prints_jobs_and_workers(settings, site):
    generate_site(site, pages=10, seed=14)
    first = app(settings, "crawl", site.url("/"), "--inline", "--name", "status check")
    job_id = job_id_of(first.stdout)
    out = app(settings, "status")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["job", "name", "status"]
    row = next(line for line in lines if line.startswith(job_id))
    assert "status check" in row and "completed" in row
    assert any(line.split()[:3] == ["worker", "role", "host"] for line in lines)


def test_crawl_wait_ends_with_a_site_summary_and_writes_the_addresses(settings, site, tmp_path):
    import csv
    import json

    truth = generate_site(site, pages=10, seed=13)
    dead = "http://no-such-host.trawl-cli.invalid/"
    jsonl, table = tmp_path / "found.jsonl", tmp_path / "found.csv"
    out = app(settings, "crawl", site.url("/"), dead, "--inline", "--depth", "3", "--output", str(jsonl))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "sites: 2 (1 done, 1 unreachable)" in out.stdout
    assert re.search(rf"top sites by addresses:\n +{len(truth.emails)}  127\.0\.0\.1  \(0 at its own domain\)",
                     out.stdout), out.stdout
    assert re.search(r"unreachable:\n  no-such-host\.trawl-cli\.invalid: DNS: no such host", out.stdout), out.stdout
    assert f"wrote {len(truth.emails)} addresses to {jsonl}" in out.stdout
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {r["email"] for r in records} == truth.emails and {r["site"] for r in records} == {"127.0.0.1"}
    out = app(settings, "crawl", site.url("/"), "--inline", "--depth", "3", "--output", str(table))
    rows = list(csv.DictReader(table.open()))
    assert {r["email"] for r in rows} == truth.emails and list(rows[0])[:3] == ["email", "domain", "site"]


def test_crawl_output_must_be_csv_or_jsonl(settings):
    out = app(settings, "crawl", "http://a.example/", "--output", "found.xlsx")
    assert out.returncode == 2 and "--output" in out.stderr
