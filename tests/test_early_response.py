"""The early response: the whole body reaches the client before the worker trigger starts."""

import json
import os
import socket
import threading
import time

from tests.conftest import start_server


def post_job(server) -> tuple[int, str]:
    """POST a job over a raw socket; returns (bytes of the whole response, job id).

    Reads up to the end of the body (Content-Length), not to the close.
    """
    body = json.dumps({"urls": ["http://a.example/"]}).encode()
    host, port = server.base.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        data = b""
        while True:
            head, sep, payload = data.partition(b"\r\n\r\n")
            if sep:
                length = int([h for h in head.split(b"\r\n")
                              if h.lower().startswith(b"content-length:")][0].split(b":")[1])
                if len(payload) >= length:
                    return len(data), json.loads(payload[:length])["id"]
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the body was complete"
            data += chunk


def test_trigger_starts_only_after_the_client_acknowledged_the_whole_response(server):
    """Each trigger records how many bytes of its response the client's TCP stack had
    acknowledged when it started; that must be every byte the client received.
    (Comparing two processes' clocks instead would race with the scheduler.)"""
    results = [post_job(server) for _ in range(20)]
    deadline = time.monotonic() + 10
    while len([t for t in server.triggers() if t["reason"].startswith("job ")]) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    acked = {t["reason"][4:]: t["bytes_acked"] for t in server.triggers()}
    for size, job_id in results:
        assert job_id in acked, f"no trigger for job {job_id}"
        assert acked[job_id] is not None and acked[job_id] >= size, (acked[job_id], size)


def test_a_blocked_trigger_never_delays_the_response(tmp_path):
    """The trigger log is a FIFO nobody reads yet, so the trigger blocks while it records;
    the response must arrive anyway, and the trigger completes once we read."""
    fifo = tmp_path / "trigger.fifo"
    os.mkfifo(fifo)
    server = start_server(tmp_path, TRAWL_TRIGGER_LOG=str(fifo))
    records = []
    try:
        _, job_id = post_job(server)   # would hang if the trigger ran first
        reader = threading.Thread(target=lambda: records.append(fifo.read_text()))
        reader.start()
        reader.join(timeout=10)
        assert records, "the trigger never ran"
        record = json.loads(records[0].splitlines()[0])
        assert record["reason"] == f"job {job_id}"
    finally:
        server.stop()
