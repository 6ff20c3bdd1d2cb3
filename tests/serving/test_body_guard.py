"""The body guard of the gate (``stratum_ml.serving.gate.body_guard``), around a dummy app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stratum_ml.serving.gate import BodyGuard
from tests.serving.gate_kit import (
    MAX_BATCH_SIZE,
    MAX_BODY_BYTES,
    A,
    B,
    C,
    FakeService,
    TestClient,
    WithState,
    echo_app,
    fake_service,
)


@pytest.fixture
def service(tmp_path: Path) -> FakeService:
    return fake_service(tmp_path)


@pytest.fixture
def gate(service: FakeService) -> WithState:
    return WithState(BodyGuard(echo_app()), service)


@pytest.fixture
def client(gate: WithState) -> TestClient:
    return TestClient(gate)


def refusal(response: httpx.Response, status: int) -> str:
    """The error message of a refusal with ``status``; the answer holds nothing else."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) <= {"error", "detail"}
    return str(body["error"])


def test_a_valid_body_is_handed_on_unchanged(gate: WithState, client: TestClient) -> None:
    sent = json.dumps({"address_ids": [A, B], "n_reasons": 2})
    response = client.post("/score", content=sent, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["body"] == sent
    assert gate.last is not None and (gate.last.address_ids, gate.last.detail) == ([A, B], "")


def test_an_empty_body_is_an_empty_request(client: TestClient) -> None:
    assert client.post("/model").status_code == 200


def test_only_post_is_405(gate: WithState, client: TestClient) -> None:
    assert refusal(client.get("/model"), 405) == "use POST for the model endpoint"
    assert gate.last is not None and gate.last.address_ids is None  # a refused body: no ids
    assert gate.last.detail == "use POST for the model endpoint"


def test_only_json_is_415(gate: WithState, client: TestClient) -> None:
    body = json.dumps({"address_id": A}).encode()
    response = client.post("/dossier", content=body, headers={"Content-Type": "text/plain"})
    # the media type sent is not repeated (issue 11.1), nor the ids of a refused body
    assert refusal(response, 415) == "send the request body as application/json"
    assert gate.last is not None and gate.last.address_ids is None


def test_a_body_over_the_limit_is_413(gate: WithState, client: TestClient) -> None:
    big = json.dumps({"address_ids": [A] * MAX_BODY_BYTES}).encode()
    message = f"the request body exceeds {MAX_BODY_BYTES} bytes"
    assert refusal(client.post("/score", content=big), 413) == message
    assert gate.last is not None and gate.last.address_ids is None  # a refused body: no ids

    def chunks() -> Iterator[bytes]:  # no content-length: the size is counted as it arrives
        yield b'{"address_ids": ['
        for _ in range(MAX_BODY_BYTES // 10):
            yield b'"' + A.encode() + b'",'
        yield b"]}"

    assert refusal(client.post("/score", content=chunks()), 413) == message


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/score", content=b"{not json")
    assert refusal(response, 400).startswith("the request body is not valid JSON")


def test_an_invalid_request_is_422_naming_the_field_not_the_value(
    gate: WithState, client: TestClient
) -> None:
    response = client.post("/score", json={"address_ids": [A], "oops": "s3cret-value"})
    message = refusal(response, 422)
    assert message == "invalid score request: oops: Extra inputs are not permitted"
    assert response.json()["detail"] == [
        {"loc": ["oops"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]
    assert "s3cret-value" not in response.text
    assert gate.last is not None and (gate.last.address_ids, gate.last.detail) == (None, message)


def test_the_batch_limit_in_force_applies(client: TestClient) -> None:
    response = client.post("/score", json={"address_ids": [A, B, C, A]})
    assert "this service answers at most 3 per request" in refusal(response, 422)
    assert "at most 3 addresses" in refusal(client.post("/priority_list", json={"k": 4}), 422)
    assert client.post("/priority_list", json={"k": MAX_BATCH_SIZE}).status_code == 200


def test_at_most_ten_problems_are_reported(client: TestClient) -> None:
    response = client.post("/score", json={"address_ids": [1] * 12})
    assert refusal(response, 422).endswith("(and 2 more)")
    assert len(response.json()["detail"]) == 10


def test_a_refused_body_leaves_no_ids_only_its_size(gate: WithState, client: TestClient) -> None:
    # issue 11.1: nothing of a body that failed validation is recorded (it was [A, B, C])
    body = json.dumps({"address_ids": [A, "x" * 65, B, C, A, A], "oops": 1}).encode()
    client.post("/score", content=body, headers={"Content-Type": "application/json"})
    assert gate.last is not None and gate.last.address_ids is None
    assert gate.last.body_size == len(body)


def test_an_unprotected_path_passes_untouched(client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200
