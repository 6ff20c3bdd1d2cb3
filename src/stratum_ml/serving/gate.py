"""The gate in front of every endpoint: API key, role, request body, audit record.

:class:`AuditGate` is an ASGI middleware that BentoML runs before its own
request handling. For every request to a protected route, whatever its method
or body, it

1. authenticates the API key (:meth:`KeyStore.authenticate`: 401) and checks
   the role (:func:`authorize`: 403);
2. reads the body (at most ``STRATUM_MAX_BODY_BYTES``: 413), requires JSON
   (415) sent with POST (405), and validates it with the endpoint's own
   request model, with the batch limit in force (malformed JSON: 400; wrong
   types, unknown fields, values out of range, too large a batch: 422);
3. passes the request on, and when the answer's status is known, appends the
   audit record (time, key id, role, endpoint, address ids, model version,
   status) and makes it durable *before* the answer leaves.

A refused request is audited the same way, with the address ids the body asked
for as far as they can be read. If the record cannot be written, the caller
gets 503 instead of the answer: nothing is answered unaudited. A damaged API
key file is a 503 (audited) and an error escaping an endpoint a 500 (audited),
both with the details in the server log only.

Not gated: answers that BentoML's own outer middlewares give before the gate
runs (a request over the traffic timeout or concurrency limit); they are in
BentoML's access log.

Errors are JSON ``{"error": "<what is wrong>", "detail": [{"loc", "msg",
"type"}]}``; they never echo the rejected values and never hold a stack trace.
BentoML's own ``/readyz``, ``/livez``, ``/healthz``, ``/metrics``, ``/docs.json``
and ``/schema.json`` are public and do not pass the gate.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from stratum_ml.serving.api_models import (
    MAX_BATCH_CONTEXT,
    ApiRequest,
    ErrorDetail,
    ErrorResponse,
)
from stratum_ml.serving.app_state import ServiceState
from stratum_ml.serving.auth import AuthError, Endpoint, Principal, authorize

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: scope key: the caller accepted by the gate (read by the feedback and decision endpoints)
SCOPE_PRINCIPAL = "stratum.principal"
#: scope key: address ids an endpoint listed in its answer (the priority list)
SCOPE_LISTED_IDS = "stratum.listed_ids"
#: scope key: why an endpoint refused a valid request (kept in the audit record)
SCOPE_DETAIL = "stratum.detail"
#: at most this many validation problems are reported
MAX_ERRORS = 10
#: longest string taken as an address id from a body that could not be validated
MAX_ID_LENGTH = 64

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """A protected route: its endpoint (for roles and the log) and its request model."""

    endpoint: Endpoint
    request_model: type[ApiRequest]


class StateSlot:
    """Hands the service's loaded state to the gate; both live in one worker process."""

    def __init__(self) -> None:
        self._state: ServiceState | None = None

    def set(self, state: ServiceState) -> None:
        """Publish the state, once the service has loaded it."""
        self._state = state

    def get(self) -> ServiceState | None:
        """The state, or None while the service is starting."""
        return self._state


