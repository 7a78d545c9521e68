"""The batch endpoint, and the server's limits against slow, hostile or vanishing clients.

The limit tests run a real ``serve`` on loopback with short timeouts (0.5 s) and check
what a client sees: the connection closed, a 408, a 503, one log line. The bounds on how
long that takes are generous (10 s); they say "eventually", not how fast.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ipwarmup.serving import load_policy
from ipwarmup.serving.http import BATCH_PATH, create_app
from tests.serving.shipped import default_bundle

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = default_bundle()
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(load_policy(DEFAULT), max_batch_records=5)) as test_client:
        yield test_client


def test_a_batch_gets_each_records_decision_in_order(client: TestClient) -> None:
    policy = load_policy(DEFAULT)
    records = [json.loads(json.dumps(EXAMPLE)) for _ in range(3)]
    records[1]["pool"]["dedicated_ips"] = 0
    records[2]["providers"]["gmail"]["rejected"] = 1.0
    records[2]["providers"]["gmail"]["sent_dedicated"] += 1.0
    response = client.post(BATCH_PATH, content=json.dumps(records), headers=JSON)
    assert response.status_code == 200
    single = [policy.decide(r) for r in records]
    # A batch's matrix product may round differently from one row's (BLAS kernels).
    _assert_close(response.json()["decisions"], single)
    _assert_close(policy.decide_batch(records), single)
    assert single[1]["providers"]["gmail"]["dedicated_cap_per_hour"] == 0.0
    assert "block:gmail" in single[2]["guardrails"] and single[0]["guardrails"] == []


def _assert_close(a: object, b: object) -> None:
    """Equal structure and text; numbers equal to 1e-9 (batch products round differently)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert list(a) == list(b)
        for key in a:
            _assert_close(a[key], b[key])
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_close(x, y)
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9)
    elif isinstance(a, str) and isinstance(b, str) and a.startswith("policy: x"):
        assert abs(float(a[9:]) - float(b[9:])) <= 0.0011  # the 3-decimal rendering
    else:
        assert a == b


def test_a_bad_record_in_a_batch_is_named_by_its_index(client: TestClient) -> None:
    records = [EXAMPLE, {**EXAMPLE, "period_hours": 5}]
    response = client.post(BATCH_PATH, content=json.dumps(records), headers=JSON)
    assert response.status_code == 422
    assert response.json()["problems"] == [
        "[1] telemetry.period_hours: expected one of [1, 2, 3, 4, 6, 8, 12, 24], got 5"
    ]
    for body, problem in (
        (EXAMPLE, "records: expected a JSON array of records, got dict"),
        ([EXAMPLE] * 6, "records: at most 5 records, got 6"),
    ):
        response = client.post(BATCH_PATH, content=json.dumps(body), headers=JSON)
        assert (response.status_code, response.json()["problems"]) == (422, [problem])
    assert client.post(BATCH_PATH, content="[]", headers=JSON).json() == {"decisions": []}


# --------------------------------------------------------------------------- real server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start(options: str = "") -> tuple[int, subprocess.Popen[str]]:
    """Start ``serve`` on a free loopback port with these keyword options; wait until up."""
    port = _free_port()
    code = (
        "from ipwarmup.serving.server import serve; "
        f"serve({str(DEFAULT)!r}, '127.0.0.1', {port}{options})"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                break
        except OSError:
            time.sleep(0.05)
    return port, process


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port, process = _start(", header_timeout=0.5, body_timeout=0.5, max_connections=4")
    yield port, process
    if process.poll() is None:
        process.terminate()
    process.communicate(timeout=15)  # closes the stderr pipe too


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """Read until the server closes the connection; return what it sent."""
    sock.settimeout(seconds)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_slow_headers_are_cut_off(server: tuple[int, subprocess.Popen[str]]) -> None:
    port, _ = server
    request = b"POST /v1/decide HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 400
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        try:
            for byte in request:  # a byte every 50 ms: each resets uvicorn's own timer
                sock.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.05)
            closed = _closed_within(sock, 10) == b""
        except (BrokenPipeError, ConnectionResetError):
            closed = True
    assert closed
    assert sent < len(request)  # cut off long before the 20 s the headers would take


def test_a_silent_connection_is_closed(server: tuple[int, subprocess.Popen[str]]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        assert _closed_within(sock, 10) == b""


def test_a_slow_body_gets_408(server: tuple[int, subprocess.Popen[str]]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"schema'
        )
        answer = _closed_within(sock, 10)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"request body not received within 0.5 s" in answer


def test_connections_beyond_the_limit_get_503(server: tuple[int, subprocess.Popen[str]]) -> None:
    port, _ = server
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = _closed_within(sock, 10)
        assert answer.startswith(b"HTTP/1.1 503 ")
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert response.status == 200  # the limit frees up as connections close


def test_a_client_that_hangs_up_mid_upload_is_one_log_line(tmp_path: Path) -> None:
    port, process = _start()
    try:
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(
                    b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 5000\r\n\r\n" + b"{" * 1000
                )
                time.sleep(0.2)
        time.sleep(0.5)
    finally:
        process.terminate()
        stderr = process.communicate(timeout=15)[1]
    lines = [line for line in stderr.splitlines() if "hung up" in line]
    assert len(lines) == 3, stderr
    assert "Traceback" not in stderr
    assert all(len(line) < 200 for line in lines)


def test_cli_serve_refuses_an_unsigned_bundle_under_a_pinned_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ipwarmup.cli import main

    key = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    assert main(["serve", "--model", str(DEFAULT), "--public-key", key]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"ipwarmup: error: {DEFAULT}: not signed, but a public key is pinned; sign the bundle\n"
    )


def test_cli_serve_refuses_a_bad_guardrails_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ipwarmup.cli import main

    file = tmp_path / "guardrails.yaml"
    file.write_text("block_cut: 3.0\n")
    assert main(["serve", "--model", str(DEFAULT), "--guardrails", str(file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ipwarmup: error: guardrails.block_cut: Input should be less than")
    assert len(err.strip().splitlines()) == 1
