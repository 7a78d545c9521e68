"""The HTTP service: decisions, every kind of bad request, the documents, a real server."""

from __future__ import annotations

import copy
import http.client
import json
import logging
import math
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ipwarmup
from ipwarmup.cli import main
from ipwarmup.errors import ConfigError
from ipwarmup.serving.http import create_app, serve
from ipwarmup.serving.policy import ServedPolicy, load_policy
from ipwarmup.serving.telemetry import json_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
JSON = {"Content-Type": "application/json"}
DECIDE = "/v1/decide"
INTERNAL_ERROR = {"error": "internal error; the server log has the details"}


def example_bytes() -> bytes:
    return (EXAMPLES / "telemetry-v1.json").read_bytes()


def example() -> dict[str, Any]:
    record: dict[str, Any] = json.loads(example_bytes())
    return record


@pytest.fixture(scope="module")
def policy(bundle_path: Path) -> ServedPolicy:
    return load_policy(bundle_path)


@pytest.fixture(scope="module")
def client(policy: ServedPolicy) -> Iterator[TestClient]:
    with TestClient(create_app(policy)) as client:
        yield client


def post(client: TestClient, body: bytes, headers: dict[str, str] = JSON) -> Any:
    return client.post(DECIDE, content=body, headers=headers)


# --------------------------------------------------------------------------- decisions


def test_a_valid_record_gets_the_policys_decision(client: TestClient, policy: ServedPolicy) -> None:
    response = post(client, example_bytes())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    decision = response.json()
    assert decision == policy.decide(example())
    assert tuple(decision["providers"]) == policy.providers
    for entry in decision["providers"].values():
        assert entry["dedicated_cap_per_hour"] > 0
        assert entry["reasons"]
    assert decision["pool"]["action"] in {"grow", "hold", "shrink"}
    assert decision["pool"]["reasons"]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json;"]
)
def test_json_media_type_parameters_and_case_are_accepted(
    client: TestClient, content_type: str
) -> None:
    assert post(client, example_bytes(), {"Content-Type": content_type}).status_code == 200


# --------------------------------------------------------------------------- bad requests

INVALID = sorted(EXAMPLES.glob("invalid/*.json"))


def test_every_invalid_example_is_exercised() -> None:
    assert len(INVALID) >= 14


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_examples_get_their_expected_problems(client: TestClient, path: Path) -> None:
    expected = path.with_suffix(".expected").read_text().splitlines()
    response = post(client, path.read_bytes())
    body = response.json()
    if path.stem == "nan":
        # NaN and Infinity are not JSON (RFC 8259): refused while parsing, at the same places
        # that validate() names when Python's lenient json let them through.
        assert response.status_code == 400
        assert body["error"] == "request body is not valid JSON"
        assert [line.split(":")[0] for line in body["problems"]] == [
            line.split(":")[0] for line in expected
        ]
        assert "Infinity is not a JSON number" in body["problems"][0]
        assert "NaN is not a JSON number" in body["problems"][1]
    else:
        # Valid JSON that is not a valid record, a JSON array included: 422.
        assert response.status_code == 422
        assert body == {"error": "invalid telemetry", "problems": expected}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"schema_version": 1,', "line 1 column 22 (char 21): Expecting property name"),
        (b"", "line 1 column 1 (char 0): Expecting value"),
        (b"{'a': 1}", "Expecting property name enclosed in double quotes"),
        (example_bytes()[:-40], "Expecting"),
        (example_bytes() + b"{}", "Extra data"),
        (b"\xff\xfe{}", "byte 0: not UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "the JSON is nested too deeply"),
        (b"1" * 5000, "Exceeds the limit (4300 digits)"),
        (b'{"a": NaN}', "telemetry.a: NaN is not a JSON number; send a finite number"),
        (b'{"a": [1, -Infinity]}', "telemetry.a[1]: -Infinity is not a JSON number"),
        (b'{"a": NaN, }', "line 1 column 12 (char 11): Expecting property name"),
        (b'{"a": {"b": 1, "b": 2}}', "telemetry.a.b: repeated key; send each key once"),
    ],
    ids=[
        "truncated", "empty", "single-quotes", "cut-example", "extra-data", "not-utf8",
        "too-deep", "huge-integer-literal", "nan", "minus-infinity-in-list",
        "nan-then-syntax-error", "repeated-key",
    ],
)  # fmt: skip
def test_a_body_that_is_not_strict_json_gets_400(
    client: TestClient, body: bytes, problem: str
) -> None:
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"] == "request body is not valid JSON"
    assert len(response.json()["problems"]) == 1
    assert problem in response.json()["problems"][0]


