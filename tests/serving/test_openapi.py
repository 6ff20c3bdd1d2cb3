"""The OpenAPI document says what the service does (issue 11.8); fast, no server."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette

from stratum_ml.serving.auth import PERMISSIONS, Endpoint
from stratum_ml.serving.openapi import OpenApiDocument, openapi_document
from stratum_ml.serving.service import RiskService
from tests.serving.gate_kit import TestClient

pytestmark = [
    # bentoml 1.4.40's own deprecation warnings on importing the service
    pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The `__get_pydantic_core_schema__`:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(RiskService, max_batch_size=250)


def test_every_gate_answer_is_documented_with_the_error_body(document: dict[str, Any]) -> None:
    for endpoint in Endpoint:
        operation = document["paths"][f"/{endpoint.value}"]["post"]
        responses = operation["responses"]
        for status in ("200", "400", "401", "403", "405", "413", "415", "422", "429", "503"):
            assert status in responses, (endpoint, status)
        for status, answer in responses.items():
            if status != "200":
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
        assert set(responses["405"]["headers"]) == {"Allow"}
        assert set(responses["429"]["headers"]) == {"Retry-After"}
        assert operation["requestBody"]["required"] is True
        assert operation["security"] == [{"bearer": []}, {"apiKey": []}]
        roles = {r.value for r, allowed in PERMISSIONS.items() if endpoint in allowed}
        assert set(operation["x-roles"]) == roles
    for endpoint in (Endpoint.DECISION, Endpoint.FEEDBACK):
        assert "409" in document["paths"][f"/{endpoint.value}"]["post"]["responses"]


def test_the_schemas_are_true(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    detail = schemas["ErrorResponse"]["properties"]["detail"]["anyOf"]
    assert {"type": "null"} in detail and any(o.get("type") == "array" for o in detail)
    violation = schemas["FeedbackResponse"]["properties"]["violation_type"]["anyOf"]
    assert {"type": "null"} in violation
    assert schemas["PriorityListRequest"]["properties"]["k"]["maximum"] == 250
    ids = schemas["ScoreRequest"]["properties"]["address_ids"]
    assert ids["anyOf"][0]["maxItems"] == 250 and ids["minItems"] == 1
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    assert document["openapi"].startswith("3.1")


def test_the_document_is_served_at_docs_json(document: dict[str, Any]) -> None:
    app = OpenApiDocument(Starlette(), make=lambda: document)
    client = TestClient(app)
    served = client.get("/docs.json")
    assert served.status_code == 200 and served.json() == document
    refused = client.post("/docs.json")
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD"


def test_a_decision_reason_is_a_code_of_the_one_list(document: dict[str, Any]) -> None:
    from stratum_ml.store.tables import DECISION_REASONS

    schemas = document["components"]["schemas"]
    for name in ("DecisionRequest", "DecisionResponse", "DecisionOut"):
        assert schemas[name]["properties"]["reason"]["enum"] == list(DECISION_REASONS), name
    assert "note" in schemas["DecisionRequest"]["properties"]
    assert "reason" in schemas["DecisionRequest"]["required"]
