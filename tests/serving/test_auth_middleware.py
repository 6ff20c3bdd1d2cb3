"""The authentication middleware of the gate (``stratum_ml.serving.gate.authentication``).

Starlette's ``AuthenticationMiddleware`` with the API key backend, around a
dummy app: no BentoML, no model, milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.middleware.authentication import AuthenticationMiddleware

from stratum_ml.serving.auth import Role, revoke_key
from stratum_ml.serving.gate import ApiKeyBackend, refuse_key
from stratum_ml.serving.gate.authentication import KEY_FILE_DAMAGED
from tests.serving.gate_kit import (
    A,
    FakeService,
    TestClient,
    WithState,
    bearer,
    echo_app,
    fake_service,
)


@pytest.fixture
def service(tmp_path: Path) -> FakeService:
    return fake_service(tmp_path)


@pytest.fixture
def gate(service: FakeService) -> WithState:
    app = AuthenticationMiddleware(echo_app(), backend=ApiKeyBackend(), on_error=refuse_key)
    return WithState(app, service)


@pytest.fixture
def client(gate: WithState) -> TestClient:
    return TestClient(gate)


def test_an_accepted_key_puts_the_caller_and_its_role_on_the_scope(
    service: FakeService, gate: WithState, client: TestClient
) -> None:
    response = client.post(
        "/score", json={"address_ids": [A]}, headers=bearer(service.secrets[Role.ANALYST])
    )
    assert response.status_code == 200, response.text
    seen = response.json()
    key_id = service.key_ids[Role.ANALYST]
    assert (seen["user"], seen["name"], seen["scopes"]) == (key_id, "test analyst", ["analyst"])
    assert seen["body"] == f'{{"address_ids":["{A}"]}}'  # the body is left to the next layer
    assert gate.last is not None and gate.last.principal is not None
    assert (gate.last.key_id, gate.last.principal.role, gate.last.detail) == (
        key_id,
        Role.ANALYST,
        "",
    )


def test_the_key_may_come_as_x_api_key(service: FakeService, client: TestClient) -> None:
    response = client.post("/model", json={}, headers={"X-API-Key": service.secrets[Role.ADMIN]})
    assert response.status_code == 200
    assert response.json()["scopes"] == ["admin"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'"),
        ({"Authorization": "Basic abc"}, "the Authorization header must be 'Bearer <API key>'"),
        (bearer("let-me-in"), "malformed API key"),
        (bearer("stk_0123456789abcdef_" + "A" * 43), "invalid API key"),
    ],
)
def test_no_usable_key_is_401_with_the_json_error(
    gate: WithState, client: TestClient, headers: dict[str, str], message: str
) -> None:
    response = client.post("/score", json={"address_ids": [A]}, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": message}
    assert response.headers["content-type"] == "application/json"
    assert "www-authenticate" not in response.headers
    assert gate.last is not None
    assert (gate.last.key_id, gate.last.principal, gate.last.detail) == (None, None, message)


def test_a_wrong_secret_or_revoked_key_is_401_naming_the_key_id(
    service: FakeService, gate: WithState, client: TestClient
) -> None:
    key_id = service.key_ids[Role.ANALYST]
    wrong = client.post("/model", json={}, headers=bearer(f"stk_{key_id}_" + "B" * 43))
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid API key"})
    assert gate.last is not None and (gate.last.key_id, gate.last.principal) == (key_id, None)

    revoke_key(service.keys_file, key_id)
    revoked = client.post("/model", json={}, headers=bearer(service.secrets[Role.ANALYST]))
    assert (revoked.status_code, revoked.json()) == (
        401,
        {"error": "this API key has been revoked"},
    )
    assert gate.last is not None and gate.last.key_id == key_id


def test_two_different_keys_are_401(service: FakeService, client: TestClient) -> None:
    headers = {**bearer(service.secrets[Role.ANALYST]), "X-API-Key": service.secrets[Role.ADMIN]}
    response = client.post("/model", json={}, headers=headers)
    assert response.json() == {
        "error": "the Authorization and X-API-Key headers carry different keys"
    }
    assert response.status_code == 401


def test_a_role_not_in_the_table_is_403_and_the_caller_is_known(
    service: FakeService, gate: WithState, client: TestClient
) -> None:
    response = client.post(
        "/dossier", json={"address_id": A}, headers=bearer(service.secrets[Role.ANALYST])
    )
    message = "role 'analyst' may not use the 'dossier' endpoint"
    assert (response.status_code, response.json()) == (403, {"error": message})
    assert gate.last is not None and gate.last.principal is not None
    assert gate.last.principal.role == Role.ANALYST
    assert (gate.last.key_id, gate.last.detail) == (service.key_ids[Role.ANALYST], message)


def test_authentication_comes_before_the_body(client: TestClient) -> None:
    response = client.post("/score", content=b"{not json", headers={"Content-Type": "text/plain"})
    assert response.status_code == 401


def test_a_damaged_key_file_is_503(
    service: FakeService, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    service.keys_file.write_text("{broken", "utf-8")
    response = client.post("/model", json={}, headers=bearer(service.secrets[Role.ANALYST]))
    assert (response.status_code, response.json()) == (503, {"error": KEY_FILE_DAMAGED})
    assert "cannot read the API key file" in caplog.text
    assert "broken" not in response.text


def test_an_unprotected_path_passes_without_a_key(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert (response.json()["user"], response.json()["scopes"]) == (None, [])
