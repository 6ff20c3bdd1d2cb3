"""The service's OpenAPI document, made from what the gate and the endpoints really do.

BentoML's own document (OpenAPI 3.0) leaves out every answer the gate gives
(401, 403, 405, 409, 413, 415, 422, 429, 503), types the error's ``detail`` as a
string where it is a list, drops ``null`` from optional response fields, does
not mark request bodies required and has no security scheme, so its Swagger
page cannot send a key. :func:`openapi_document` builds the document instead,
as OpenAPI 3.1 (whose schemas are JSON Schema, as pydantic writes them), from

- the request models the body guard validates with and the response models the
  endpoints answer with (:func:`~stratum_ml.serving.gate.protected_routes`),
- the statuses the gate and each endpoint answer with (:data:`ENDPOINT_ERRORS`),
  all with the one error body (:class:`~stratum_ml.serving.api_models.ErrorResponse`),
  ``Allow`` on 405 and ``Retry-After`` on 429,
- the roles of :data:`~stratum_ml.serving.auth.PERMISSIONS`, and the two ways to
  send a key (``Authorization: Bearer`` and ``X-API-Key``) as security schemes.

:class:`OpenApiDocument` serves it at ``/docs.json`` (where BentoML's Swagger
page at ``/`` reads it). The slow test suite runs schemathesis with every check
against the running service, with a key of each role, to keep it true.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from stratum_ml.serving.api_models import IDEMPOTENCY_HEADER, ErrorResponse
from stratum_ml.serving.auth import PERMISSIONS, Endpoint
from stratum_ml.serving.gate.request_state import protected_routes

__all__ = ["DOCUMENT_PATH", "ENDPOINT_ERRORS", "OpenApiDocument", "openapi_document"]

#: where the document is served (BentoML's Swagger page reads it there)
DOCUMENT_PATH = "/docs.json"

#: what every protected call may be answered with besides its own answer
GATE_ERRORS: dict[int, str] = {
    400: "The body is not valid JSON.",
    401: "No API key, a malformed, unknown, revoked or locked key, or a wrong secret.",
    403: "The key's role may not use this endpoint.",
    405: "Not POST; `Allow` names the method to use.",
    413: "The body is larger than the service accepts (STRATUM_MAX_BODY_BYTES).",
    415: "The body is not sent as application/json.",
    422: "The body does not fit the request model (wrong types, unknown fields, values "
    "out of range, too large a batch).",
    429: "Too many requests from this address or with this key; `Retry-After` says when "
    "to try again.",
    503: "The service is starting, its audit log or API key file cannot be used (nothing "
    "is answered unaudited), or, for a write, the disk is nearly full.",
}

#: the answers each endpoint gives itself, on top of :data:`GATE_ERRORS`
ENDPOINT_ERRORS: dict[Endpoint, dict[int, str]] = {
    Endpoint.SCORE: {
        404: "`run_id` names no stored run.",
        409: "Feature rows while the model is paused (no fallback for rows).",
        422: "An `as_of` other than the served run's date, or another stored run's id.",
    },
    Endpoint.PRIORITY_LIST: {404: "`run_id` names no stored run."},
    Endpoint.SUMMARY: {
        404: "`run_id` names no stored run.",
        422: "Another stored run's id.",
    },
    Endpoint.EXPLAIN: {
        404: "The address is not a scored dwelling, or `run_id` names no stored run.",
        422: "Another stored run's id.",
    },
    Endpoint.DOSSIER: {404: "The address is not in the address register."},
    Endpoint.FEEDBACK: {
        409: "The same visit is already stored.",
        422: "The outcome breaks a rule of the data contract, the visit lies in the future "
        "or before the sources' first visit, the address is unknown, or the "
        "Idempotency-Key came with another request.",
    },
    Endpoint.DECISION: {
        404: "The address is not in the address register.",
        409: "The address has an open decision that `supersedes` does not name.",
        422: "A reason that seems to hold person data, or the Idempotency-Key came with "
        "another request.",
    },
    Endpoint.DECISIONS: {404: "`run_id` names no stored run."},
    Endpoint.MODEL: {},
    Endpoint.PAUSE: {},
}

#: the security schemes: the same key, in either header
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <API key>` (a key from `stratum keys create`).",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "`X-API-Key: <API key>`, the same key.",
    },
}

#: BentoML's own public endpoints, answered with plain text
PUBLIC_PATHS: dict[str, str] = {
    "/healthz": "Health check: 200 while the service runs.",
    "/livez": "Liveness: 200 while the service runs.",
    "/readyz": "Readiness: 200 once the service has loaded its run.",
    "/metrics": "Prometheus metrics, with the served run's gauges.",
}

_REF = "#/components/schemas/{model}"


def _own_model(spec: type[BaseModel]) -> type[BaseModel]:
    """The stratum model behind a BentoML IO descriptor (which subclasses it)."""
    for cls in spec.__mro__:
        if cls.__module__.startswith("stratum_ml.") and issubclass(cls, BaseModel):
            return cls
    return spec


def _error(description: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}},
    }
    if headers:
        answer["headers"] = {
            name: {"description": text, "required": True, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return answer


def _responses(endpoint: Endpoint, response_model: str) -> dict[str, Any]:
    statuses = dict(GATE_ERRORS)
    for status, text in ENDPOINT_ERRORS[endpoint].items():
        statuses[status] = f"{statuses[status]} Or: {text}" if status in statuses else text
    responses: dict[str, Any] = {
        "200": {
            "description": "The answer.",
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=response_model)}}
            },
        }
    }
    for status in sorted(statuses):
        headers = (
            {"Allow": "The method to use: POST."}
            if status == 405
            else {"Retry-After": "Seconds to wait."}
            if status == 429
            else None
        )
        responses[str(status)] = _error(statuses[status], headers)
    return responses


def _roles(endpoint: Endpoint) -> list[str]:
    return [role.value for role, allowed in PERMISSIONS.items() if endpoint in allowed]


def _public_path(description: str) -> dict[str, Any]:
    return {
        "get": {
            "operationId": "public" + description.split(":")[0].replace(" ", "_").lower(),
            "summary": description,
            "tags": ["Infrastructure"],
            "security": [],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }


def _apply_batch_limit(schemas: dict[str, Any], limit: int) -> None:
    """Write the batch limit in force into the request schemas: k, ids and rows."""
    for schema in schemas.values():
        properties = schema.get("properties", {})
        if "k" in properties and "Request" in schema.get("title", ""):
            properties["k"]["maximum"] = limit
        for name in ("address_ids", "rows"):
            for option in properties.get(name, {}).get("anyOf", []):
                if option.get("type") == "array":
                    option["maxItems"] = limit


def openapi_document(
    service: Any,
    *,
    max_batch_size: int | None = None,
    title: str = "stratum_ml scoring service",
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a BentoML service class whose APIs pass the gate.

    Parameters
    ----------
    service
        The service class (``RiskService``): its APIs, their request models (through
        :func:`~stratum_ml.serving.gate.protected_routes`), response models and docstrings.
    max_batch_size
        The batch limit in force (``STRATUM_MAX_BATCH_SIZE``): the most ids or rows a
        score request, and the largest k, the document allows. None: no limit.
    title
        The document's title.
    """
    routes = protected_routes(service)
    models: list[tuple[type[BaseModel], Any]] = [(ErrorResponse, "serialization")]
    operations: list[tuple[str, Endpoint, type[BaseModel], type[BaseModel], str]] = []
    for path, route in routes.items():
        api = service.apis[route.endpoint.value]
        request_model = _own_model(route.request_model)
        response_model = _own_model(api.output_spec)
        models += [(request_model, "validation"), (response_model, "serialization")]
        operations.append((path, route.endpoint, request_model, response_model, api.doc or ""))
    refs, schema = models_json_schema(models, ref_template=_REF)
    schemas: dict[str, Any] = schema.get("$defs", {})
    if max_batch_size is not None:
        _apply_batch_limit(schemas, max_batch_size)
    paths: dict[str, Any] = {path: _public_path(text) for path, text in PUBLIC_PATHS.items()}
    for path, endpoint, request_model, response_model, doc in operations:
        request_ref = refs[(request_model, "validation")]["$ref"]
        response_name = refs[(response_model, "serialization")]["$ref"].rsplit("/", 1)[1]
        roles = _roles(endpoint)
        operation: dict[str, Any] = {
            "operationId": endpoint.value,
            "summary": " ".join(doc.split()).split(". ")[0],
            "description": f"{' '.join(doc.split())}\n\nRoles: {', '.join(roles)}.",
            "tags": ["Service APIs"],
            "x-roles": roles,
            "security": [{"bearer": []}, {"apiKey": []}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": request_ref}}},
            },
            "responses": _responses(endpoint, response_name),
        }
        if endpoint in (Endpoint.DECISION, Endpoint.FEEDBACK):
            operation["parameters"] = [
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": False,
                    "description": "Send the same key again to retry safely: nothing more is "
                    "stored and the first answer comes back (`replayed: true`).",
                    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
                }
            ]
        paths[path] = {"post": operation}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1",
            "description": "Risk scores, priority lists and the evidence behind them. Every "
            "call needs an API key whose role allows the endpoint; every call is audited. "
            'Errors are `{"error": "...", "detail": [...]}` and never repeat what was '
            "sent.",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


class OpenApiDocument:
    """ASGI middleware: answer ``GET /docs.json`` with :func:`openapi_document`.

    Parameters
    ----------
    app
        The wrapped ASGI application.
    make
        Returns the document; called once, on the first request for it.
    """

    def __init__(self, app: ASGIApp, make: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.make = make
        self._body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the document; anything else passes untouched."""
        if scope["type"] != "http" or scope.get("path") != DOCUMENT_PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            answer = Response(status_code=405, headers={"Allow": "GET, HEAD"})
        else:
            if self._body is None:
                self._body = json.dumps(self.make()).encode()
            answer = Response(self._body, media_type="application/json")
        await answer(scope, receive, send)