def test_every_nan_is_located(client: TestClient) -> None:
    record = example()
    record["providers"]["gmail"]["demand"] = math.nan
    record["providers"]["apple"]["queued"] = -math.inf
    response = post(client, json.dumps(record).encode())
    assert response.status_code == 400
    assert response.json()["problems"] == [
        "telemetry.providers.gmail.demand: NaN is not a JSON number; send a finite number",
        "telemetry.providers.apple.queued: -Infinity is not a JSON number; send a finite number",
    ]


@pytest.mark.parametrize(
    ("headers", "shown"),
    [
        ({"Content-Type": "text/plain"}, "'text/plain'"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, "'application/x-www-form"),
        ({}, "''"),
    ],
    ids=["text", "form", "none"],
)
def test_a_body_that_is_not_declared_json_gets_415(
    client: TestClient, headers: dict[str, str], shown: str
) -> None:
    response = post(client, example_bytes(), headers)
    assert response.status_code == 415
    assert response.json()["error"].startswith("expected Content-Type: application/json, got ")
    assert shown in response.json()["error"]


@pytest.fixture(scope="module")
def small_client(policy: ServedPolicy) -> Iterator[TestClient]:
    with TestClient(create_app(policy, max_body_bytes=4096)) as client:
        yield client


def padded(size: int) -> bytes:
    body = example_bytes()
    return body + b" " * (size - len(body))  # trailing whitespace is valid JSON


def test_a_body_at_the_limit_is_decided(small_client: TestClient) -> None:
    assert post(small_client, padded(4096)).status_code == 200


def test_a_body_over_the_limit_gets_413(small_client: TestClient) -> None:
    response = post(small_client, padded(4097))
    assert response.status_code == 413
    assert response.json() == {"error": "request body over 4096 bytes"}


def test_a_chunked_body_over_the_limit_gets_413(small_client: TestClient) -> None:
    # No Content-Length: the size is only known as the chunks arrive.
    response = small_client.post(DECIDE, content=iter([padded(4096), b" "]), headers=JSON)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == {"error": "request body over 4096 bytes"}


def test_the_default_limit_is_64_kib(client: TestClient) -> None:
    assert post(client, padded(65_537)).json() == {"error": "request body over 65536 bytes"}


def test_a_limit_below_one_byte_is_refused(policy: ServedPolicy) -> None:
    with pytest.raises(ValueError, match="max_body_bytes: expected at least 1, got 0"):
        create_app(policy, max_body_bytes=0)


def test_other_methods_are_not_allowed(client: TestClient) -> None:
    assert client.get(DECIDE).status_code == 405


# --------------------------------------------------------------------------- failures


