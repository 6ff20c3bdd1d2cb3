"""The body guard: a protected call's method, media type and body, checked before BentoML.

:class:`BodyGuard` reads the body of a protected call (at most
``STRATUM_MAX_BODY_BYTES``: 413), requires POST (405) and JSON (415), and
validates the body with the endpoint's own request model, with the batch
limit in force (malformed JSON: 400; wrong types, unknown fields, values out
of range, too large a batch: 422). It notes the address ids the body asks for
in the call's :class:`~stratum_ml.serving.gate.request_state.RequestState`
once the body passed the request model (a refused body's ids are never
recorded, only its size and keyed hash), and hands the body on unchanged.
A writing endpoint (decision, feedback, pause) is refused with 503 when the
disk of the audit log or the SQLite store has less than
``STRATUM_MIN_FREE_DISK_MB`` free, before anything is written. A 405 names
the one method allowed in ``Allow``.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratum_ml.serving.api_models import MAX_BATCH_CONTEXT, ErrorDetail
from stratum_ml.serving.auth import Endpoint
from stratum_ml.serving.gate.limits import below_floor
from stratum_ml.serving.gate.request_state import (
    Refusal,
    RequestState,
    error_response,
    read_body,
    request_state,
)

#: at most this many validation problems are reported
MAX_ERRORS = 10
#: the endpoints that write to the store; refused with 503 below the free-disk floor
WRITING_ENDPOINTS = frozenset({Endpoint.DECISION, Endpoint.FEEDBACK, Endpoint.PAUSE})
#: a name a caller sent that may be repeated in an error: a short identifier (never digits only)
_SAFE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
#: what stands in an error's location for a name a caller sent that is not repeated
HIDDEN_NAME = "(a name not repeated)"


def _loc(loc: tuple[int | str, ...]) -> list[int | str]:
    """An error's location, without repeating a caller's key that is not a short identifier."""
    return [p if isinstance(p, int) or _SAFE_NAME.fullmatch(p) else HIDDEN_NAME for p in loc]


def _validation_refusal(exc: ValidationError, endpoint: Endpoint) -> Refusal:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    detail = [
        ErrorDetail(loc=_loc(e["loc"]), msg=e["msg"].removeprefix("Value error, "), type=e["type"])
        for e in errors[:MAX_ERRORS]
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return Refusal(400, f"the request body is not valid JSON: {errors[0]['msg']}", detail)
    where = [f"{'.'.join(str(p) for p in d.loc) or 'body'}: {d.msg}" for d in detail]
    more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
    return Refusal(422, f"invalid {endpoint.value} request: {'; '.join(where)}{more}", detail)


def _write_paths(state: RequestState) -> list[Path]:
    """Where a write lands on disk: the audit log and, for SQLite, the operational store."""
    service = state.service
    paths = [service.audit.path]
    store = getattr(service, "store", None)
    url = getattr(getattr(store, "engine", None), "url", None)
    if url is not None and url.get_backend_name() == "sqlite" and url.database:
        paths.append(Path(url.database))
    return paths


async def _admit(state: RequestState, scope: Scope, receive: Receive) -> bytes:
    """Check the body, method and media type of a call; return the body."""
    headers = Headers(scope=scope)
    serving = state.service.serving
    try:
        body = await read_body(receive, headers, serving.max_body_bytes)
    except Refusal:
        declared = headers.get("content-length", "")
        state.body_size = int(declared) if declared.isdigit() else None
        raise
    state.body, state.body_size = body, len(body)
    endpoint = state.route.endpoint
    if scope["method"] != "POST":
        raise Refusal(405, f"use POST for the {endpoint.value} endpoint", headers={"Allow": "POST"})
    media_type = headers.get("content-type", "application/json").split(";")[0].strip()
    if media_type.lower() != "application/json":
        raise Refusal(415, "send the request body as application/json")
    try:
        request = state.route.request_model.model_validate_json(
            body or b"{}", context={MAX_BATCH_CONTEXT: serving.max_batch_size}
        )
    except ValidationError as exc:
        raise _validation_refusal(exc, endpoint) from None
    if endpoint in WRITING_ENDPOINTS and below_floor(
        _write_paths(state), serving.min_free_disk_mb * 1024 * 1024
    ):
        raise Refusal(
            503,
            f"the disk is nearly full (less than {serving.min_free_disk_mb} MB free); nothing "
            "was stored: try again once an operator has made room",
        )
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
            answer = error_response(
                refusal.status, refusal.message, refusal.detail, refusal.headers
            )
            await answer(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
