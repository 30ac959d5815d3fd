"""Server-Sent Events: real streams read to `event: done`, reconnection, and the loop's timing."""

import http.client
import json
import threading
import time

from tests.http import call
from trawl import progress
from trawl.store import job_rows


class EventReader:
    """Reads an SSE stream event by event from a live connection."""

    def __init__(self, server, job_id, last_event_id=None):
        host, port = server.base.split("//")[1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=20)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", f"/api/jobs/{job_id}/events", headers=headers)
        self.resp = self.conn.getresponse()

    def next_event(self) -> dict | None:
        """The next event's fields ({'event', 'id', 'data'}; comments skipped), None at the end."""
        fields: dict = {}
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\r\n")
            if line == "":
                if "event" in fields or "data" in fields:
                    return fields
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value.lstrip(" ")

    def close(self):
        self.conn.close()


def new_job(server):
    return call("POST", server.url("/api/jobs"), {"urls": ["http://a.example/"]}).json()["id"]


def bump(db, job_id, done):
    with db.transaction() as s:
        s.execute("UPDATE jobs SET pages_done = ?, pages_discovered = 10, version = version + 1 WHERE id = ?",
                  (done, job_id))


def test_stream_reads_changes_to_done_and_closes(server, store_of_server):
    job_id = new_job(server)
    reader = EventReader(server, job_id)
    assert reader.resp.status == 200
    assert reader.resp.getheader("Content-Type").startswith("text/event-stream")
    first = reader.next_event()
    assert first["event"] == "progress" and json.loads(first["data"])["status"] == "queued"

    def drive():
        time.sleep(0.3)
        job_rows.apply_action(store_of_server, job_id, "start")
        for done in (3, 7, 10):
            time.sleep(0.6)
            bump(store_of_server, job_id, done)
        job_rows.apply_action(store_of_server, job_id, "complete")

    driver = threading.Thread(target=drive)
    driver.start()
    events = [first]
    while (event := reader.next_event()) is not None:
        events.append(event)
    driver.join()
    reader.close()
    assert events[-1]["event"] == "done" and json.loads(events[-1]["data"])["status"] == "completed"
    progress_events = [e for e in events if e["event"] == "progress"]
    ids = [int(e["id"]) for e in progress_events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert json.loads(progress_events[-1]["data"])["status"] == "completed"
    assert json.loads(progress_events[-1]["data"])["pages"]["done"] == 10


def test_finished_job_gets_one_progress_then_done(server, store_of_server):
    job_id = new_job(server)
    job_rows.apply_action(store_of_server, job_id, "cancel")
    reader = EventReader(server, job_id)
    events = []
    while (event := reader.next_event()) is not None:
        events.append(event["event"])
    reader.close()
    assert events == ["progress", "done"]


def test_reconnect_with_last_event_id_skips_what_was_seen(server, store_of_server):
    job_id = new_job(server)
    job_rows.apply_action(store_of_server, job_id, "start")
    reader = EventReader(server, job_id)
    seen = reader.next_event()
    reader.close()
    # While disconnected, one change happens; the reconnection sees it, not the old state.
    bump(store_of_server, job_id, 4)
    again = EventReader(server, job_id, last_event_id=seen["id"])
    event = again.next_event()
    assert int(event["id"]) == int(seen["id"]) + 1 and json.loads(event["data"])["pages"]["done"] == 4
    again.close()
    # Reconnecting with the current id sends nothing until the next change.
    current = EventReader(server, job_id, last_event_id=event["id"])
    threading.Timer(0.5, bump, args=(store_of_server, job_id, 6)).start()
    nxt = current.next_event()
    assert json.loads(nxt["data"])["pages"]["done"] == 6
    current.close()


def test_open_streams_do_not_hold_up_job_creation(server):
    """Fifty idle streams open at once; creating jobs still answers (gevent workers)."""
    job_id = new_job(server)
    readers = [EventReader(server, job_id) for _ in range(50)]
    try:
        for r in readers:
            assert r.next_event()["event"] == "progress"
        replies = [call("POST", server.url("/api/jobs"), {"urls": ["http://b.example/"]}, timeout=5)
                   for _ in range(5)]
        assert all(r.status == 202 for r in replies)
    finally:
        for r in readers:
            r.close()


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_watch_sends_heartbeats_at_least_every_15_seconds():
    clock = FakeClock()
    state = {"version": 5, "status": "running"}

    def read_version():
        if clock.now > 40:
            state.update(version=6, status="completed")
        return state["version"], state["status"]

    def read_progress():
        return {"version": state["version"], "status": state["status"]}

    frames = list(progress.watch(read_version, read_progress, None, poll_s=0.5,
                                 clock=clock, sleep=clock.sleep))
    text = [f.decode() for f in frames]
    assert text[0].startswith("retry: ")
    beats = [t for t in text if t.startswith(": heartbeat")]
    assert len(beats) == 2  # at ~15 s and ~30 s; at ~40 s the job changed
    assert text[-1].startswith("id: 6\nevent: done")
    assert sum(t.startswith("id: ") and "event: progress" in t for t in text) == 2
