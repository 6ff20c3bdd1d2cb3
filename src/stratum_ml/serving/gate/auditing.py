"""The audit middleware: no answer leaves the service before its audit record is durable.

:class:`AuditMiddleware` is the outermost of the gate's middlewares. For a
protected call it makes the call's
:class:`~stratum_ml.serving.gate.request_state.RequestState`, runs the rest of
the gate and the endpoint, and when the answer's status is known appends the
audit record (time, key id, role, endpoint, address ids, model version,
status, why refused) to the hash-chained log
(:class:`~stratum_ml.serving.audit.AuditLog`, ``fsync``-ed) *before* the
first byte of the answer is sent. So every call is recorded, answered or
refused by the authentication middleware, the body guard or the endpoint.

A call refused before its body passed the request model (a refused key, a
body too large, not JSON or invalid) is recorded without address ids or any
other content of its body: with the body's size and its keyed hash
(:func:`~stratum_ml.serving.audit.body_digest`), so that its record stays small
and bounded however large or hostile the body. If the record
cannot be written, the caller gets 503 instead of the answer: nothing is
answered unaudited. An error escaping the inner layers before the answer
starts is a 500 (audited), with the details in the server log only. While the
service is still loading, a protected call gets 503 (unaudited: there is no
log yet).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratum_ml.serving.audit import body_digest
from stratum_ml.serving.gate.request_state import (
    STATE_KEY,
    Refusal,
    RequestState,
    Route,
    StateProvider,
    error_response,
    read_body,
)

#: the answer when the audit record cannot be written
AUDIT_FAILED = "the audit log cannot be written; the request was not answered"
#: the answer (and audit detail) when an error escapes the endpoint
UNEXPECTED_ERROR = "an unexpected error occurred; it is in the server log"

log = logging.getLogger(__name__)


class AuditMiddleware:
    """ASGI middleware: make each protected call's state and audit it before it is answered.

    Parameters
    ----------
    app
        The wrapped ASGI application (the rest of the gate, then BentoML's).
    routes
        The protected routes by path
        (:func:`~stratum_ml.serving.gate.request_state.protected_routes`).
    service_state
        Returns the service's loaded state, or None while it is starting.
    """

    def __init__(
        self, app: ASGIApp, routes: Mapping[str, Route], service_state: StateProvider
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.service_state = service_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Audit one ASGI call; anything but a protected HTTP route passes untouched."""
        route = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        service = self.service_state()
        if service is None:
            starting = error_response(503, "the service is starting; try again shortly")
            await starting(scope, receive, send)
            return
        state = RequestState(route=route, service=service)
        scope[STATE_KEY] = state
        await _AuditedCall(self.app, state, scope, receive, send).run()


class _AuditedCall:
    """One protected call: its answer is held back until its audit record is written."""

    def __init__(
        self, app: ASGIApp, state: RequestState, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.app, self.state = app, state
        self.scope, self.receive, self.send = scope, receive, send
        self.started = False
        self.suppressed = False

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send_audited)
        except Exception:
            if self.started:
                raise  # the answer is under way (and audited); let the server end it
            log.exception("unexpected error in the %s endpoint", self.state.route.endpoint.value)
            self.state.detail = UNEXPECTED_ERROR
            await error_response(500, UNEXPECTED_ERROR)(self.scope, self.receive, self.send_audited)

    async def send_audited(self, message: Message) -> None:
        """Pass a message on; the answer's start only once its record is durable."""
        if self.suppressed:
            return
        if message["type"] == "http.response.start":
            self.started = True
            if self.state.address_ids is None and self.state.body_size is None:
                await self._read_unread_body()  # refused before the body was read
            if not await self._record(int(message["status"])):
                self.suppressed = True
                await error_response(503, AUDIT_FAILED)(self.scope, self.receive, self.send)
                return
        await self.send(message)

    async def _read_unread_body(self) -> None:
        """Read a refused call's body, for its size and keyed hash (never its content)."""
        headers = Headers(scope=self.scope)
        try:
            body = await read_body(self.receive, headers, self.state.service.serving.max_body_bytes)
        except Refusal:
            declared = headers.get("content-length", "")
            self.state.body_size = int(declared) if declared.isdigit() else None
            return
        self.state.body, self.state.body_size = body, len(body)

    async def _record(self, status: int) -> bool:
        """Append the audit record; False when it cannot be written."""
        state = self.state
        refused_body = state.address_ids is None
        body = (
            body_digest(state.service.body_key, state.body, state.body_size or 0)
            if refused_body
            else None
        )
        try:
            await state.service.audit.append_async(
                key_id=state.key_id,
                role=state.principal.role.value if state.principal else None,
                endpoint=state.route.endpoint.value,
                address_ids=state.audited_ids(),
                model_version=state.service.model_version,
                status=status,
                detail=state.detail,
                body=body,
            )
        except Exception:  # any failure to record means no answer
            log.exception("audit log write failed; answering 503")
            return False
        return True
