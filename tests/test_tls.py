"""HTTPS: verified by default, private CAs, readable TLS failures, verify_tls, HTTP/2 via nginx.

Every certificate comes from a CA this module makes (tests/tls.py); the
servers are tests/site.py's TestSite over Python's ssl module on 127.0.0.1,
and nginx with `http2` for the HTTP/2 test (the protocol each request
used is read from nginx's access log, not from the client).
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import textwrap
import time

import pytest

from tests.conftest import free_port, server, skip_or_fail  # noqa: F401  (server is a fixture)
from tests.site import TestSite
from tests.tls import TestCA
from trawl.config import Settings
from trawl.fetch import Fetcher, tls_reason
from trawl.jobs import JobOptions
from trawl.store import job_rows, results, sites
from trawl.worker import Worker

NAME = "localhost"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return TestCA(tmp_path_factory.mktemp("ca"))


def https_site(cert) -> TestSite:
    return TestSite(ssl_context=cert.server_context(), name=NAME).start()


def fetch(url: str, ca_bundle: str = "", verify_tls: bool = True):
    fetcher = Fetcher(Settings(allow_private_networks=True, ca_bundle=ca_bundle), verify_tls=verify_tls,
                      retry_backoff_s=0.01)
    try:
        fetcher.submit(url, "k")
        for _ in range(200):
            done = fetcher.poll(0.1)
            if done:
                return done[0]
        raise AssertionError("no result within 20 s")
    finally:
        fetcher.close()


@pytest.fixture
def good_site(ca):
    site = https_site(ca.issue([NAME], ips=["127.0.0.1"]))
    site.add_page("/", "<p>Over TLS: tls@acme-widgets.com</p>")
    yield site
    site.stop()


def test_private_ca_through_the_ca_bundle_is_trusted(good_site, ca):
    result = fetch(good_site.url("/"), ca_bundle=str(ca.bundle))
    assert (result.outcome, result.status, result.error) == ("ok", 200, None)
    assert "tls@acme-widgets.com" in result.text


def test_the_system_store_does_not_trust_a_private_ca(good_site):
    result = fetch(good_site.url("/"))
    assert result.outcome == "tls"
    assert result.error.startswith("TLS: certificate not trusted")
    assert result.attempts == 1  # a bad certificate is not retried
    assert good_site.hits("/") == 0


def test_an_expired_certificate_is_refused_with_the_reason(ca):
    site = https_site(ca.issue([NAME], ips=["127.0.0.1"], expired=True))
    site.add_page("/", "<p>old</p>")
    try:
        result = fetch(site.url("/"), ca_bundle=str(ca.bundle))
        assert (result.outcome, result.error) == ("tls", "TLS: certificate has expired")
        # verify_tls false (intranets) crawls it anyway
        unverified = fetch(site.url("/"), verify_tls=False)
        assert (unverified.outcome, unverified.status) == ("ok", 200)
        assert site.hits("/") == 1
    finally:
        site.stop()


def test_a_certificate_for_another_name_is_a_hostname_mismatch(ca):
    site = https_site(ca.issue(["other.example"]))
    site.add_page("/", "<p>wrong name</p>")
    try:
        result = fetch(site.url("/"), ca_bundle=str(ca.bundle))
        assert (result.outcome, result.error) == ("tls", "TLS: hostname mismatch")
        assert site.hits("/") == 0
    finally:
        site.stop()


def test_plain_http_on_a_tls_port_is_a_handshake_failure():
    # A server that answers in plain HTTP where TLS is expected.
    site = TestSite().start()
    try:
        result = fetch(site.url("/").replace("http://", "https://"))
        assert (result.outcome, result.error) == ("tls", "TLS: handshake failed")
    finally:
        site.stop()


def test_tls_reasons_read_libcurl_messages():
    assert tls_reason(60, "SSL certificate problem: certificate has expired") == "TLS: certificate has expired"
    assert tls_reason(60, "SSL: no alternative certificate subject name matches target host name 'x'") == (
        "TLS: hostname mismatch")
    assert tls_reason(60, "SSL certificate problem: unable to get local issuer certificate") == (
        "TLS: certificate not trusted (unknown issuer)")
    assert tls_reason(35, "OpenSSL/3: error:0A00010B:SSL routines::wrong version number") == (
        "TLS: handshake failed")


def test_a_crawl_over_https_records_tls_failures_per_page(db, ca, good_site):
    # Another site (127.0.0.1 is its own site) whose certificate names someone else.
    bad = TestSite(ssl_context=ca.issue(["other.example"]).server_context(), name="127.0.0.1").start()
    bad.add_page("/", "<p>never@acme-widgets.com</p>")
    good_site.add_page("/", '<p>tls@acme-widgets.com</p><a href="/next">next</a>')
    good_site.add_page("/next", "<p>next@acme-widgets.com</p>")
    try:
        job_id = job_rows.insert_job(db, JobOptions(urls=[good_site.url("/"), bad.url("/")]))["id"]
        settings = Settings(database_url=db.url, allow_private_networks=True, ca_bundle=str(ca.bundle))
        worker = Worker(settings, db, f"tls-{os.getpid()}", "test")
        worker.run(lambda: job_rows.load_job(db, job_id)["status"] == "completed", idle_exit_s=0.5)
        pages = {p["url"]: p for p in results.list_pages(db, job_id, 100, 0)[0]}
        emails = {e["email"] for e in results.list_emails(db, job_id, 100, 0)[0]}
        assert job_rows.load_job(db, job_id)["status"] == "completed"
        assert emails == {"tls@acme-widgets.com", "next@acme-widgets.com"}
        assert (pages[bad.url("/")]["state"], pages[bad.url("/")]["error"]) == ("failed", "TLS: hostname mismatch")
        assert good_site.hits("/next") == 1
        by_site = {r["site"]: r for r in sites.list_sites(db, job_id, 10, 0)[0]}
        assert (by_site["localhost"]["state"], by_site["localhost"]["error"]) == ("done", None)
        assert (by_site["127.0.0.1"]["state"], by_site["127.0.0.1"]["error"]) == (
            "unreachable", "TLS: hostname mismatch")
    finally:
        bad.stop()


# ---------------------------------------------------------------- HTTP/2 (nginx)


@pytest.fixture
def nginx_h2(ca, tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        skip_or_fail("nginx is not installed (apt-get install -y nginx)")
    cert = ca.issue([NAME], ips=["127.0.0.1"])
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("<p>h2@acme-widgets.com</p>")
    port = free_port()
    (tmp_path / "tmp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""
        # The worker must read pytest's private tmp dir: run it as ourselves.
        user {getpass.getuser()};
        worker_processes 1;
        pid {tmp_path}/nginx.pid;
        error_log {tmp_path}/error.log warn;
        events {{ worker_connections 64; }}
        http {{
            log_format proto '$server_protocol $request_uri';
            access_log {tmp_path}/access.log proto;
            client_body_temp_path {tmp_path}/tmp; proxy_temp_path {tmp_path}/tmp;
            fastcgi_temp_path {tmp_path}/tmp; uwsgi_temp_path {tmp_path}/tmp; scgi_temp_path {tmp_path}/tmp;
            server {{
                listen 127.0.0.1:{port} ssl http2;  # nginx 1.22 spelling ("http2 on" is 1.25+)
                ssl_certificate {cert.cert}; ssl_certificate_key {cert.key};
                root {root};
            }}
        }}
    """))
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path), "-g", "daemon off;"],
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not (tmp_path / "nginx.pid").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            skip_or_fail(f"nginx did not start: {proc.stderr.read().decode(errors='replace')[:300]}")
        time.sleep(0.05)
    yield f"https://{NAME}:{port}", tmp_path / "access.log"
    proc.terminate()
    proc.wait(timeout=10)


