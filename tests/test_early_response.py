"""The early response: the client has the whole body before the worker trigger starts."""

import json
import os
import socket
import threading
import time

from tests.conftest import start_server


def post_and_time(server) -> tuple[float, str]:
    """POST a job over a raw socket; returns (time the whole body had arrived, job id)."""
    body = json.dumps({"urls": ["http://a.example/"]}).encode()
    host, port = server.base.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        data = b""
        while True:
            head, sep, payload = data.partition(b"\r\n\r\n")
            if sep:
                length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")][0]
                             .split(b":")[1])
                if len(payload) >= length:
                    had_body = time.time()
                    return had_body, json.loads(payload[:length])["id"]
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the body was complete"
            data += chunk


def test_trigger_starts_only_after_the_client_has_the_body(server):
    results = [post_and_time(server) for _ in range(20)]
    deadline = time.monotonic() + 10
    while len([t for t in server.triggers() if t["reason"].startswith("job ")]) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = {t["reason"][4:]: t["started_at"] for t in server.triggers()}
    for had_body, job_id in results:
        assert job_id in started, f"no trigger for job {job_id}"
        assert had_body <= started[job_id], (had_body, started[job_id])


def test_a_blocked_trigger_never_delays_the_response(tmp_path):
    """The trigger log is a FIFO nobody reads yet, so the trigger blocks while it records;
    the response must arrive anyway, and the trigger completes once we read."""
    fifo = tmp_path / "trigger.fifo"
    os.mkfifo(fifo)
    server = start_server(tmp_path, TRAWL_TRIGGER_LOG=str(fifo))
    records = []
    try:
        had_body, job_id = post_and_time(server)   # would hang if the trigger ran first
        reader = threading.Thread(target=lambda: records.append(fifo.read_text()))
        reader.start()
        reader.join(timeout=10)
        assert records, "the trigger never ran"
        record = json.loads(records[0].splitlines()[0])
        assert record["reason"] == f"job {job_id}"
    finally:
        server.stop()