def test_an_unexpected_failure_gets_a_generic_500_and_is_logged(
    bundle_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = load_policy(bundle_path)

    def boom(record: object) -> dict[str, Any]:
        raise RuntimeError("secret detail of the failure")

    monkeypatch.setattr(broken, "decide", boom)
    with TestClient(create_app(broken)) as client, caplog.at_level(logging.ERROR):
        response = post(client, example_bytes())
    assert response.status_code == 500
    assert response.json() == INTERNAL_ERROR
    assert "secret" not in response.text and "Traceback" not in response.text
    [logged] = [r for r in caplog.records if r.name == "ipwarmup.serving.http"]
    assert logged.exc_info is not None and "secret detail" in str(logged.exc_info[1])


def test_a_decision_that_is_not_json_gets_500_not_invalid_json(
    bundle_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = load_policy(bundle_path)
    monkeypatch.setattr(broken, "decide", lambda record: {"change": math.inf})
    with TestClient(create_app(broken)) as client, caplog.at_level(logging.ERROR):
        response = post(client, example_bytes())
    assert response.status_code == 500
    assert response.json() == INTERNAL_ERROR


def test_a_subnormal_cap_is_decided(client: TestClient) -> None:
    record = example()
    record["providers"]["gmail"]["dedicated_cap_per_hour"] = 5e-324  # valid: a count >= 0
    response = post(client, json.dumps(record).encode())
    assert response.status_code == 200
    assert response.json()["providers"]["gmail"]["change"] is None


# --------------------------------------------------------------------------- property


def _leaves(node: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in _leaves(value, (*path, key))]
    return [path]


RECORD = example()
LEAVES = _leaves(RECORD)
CONTAINERS = [(), ("time",), ("pool",), ("providers",)] + [
    ("providers", name) for name in RECORD["providers"]
]
KEYS = LEAVES + CONTAINERS[1:]

NOT_JSON = ("NaN", "Infinity", "-Infinity")
"""Raw literals that strict JSON refuses (400)."""
OVERFLOW = ("1e400", "-1e400", "1" + "0" * 400)
"""Raw literals that are JSON but out of every range: infinite floats, a 401-digit count."""

wrong_types = st.sampled_from(["12", "", True, False, None, [], [1], {}, {"demand": 1}])
negatives = st.one_of(
    st.integers(max_value=-1),
    st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False),
)
huge = st.one_of(
    st.integers(min_value=10**13, max_value=10**300),
    st.floats(min_value=1e13, allow_nan=False, allow_infinity=False),
)
corruptions = st.one_of(
    st.tuples(st.just("raw"), st.sampled_from(LEAVES), st.sampled_from(NOT_JSON + OVERFLOW)),
    st.tuples(st.just("set"), st.sampled_from(LEAVES), st.one_of(negatives, huge, wrong_types)),
    st.tuples(
        st.just("set"),
        st.sampled_from(CONTAINERS),
        wrong_types.filter(lambda value: not isinstance(value, dict)),
    ),
    st.tuples(st.just("delete"), st.sampled_from(KEYS), st.none()),
    st.tuples(
        st.just("add"),
        st.sampled_from(CONTAINERS),
        st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12),
    ),
)

MISSING = object()
Spoil = tuple[str, tuple[str, ...], Any]


def _get(record: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(record, dict) or key not in record:
            return MISSING
        record = record[key]
    return record


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(("telemetry", *path))


def corrupt(record: Any, spoils: list[Spoil]) -> tuple[bytes, dict[str, str]]:
    """Apply the corruptions; return the body and {dotted path: corruption kind} expected."""
    raw: dict[str, str] = {}
    named: dict[tuple[str, ...], str] = {}
    for kind, path, value in spoils:
        parent = _get(record, path[:-1])
        if path and not isinstance(parent, dict):
            continue  # an earlier corruption replaced or removed a container above
        if kind == "delete":
            parent.pop(path[-1], None)
            named[path] = "delete"
        elif kind == "add":
            target = _get(record, path)
            if not isinstance(target, dict):
                continue
            target[f"x_{value}"] = 1
            named[(*path, f"x_{value}")] = "add"
        elif not path:
            record = copy.deepcopy(value)
            named[path] = kind
        else:
            marker = f"@@raw{len(raw)}@@"
            if kind == "raw":
                raw[marker] = value
            parent[path[-1]] = marker if kind == "raw" else copy.deepcopy(value)
            named[path] = f"raw:{value}" if kind == "raw" else kind
    text = json.dumps(record)
    for marker, literal in raw.items():
        text = text.replace(f'"{marker}"', literal)
    # Keep only the corruptions still in the record: a later one can remove an earlier one.
    expected = {}
    for path, kind in named.items():
        present = _get(record, path) is not MISSING
        if kind == "delete":
            present = not present and isinstance(_get(record, path[:-1]), dict)
        if present and not any(other != path and path[: len(other)] == other for other in named):
            expected[_dotted(path)] = kind
    return text.encode(), expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spoils=st.lists(corruptions, min_size=1, max_size=4))
def test_corrupted_records_get_a_4xx_that_names_each_problem(
    client: TestClient, spoils: list[Spoil]
) -> None:
    body, expected = corrupt(copy.deepcopy(RECORD), spoils)
    assert expected, "every draw leaves at least one corruption"
    response = post(client, body)
    assert response.status_code != 200
    assert response.status_code != 500
    payload = response.json()
    assert payload["error"] and payload["problems"]
    refused = {path for path, kind in expected.items() if kind.split(":")[-1] in NOT_JSON}
    if refused:
        assert response.status_code == 400
        named = refused
    else:
        assert response.status_code == 422
        named = set(expected)
    for path in named:
        assert any(line.startswith(f"{path}: ") for line in payload["problems"]), (path, payload)


