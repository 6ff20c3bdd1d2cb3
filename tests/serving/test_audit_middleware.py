"""The audit middleware of the gate (``stratum_ml.serving.gate.auditing``).

Around a dummy app, alone and as the outermost of the gate's three
middlewares in the order the service adds them: every call, answered or
refused by any layer, is recorded before its answer leaves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratum_ml.serving.audit import verify_log
from stratum_ml.serving.auth import Endpoint, Role
from stratum_ml.serving.gate import ApiKeyBackend, AuditMiddleware, BodyGuard, refuse_key
from stratum_ml.serving.gate.auditing import AUDIT_FAILED, UNEXPECTED_ERROR
from stratum_ml.serving.openapi import OpenApiDocument
from tests.serving.gate_kit import (
    MAX_BODY_BYTES,
    MODEL_VERSION,
    ROUTES,
    A,
    B,
    C,
    FakeService,
    TestClient,
    bearer,
    echo_app,
    fake_service,
)


@pytest.fixture
def service(tmp_path: Path) -> FakeService:
    return fake_service(tmp_path)


def gate(service: FakeService, app: ASGIApp) -> AuditMiddleware:
    """The gate as the service stacks it: audit, authentication, body guard, then ``app``."""
    inner = AuthenticationMiddleware(BodyGuard(app), backend=ApiKeyBackend(), on_error=refuse_key)
    return AuditMiddleware(inner, routes=ROUTES, service_state=service.as_state)


@pytest.fixture
def client(service: FakeService) -> TestClient:
    return TestClient(gate(service, echo_app()))


def seen(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        record[k] for k in ("key_id", "role", "endpoint", "address_ids", "model_version", "status")
    )


def test_every_call_answered_or_refused_is_audited_as_the_service_records_it(
    service: FakeService, client: TestClient
) -> None:
    analyst, handler = service.secrets[Role.ANALYST], service.secrets[Role.CASE_HANDLER]
    analyst_id, handler_id = service.key_ids[Role.ANALYST], service.key_ids[Role.CASE_HANDLER]
    wrong_secret = f"stk_{analyst_id}_" + "B" * 43
    calls = [
        ("/score", {"address_ids": [A]}, bearer(analyst), 200),
        ("/dossier", {"address_id": B}, bearer(analyst), 403),
        ("/dossier", {"address_id": B}, {}, 401),
        ("/score", {"address_ids": [A], "oops": 1}, bearer(handler), 422),
        ("/priority_list", {"k": 2}, bearer(analyst), 200),
        ("/model", {}, bearer(wrong_secret), 401),
    ]
    for path, body, headers, status in calls:
        assert client.post(path, json=body, headers=headers).status_code == status, path
    v = MODEL_VERSION
    records = service.records()
    assert [seen(r) for r in records] == [
        (analyst_id, "analyst", "score", [A], v, 200),
        # issue 11.1: a refused call records no ids of its body (they were [B], [B], [A])
        (analyst_id, "analyst", "dossier", [], v, 403),
        (None, None, "dossier", [], v, 401),
        (handler_id, "case_handler", "score", [], v, 422),
        (analyst_id, "analyst", "priority_list", [B, C], v, 200),  # the ids it listed
        (analyst_id, None, "model", [], v, 401),
    ]
    assert records[0]["detail"] == ""
    assert records[1]["detail"] == "role 'analyst' may not use the 'dossier' endpoint"
    assert records[2]["detail"].startswith("missing API key")
    assert "oops" in records[3]["detail"]
    assert verify_log(service.audit.path).ok
    text = service.audit.path.read_text("utf-8")
    assert all(key not in text for key in service.secrets.values())


def test_a_body_too_large_to_read_is_audited_without_ids(
    service: FakeService, client: TestClient
) -> None:
    big = json.dumps({"address_ids": [A] * MAX_BODY_BYTES})
    analyst = service.secrets[Role.ANALYST]
    assert client.post("/score", content=big, headers=bearer(analyst)).status_code == 413
    assert client.post("/score", content=big).status_code == 401  # no key: refused first
    assert [(r["status"], r["address_ids"]) for r in service.records()] == [(413, []), (401, [])]


def test_the_record_is_durable_before_the_answer_leaves(service: FakeService) -> None:
    app = gate(service, echo_app())
    body = json.dumps({"address_ids": [A]}).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/score",
        "headers": [
            (b"authorization", f"Bearer {service.secrets[Role.ANALYST]}".encode()),
            (b"content-type", b"application/json"),
        ],
        "query_string": b"",
    }
    records_when_sent: list[int] = []
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            records_when_sent.append(len(service.records()))
        sent.append(message)

    anyio.run(app, scope, receive, send)
    assert records_when_sent == [1] and sent[0]["status"] == 200
    assert seen(service.records()[0])[-1] == 200


def test_no_answer_without_an_audit_record(service: FakeService, client: TestClient) -> None:
    log = service.audit.path
    aside = log.with_suffix(".aside")
    log.rename(aside)
    log.mkdir()  # appending to a folder fails, as on a full or broken disk
    try:
        response = client.post("/model", json={}, headers=bearer(service.secrets[Role.ANALYST]))
    finally:
        log.rmdir()
        aside.rename(log)
    assert (response.status_code, response.json()) == (503, {"error": AUDIT_FAILED})
    assert "scopes" not in response.text  # nothing of the answer got out
    assert service.records() == []


async def _fails_before_answering(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("a bug with a secret in its message")


async def _fails_while_answering(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise RuntimeError("a bug halfway through the answer")


def test_an_error_before_the_answer_is_an_audited_500(
    service: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(gate(service, _fails_before_answering))
    response = client.post("/model", json={}, headers=bearer(service.secrets[Role.ANALYST]))
    assert (response.status_code, response.json()) == (500, {"error": UNEXPECTED_ERROR})
    assert "secret" not in response.text
    assert "a bug with a secret" in caplog.text  # in the server log only
    [record] = service.records()
    assert (record["status"], record["detail"], record["role"]) == (
        500,
        UNEXPECTED_ERROR,
        "analyst",
    )


def test_an_error_after_the_answer_started_is_left_to_the_server(service: FakeService) -> None:
    client = TestClient(gate(service, _fails_while_answering))
    with pytest.raises(RuntimeError, match="halfway"):
        client.post("/model", json={}, headers=bearer(service.secrets[Role.ANALYST]))
    assert [r["status"] for r in service.records()] == [200]


def test_a_service_still_starting_answers_503_and_reaches_nothing(tmp_path: Path) -> None:
    reached: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])

    client = TestClient(AuditMiddleware(app, routes=ROUTES, service_state=lambda: None))
    response = client.post("/model", json={})
    assert (response.status_code, response.json()["error"]) == (
        503,
        "the service is starting; try again shortly",
    )
    assert reached == []


def test_unprotected_paths_are_not_audited(service: FakeService, client: TestClient) -> None:
    assert client.get("/readyz").status_code == 200
    assert service.records() == []


# bentoml 1.4.40's own deprecation warnings, raised as the service module is imported
@pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The `__get_pydantic_core_schema__`:DeprecationWarning")
def test_the_service_stacks_the_gate_audit_first() -> None:
    from stratum_ml.serving import service

    stacked = [cls for cls, _ in service.RiskService.middlewares]  # type: ignore[attr-defined]
    # the gate first, in this order; then what is not gated (the OpenAPI document)
    assert stacked[:3] == [AuditMiddleware, AuthenticationMiddleware, BodyGuard]
    assert OpenApiDocument in stacked[3:]
    audit_options = service.RiskService.middlewares[0][1]  # type: ignore[attr-defined]
    assert set(audit_options["routes"]) == {f"/{e.value}" for e in Endpoint}
    assert service._loaded_state() is None  # no service instance in this process
