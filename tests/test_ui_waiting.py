"""The job page says "waiting for workers" while a runnable job has no live worker (Chromium).

The server runs without autostart, so no worker comes by itself; the test
then writes the heartbeat a worker on the job would write, and the page
drops the notice on its next update.
"""

from __future__ import annotations

import os
import time

from tests.http import call
from tests.test_ui import browser, page, trawl  # noqa: F401  (the fixtures)


def test_job_page_shows_waiting_for_workers_until_one_is_on_the_job(page, trawl):
    from playwright.sync_api import expect

    from trawl.store import registry

    job_id = call("POST", trawl.url("/api/jobs"), {"urls": ["http://127.0.0.1:9/"]}).json()["id"]
    page.goto(trawl.url(f"/jobs/{job_id}"))
    expect(page.locator("#waiting")).to_be_visible()
    expect(page.locator("#waiting")).to_have_text("waiting for workers")
    registry.heartbeat(trawl.db, "w-test", role="worker", host="test-node", pid=os.getpid(),
                       started_at=time.time(), job_id=job_id)
    trawl.progress(job_id, pages_discovered=1)  # a new version: the page fetches the progress again
    expect(page.locator("#waiting")).to_be_hidden(timeout=15_000)
    assert page.errors == []