# --------------------------------------------------------------------------- documents


def test_healthz_says_which_model_is_loaded(client: TestClient, policy: ServedPolicy) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model": "test",
        "providers": list(policy.providers),
        "format_version": 2,
        "env": policy.manifest["env"],
        "guardrails": policy.guardrails.model_dump(),
        "guardrail_notes": [],
        "signed_by": None,
    }


def test_openapi_documents_the_telemetry_schema(client: TestClient, policy: ServedPolicy) -> None:
    document = client.get("/openapi.json").json()
    assert document["info"]["title"] == "ipwarmup serving"
    assert document["info"]["version"] == ipwarmup.__version__
    operation = document["paths"][DECIDE]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    schema = body["content"]["application/json"]["schema"]
    reference = json_schema(policy.providers, policy.max_ips)
    assert schema["$id"] == "urn:ipwarmup:telemetry:v1" == reference["$id"]
    assert schema["required"] == reference["required"]
    # The provider definition is inlined: viewers resolve "#/..." from the document's root.
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema
    for name in policy.providers:
        assert (
            schema["properties"]["providers"]["properties"][name] == reference["$defs"]["provider"]
        )
    assert set(operation["responses"]) >= {"200", "400", "413", "415", "422", "500"}
    assert "problems" in json.dumps(operation["responses"]["422"])
    assert client.get("/docs").status_code == 200


def test_the_module_imports_no_training_stack() -> None:
    heavy = ("torch", "stable_baselines3", "mlflow", "gymnasium")
    code = (
        "import sys, ipwarmup.serving.http\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


# --------------------------------------------------------------------------- real server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stop(process: subprocess.Popen[str]) -> str:
    """Stop the server if it still runs; return what it wrote on stderr (once)."""
    if process.stderr is None or process.stderr.closed:
        return ""
    if process.poll() is None:
        process.terminate()  # uvicorn shuts down gracefully on SIGTERM
    try:
        return process.communicate(timeout=15)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()[1]


def wait_until_up(process: subprocess.Popen[str], url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    pytest.fail(f"the server did not answer {url} within {timeout} s: {stop(process)}")


def test_a_real_server_decides_over_loopback(bundle_path: Path, policy: ServedPolicy) -> None:
    port = free_port()
    code = (
        f"from ipwarmup.serving.http import serve; serve({str(bundle_path)!r}, '127.0.0.1', {port})"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(process, f"{base}/healthz")
        request = urllib.request.Request(
            f"{base}{DECIDE}", data=example_bytes(), headers=JSON, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert json.loads(response.read()) == policy.decide(example())
        # Keep-alive answers come at once: with Nagle's algorithm on the server's socket,
        # each would wait for the client's delayed ACK, ~40 ms.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            seconds = []
            for _ in range(20):
                start = time.perf_counter()
                connection.request("POST", DECIDE, body=example_bytes(), headers=JSON)
                with connection.getresponse() as answer:
                    assert answer.status == 200
                    answer.read()
                seconds.append(time.perf_counter() - start)
            assert statistics.median(seconds) < 0.02
        finally:
            connection.close()
        # A declared size over the limit is refused before any of the body is sent.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.putrequest("POST", DECIDE)
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(10**9))
            connection.endheaders()
            answer = connection.getresponse()
            assert answer.status == 413
            assert json.loads(answer.read()) == {"error": "request body over 65536 bytes"}
        finally:
            connection.close()
    finally:
        stderr = stop(process)
    assert f"serving model 'test' on {base}{DECIDE}" in stderr
    assert "Traceback" not in stderr


def test_serve_refuses_a_port_in_use(bundle_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = f"cannot listen on 127.0.0.1:{port}: Address already in use"
        with pytest.raises(ConfigError, match=message):
            serve(str(bundle_path), "127.0.0.1", port)


def test_cli_serve_refuses_a_missing_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert main(["serve", "--model", str(missing), "--port", "8000"]) == 2
    assert capsys.readouterr().err == (
        f"ipwarmup: error: {missing / 'manifest.json'}: missing; is '{missing}' an exported "
        "bundle?\n"
    )
