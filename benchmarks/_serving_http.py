"""HTTP figures for benchmarks/serving.py: one client, a fleet batch, and fairness under load.

Everything runs on 127.0.0.1 with bounded durations. The server is ``serve`` in a
subprocess; the hostile clients are separate small processes (their CPU use is not
serialised with the measuring client's by one GIL).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

HEADERS = {"Content-Type": "application/json"}
MAX_BODY = 65_536


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) a process has used, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running_server(bundle: Path) -> Iterator[tuple[int, int]]:
    """Run ``serve`` on a free loopback port; yield the port and its pid; stop it."""
    port = free_port()
    code = f"from ipwarmup.serving.server import serve; serve({str(bundle)!r}, '127.0.0.1', {port})"
    server = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except (urllib.error.URLError, ConnectionError):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.05)
        yield port, server.pid
    finally:
        if server.poll() is None:
            server.terminate()
        server.communicate(timeout=15)


def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> int:
    connection.request("POST", path, body=body, headers=HEADERS)
    response = connection.getresponse()
    response.read()
    return response.status


def client_run(
    port: int, path: str, body: bytes, seconds: float, warmup: int = 50
) -> dict[str, Any]:
    """One keep-alive client posting ``body`` for ``seconds``: requests/s and latency."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(warmup):
        _post(connection, path, body)
    times: list[int] = []
    statuses: dict[int, int] = {}
    clock = time.perf_counter_ns
    began = clock()
    while clock() - began < seconds * 1e9:
        start = clock()
        status = _post(connection, path, body)
        times.append(clock() - start)
        statuses[status] = statuses.get(status, 0) + 1
    elapsed = (clock() - began) / 1e9
    connection.close()
    p50, p99 = np.percentile(times, [50, 99]) / 1e3
    return {
        "requests": len(times),
        "seconds": elapsed,
        "requests_per_s": len(times) / elapsed,
        "p50_us": float(p50),
        "p99_us": float(p99),
        "statuses": statuses,
    }


def worst_case_body(record: dict[str, Any]) -> bytes:
    """The example record padded with unknown keys up to the 64 KiB body limit."""
    padded = dict(record)
    i = 0
    while True:
        padded[f"unknown_key_{i}"] = i
        if len(json.dumps(padded)) > MAX_BODY - 32:
            del padded[f"unknown_key_{i}"]
            return json.dumps(padded).encode()
        i += 1


_ATTACKER = """
import http.client, sys, time
port, seconds, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
body = open(path, "rb").read()
headers = {"Content-Type": "application/json"}
connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
print("ready", flush=True)
until = time.time() + seconds
while time.time() < until:
    try:
        connection.request("POST", "/v1/decide", body=body, headers=headers)
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
"""


def fairness(bundle: Path, body: bytes, worst: bytes, seconds: float = 5.0) -> dict[str, Any]:
    """A normal client's throughput alone, then while four clients send worst-case records.

    The hostile clients are small ``python -c`` processes importing only ``http.client``:
    their start-up must not compete for the CPU while the normal client is measured.
    """
    with tempfile.TemporaryDirectory() as scratch, running_server(bundle) as (port, _):
        path = Path(scratch) / "worst.json"
        path.write_bytes(worst)
        alone = client_run(port, "/v1/decide", body, seconds)
        attackers = [
            subprocess.Popen(
                [sys.executable, "-c", _ATTACKER, str(port), str(seconds + 3.0), str(path)],
                stdout=subprocess.PIPE, text=True,
            )
            for _ in range(4)
        ]  # fmt: skip
        for process in attackers:
            assert process.stdout is not None
            process.stdout.readline()  # "ready": started and connected
        time.sleep(1.0)  # every attacker is busy posting
        loaded = client_run(port, "/v1/decide", body, seconds, warmup=5)
        for process in attackers:
            process.wait(timeout=60)
            if process.stdout is not None:
                process.stdout.close()
        hostile = client_run(port, "/v1/decide", worst, 1.0, warmup=1)
    return {
        "alone": alone,
        "under_attack": loaded,
        "kept": loaded["requests_per_s"] / alone["requests_per_s"],
        "worst_body_bytes": len(worst),
        "worst_case_alone": hostile,
    }


def batch_run(bundle: Path, records: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """One client posting ``records`` to /v1/decide/batch: decisions/s.

    Per second of the wall clock, and per second of the server's CPU time: what a core of
    its own would give, whatever else the machine runs.
    """
    body = json.dumps(records).encode()
    with running_server(bundle) as (port, pid):
        before = cpu_seconds(pid)
        run = client_run(port, "/v1/decide/batch", body, seconds, warmup=3)
        server_cpu = cpu_seconds(pid) - before
    decisions = run["requests"] * len(records)
    return {
        **run,
        "records": len(records),
        "decisions_per_s": run["requests_per_s"] * len(records),
        "server_cpu_seconds": server_cpu,
        "decisions_per_cpu_s": decisions / server_cpu if server_cpu > 0 else float("nan"),
    }


def single_run(bundle: Path, body: bytes, seconds: float) -> dict[str, Any]:
    """One keep-alive client posting one record at a time."""
    with running_server(bundle) as (port, _):
        return client_run(port, "/v1/decide", body, seconds)