class _Refusal(Exception):
    def __init__(self, status: int, message: str, detail: list[ErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def protected_routes(service: Any) -> dict[str, Route]:
    """Path -> :class:`Route` for every API of a BentoML service class.

    Each API must be named after an :class:`~stratum_ml.serving.auth.Endpoint`
    (ValueError otherwise) and take one :class:`ApiRequest` (TypeError otherwise):
    the gate validates with the same model BentoML does.
    """
    prefix = (getattr(service, "path_prefix", None) or "").rstrip("/")
    routes: dict[str, Route] = {}
    for name, method in service.apis.items():
        if not issubclass(method.input_spec, ApiRequest):
            raise TypeError(f"API {name!r} must take one ApiRequest model as its input")
        routes[f"{prefix}{method.route}"] = Route(Endpoint(name), method.input_spec)
    return routes


def error_response(
    status: int, message: str, detail: list[ErrorDetail] | None = None
) -> JSONResponse:
    """The JSON error answer every refusal uses."""
    body = ErrorResponse(error=message, detail=detail)
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status)


def _validation_refusal(exc: ValidationError, endpoint: Endpoint) -> _Refusal:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    detail = [
        ErrorDetail(
            loc=[p if isinstance(p, int) else str(p) for p in e["loc"]],
            msg=e["msg"].removeprefix("Value error, "),
            type=e["type"],
        )
        for e in errors[:MAX_ERRORS]
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return _Refusal(400, f"the request body is not valid JSON: {errors[0]['msg']}", detail)
    where = [f"{'.'.join(str(p) for p in d.loc) or 'body'}: {d.msg}" for d in detail]
    more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
    return _Refusal(422, f"invalid {endpoint.value} request: {'; '.join(where)}{more}", detail)


def _ids_from_raw(body: bytes, limit: int) -> list[str]:
    """Address ids a body asks for, read without validation (for refused requests)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return []
    if not isinstance(data, dict):
        return []
    found = data.get("address_ids")
    candidates = found if isinstance(found, list) else [data.get("address_id")]
    return [c for c in candidates if isinstance(c, str) and len(c) <= MAX_ID_LENGTH][:limit]


class AuditGate:
    """ASGI middleware: authenticate, authorise, validate and audit protected routes.

    Parameters
    ----------
    app
        The wrapped ASGI application (BentoML's).
    routes
        The protected routes by path (:func:`protected_routes`).
    slot
        Where the service publishes its loaded state.
    """

    def __init__(self, app: ASGIApp, routes: Mapping[str, Route], slot: StateSlot) -> None:
        self.app = app
        self.routes = dict(routes)
        self.slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Gate one ASGI call; anything but a protected HTTP route passes untouched."""
        route = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        state = self.slot.get()
        if state is None:
            await error_response(503, "the service is starting; try again shortly")(
                scope, receive, send
            )
            return
        await _Call(self.app, state, route, scope, receive, send).run()


class _Call:
    """One gated request."""

    def __init__(
        self,
        app: ASGIApp,
        state: ServiceState,
        route: Route,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        self.app, self.state, self.route = app, state, route
        self.scope, self.receive, self.send = scope, receive, send
        self.principal: Principal | None = None
        self.key_id: str | None = None
        self.address_ids: list[str] = []

    async def run(self) -> None:
        try:
            body = await self._admit()
        except _Refusal as refusal:
            if await self._audit(refusal.status, refusal.message):
                await error_response(refusal.status, refusal.message, refusal.detail)(
                    self.scope, self.receive, self.send
                )
            return
        await self._pass_on(body)

    async def _admit(self) -> bytes:
        """Check key, role, method, media type and body; return the body."""
        headers = Headers(scope=self.scope)
        auth_error: AuthError | None = None
        try:
            self.principal = self.state.keys.authenticate(headers)
            self.key_id = self.principal.key_id
            authorize(self.principal, self.route.endpoint)
        except AuthError as exc:
            auth_error, self.key_id = exc, exc.key_id or self.key_id
        except ValueError:  # the key file was replaced by an invalid one
            log.exception("cannot read the API key file")
            damaged = "the API key file is damaged; no request can be authorised"
            raise _Refusal(503, damaged) from None
        body = await self._read_body(headers)
        limit = self.state.serving.max_batch_size
        self.address_ids = _ids_from_raw(body, limit) if body else []
        if auth_error is not None:
            raise _Refusal(auth_error.status, auth_error.detail)
        if self.scope["method"] != "POST":
            raise _Refusal(405, f"use POST for the {self.route.endpoint.value} endpoint")
        media_type = headers.get("content-type", "application/json").split(";")[0].strip()
        if media_type.lower() != "application/json":
            raise _Refusal(415, f"send the request body as application/json, not {media_type}")
        try:
            request = self.route.request_model.model_validate_json(
                body or b"{}", context={MAX_BATCH_CONTEXT: limit}
            )
        except ValidationError as exc:
            raise _validation_refusal(exc, self.route.endpoint) from None
        self.address_ids = request.audit_ids()
        self.scope[SCOPE_PRINCIPAL] = self.principal
        return body

    async def _read_body(self, headers: Headers) -> bytes:
        limit = self.state.serving.max_body_bytes
        too_large = _Refusal(413, f"the request body exceeds {limit} bytes")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] != "http.request":
                raise _Refusal(400, "the client disconnected before sending the body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _audit(self, status: int, detail: str = "") -> bool:
        """Append the audit record; False (and a 503 sent) when it cannot be written."""
        principal = self.principal
        listed = self.scope.get(SCOPE_LISTED_IDS, [])
        try:
            await anyio.to_thread.run_sync(
                functools.partial(
                    self.state.audit.append,
                    key_id=self.key_id,
                    role=principal.role.value if principal else None,
                    endpoint=self.route.endpoint.value,
                    address_ids=[*self.address_ids, *listed],
                    model_version=self.state.model_version,
                    status=status,
                    detail=detail,
                )
            )
        except Exception:  # any failure to record means no answer
            log.exception("audit log write failed; answering 503")
            await error_response(
                503, "the audit log cannot be written; the request was not answered"
            )(self.scope, self.receive, self.send)
            return False
        return True

    async def _pass_on(self, body: bytes) -> None:
        """Run the endpoint; audit once its status is known, before anything is sent."""
        delivered = False
        started = False
        suppressed = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await self.receive()

        async def send_audited(message: Message) -> None:
            nonlocal started, suppressed
            if suppressed:
                return
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                if not await self._audit(status, str(self.scope.get(SCOPE_DETAIL, ""))):
                    suppressed = True
                    return
            await self.send(message)

        try:
            await self.app(self.scope, replay, send_audited)
        except Exception:
            if started:
                raise  # the answer is under way (and audited); let the server end it
            log.exception("unexpected error in the %s endpoint", self.route.endpoint.value)
            message = "an unexpected error occurred; it is in the server log"
            if await self._audit(500, message):
                await error_response(500, message)(self.scope, self.receive, self.send)