def test_http2_is_negotiated_by_alpn(nginx_h2, ca):
    origin, access_log = nginx_h2
    result = fetch(origin + "/", ca_bundle=str(ca.bundle))
    assert (result.outcome, result.status) == ("ok", 200)
    assert "h2@acme-widgets.com" in result.text
    deadline = time.monotonic() + 5
    while not access_log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)  # nginx writes the log line after the response
    assert access_log.read_text().split() == ["HTTP/2.0", "/"]


# ---------------------------------------------------------------- the options through the API and the job page


def test_the_options_are_validated_by_the_api_and_verify_tls_false_shows_on_the_job_page(server):
    from tests.http import call

    def create(**options):
        return call("POST", server.url("/api/jobs"), {"urls": ["https://intranet.example/"], **options})

    for bad, field in (({"max_pages_per_site": 0}, "max_pages_per_site"),
                       ({"max_pages": 10, "max_pages_per_site": 11}, "max_pages_per_site"),
                       ({"verify_tls": "no"}, "verify_tls"), ({"use_sitemaps": None}, "use_sitemaps")):
        reply = create(**bad)
        assert reply.status == 400 and field in reply.json()["fields"], (bad, reply.body)
    reply = create(verify_tls=False, max_pages_per_site=20)
    assert reply.status == 202
    job_id = reply.json()["id"]
    options = call("GET", server.url(f"/api/jobs/{job_id}")).json()["options"]
    assert (options["verify_tls"], options["max_pages_per_site"], options["use_sitemaps"]) == (False, 20, True)
    page = call("GET", server.url(f"/jobs/{job_id}")).body.decode()
    assert 'id="verify-tls-off"' in page and "not verified" in page
    assert "At most 20 pages per site" in page
    verified = create().json()["id"]
    assert 'id="verify-tls-off"' not in call("GET", server.url(f"/jobs/{verified}")).body.decode()
