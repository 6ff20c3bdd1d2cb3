"""The body guard: a protected call's method, media type and body, checked before BentoML.

:class:`BodyGuard` reads the body of a protected call (at most
``STRATUM_MAX_BODY_BYTES``: 413), requires POST (405) and JSON (415), and
validates the body with the endpoint's own request model, with the batch
limit in force (malformed JSON: 400; wrong types, unknown fields, values out
of range, too large a batch: 422). It notes the address ids the body asks for
in the call's :class:`~stratum_ml.serving.gate.request_state.RequestState`
(as far as they can be read, for a refused call) and hands the body on
unchanged.
"""

from __future__ import annotations

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratum_ml.serving.api_models import MAX_BATCH_CONTEXT, ErrorDetail
from stratum_ml.serving.auth import Endpoint
from stratum_ml.serving.gate.request_state import (
    Refusal,
    RequestState,
    error_response,
    ids_from_raw,
    read_body,
    request_state,
)

#: at most this many validation problems are reported
MAX_ERRORS = 10


def _validation_refusal(exc: ValidationError, endpoint: Endpoint) -> Refusal:
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
        return Refusal(400, f"the request body is not valid JSON: {errors[0]['msg']}", detail)
    where = [f"{'.'.join(str(p) for p in d.loc) or 'body'}: {d.msg}" for d in detail]
    more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
    return Refusal(422, f"invalid {endpoint.value} request: {'; '.join(where)}{more}", detail)


async def _admit(state: RequestState, scope: Scope, receive: Receive) -> bytes:
    """Check the body, method and media type of a call; return the body."""
    headers = Headers(scope=scope)
    serving = state.service.serving
    try:
        body = await read_body(receive, headers, serving.max_body_bytes)
    except Refusal:
        state.address_ids = []
        raise
    state.address_ids = ids_from_raw(body, serving.max_batch_size)
    endpoint = state.route.endpoint
    if scope["method"] != "POST":
        raise Refusal(405, f"use POST for the {endpoint.value} endpoint")
    media_type = headers.get("content-type", "application/json").split(";")[0].strip()
    if media_type.lower() != "application/json":
        raise Refusal(415, f"send the request body as application/json, not {media_type}")
    try:
        request = state.route.request_model.model_validate_json(
            body or b"{}", context={MAX_BATCH_CONTEXT: serving.max_batch_size}
        )
    except ValidationError as exc:
        raise _validation_refusal(exc, endpoint) from None
    state.address_ids = request.audit_ids()
    return body


class BodyGuard:
    """ASGI middleware: refuse a protected call whose method, media type or body is wrong.

    Parameters
    ----------
    app
        The wrapped ASGI application (BentoML's).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check one ASGI call; a call the gate does not protect passes untouched."""
        state = request_state(scope) if scope["type"] == "http" else None
        if state is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await _admit(state, scope, receive)
        except Refusal as refusal:
            state.detail = refusal.message
            await error_response(refusal.status, refusal.message, refusal.detail)(
                scope, receive, send
            )
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
